using PeftLab.Tokenization;
using PeftLab.Training;

namespace PeftLab.Evaluation.Harness;

/// <summary>One document's judgement: the judge's probability that the model's output is better, in each order, and their mean.</summary>
/// <param name="ModelFirst">P(the first response is better) with the model's output first.</param>
/// <param name="ModelSecond">P(the second response is better) with the model's output second.</param>
public sealed record PairwiseVerdict(double ModelFirst, double ModelSecond)
{
    /// <summary>The preference for the model's output: the mean over both orders, which cancels the judge's position bias.</summary>
    public double Preference => (ModelFirst + ModelSecond) / 2;
    /// <summary>The judge's probability of answering "the first response" averaged over both orders (0.5: no position bias).</summary>
    public double FirstPositionRate => (ModelFirst + (1 - ModelSecond)) / 2;
    /// <summary>1 when the model's output is preferred, 0.5 on a tie, 0 otherwise.</summary>
    public double Win => Preference > 0.5 ? 1 : Preference < 0.5 ? 0 : 0.5;
}

/// <summary>
/// AlpacaEval-style pairwise judging by a local model: the judge reads a prompt (a template over <c>instruction</c>,
/// <c>output_1</c>, <c>output_2</c>, from a file the user can replace) and its verdict is which of the continuations
/// <c>" 1"</c> and <c>" 2"</c> it finds more likely; the two probabilities, normalised to sum to one, weigh the win
/// (as AlpacaEval's log-probability-weighted win rate). Every comparison is made in both orders.
/// </summary>
public sealed class PairwiseJudge
{
    /// <summary>
    /// The judge prompt used when the task names none (<c>judge_prompt</c>): the instruction and the two responses,
    /// then the judge names the better one. PeftLab's own wording, in the spirit of AlpacaEval's annotator prompts.
    /// </summary>
    public const string DefaultPrompt = """
        Below is an instruction and two responses to it. Decide which response follows the instruction better: the one that is more helpful, correct and complete, without being longer than it needs to be.

        Instruction:
        {{instruction}}

        Response 1:
        {{output_1}}

        Response 2:
        {{output_2}}

        The better response is Response
        """;

    /// <summary>The continuations naming the better response.</summary>
    public static readonly string[] Answers = [" 1", " 2"];

    private readonly ITrainableModel judge;
    private readonly ITokenizer tokenizer;
    private readonly DocTemplate prompt;

    /// <summary>Where the judge model came from (for records).</summary>
    public string Name { get; }
    /// <summary>The judge prompt file, or "(built-in)".</summary>
    public string PromptFile { get; }

    /// <summary>A judge from a loaded model, its tokenizer and a prompt file (null: <see cref="DefaultPrompt"/>).</summary>
    /// <exception cref="TemplateException">The prompt is not a template over instruction, output_1 and output_2.</exception>
    public PairwiseJudge(ITrainableModel judge, ITokenizer tokenizer, string? promptFile, string name)
    {
        this.judge = judge;
        this.tokenizer = tokenizer;
        PromptFile = promptFile ?? "(built-in)";
        Name = name;
        if (promptFile is not null && !File.Exists(promptFile)) throw new FileNotFoundException($"judge prompt '{promptFile}' does not exist", promptFile);
        prompt = DocTemplate.Parse(promptFile is null ? DefaultPrompt : File.ReadAllText(promptFile));
        _ = Render("i", "a", "b");                                                                     // every field it names must be one of the three
    }

    /// <summary>Loads the judge model (any supported checkpoint) and its tokenizer.</summary>
    public static PairwiseJudge Load(string modelDir, string? promptFile, TorchSharp.torch.ScalarType dtype)
    {
        var lm = TrainableModels.Load(modelDir, dtype, Runtime.TorchRuntime.Device);
        lm.Host.Module.eval();
        return new PairwiseJudge(lm, HfTokenizer.Load(modelDir), promptFile, modelDir);
    }

    /// <summary>The same judge model with another prompt file (null: the built-in prompt); nothing is loaded again.</summary>
    public PairwiseJudge WithPrompt(string? promptFile) => new(judge, tokenizer, promptFile, Name);

    /// <summary>The judge's prompt for one comparison.</summary>
    public string Render(string instruction, string output1, string output2) =>
        prompt.Render(new Dictionary<string, object?> { ["instruction"] = instruction, ["output_1"] = output1, ["output_2"] = output2 });

    /// <summary>Judges each (instruction, model output, reference output) in both orders; <paramref name="batchSize"/> continuations per forward.</summary>
    public IReadOnlyList<PairwiseVerdict> Judge(IReadOnlyList<(string Instruction, string Output, string Reference)> items, int batchSize, Action<int, int>? progress = null)
    {
        // per item: [model first: " 1", " 2"], [model second: " 1", " 2"]
        var requests = items.SelectMany(it => new[] { Render(it.Instruction, it.Output, it.Reference), Render(it.Instruction, it.Reference, it.Output) })
            .SelectMany(p => Answers.Select(a => judge.Encode(tokenizer, p, a))).ToArray();
        var scores = new List<ContinuationScore>(requests.Length);
        for (int start = 0; start < requests.Length; start += batchSize)
        {
            scores.AddRange(judge.ScoreContinuations(requests[start..Math.Min(requests.Length, start + batchSize)], batchSize));
            progress?.Invoke(Math.Min(items.Count, (start + batchSize) / 4), items.Count);
        }
        return Enumerable.Range(0, items.Count).Select(i =>
        {
            double First(int at) => Softmax2(scores[at].LogLikelihood, scores[at + 1].LogLikelihood);
            return new PairwiseVerdict(First(4 * i), 1 - First(4 * i + 2));
        }).ToArray();
    }

    /// <summary>P(first) from two log-likelihoods, normalised over the pair.</summary>
    public static double Softmax2(double first, double second) => 1 / (1 + Math.Exp(second - first));
}
