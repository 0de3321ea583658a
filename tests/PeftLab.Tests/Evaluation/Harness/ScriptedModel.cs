using PeftLab.Data;
using PeftLab.Data.Batching;
using PeftLab.Models;
using PeftLab.Tokenization;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>
/// A model whose behaviour a test scripts: it answers each prompt from a list (in turn, per prompt) and scores a
/// continuation by a given function of the decoded context and continuation; nothing else of a model.
/// </summary>
internal sealed class ScriptedModel(ITokenizer tokenizer, Dictionary<string, string[]>? answers = null, Func<string, string, double>? score = null) : ITrainableModel
{
    private readonly Dictionary<string, int> served = [];

    public IReadOnlyList<int[]> Generate(IReadOnlyList<int[]> prompts, SamplingConfig cfg, IReadOnlyCollection<int> eos, int pad) =>
        prompts.Select(p =>
        {
            var text = tokenizer.Decode(p, skipSpecialTokens: true);
            int k = served.GetValueOrDefault(text);
            served[text] = k + 1;
            return tokenizer.Encode(answers![text][k]);
        }).ToArray();

    public int[] EncodeContext(ITokenizer t, string context) => t.Encode(context);
    public IPeftHost Host => throw new NotSupportedException();
    public bool SupportsPacking => false;
    public IReadOnlyList<IModelBatch> Batches(Batcher batcher, IReadOnlyList<MaskedSequence> examples, int epoch, bool pack) => throw new NotSupportedException();
    public Tensor BatchLoss(IModelBatch batch, out long targets) => throw new NotSupportedException();
    public IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<ContinuationRequest> requests, int batchSize) =>
        requests.Select(r => new ContinuationScore(score!(tokenizer.Decode(r.Context, skipSpecialTokens: true), tokenizer.Decode(r.Continuation, skipSpecialTokens: true)), false)).ToArray();
    public ContinuationRequest Encode(ITokenizer t, string context, string continuation) => new(t.Encode(context), t.Encode(continuation));
    public void SaveFull(string dir) => throw new NotSupportedException();
    public void LoadFull(string dir) => throw new NotSupportedException();
    public Tensor Logits(PeftLab.Checkpoints.SafeTensorsFile input, string path) => throw new NotSupportedException();
    public IReadOnlyList<int> ConfigEosIds => [];
    public int ConfigPadId => 0;
    public MemorySettings Memory { get; set; } = new();
}
