using System.Text.Json.Nodes;
using PeftLab.Runtime;
using PeftLab.Studies.Report;
using PeftLab.Tokenization;
using PeftLab.Training;

namespace PeftLab.Evaluation.Harness;

/// <summary>What <c>peftlab eval --task</c> evaluates: a model (and adapter) on one harness task file.</summary>
public sealed record HarnessEvalRequest
{
    /// <summary>Hugging Face model folder (decoder-only or T5).</summary>
    public required string Model { get; init; }
    /// <summary>PEFT adapter folder, or null for the model alone.</summary>
    public string? Adapter { get; init; }
    /// <summary>Compute dtype of the model.</summary>
    public TorchSharp.torch.ScalarType Dtype { get; init; } = TorchSharp.torch.ScalarType.Float32;
    /// <summary>The task file (lm-evaluation-harness YAML).</summary>
    public required string Task { get; init; }
    /// <summary>A local folder (or file) replacing the task's <c>dataset_path</c>.</summary>
    public string? DatasetPath { get; init; }
    /// <summary>Few-shot examples per prompt, replacing the task's <c>num_fewshot</c>.</summary>
    public int? NumFewshot { get; init; }
    /// <summary>Score the first N documents of the split only.</summary>
    public int? Limit { get; init; }
    /// <summary>Continuations scored per forward.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Seed of sampled generation (<c>do_sample: true</c>).</summary>
    public long Seed { get; init; } = HarnessEvaluator.FewshotSeed;
    /// <summary>Run generated code even where no sandbox works (as this user, under rlimits only).</summary>
    public bool UnsafeExecute { get; init; }
    /// <summary>Wrap each context in the model tokenizer's chat template (one user turn, then the assistant header).</summary>
    public bool ApplyChatTemplate { get; init; }
    /// <summary>win_rate tasks: the judge model's folder (any supported checkpoint).</summary>
    public string? Judge { get; init; }
    /// <summary>win_rate tasks: a judge prompt file replacing the task's <c>judge_prompt</c>.</summary>
    public string? JudgePrompt { get; init; }
}

/// <summary>One document's outcome: the prompt, the right answer, each candidate's log-likelihood and the picks.</summary>
/// <param name="Index">The document's position in the split.</param>
/// <param name="Prompt">The context the model saw (few-shot examples included).</param>
/// <param name="Candidates">The continuations scored (the choices, or the one target).</param>
/// <param name="Target">The index of the right candidate (always 0 for loglikelihood and generate_until tasks, whose one candidate is the target).</param>
/// <param name="LogLikelihoods">Summed log-probability of each candidate's tokens.</param>
/// <param name="IsGreedy">Whether each candidate is the greedy continuation.</param>
/// <param name="Metrics">The document's value of each metric (acc: 0 or 1; perplexity: its log-likelihood).</param>
public sealed record HarnessSample(int Index, string Prompt, IReadOnlyList<string> Candidates, int Target, IReadOnlyList<double> LogLikelihoods,
    IReadOnlyList<bool> IsGreedy, IReadOnlyDictionary<string, double> Metrics)
{
    /// <summary>generate_until: the generated text, cut at the first stop sequence.</summary>
    public string? Generated { get; init; }
    /// <summary>generate_until: the answer each filter pipeline made of it, by pipeline name.</summary>
    public IReadOnlyDictionary<string, string>? Filtered { get; init; }
    /// <summary>generate_until with <c>repeats</c> &gt; 1: every generation, cut at its stop sequence (the first is <see cref="Generated"/>).</summary>
    public IReadOnlyList<string>? Generations { get; init; }
    /// <summary>win_rate: the judge's verdict on the first generation's answer against the target, by pipeline name.</summary>
    public IReadOnlyDictionary<string, PairwiseVerdict>? Verdicts { get; init; }
    /// <summary>pass_at_k: each generation's program run (the filtered answer, a newline, the target's tests), by pipeline name.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<Code.SandboxRun>>? Executions { get; init; }
}

/// <summary>A metric over the split, with its 95 % percentile bootstrap interval over documents.</summary>
public sealed record HarnessScore(string Metric, double Value, double Lower, double Upper);

/// <summary>The result of one harness task: the scores with intervals and every document's outcome.</summary>
public sealed record HarnessResult(string Task, HarnessOutputType OutputType, string Split, int NumFewshot, IReadOnlyList<HarnessScore> Scores,
    IReadOnlyList<HarnessSample> Samples, double Seconds)
{
    /// <summary>What isolated executed code (pass_at_k tasks), else null.</summary>
    public string? Sandbox { get; init; }
    /// <summary>The judge model and prompt (win_rate tasks), else null.</summary>
    public string? Judge { get; init; }
    /// <summary>The capability group the task reports under in a run's open-instruction evaluation, else null.</summary>
    public CapabilityGroup? Group { get; init; }

    /// <summary>
    /// The task's headline score, a share in [0, 1] per document: the first score of the first metric and filter
    /// pipeline, skipping perplexity (not a share) and the judge's position diagnostic.
    /// </summary>
    public HarnessScore Primary => Scores.FirstOrDefault(IsShare)
        ?? throw new InvalidOperationException($"{Task}: no score is a share per document (only {string.Join(", ", Scores.Select(s => s.Metric))})");

    /// <summary>Whether a score is a per-document share in [0, 1] (not perplexity, not the judge's position diagnostic).</summary>
    private static bool IsShare(HarnessScore s) => s.Metric.Split(',')[0] is not ("perplexity" or "judge_first_position");

    /// <summary>The scores as <c>results.json</c> holds them.</summary>
    public JsonObject ToJson()
    {
        var scores = new JsonObject();
        foreach (var s in Scores)
            scores[s.Metric] = new JsonObject { ["value"] = s.Value, ["ci95_low"] = s.Lower, ["ci95_high"] = s.Upper };
        return new JsonObject
        {
            ["task"] = Task, ["output_type"] = Configuration.ConfigEnums.Name(OutputType), ["split"] = Split, ["num_fewshot"] = NumFewshot,
            ["documents"] = Samples.Count, ["scores"] = scores, ["seconds"] = Math.Round(Seconds, 2), ["sandbox"] = Sandbox, ["judge"] = Judge,
            ["group"] = Group is { } g ? Configuration.ConfigEnums.Name(g) : null,
            ["primary"] = Scores.FirstOrDefault(IsShare)?.Metric,
        };
    }

    /// <summary>One JSON line per document (<c>samples.jsonl</c>).</summary>
    public IEnumerable<string> SampleLines() => Samples.Select(s => new JsonObject
    {
        ["doc"] = s.Index, ["prompt"] = s.Prompt, ["candidates"] = new JsonArray(s.Candidates.Select(c => (JsonNode)c).ToArray()), ["target"] = s.Target,
        ["loglikelihoods"] = new JsonArray(s.LogLikelihoods.Select(l => (JsonNode)l).ToArray()),
        ["is_greedy"] = new JsonArray(s.IsGreedy.Select(g => (JsonNode)g).ToArray()),
        ["metrics"] = new JsonObject(s.Metrics.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["generated"] = s.Generated,
        ["filtered"] = s.Filtered is null ? null : new JsonObject(s.Filtered.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["verdicts"] = s.Verdicts is null ? null : new JsonObject(s.Verdicts.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonObject
        {
            ["model_first"] = kv.Value.ModelFirst, ["model_second"] = kv.Value.ModelSecond, ["preference"] = kv.Value.Preference,
        }))),
        ["generations"] = s.Generations is null ? null : new JsonArray(s.Generations.Select(g => (JsonNode)g).ToArray()),
        ["executions"] = s.Executions is null ? null : new JsonObject(s.Executions.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonArray(kv.Value.Select(r =>
            (JsonNode)new JsonObject { ["outcome"] = Configuration.ConfigEnums.Name(r.Outcome), ["reason"] = r.Reason, ["exit_code"] = r.ExitCode, ["seconds"] = Math.Round(r.Seconds, 3) }).ToArray())))),
    }.ToJsonString());

    /// <summary>Writes <c>results.json</c> and <c>samples.jsonl</c> into <paramref name="dir"/>.</summary>
    public void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, "results.json"), ToJson().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(dir, "samples.jsonl"), string.Join('\n', SampleLines()) + "\n");
    }
}

/// <summary>
/// Scores a model on an lm-evaluation-harness task the way the harness does: the prompt is the description, the
/// few-shot examples (each prompt + target delimiter + answer, joined by the few-shot delimiter) and the document's
/// prompt; multiple choice scores <c>target_delimiter + choice</c> for every choice, loglikelihood the target.
/// </summary>
public static class HarnessEvaluator
{
    /// <summary>Seed of the default few-shot sampler (the harness's).</summary>
    public const int FewshotSeed = 1234;

    /// <summary>Loads the model and runs the task; <paramref name="progress"/> gets (done, total) documents.</summary>
    public static HarnessResult Run(HarnessEvalRequest request, Action<int, int>? progress = null, Action<string>? warn = null)
    {
        var task = HarnessTask.Load(request.Task, request.DatasetPath);
        // refuse before the model loads when the task runs code and no sandbox works
        var sandbox = task.Spec.ExecutesCode ? new Code.PythonSandbox(unsafeExecute: request.UnsafeExecute) : null;
        if (sandbox is not null && !Code.PythonSandbox.Probe().Available) warn?.Invoke($"generated code runs {sandbox.Isolation}");
        PairwiseJudge? judge = null;
        if (task.Spec.NeedsJudge)
            judge = PairwiseJudge.Load(request.Judge ?? throw NoJudge(task), request.JudgePrompt ?? task.JudgePromptFile, request.Dtype);
        var lm = TrainableModels.Load(request.Model, request.Dtype, TorchRuntime.Device);
        if (request.Adapter is not null)
            foreach (var w in Peft.PeftModel.LoadAdapter(lm.Host, request.Adapter).Warnings) warn?.Invoke(w);
        lm.Host.Module.eval();
        using var tokenizer = HfTokenizer.Load(request.Model);
        var chat = request.ApplyChatTemplate ? Data.Chat.ChatTemplates.ForTokenizer(tokenizer) : null;
        return Evaluate(task, lm, tokenizer, request.NumFewshot, request.Limit, request.BatchSize, progress, request.Seed, sandbox, judge, chat);
    }

    /// <summary>
    /// Runs a loaded task on a loaded model; pass_at_k programs run in <paramref name="sandbox"/> (default: the
    /// machine's sandbox, refused when it does not work); win_rate is judged by <paramref name="judge"/>. With
    /// <paramref name="chat"/> each context (description, few-shot examples and prompt) is one user turn of that chat
    /// template followed by the assistant header, as lm-evaluation-harness's <c>--apply_chat_template</c>; continuations
    /// and generations follow it.
    /// </summary>
    public static HarnessResult Evaluate(HarnessTask task, ITrainableModel lm, ITokenizer tokenizer, int? numFewshot = null, int? limit = null,
        int batchSize = 16, Action<int, int>? progress = null, long seed = FewshotSeed, Code.PythonSandbox? sandbox = null, PairwiseJudge? judge = null,
        Data.Chat.ChatTemplate? chat = null)
    {
        if (task.Spec.NeedsJudge && judge is null) throw NoJudge(task);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var docs = HarnessData.Load(task, task.ScoredSplit);
        if (limit is int n) docs = docs.Take(n).ToArray();
        if (docs.Count == 0) throw new InvalidDataException($"{task.File}: split '{task.ScoredSplit}' has no documents");
        int shots = numFewshot ?? task.Spec.NumFewshot;
        var fewshotDocs = shots == 0 ? [] : FewshotPool(task, shots);
        bool sameSplit = task.Spec.FewshotConfig?.Samples is null && task.FewshotSplit == task.ScoredSplit;
        var contexts = docs.Select((doc, i) =>
        {
            var prompt = Prompt(task, doc, Examples(task, fewshotDocs, shots, sameSplit ? i : -1, i));
            return chat is null ? prompt
                : chat.RenderText(new Data.Chat.Conversation([new Data.Chat.ChatMessage(Data.Chat.ChatRole.User, prompt)]), addGenerationPrompt: true);
        }).ToArray();
        if (task.Spec.OutputType == HarnessOutputType.GenerateUntil)
            return Generate(task, lm, tokenizer, docs, contexts, shots, batchSize, progress, clock, seed,
                task.Spec.ExecutesCode ? sandbox ?? new Code.PythonSandbox() : null, judge);

        // --- every document's prompt and candidates -------------------------------------------------------------
        var items = docs.Select((doc, i) =>
        {
            var prompt = contexts[i];
            if (task.Spec.OutputType == HarnessOutputType.MultipleChoice)
            {
                var choices = task.Choices(doc);
                return (Prompt: prompt, Candidates: choices, Continuations: choices.Select(c => task.Spec.TargetDelimiter + c).ToArray(), Target: task.TargetIndex(doc, choices));
            }
            var target = task.TargetText(doc);
            return (Prompt: prompt, Candidates: (IReadOnlyList<string>)[target], Continuations: new[] { target }, Target: 0);
        }).ToArray();

        // --- score: whole documents per call (all candidates of a document together), about batchSize requests each ---
        var offsets = new int[items.Length + 1];                                                           // doc i: requests offsets[i]..offsets[i+1]
        for (int i = 0; i < items.Length; i++) offsets[i + 1] = offsets[i] + items[i].Continuations.Length;
        // in a chat template the context ends with the assistant header (often a newline): it stays the context's, and
        // the continuation is encoded on its own, as chat training encodes the reply after the header; otherwise the
        // harness's pair encoding (trailing whitespace of the context moves to the continuation)
        var requests = items.SelectMany(it => it.Continuations.Select(c => chat is null ? lm.Encode(tokenizer, it.Prompt, c)
            : new ContinuationRequest(lm.EncodeContext(tokenizer, it.Prompt), tokenizer.Encode(c)))).ToArray();
        var scores = new ContinuationScore[requests.Length];
        for (int doc = 0; doc < items.Length;)
        {
            int end = doc + 1;
            while (end < items.Length && offsets[end + 1] - offsets[doc] <= batchSize) end++;
            var part = lm.ScoreContinuations(requests[offsets[doc]..offsets[end]], batchSize);
            for (int j = 0; j < part.Count; j++) scores[offsets[doc] + j] = part[j];
            doc = end;
            progress?.Invoke(doc, items.Length);
        }

        // --- per-document metrics -----------------------------------------------------------------------------------
        var samples = new List<HarnessSample>();
        foreach (var (it, i) in items.Select((it, i) => (it, i)))
        {
            var s = scores[offsets[i]..offsets[i + 1]];
            var lls = s.Select(x => x.LogLikelihood).ToArray();
            var greedy = s.Select(x => x.IsGreedy).ToArray();
            samples.Add(new HarnessSample(i, it.Prompt, it.Candidates, it.Target, lls, greedy, ChoiceMetrics(task, lls, it.Candidates, it.Target, greedy)));
        }

        var result = ScoredMetrics(task).Select(m => Aggregate(m, task.Spec.OutputType, samples)).ToArray();
        return new HarnessResult(task.Name, task.Spec.OutputType, task.ScoredSplit, shots, result, samples, clock.Elapsed.TotalSeconds);
    }

    private static ArgumentException NoJudge(HarnessTask task) => new($"{task.Name}: metric win_rate needs a judge model (--judge MODEL_DIR)");

    /// <summary>A multiple_choice document's acc and acc_norm, or a loglikelihood document's perplexity term and acc.</summary>
    private static Dictionary<string, double> ChoiceMetrics(HarnessTask task, IReadOnlyList<double> lls, IReadOnlyList<string> candidates, int target, IReadOnlyList<bool> greedy) =>
        task.Spec.OutputType == HarnessOutputType.MultipleChoice ? MultipleChoiceMetrics(lls, candidates, target)
            : new Dictionary<string, double> { ["perplexity"] = lls[0], ["acc"] = greedy[0] ? 1 : 0 };

    /// <summary>The metrics a multiple_choice or loglikelihood task reports: its metric_list, else the harness's defaults.</summary>
    private static string[] ScoredMetrics(HarnessTask task) => task.Spec.MetricList is { Count: > 0 } list ? list.Select(m => m.Metric).ToArray()
        : HarnessTaskSpec.MetricsOf[task.Spec.OutputType];

    /// <summary>
    /// acc (the most likely choice is the target) and acc_norm (likelihood per character of the choice, as the harness
    /// normalises: Python's <c>len</c> of the choice text, the delimiter not counted); ties go to the first choice, as numpy's argmax.
    /// </summary>
    public static Dictionary<string, double> MultipleChoiceMetrics(IReadOnlyList<double> logLikelihoods, IReadOnlyList<string> choices, int target)
    {
        int ArgMax(Func<int, double> f) => Enumerable.Range(0, logLikelihoods.Count).Aggregate((best, j) => f(j) > f(best) ? j : best);
        int pred = ArgMax(j => logLikelihoods[j]);
        int predNorm = ArgMax(j => logLikelihoods[j] / Math.Max(1, PythonLength(choices[j])));
        return new() { ["acc"] = pred == target ? 1 : 0, ["acc_norm"] = predNorm == target ? 1 : 0 };
    }

    /// <summary>Python's <c>len</c> of a string: code points, not UTF-16 units.</summary>
    public static int PythonLength(string s) => s.EnumerateRunes().Count();

    /// <summary>
    /// A metric over documents with its 95 % percentile bootstrap interval (documents resampled, the project's
    /// <see cref="Bootstrap"/>): perplexity is exp(−mean log-likelihood), its interval mapped through the same function.
    /// </summary>
    public static HarnessScore Aggregate(string metric, HarnessOutputType type, IReadOnlyList<HarnessSample> samples)
    {
        var values = samples.ToDictionary(s => s.Index.ToString("D8", System.Globalization.CultureInfo.InvariantCulture), s => s.Metrics[metric]);
        var interval = Bootstrap.Mean([values]) ?? throw new InvalidOperationException("no documents");
        if (type == HarnessOutputType.Loglikelihood && metric == "perplexity")
            return new HarnessScore(metric, Math.Exp(-interval.Estimate), Math.Exp(-interval.Upper), Math.Exp(-interval.Lower));
        return new HarnessScore(metric, interval.Estimate, interval.Lower, interval.Upper);
    }

    /// <summary>The context of a document: description, few-shot examples, the document's prompt.</summary>
    public static string Prompt(HarnessTask task, IReadOnlyDictionary<string, object?> doc, IReadOnlyList<IReadOnlyDictionary<string, object?>> examples)
    {
        var sb = new System.Text.StringBuilder(task.Description(doc));
        foreach (var ex in examples)
            sb.Append(task.Text(ex)).Append(task.Spec.TargetDelimiter).Append(AnswerText(task, ex)).Append(task.Spec.FewshotDelimiter);
        return sb.Append(task.Text(doc)).ToString();
    }

    /// <summary>A few-shot example's answer as text: the right choice (multiple choice), else the target.</summary>
    public static string AnswerText(HarnessTask task, IReadOnlyDictionary<string, object?> doc)
    {
        if (task.Spec.OutputType != HarnessOutputType.MultipleChoice) return task.TargetText(doc);
        var choices = task.Choices(doc);
        return choices[task.TargetIndex(doc, choices)];
    }

    private static IReadOnlyList<IReadOnlyDictionary<string, object?>> FewshotPool(HarnessTask task, int shots)
    {
        if (task.Spec.FewshotConfig?.Samples is { } written)
        {
            var samples = written.Items.Select(n => DocOf(n) as IReadOnlyDictionary<string, object?>
                ?? throw new InvalidDataException($"{task.File}: fewshot_config.samples holds {n.Describe()} ({n.Position.Brief}); each sample is a mapping of fields")).ToArray();
            return samples.Length >= shots ? samples
                : throw new InvalidDataException($"{task.File}: num_fewshot {shots}, but fewshot_config.samples lists {samples.Length}");
        }
        var split = task.FewshotSplit ?? throw new InvalidDataException($"{task.File}: num_fewshot {shots} needs fewshot_split (or training_split / validation_split)");
        var pool = HarnessData.Load(task, split);
        if (pool.Count < shots) throw new InvalidDataException($"{task.File}: num_fewshot {shots}, but split '{split}' has {pool.Count} documents");
        return pool;
    }

    /// <summary>
    /// The few-shot examples of document <paramref name="docIndex"/>: the first n (first_n), or a draw without
    /// replacement from a generator seeded by <see cref="FewshotSeed"/> and the document's index (default), never the
    /// document itself when both come from one split (<paramref name="self"/>).
    /// </summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, object?>> Examples(HarnessTask task, IReadOnlyList<IReadOnlyDictionary<string, object?>> pool,
        int shots, int self, int docIndex)
    {
        if (shots == 0) return [];
        var candidates = Enumerable.Range(0, pool.Count).Where(j => j != self).ToArray();
        if (candidates.Length < shots) throw new InvalidDataException($"{task.File}: num_fewshot {shots}, but only {candidates.Length} other documents can serve as examples");
        if ((task.Spec.FewshotConfig?.Sampler ?? FewshotSampler.Default) == FewshotSampler.FirstN) return candidates.Take(shots).Select(j => pool[j]).ToArray();
        var rng = new Random(unchecked(FewshotSeed + 7919 * docIndex) & int.MaxValue);          // seeded: the same draw every run
        return candidates.OrderBy(_ => rng.Next()).Take(shots).Select(j => pool[j]).ToArray();
    }

    /// <summary>A document written in YAML: unquoted integers and booleans typed as YAML reads them, everything else text.</summary>
    private static object? DocOf(Configuration.ConfigNode node) => node switch
    {
        Configuration.ConfigMapping m => (IReadOnlyDictionary<string, object?>)m.Entries.ToDictionary(e => e.Key, e => DocOf(e.Value)),
        Configuration.ConfigSequence seq => seq.Items.Select(DocOf).ToList(),
        Configuration.ConfigScalar { IsNull: true } => null,
        Configuration.ConfigScalar { Quoted: false, Value: var v } when long.TryParse(v, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n) => n,
        Configuration.ConfigScalar { Quoted: false, Value: "true" or "True" } => true,
        Configuration.ConfigScalar { Quoted: false, Value: "false" or "False" } => false,
        Configuration.ConfigScalar sc => sc.Value,
        _ => throw new InvalidOperationException(node.GetType().Name),
    };

    /// <summary>
    /// Re-scores a saved <c>samples.jsonl</c> under <paramref name="task"/> as the file now stands (its filters,
    /// metrics and targets), without the model: generate_until from the saved generations (re-running code and the
    /// judge when the task asks), multiple_choice and loglikelihood from the saved log-likelihoods. The task's data must
    /// be readable (filters and targets read the documents); the samples must be documents 0..n−1 of its scored split.
    /// </summary>
    /// <exception cref="InvalidDataException">A line is not a sample of this task (the message names the file and line).</exception>
    public static HarnessResult Rescore(HarnessTask task, string samplesFile, Code.PythonSandbox? sandbox = null, PairwiseJudge? judge = null, int batchSize = 16,
        Action<int, int>? progress = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var lines = File.ReadLines(samplesFile).Select((l, i) => (Line: i + 1, Text: l)).Where(l => !string.IsNullOrWhiteSpace(l.Text))
            .Select(l => (l.Line, Node: JsonNode.Parse(l.Text) as JsonObject ?? throw new InvalidDataException($"{samplesFile}:{l.Line}: not a JSON object"))).ToArray();
        var docs = HarnessData.Load(task, task.ScoredSplit);
        InvalidDataException Bad(int line, string what) => new($"{samplesFile}:{line}: {what}");
        for (int i = 0; i < lines.Length; i++)
            if ((int?)lines[i].Node["doc"] != i) throw Bad(lines[i].Line, $"expected document {i} (samples are documents 0..n−1 of split '{task.ScoredSplit}', in order)");
        if (lines.Length > docs.Count) throw Bad(lines[^1].Line, $"split '{task.ScoredSplit}' has {docs.Count} documents, the file {lines.Length}");
        string[] Strings(JsonNode? n, int line, string key) => n is JsonArray a ? a.Select(x => (string?)x ?? throw Bad(line, $"{key} holds a non-text item")).ToArray() : throw Bad(line, $"'{key}' is missing");
        var prompts = lines.Select(l => (string?)l.Node["prompt"] ?? throw Bad(l.Line, "'prompt' is missing")).ToArray();
        int shots = 0;
        if (task.Spec.OutputType == HarnessOutputType.GenerateUntil)
        {
            if (task.Spec.ExecutesCode) sandbox ??= new Code.PythonSandbox();
            if (task.Spec.NeedsJudge && judge is null) throw NoJudge(task);
            var generated = lines.Select(l => l.Node["generations"] is JsonArray ? Strings(l.Node["generations"], l.Line, "generations")
                : [(string?)l.Node["generated"] ?? throw Bad(l.Line, "'generated' is missing (not a generate_until sample)")]).Select(g => (IReadOnlyList<string>)g).ToArray();
            if (generated.Select(g => g.Count).Distinct().Count() > 1) throw Bad(lines[0].Line, "documents have different numbers of generations");
            return ScoreGenerated(task, docs.Take(lines.Length).ToArray(), prompts, generated, shots, batchSize, progress, clock, sandbox, judge);
        }
        var samples = lines.Select((l, i) =>
        {
            var candidates = Strings(l.Node["candidates"], l.Line, "candidates");
            var lls = l.Node["loglikelihoods"] is JsonArray a ? a.Select(x => (double?)x ?? throw Bad(l.Line, "a log-likelihood is not a number")).ToArray() : throw Bad(l.Line, "'loglikelihoods' is missing");
            var greedy = l.Node["is_greedy"] is JsonArray g ? g.Select(x => (bool?)x ?? false).ToArray() : throw Bad(l.Line, "'is_greedy' is missing");
            if (lls.Length != candidates.Length || lls.Length == 0) throw Bad(l.Line, $"{lls.Length} log-likelihoods for {candidates.Length} candidates");
            int target = (int?)l.Node["target"] ?? throw Bad(l.Line, "'target' is missing");
            return new HarnessSample(i, prompts[i], candidates, target, lls, greedy, ChoiceMetrics(task, lls, candidates, target, greedy));
        }).ToArray();
        return new HarnessResult(task.Name, task.Spec.OutputType, task.ScoredSplit, shots, ScoredMetrics(task).Select(m => Aggregate(m, task.Spec.OutputType, samples)).ToArray(), samples, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// generate_until: each prompt decoded (greedily, or sampled <c>repeats</c> times with <c>do_sample</c>) up to
    /// <c>max_gen_toks</c> (default 256), cut at the first <c>until</c> sequence (default: the few-shot delimiter),
    /// passed through every filter pipeline; exact_match and f1 score the first generation's answer against the
    /// target, pass_at_k runs every generation's answer followed by the target (the tests) in the sandbox and gives
    /// the unbiased pass@k of the document's n generations. Scores are named <c>metric,pipeline</c> (pass@k as
    /// <c>pass@k,pipeline</c>), as the harness prints them.
    /// </summary>
    private static HarnessResult Generate(HarnessTask task, ITrainableModel lm, ITokenizer tokenizer, IReadOnlyList<IReadOnlyDictionary<string, object?>> docs,
        IReadOnlyList<string> prompts, int shots, int batchSize, Action<int, int>? progress,
        System.Diagnostics.Stopwatch clock, long seed, Code.PythonSandbox? sandbox, PairwiseJudge? judge)
    {
        var gen = task.Spec.GenerationKwargs;
        IReadOnlyList<string> until = gen?.Until ?? [task.Spec.FewshotDelimiter];
        int maxNew = gen?.MaxGenToks ?? 256;
        int n = task.Spec.Repeats;
        var sampling = gen is { DoSample: true, Temperature: not 0 }                                    // temperature 0 is greedy, as in the harness
            ? new Models.SamplingConfig(maxNew, Greedy: false, Temperature: gen.Temperature ?? 1.0, TopP: gen.TopP ?? 1.0, Seed: seed) : null;
        var encoded = prompts.Select(p => lm.EncodeContext(tokenizer, p)).ToArray();
        var outputs = GenerationEvaluator.GenerateByLength(lm.Generate, Enumerable.Range(0, docs.Count * n).Select(j => encoded[j / n]).ToArray(),   // doc i, repeat r: i·n + r
            tokenizer, maxNew, batchSize, progress, sampling);
        var generated = outputs.Select(o => HarnessScoring.CutAtStop(tokenizer.Decode(o, skipSpecialTokens: true), until)).Chunk(n).Select(g => (IReadOnlyList<string>)g).ToArray();
        return ScoreGenerated(task, docs, prompts, generated, shots, batchSize, progress, clock, sandbox, judge);
    }

    /// <summary>
    /// Scores generations (per document, <c>repeats</c> of them, already cut at the stop sequences) as the task says:
    /// every filter pipeline, exact_match / f1 on the first, pass@k over all in the sandbox, win_rate by the judge.
    /// Shared by evaluation and by re-scoring saved samples (<see cref="Rescore"/>).
    /// </summary>
    private static HarnessResult ScoreGenerated(HarnessTask task, IReadOnlyList<IReadOnlyDictionary<string, object?>> docs, IReadOnlyList<string> prompts,
        IReadOnlyList<IReadOnlyList<string>> generated, int shots, int batchSize, Action<int, int>? progress, System.Diagnostics.Stopwatch clock,
        Code.PythonSandbox? sandbox, PairwiseJudge? judge)
    {
        int n = generated.Count == 0 ? 1 : generated[0].Count;
        var filters = task.Spec.FilterList is { Count: > 0 } f ? f : [new HarnessFilter { Name = "none", Filter = [new HarnessFilterStep()] }];
        var metrics = task.Spec.MetricList is { Count: > 0 } ms ? ms : [new HarnessMetric { Metric = "exact_match" }];
        var targets = docs.Select(task.TargetText).ToArray();
        var filtered = docs.Select((doc, i) => filters.ToDictionary(fl => fl.Name, fl => generated[i].Select(g => HarnessScoring.Filter(fl.Filter, g, doc)).ToArray())).ToArray();

        // --- pass@k: every (document, pipeline, generation) program in the sandbox ---------------------------------
        var executions = new Dictionary<string, Code.SandboxRun[][]>();
        if (task.Spec.ExecutesCode)
            foreach (var fl in filters)
            {
                var programs = Enumerable.Range(0, docs.Count * n).Select(j => filtered[j / n][fl.Name][j % n] + "\n" + targets[j / n]).ToArray();
                executions[fl.Name] = sandbox!.RunAll(programs, progress).Chunk(n).ToArray();
            }

        // --- win_rate: the judge compares each first answer with the target (a reference output), in both orders ------
        var verdicts = new Dictionary<string, IReadOnlyList<PairwiseVerdict>>();
        if (task.Spec.NeedsJudge)
            foreach (var fl in filters)
                verdicts[fl.Name] = judge!.Judge(docs.Select((doc, i) => (task.Text(doc), filtered[i][fl.Name][0], targets[i])).ToArray(), batchSize, progress);

        var samples = docs.Select((_, i) =>
        {
            var values = new Dictionary<string, double>();
            foreach (var fl in filters)
                foreach (var m in metrics)
                    if (m.Metric == HarnessTaskSpec.PassAtKMetric)
                    {
                        int passed = executions[fl.Name][i].Count(r => r.Passed);
                        foreach (int k in HarnessTaskSpec.KsOf(m)) values[$"pass@{k},{fl.Name}"] = Code.PassAtK.Estimate(n, passed, k);
                    }
                    else if (m.Metric == HarnessTaskSpec.WinRateMetric)
                    {
                        values[$"win_rate,{fl.Name}"] = verdicts[fl.Name][i].Preference;
                        values[$"win_rate_discrete,{fl.Name}"] = verdicts[fl.Name][i].Win;
                        values[$"judge_first_position,{fl.Name}"] = verdicts[fl.Name][i].FirstPositionRate;
                    }
                    else
                        values[$"{m.Metric},{fl.Name}"] = m.Metric == "f1" ? HarnessScoring.TokenF1(filtered[i][fl.Name][0], targets[i])
                            : HarnessScoring.ExactMatch(filtered[i][fl.Name][0], targets[i], m);
            return new HarnessSample(i, prompts[i], [targets[i]], 0, [], [], values)
            {
                Generated = generated[i][0], Filtered = filtered[i].ToDictionary(kv => kv.Key, kv => kv.Value[0]),
                Generations = n > 1 ? generated[i] : null,
                Executions = executions.Count == 0 ? null : executions.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<Code.SandboxRun>)kv.Value[i]),
                Verdicts = verdicts.Count == 0 ? null : verdicts.ToDictionary(kv => kv.Key, kv => kv.Value[i]),
            };
        }).ToArray();
        var scores = samples[0].Metrics.Keys.Select(k => Aggregate(k, HarnessOutputType.GenerateUntil, samples)).ToArray();
        return new HarnessResult(task.Name, HarnessOutputType.GenerateUntil, task.ScoredSplit, shots, scores, samples, clock.Elapsed.TotalSeconds)
        { Sandbox = sandbox?.Isolation, Judge = judge is null ? null : $"{judge.Name} ({judge.PromptFile})" };
    }
}
