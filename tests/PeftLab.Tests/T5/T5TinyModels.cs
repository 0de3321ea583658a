using PeftLab.Models;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>Very small T5 models built in code for fast tests.</summary>
public static class T5TinyModels
{
    /// <summary>T5 v1.1 / LM-adapt style: gated-GELU, untied head, 2 encoder + 1 decoder blocks.</summary>
    public static readonly T5Config Gated = new()
    {
        VocabSize = 64, HiddenSize = 32, HeadDim = 8, FeedForwardSize = 48, NumLayers = 2, NumDecoderLayers = 1, NumHeads = 4,
        RelativeAttentionNumBuckets = 8, RelativeAttentionMaxDistance = 16, FeedForwardProj = "gated-gelu", TieWordEmbeddings = false,
        PadTokenId = 0, EosTokenIds = [1], DecoderStartTokenId = 0,
    };

    /// <summary>Original T5 style: ReLU, tied and scaled head; 1 encoder + 2 decoder blocks; heads × d_kv (16) ≠ d_model (32).</summary>
    public static readonly T5Config ReluTied = Gated with
    {
        NumLayers = 1, NumDecoderLayers = 2, NumHeads = 2, FeedForwardProj = "relu", TieWordEmbeddings = true,
    };

    public static IReadOnlyDictionary<string, T5Config> ByName { get; } = new Dictionary<string, T5Config> { ["t5-gated"] = Gated, ["t5-relu-tied"] = ReluTied };

    /// <summary>A T5-initialised model (deterministic for a seed).</summary>
    public static T5ForConditionalGeneration Create(T5Config config, long seed = 1)
    {
        var model = new T5ForConditionalGeneration(config, CPU);
        T5Init.InitializeWeights(model, seed);
        return model;
    }

    /// <summary>
    /// max|a − b| relative to the magnitude of <paramref name="b"/> (at least 1): T5's initialisation (N(0, 1) embeddings
    /// and head) gives logits of order 10, where float32 rounding of reordered but equal computations exceeds 1e-5 absolute.
    /// </summary>
    public static double RelDiff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return Fixtures.MaxAbsDiff(a, b) / Math.Max(1.0, b.to_type(ScalarType.Float32).abs().max().item<float>());
    }

    /// <summary>Decoder input [B, T]: the start token followed by deterministic tokens in [3, vocab).</summary>
    public static Tensor DecoderInput(int batch, int length, T5Config config, long seed = 11)
    {
        var ids = TinyModels.Tokens(batch, length, config.VocabSize, seed);
        ids.select(1, 0).fill_(config.DecoderStartTokenId);
        return ids;
    }
}
