using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftLab.Configuration;
using PeftLab.Peft;
using PeftLab.Training;

namespace PeftLab.Studies.Report;

/// <summary>One validation point of a trial's learning curve (an <c>eval</c> line of metrics.jsonl).</summary>
public sealed record EvalPoint(int Step, long Tokens, double? ValLoss, double? ValRougeL, double? ValExactMatch);

/// <summary>Scores of one evaluation category (result.json <c>test.per_category</c>), in percent.</summary>
public sealed record CategoryScore(double? RougeL, double? ExactMatch, double? Primary, int Count);

/// <summary>
/// One evaluated instance of a trial's final evaluation (a line of <c>eval/{split}_predictions.jsonl</c>): its task and
/// category and its scores in percent (0-100).
/// </summary>
public sealed record InstanceScore(string Task, string Category, double RougeL, double ExactMatch);

/// <summary>
/// One trial of a study: its axes, its state and the numbers of its result.json and metrics.jsonl. Scores are percent
/// (0-100) as the evaluator writes them; a number the trial did not produce is null.
/// </summary>
public sealed record TrialRow
{
    /// <summary>Trial id (12 hex digits).</summary>
    public required string Id { get; init; }
    /// <summary>Position in the plan.</summary>
    public int Index { get; init; }
    /// <summary>All axis values as plan.json gives them (invariant text; null for a JSON null).</summary>
    public IReadOnlyDictionary<string, string?> Axes { get; init; } = new Dictionary<string, string?>();
    /// <summary>State from trial.json (or inferred from result.json when trial.json is missing).</summary>
    public TrialState State { get; init; }
    /// <summary>Error message of a failed trial.</summary>
    public string? Error { get; init; }

    /// <summary>PEFT method name (<see cref="IPeftMethod.Name"/>: full, lora, ...), or <see cref="StudyView.BaselineMethod"/> for the untuned baseline.</summary>
    public required string Method { get; init; }
    /// <summary>Peak learning rate (null for the untuned baseline, which does not train).</summary>
    public double? Lr { get; init; }
    /// <summary>The method's size knob (<see cref="IPeftMethod.Capacity"/>): LoRA rank, adapter size, number of virtual tokens, ...</summary>
    public int? Capacity { get; init; }
    /// <summary>Axis name of <see cref="Capacity"/> (<see cref="CapacityKnob.Axis"/>, e.g. lora_r).</summary>
    public string? CapacityAxis { get; init; }
    /// <summary>Base model (preset name or folder); null when the study does not vary it.</summary>
    public string? Model { get; init; }
    /// <summary>Number of training tasks; null when all tasks are used or the study does not vary it.</summary>
    public int? TaskCount { get; init; }
    /// <summary>Training seed.</summary>
    public long? Seed { get; init; }
    /// <summary>Other axes (generic overrides), part of the hyperparameter setting.</summary>
    public IReadOnlyDictionary<string, string?> OtherAxes { get; init; } = new Dictionary<string, string?>();

    /// <summary>Whether result.json exists.</summary>
    public bool HasResult { get; init; }
    /// <summary>The run diverged (trial state or result status).</summary>
    public bool Diverged { get; init; }
    /// <summary>Unseen-task (test split) ROUGE-L.</summary>
    public double? TestRougeL { get; init; }
    /// <summary>Unseen-task exact match.</summary>
    public double? TestExactMatch { get; init; }
    /// <summary>Seen-task held-out ROUGE-L.</summary>
    public double? HeldoutRougeL { get; init; }
    /// <summary>Seen-task held-out exact match.</summary>
    public double? HeldoutExactMatch { get; init; }
    /// <summary>Validation score at the best checkpoint (result.json <c>best_score</c>; higher is better: a loss is negated).</summary>
    public double? BestScore { get; init; }
    /// <summary>What <see cref="BestScore"/> measures (result.json <c>best_metric</c>, e.g. <c>RougeL</c>).</summary>
    public string? BestMetric { get; init; }
    /// <summary>Unseen-task scores per instance id (<c>eval/test_predictions.jsonl</c>); null when the file is missing or unreadable.</summary>
    public IReadOnlyDictionary<string, InstanceScore>? TestInstances { get; init; }
    /// <summary>Seen-task held-out scores per instance id (<c>eval/heldout_predictions.jsonl</c>); null when missing or unreadable.</summary>
    public IReadOnlyDictionary<string, InstanceScore>? HeldoutInstances { get; init; }
    /// <summary>
    /// Open-instruction scores per document (<c>eval/open_instruction/&lt;task&gt;/samples.jsonl</c>, each benchmark's
    /// headline metric in percent), by id <c>task/doc</c>, with the benchmark as task and its capability group as
    /// category; null when the run has none (or a file is unreadable).
    /// </summary>
    public IReadOnlyDictionary<string, InstanceScore>? OpenInstances { get; init; }
    /// <summary>Open-instruction headline scores per benchmark (result.json <c>open_instruction</c>); empty when none.</summary>
    public IReadOnlyList<OpenInstructionScore> OpenScores { get; init; } = [];
    /// <summary>Test scores per evaluation category.</summary>
    public IReadOnlyDictionary<string, CategoryScore> TestCategories { get; init; } = new Dictionary<string, CategoryScore>();
    /// <summary>Optimizer steps run.</summary>
    public int? Steps { get; init; }
    /// <summary>Loss spikes counted by the trainer.</summary>
    public int? SpikeCount { get; init; }
    /// <summary>First step reaching 50% of the final validation score.</summary>
    public int? StepsTo50 { get; init; }
    /// <summary>First step reaching 80% of the final validation score.</summary>
    public int? StepsTo80 { get; init; }
    /// <summary>First step reaching 95% of the final validation score.</summary>
    public int? StepsTo95 { get; init; }
    /// <summary>Area under the validation curve.</summary>
    public double? Auc { get; init; }
    /// <summary>Trainable parameters.</summary>
    public long? TrainableParams { get; init; }
    /// <summary>All parameters (base model plus added ones).</summary>
    public long? TotalParams { get; init; }
    /// <summary>Training wall time in seconds.</summary>
    public double? WallSeconds { get; init; }
    /// <summary>Optimizer state in bytes.</summary>
    public long? OptimizerStateBytes { get; init; }
    /// <summary>Size of the saved best weights in bytes.</summary>
    public long? CheckpointBytes { get; init; }
    /// <summary>Validation curve, in step order.</summary>
    public IReadOnlyList<EvalPoint> EvalCurve { get; init; } = [];
    /// <summary>Every numeric leaf of result.json by dotted path (per-task scores left out), e.g. <c>test.rougeL</c>.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>Finished, normally or by divergence: the trial counts in the analyses.</summary>
    public bool Finished => HasResult || State == TrialState.Diverged;
    /// <summary>
    /// The run's headline score in percent: test ROUGE-L (unseen tasks); for a run without a SuperNI test split (one
    /// trained on a chat mixture) the mean of its open-instruction benchmarks' headline scores; else null.
    /// </summary>
    public double? Headline => TestRougeL ?? (OpenScores.Count > 0 ? 100 * OpenScores.Average(o => o.Value) : null);
    /// <summary>Finished normally with a headline score.</summary>
    public bool Scored => Finished && !Diverged && Headline is not null;
    /// <summary>The untuned baseline (method <see cref="StudyView.BaselineMethod"/>): never a method's best, shown as its own row.</summary>
    public bool IsBaseline => Method == StudyView.BaselineMethod;
}

/// <summary>A study folder read into rows, plus problems met while reading (a bad trial never stops the report).</summary>
/// <param name="StudyName">Name from plan.json.</param>
/// <param name="Rows">One row per planned trial, in plan order.</param>
/// <param name="Warnings">Files that could not be read, each naming the file.</param>
public sealed record ReportData(string StudyName, IReadOnlyList<TrialRow> Rows, IReadOnlyList<string> Warnings)
{
    /// <summary>Axis names with a meaning of their own (the study's typed axes, knob axes included); any other axis is a generic override.</summary>
    public static readonly IReadOnlySet<string> KnownAxes = new HashSet<string>(StudyAxisNames.Ordered, StringComparer.Ordinal);

    /// <summary>The size knob of each method that has one (<see cref="PeftRegistry.CapacityKnobs"/>): method name → axis name and the training key it sets.</summary>
    public static readonly IReadOnlyDictionary<string, (string Axis, string ConfigKey)> CapacityKnobs =
        PeftRegistry.CapacityKnobs.ToDictionary(k => k.Method.Name, k => (k.Knob.Axis, k.Knob.ConfigKey));

    /// <summary>
    /// Reads <c>plan.json</c> and every <c>trials/&lt;id&gt;/</c> folder of a study. A missing or malformed plan.json is an
    /// error; an unreadable trial file becomes a warning and the trial counts as not finished.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">plan.json is missing or malformed.</exception>
    public static ReportData Load(string studyDir)
    {
        if (!Directory.Exists(studyDir)) throw new DirectoryNotFoundException($"study folder not found: {studyDir}");
        var planPath = Path.Combine(studyDir, "plan.json");
        if (!File.Exists(planPath)) throw new InvalidDataException($"{planPath}: not found; is {studyDir} a study folder (run 'peftlab study run' first)?");
        JsonObject plan;
        try { plan = JsonNode.Parse(File.ReadAllText(planPath)) as JsonObject ?? throw new InvalidDataException($"{planPath}: not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{planPath}: invalid JSON: {e.Message}"); }
        var name = plan["study"] is JsonValue v && v.TryGetValue(out string? s) ? s : Path.GetFileName(Path.GetFullPath(studyDir));
        if (plan["trials"] is not JsonArray trials) throw new InvalidDataException($"{planPath}: 'trials' list missing");
        var warnings = new List<string>();
        var rows = new List<TrialRow>();
        for (int i = 0; i < trials.Count; i++)
        {
            if (trials[i] is not JsonObject t || t["id"] is not JsonValue idv || !idv.TryGetValue(out string? id) || string.IsNullOrEmpty(id))
                throw new InvalidDataException($"{planPath}: trial #{i} has no 'id'");
            rows.Add(LoadTrial(Path.Combine(studyDir, "trials", id), id, t["index"] is JsonValue iv && iv.TryGetValue(out int ix) ? ix : i, AxesOf(t["axes"]), warnings));
        }
        return new ReportData(name ?? "study", rows, warnings);
    }

    /// <summary>Reads one trial folder (exposed for tests); <paramref name="planAxes"/> are used when trial.json is absent.</summary>
    public static TrialRow LoadTrial(string dir, string id, int index, IReadOnlyDictionary<string, string?> planAxes, List<string> warnings)
    {
        var axes = planAxes;
        var state = TrialState.Pending;
        string? error = null;
        var trialJson = ReadObject(Path.Combine(dir, "trial.json"), warnings);
        if (trialJson is not null)
        {
            if (trialJson["axes"] is JsonObject) axes = AxesOf(trialJson["axes"]);
            var st = Str(trialJson["state"]);
            if (st is not null && !Enum.TryParse(st, ignoreCase: true, out state))
                warnings.Add($"{Path.Combine(dir, "trial.json")}: unknown state '{st}', read as pending");
            error = Str(trialJson["error"]);
        }
        var files = new RunFiles(dir);
        var result = ReadResult(files.Result, warnings);
        var config = ReadConfig(files.Config, warnings);
        bool diverged = result?.Status == RunStatus.Diverged;
        if (trialJson is null && result is not null) state = diverged ? TrialState.Diverged : TrialState.Done;

        var method = axes.GetValueOrDefault("method") ?? ConfigValue(config, "method.name") ?? (result?.Method is { } kind ? PeftRegistry.NameOf(kind) : null) ?? "unknown";
        bool baseline = method == StudyView.BaselineMethod;
        int? capacity = null;
        string? capacityAxis = null;
        if (CapacityKnobs.TryGetValue(method, out var knob))
        {
            capacityAxis = knob.Axis;
            capacity = ParseInt(axes.GetValueOrDefault(knob.Axis)) ?? ParseInt(ConfigValue(config, knob.ConfigKey));
        }
        var test = result?.Test;
        var speed = result?.LearningSpeed;
        var cost = result?.Cost;
        return new TrialRow
        {
            Id = id,
            Index = index,
            Axes = axes,
            State = state,
            Error = error,
            Method = method,
            Lr = baseline ? null : ParseDouble(axes.GetValueOrDefault("lr")) ?? ParseDouble(ConfigValue(config, "optim.lr")),
            Capacity = capacity,
            CapacityAxis = capacityAxis,
            Model = axes.GetValueOrDefault("model"),
            TaskCount = ParseInt(axes.GetValueOrDefault("task_count")),
            Seed = long.TryParse(axes.GetValueOrDefault("seed"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed) ? seed : null,
            OtherAxes = axes.Where(kv => !KnownAxes.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value),
            HasResult = result is not null,
            Diverged = state == TrialState.Diverged || diverged,
            TestRougeL = test?.RougeL,
            TestExactMatch = test?.ExactMatch,
            HeldoutRougeL = result?.Heldout?.RougeL,
            HeldoutExactMatch = result?.Heldout?.ExactMatch,
            BestScore = result?.BestScore,
            BestMetric = result?.BestMetric?.ToString(),
            TestInstances = ReadInstances(Path.Combine(dir, "eval", "test_predictions.jsonl"), warnings),
            HeldoutInstances = ReadInstances(Path.Combine(dir, "eval", "heldout_predictions.jsonl"), warnings),
            OpenInstances = result?.OpenInstruction is { Count: > 0 } open ? ReadOpenInstances(Path.Combine(dir, "eval", Evaluation.Harness.OpenInstructionEval.FolderName), open, warnings) : null,
            OpenScores = result?.OpenInstruction ?? [],
            TestCategories = test is null ? new Dictionary<string, CategoryScore>()
                : test.PerCategory.ToDictionary(c => c.Key, c => new CategoryScore(c.Value.RougeL, c.Value.ExactMatch, c.Value.Primary, c.Value.Count), StringComparer.Ordinal),
            Steps = result?.Steps,
            SpikeCount = result?.Spikes?.Count,
            StepsTo50 = speed?.StepsTo50,
            StepsTo80 = speed?.StepsTo80,
            StepsTo95 = speed?.StepsTo95,
            Auc = speed?.Auc,
            TrainableParams = cost?.TrainableParams,
            TotalParams = cost?.TotalParams,
            WallSeconds = cost?.WallSeconds,
            OptimizerStateBytes = cost?.OptimizerStateBytes,
            CheckpointBytes = cost?.CheckpointBytes,
            EvalCurve = ReadCurve(files.Metrics),
            Metrics = result?.NumericFields() ?? new Dictionary<string, double>(),
        };
    }

    private static IReadOnlyDictionary<string, string?> AxesOf(JsonNode? node)
    {
        var axes = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (node is not JsonObject o) return axes;
        foreach (var (key, value) in o)
            axes[key] = value switch
            {
                null => null,
                JsonValue jv when jv.TryGetValue(out string? text) => text,
                JsonValue jv when jv.TryGetValue(out double d) => d.ToString("R", CultureInfo.InvariantCulture),
                _ => value.ToJsonString(),
            };
        return axes;
    }

    private static JsonObject? ReadObject(string path, List<string> warnings)
    {
        if (!File.Exists(path)) return null;
        try
        {
            if (JsonNode.Parse(File.ReadAllText(path)) is JsonObject o) return o;
            warnings.Add($"{path}: not a JSON object; ignored");
        }
        catch (JsonException e) { warnings.Add($"{path}: invalid JSON ({e.Message}); ignored"); }
        catch (IOException e) { warnings.Add($"{path}: unreadable ({e.Message}); ignored"); }
        return null;
    }

    /// <summary>result.json read strictly; a file that is not a run result becomes a warning naming it (and null).</summary>
    private static RunResult? ReadResult(string path, List<string> warnings)
    {
        if (!File.Exists(path)) return null;
        try { return RunResult.Read(path); }
        catch (InvalidDataException e) { warnings.Add($"{e.Message}; ignored"); }
        catch (IOException e) { warnings.Add($"{path}: unreadable ({e.Message}); ignored"); }
        return null;
    }

    private static ConfigMapping? ReadConfig(string path, List<string> warnings)
    {
        if (!File.Exists(path)) return null;
        try { return ConfigNode.Load(path) as ConfigMapping; }
        catch (ConfigException e) { warnings.Add($"{path}: {e.Message}; ignored"); return null; }
    }

    /// <summary>A scalar of the resolved training config by dotted key path, or null.</summary>
    private static string? ConfigValue(ConfigMapping? config, string keyPath)
    {
        ConfigNode? node = config;
        foreach (var part in keyPath.Split('.'))
            node = node is ConfigMapping m ? m[part] : null;
        return node is ConfigScalar s ? s.Value : null;
    }

    private static IReadOnlyList<EvalPoint> ReadCurve(string path) =>
        RunFiles.ReadMetrics(path)
            .Where(o => Str(o["type"]) == "eval" && Num(o["step"]) is not null)
            .Select(o => new EvalPoint((int)Num(o["step"])!.Value, (long)(Num(o["tokens"]) ?? 0), Num(o["val_loss"]), Num(o["val_rougeL"]), Num(o["val_exact_match"])))
            .OrderBy(p => p.Step)
            .ToArray();

    /// <summary>
    /// Per-instance scores of a predictions file by instance id, or null when it does not exist. A line without an id
    /// or a ROUGE-L score makes the whole file a warning (and null): a partial vector would silently shrink the
    /// instances every comparison with this run is paired on.
    /// </summary>
    private static IReadOnlyDictionary<string, InstanceScore>? ReadInstances(string path, List<string> warnings)
    {
        if (!File.Exists(path)) return null;
        var scores = new Dictionary<string, InstanceScore>(StringComparer.Ordinal);
        try
        {
            int lineNo = 0;
            foreach (var line in File.ReadLines(path))
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                if (JsonNode.Parse(line) is not JsonObject o || Str(o["id"]) is not { } id || Num(o["rougeL"]) is not double rouge)
                {
                    warnings.Add($"{path}:{lineNo}: expected an object with 'id' and 'rougeL'; per-instance scores of this run ignored");
                    return null;
                }
                scores[id] = new InstanceScore(Str(o["task"]) ?? "", Str(o["category"]) ?? "", rouge, Num(o["exact_match"]) ?? 0);
            }
        }
        catch (JsonException e) { warnings.Add($"{path}: invalid JSON ({e.Message}); per-instance scores of this run ignored"); return null; }
        catch (IOException e) { warnings.Add($"{path}: unreadable ({e.Message}); per-instance scores of this run ignored"); return null; }
        return scores;
    }

    /// <summary>
    /// Each benchmark's per-document headline metric (<c>metrics[metric]</c> of its samples.jsonl, × 100) by id
    /// <c>task/doc</c>; a missing file or a line without the metric makes the whole run's open scores a warning (and null).
    /// </summary>
    private static IReadOnlyDictionary<string, InstanceScore>? ReadOpenInstances(string dir, IReadOnlyList<OpenInstructionScore> benchmarks, List<string> warnings)
    {
        var scores = new Dictionary<string, InstanceScore>(StringComparer.Ordinal);
        foreach (var b in benchmarks)
        {
            var path = Path.Combine(dir, b.Task, "samples.jsonl");
            try
            {
                int lineNo = 0;
                foreach (var line in File.ReadLines(path))
                {
                    lineNo++;
                    if (string.IsNullOrWhiteSpace(line)) continue;
                    if (JsonNode.Parse(line) is not JsonObject o || Num(o["doc"]) is not double doc || Num(o["metrics"]?[b.Metric]) is not double value)
                    {
                        warnings.Add($"{path}:{lineNo}: expected 'doc' and metrics.{b.Metric}; open-instruction scores of this run ignored");
                        return null;
                    }
                    scores[$"{b.Task}/{doc.ToString(CultureInfo.InvariantCulture)}"] = new InstanceScore(b.Task, ConfigEnums.Name(b.Group), 100 * value, 100 * value);
                }
            }
            catch (JsonException e) { warnings.Add($"{path}: invalid JSON ({e.Message}); open-instruction scores of this run ignored"); return null; }
            catch (IOException e) { warnings.Add($"{path}: unreadable ({e.Message}); open-instruction scores of this run ignored"); return null; }
        }
        return scores;
    }

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static double? Num(JsonNode? node)
    {
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) return null;
        return v.TryGetValue(out double d) ? d : null;
    }

    private static int? ParseInt(string? text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue ? (int)d : null;

    private static double? ParseDouble(string? text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
}
