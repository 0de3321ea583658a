using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftLab.Configuration;
using PeftLab.Evaluation;
using PeftLab.Peft;
using PeftLab.Runtime;

namespace PeftLab.Training;

/// <summary>How a run ended.</summary>
public enum RunStatus
{
    /// <summary>Reached its last step.</summary>
    Completed,
    /// <summary>Stopped by divergence detection (reason and step recorded).</summary>
    Diverged,
    /// <summary>Stopped by the caller (Ctrl-C); resumable.</summary>
    Interrupted,
}

/// <summary>The <c>status</c> field of a run result (result.json, and what <see cref="Trainer.Run"/> returns).</summary>
public static class RunStatuses
{
    /// <summary>The field's key.</summary>
    public const string Key = "status";

    /// <summary>The status as written ("completed", "diverged", "interrupted").</summary>
    public static string Name(RunStatus status) => status.ToString().ToLowerInvariant();

    /// <summary>The status spelled exactly as <see cref="Name"/> writes it, or null for any other text.</summary>
    public static RunStatus? Parse(string? text) =>
        text is not null && Enum.TryParse<RunStatus>(text, ignoreCase: true, out var s) && Name(s) == text ? s : null;

    /// <summary>
    /// The status a JSON run result records, or null when it has none (or one this version does not know). Reads only
    /// the status, whatever the rest of the object holds; <see cref="RunResult.Parse"/> reads a whole result strictly.
    /// </summary>
    public static RunStatus? Of(JsonNode? result) =>
        result?[Key] is JsonValue v && v.TryGetValue<string>(out var text) ? Parse(text) : null;
}

/// <summary>
/// Loss spikes of a run (result.json <c>spikes</c>): optimizer steps whose training loss exceeded
/// <c>stability.spike_factor</c> × the exponential moving average of the losses before them
/// (<see cref="LearningSignals.Spikes"/>).
/// </summary>
/// <param name="Steps">The spiking optimizer steps (1-based, ascending).</param>
public sealed record LossSpikes(IReadOnlyList<int> Steps)
{
    /// <summary>Number of spikes (result.json <c>spikes.count</c>, always the length of <see cref="Steps"/>).</summary>
    public int Count => Steps.Count;
}

/// <summary>
/// How fast the validation ROUGE-L rose during a run (result.json <c>learning_speed</c>), from the run's evaluation
/// steps (<see cref="LearningSignals.StepsToFraction"/> and <see cref="LearningSignals.AreaUnderCurve"/>). Measured only
/// when validation generated text; a run validated by loss alone has none.
/// </summary>
/// <param name="StepsTo50">First evaluated optimizer step whose validation ROUGE-L reached 50 % of the final evaluation's; null when none did or the final score is 0.</param>
/// <param name="StepsTo80">The same for 80 %.</param>
/// <param name="StepsTo95">The same for 95 %.</param>
/// <param name="Auc">
/// Area under the validation ROUGE-L curve over training progress (trapezoids from step 0, the x axis in fractions of
/// the run's steps): the mean validation score over training, in ROUGE-L points (0-100).
/// </param>
public sealed record LearningSpeed(int? StepsTo50, int? StepsTo80, int? StepsTo95, double Auc)
{
    /// <summary>The fractions of the final validation score measured: 0.5, 0.8 and 0.95, in the order of the fields.</summary>
    public static IReadOnlyList<double> Fractions { get; } = [0.5, 0.8, 0.95];

    /// <summary>The speed from the first step reaching each of <see cref="Fractions"/> (as <see cref="LearningSignals.StepsToFraction"/> gives them) and the area under the curve.</summary>
    public static LearningSpeed From(IReadOnlyDictionary<double, (int Step, long Tokens)?> stepsToFraction, double auc) =>
        new(stepsToFraction[Fractions[0]]?.Step, stepsToFraction[Fractions[1]]?.Step, stepsToFraction[Fractions[2]]?.Step, auc);
}

/// <summary>What a run cost (result.json <c>cost</c>).</summary>
public sealed record RunCost
{
    /// <summary>Parameters the optimizer updated (<see cref="PeftModel.TrainableParameters"/>).</summary>
    public required long TrainableParams { get; init; }
    /// <summary>All parameters of the model with the method applied (a tied embedding counted once).</summary>
    public required long TotalParams { get; init; }
    /// <summary>Bytes of optimizer state: AdamW's two moments, plus float32 master copies of non-float32 parameters.</summary>
    public required long OptimizerStateBytes { get; init; }
    /// <summary>Peak resident memory of the process that finished the run, in MiB (its peak working set).</summary>
    public required double PeakRssMib { get; init; }
    /// <summary>
    /// Wall time in seconds from model loading to the end of the final evaluation; a resumed run adds the time of its
    /// earlier attempts up to their last checkpoint.
    /// </summary>
    public required double WallSeconds { get; init; }
    /// <summary>Throughput: <see cref="RunResult.Tokens"/> over <see cref="WallSeconds"/>, in tokens per second.</summary>
    public required double TokensPerSecond { get; init; }
    /// <summary>Size of the saved best weights (the run folder's <c>best/</c>) in bytes; 0 when none were saved.</summary>
    public required long CheckpointBytes { get; init; }
    /// <summary>
    /// The precision the run computed in (<c>float32</c> or <c>bfloat16</c>: <c>model.dtype: auto</c> resolved on its
    /// host); null in files from before it was recorded.
    /// </summary>
    public ComputeDtype? Dtype { get; init; }
}

/// <summary>One open-instruction benchmark's headline score (a share in [0, 1], as the harness reports it) with its 95 % document-bootstrap interval.</summary>
/// <param name="Task">The harness task's name (its folder under <c>eval/open_instruction/</c>).</param>
/// <param name="Group">The capability group it reports under.</param>
/// <param name="Metric">The metric, as the harness names it (<c>acc</c>, <c>exact_match,strict-match</c>, <c>pass@1,create_test</c>).</param>
/// <param name="Value">The score.</param>
/// <param name="Lower">Lower end of its interval.</param>
/// <param name="Upper">Upper end of its interval.</param>
/// <param name="Documents">Documents scored.</param>
public sealed record OpenInstructionScore(string Task, CapabilityGroup Group, string Metric, double Value, double Lower, double Upper, int Documents);

/// <summary>
/// The result of one training run: what the trainer writes to the run folder's <c>result.json</c> when the run
/// completes or diverges, and what <see cref="Trainer.Run"/> returns. This record is the only code that knows the
/// file's keys: <see cref="ToJson"/> writes them, <see cref="Parse"/> and <see cref="Read"/> read them strictly.
/// </summary>
/// <remarks>
/// <para>
/// A completed or diverged run's file holds every field; a file written by hand (a test, an older tool) may leave
/// fields out, and they read as null. An interrupted run writes no file: its result holds only <see cref="Status"/>.
/// </para>
/// <para>
/// Scores are percent (0-100), as the SuperNI evaluator reports them. Steps count optimizer steps from 1; step 0 is the
/// model as loaded.
/// </para>
/// </remarks>
public sealed record RunResult
{
    private const string ReasonKey = "reason", DivergedAtStepKey = "diverged_at_step", TestKey = "test", HeldoutKey = "heldout",
        MethodKey = "method", StepsKey = "steps", TokensKey = "tokens", BestStepKey = "best_step", BestMetricKey = "best_metric",
        BestScoreKey = "best_score", FinalLossKey = "final_loss", SpikesKey = "spikes", LearningSpeedKey = "learning_speed",
        CostKey = "cost", WarningsKey = "warnings", OpenInstructionKey = "open_instruction";
    private const string GroupKey = "group", MetricKey = "metric", ValueKey = "value", LowKey = "ci95_low", HighKey = "ci95_high", DocumentsKey = "documents";
    private const string SpikeCountKey = "count", SpikeStepsKey = "steps";
    private const string StepsTo50Key = "steps_to_50pct", StepsTo80Key = "steps_to_80pct", StepsTo95Key = "steps_to_95pct", AucKey = "auc";
    private const string TrainableParamsKey = "trainable_params", TotalParamsKey = "total_params", OptimizerStateBytesKey = "optimizer_state_bytes",
        PeakRssMibKey = "peak_rss_mib", WallSecondsKey = "wall_s", TokensPerSecondKey = "tokens_per_s", CheckpointBytesKey = "checkpoint_bytes",
        DtypeKey = "dtype";

    /// <summary>The precisions a run can have computed in (<c>auto</c> is resolved before a run starts).</summary>
    private static readonly ComputeDtype[] RecordedDtypes = Enum.GetValues<ComputeDtype>().Where(d => d != ComputeDtype.Auto).ToArray();

    /// <summary>The top-level keys of result.json, in the order they are written.</summary>
    public static IReadOnlyList<string> Keys { get; } =
    [
        RunStatuses.Key, ReasonKey, DivergedAtStepKey, TestKey, HeldoutKey, OpenInstructionKey, MethodKey, StepsKey, TokensKey, BestStepKey, BestMetricKey,
        BestScoreKey, FinalLossKey, SpikesKey, LearningSpeedKey, CostKey, WarningsKey,
    ];

    /// <summary>How the run ended.</summary>
    public required RunStatus Status { get; init; }
    /// <summary>Why divergence detection stopped the run (e.g. <c>loss is NaN</c>); null unless it diverged.</summary>
    public string? Reason { get; init; }
    /// <summary>The optimizer step at which divergence was detected (its update was not applied); null unless it diverged.</summary>
    public int? DivergedAtStep { get; init; }
    /// <summary>Final evaluation of the best weights on the unseen-task test split; null when the run had none (not completed, <c>eval.final</c> off, or no test split).</summary>
    public ScoreReport? Test { get; init; }
    /// <summary>Final evaluation of the best weights on the held-out instances of the training (seen) tasks; null as for <see cref="Test"/>.</summary>
    public ScoreReport? Heldout { get; init; }
    /// <summary>Final evaluation of the best weights on the open-instruction benchmarks (<c>eval.open_instruction</c>); null when none were configured (the key is then absent).</summary>
    public IReadOnlyList<OpenInstructionScore>? OpenInstruction { get; init; }
    /// <summary>The PEFT method trained.</summary>
    public PeftMethodKind? Method { get; init; }
    /// <summary>Optimizer steps run (for a diverged run, up to and including <see cref="DivergedAtStep"/>).</summary>
    public int? Steps { get; init; }
    /// <summary>Tokens trained on: the non-padding positions of every training batch, over all steps.</summary>
    public long? Tokens { get; init; }
    /// <summary>The step whose weights were kept as the best (saved in <c>best/</c>); 0 when nothing trained; null when no evaluation happened.</summary>
    public int? BestStep { get; init; }
    /// <summary>What picked the best step (<see cref="EvalSection.EffectiveBestMetric"/>).</summary>
    public BestMetric? BestMetric { get; init; }
    /// <summary>The validation score of <see cref="BestMetric"/> at <see cref="BestStep"/>; higher is better, so a loss is negated (nats per target token).</summary>
    public double? BestScore { get; init; }
    /// <summary>Training loss of the last step (mean cross entropy per target token, nats); null when it was not finite.</summary>
    public double? FinalLoss { get; init; }
    /// <summary>Loss spikes during training.</summary>
    public LossSpikes? Spikes { get; init; }
    /// <summary>How fast validation ROUGE-L rose; null when validation did not generate text.</summary>
    public LearningSpeed? LearningSpeed { get; init; }
    /// <summary>What the run cost.</summary>
    public RunCost? Cost { get; init; }
    /// <summary>Problems met on the way that did not stop the run (a damaged checkpoint passed over, short data splits), at most 50.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Whether the run finished (completed or diverged): its result.json holds every field, null ones included.</summary>
    private bool Finished => Status != RunStatus.Interrupted;

    /// <summary>
    /// The result as result.json holds it, keys in <see cref="Keys"/> order. A finished run writes every field (an
    /// unknown value as null, <see cref="LearningSpeed"/> as <c>{}</c>); an interrupted one only those it has.
    /// </summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject { [RunStatuses.Key] = RunStatuses.Name(Status) };
        void Put(string key, JsonNode? value)
        {
            if (Finished || value is not null) o[key] = value;
        }
        if (Reason is not null) o[ReasonKey] = Reason;
        if (DivergedAtStep is int at) o[DivergedAtStepKey] = at;
        if (Test is not null) o[TestKey] = JsonNode.Parse(Test.ToJson());
        if (Heldout is not null) o[HeldoutKey] = JsonNode.Parse(Heldout.ToJson());
        if (OpenInstruction is not null)                                                // absent when not configured: older files rewrite byte for byte
            o[OpenInstructionKey] = new JsonObject(OpenInstruction.Select(b => KeyValuePair.Create(b.Task, (JsonNode?)new JsonObject
            {
                [GroupKey] = ConfigEnums.Name(b.Group), [MetricKey] = b.Metric, [ValueKey] = b.Value, [LowKey] = b.Lower, [HighKey] = b.Upper, [DocumentsKey] = b.Documents,
            })));
        Put(MethodKey, Method is { } m ? MethodName(m) : null);
        Put(StepsKey, Steps);
        Put(TokensKey, Tokens);
        Put(BestStepKey, BestStep);
        Put(BestMetricKey, BestMetric?.ToString());
        Put(BestScoreKey, BestScore);
        Put(FinalLossKey, FinalLoss);
        Put(SpikesKey, Spikes is null ? null : new JsonObject
        {
            [SpikeCountKey] = Spikes.Count, [SpikeStepsKey] = new JsonArray(Spikes.Steps.Select(s => (JsonNode)s).ToArray()),
        });
        Put(LearningSpeedKey, LearningSpeed is { } ls
            ? new JsonObject { [StepsTo50Key] = ls.StepsTo50, [StepsTo80Key] = ls.StepsTo80, [StepsTo95Key] = ls.StepsTo95, [AucKey] = ls.Auc }
            : Finished ? new JsonObject() : null);
        Put(CostKey, Cost is { } c ? CostJson(c) : null);
        Put(WarningsKey, Finished || Warnings.Count > 0 ? new JsonArray(Warnings.Select(w => (JsonNode)w).ToArray()) : null);
        return o;
    }

    private static JsonObject CostJson(RunCost c)
    {
        var o = new JsonObject
        {
            [TrainableParamsKey] = c.TrainableParams, [TotalParamsKey] = c.TotalParams, [OptimizerStateBytesKey] = c.OptimizerStateBytes,
            [PeakRssMibKey] = c.PeakRssMib, [WallSecondsKey] = c.WallSeconds, [TokensPerSecondKey] = c.TokensPerSecond, [CheckpointBytesKey] = c.CheckpointBytes,
        };
        if (c.Dtype is { } d) o[DtypeKey] = ConfigEnums.Name(d);        // absent in files from before it was recorded: they rewrite byte for byte
        return o;
    }

    /// <summary>The text of result.json: <see cref="ToJson"/>, indented by two spaces, without a final newline.</summary>
    public string ToJsonString() => ToJson().ToJsonString(Indented);

    /// <summary>Writes result.json to <paramref name="path"/> atomically.</summary>
    public void Write(string path) => AtomicFile.WriteAllText(path, ToJsonString());

    /// <summary>Reads a result.json.</summary>
    /// <exception cref="InvalidDataException">The file is not a run result (see <see cref="Parse"/>); the message names it.</exception>
    /// <exception cref="IOException">The file cannot be read (<see cref="FileNotFoundException"/> when it does not exist).</exception>
    public static RunResult Read(string path) => Parse(File.ReadAllText(path), path);

    /// <summary>
    /// Reads the text of a result.json. <c>status</c> is required; every other field may be absent or null. A field of
    /// the wrong kind, a status, method or best metric this version does not know, a spike count that is not the
    /// number of spike steps, or a measured learning speed without its <c>auc</c> is an error. Keys this version does
    /// not know are ignored.
    /// </summary>
    /// <param name="json">The file's text.</param>
    /// <param name="source">The file, as error messages name it.</param>
    /// <exception cref="InvalidDataException">The text is not a run result; the message names <paramref name="source"/> and the field.</exception>
    public static RunResult Parse(string json, string source)
    {
        var r = JsonFieldReader.Parse(json, source);
        var statusText = r.String(RunStatuses.Key) ?? throw r.Missing(RunStatuses.Key);
        var status = RunStatuses.Parse(statusText)
            ?? throw r.Error(RunStatuses.Key, $"is '{statusText}', not one of {string.Join(", ", Enum.GetValues<RunStatus>().Select(RunStatuses.Name))}");
        return new RunResult
        {
            Status = status,
            Reason = r.String(ReasonKey),
            DivergedAtStep = r.Int32(DivergedAtStepKey),
            Test = r.Object(TestKey) is { } test ? ScoreReport.FromJson(test) : null,
            Heldout = r.Object(HeldoutKey) is { } heldout ? ScoreReport.FromJson(heldout) : null,
            OpenInstruction = r.Object(OpenInstructionKey) is { } open ? ReadOpen(open) : null,
            Method = r.String(MethodKey) is { } method ? ParseMethod(method) ?? throw r.Error(MethodKey, $"is '{method}', not a method this version knows") : null,
            Steps = r.Int32(StepsKey),
            Tokens = r.Int64(TokensKey),
            BestStep = r.Int32(BestStepKey),
            BestMetric = r.String(BestMetricKey) is { } metric
                ? Enum.TryParse<BestMetric>(metric, out var bm) && bm.ToString() == metric ? bm
                    : throw r.Error(BestMetricKey, $"is '{metric}', not one of {string.Join(", ", Enum.GetNames<BestMetric>())}")
                : null,
            BestScore = r.Double(BestScoreKey),
            FinalLoss = r.Double(FinalLossKey),
            Spikes = r.Object(SpikesKey) is { } spikes ? ReadSpikes(spikes) : null,
            LearningSpeed = r.Object(LearningSpeedKey) is { IsEmpty: false } speed
                ? new LearningSpeed(speed.Int32(StepsTo50Key), speed.Int32(StepsTo80Key), speed.Int32(StepsTo95Key), speed.Double(AucKey) ?? throw speed.Missing(AucKey))
                : null,
            Cost = r.Object(CostKey) is { } cost ? new RunCost
            {
                TrainableParams = cost.Int64(TrainableParamsKey) ?? throw cost.Missing(TrainableParamsKey),
                TotalParams = cost.Int64(TotalParamsKey) ?? throw cost.Missing(TotalParamsKey),
                OptimizerStateBytes = cost.Int64(OptimizerStateBytesKey) ?? throw cost.Missing(OptimizerStateBytesKey),
                PeakRssMib = cost.Double(PeakRssMibKey) ?? throw cost.Missing(PeakRssMibKey),
                WallSeconds = cost.Double(WallSecondsKey) ?? throw cost.Missing(WallSecondsKey),
                TokensPerSecond = cost.Double(TokensPerSecondKey) ?? throw cost.Missing(TokensPerSecondKey),
                CheckpointBytes = cost.Int64(CheckpointBytesKey) ?? throw cost.Missing(CheckpointBytesKey),
                Dtype = cost.String(DtypeKey) is { } dtype
                    ? RecordedDtypes.Where(d => ConfigEnums.Name(d) == dtype).Cast<ComputeDtype?>().FirstOrDefault()
                        ?? throw cost.Error(DtypeKey, $"is '{dtype}', not one of {string.Join(", ", RecordedDtypes.Select(ConfigEnums.Name))}")
                    : null,
            } : null,
            Warnings = r.Array(WarningsKey, r.StringItem) ?? [],
        };
    }

    /// <summary>
    /// Every number of the result by dotted result.json path (e.g. <c>test.rougeL</c>, <c>cost.wall_s</c>,
    /// <c>test.per_category.arithmetic.primary</c>), in ordinal order; per-task scores are left out (hundreds of tasks
    /// would drown the rest), and so are unknown (null) values.
    /// </summary>
    public IReadOnlyDictionary<string, double> NumericFields()
    {
        var flat = new SortedDictionary<string, double>(StringComparer.Ordinal);
        void Walk(JsonNode? node, string prefix)
        {
            switch (node)
            {
                case JsonObject o:
                    foreach (var (k, child) in o)
                        if (k != ScoreReport.PerTaskKey) Walk(child, prefix.Length == 0 ? k : $"{prefix}.{k}");
                    break;
                case JsonValue v when v.GetValueKind() == JsonValueKind.Number:
                    flat[prefix] = double.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture);
                    break;
            }
        }
        Walk(ToJson(), "");
        return flat;
    }

    /// <summary>The method as result.json spells it: the lower-case kind name (<c>prefixtuning</c>).</summary>
    private static string MethodName(PeftMethodKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>A method spelled as <see cref="MethodName"/> writes it, or by its canonical name (<c>prefix_tuning</c>); null for anything else.</summary>
    private static PeftMethodKind? ParseMethod(string text) =>
        Enum.GetValues<PeftMethodKind>().Where(k => MethodName(k) == text || PeftRegistry.NameOf(k) == text).Cast<PeftMethodKind?>().FirstOrDefault();

    private static IReadOnlyList<OpenInstructionScore> ReadOpen(JsonFieldReader open) => open.Objects().Select(entry =>
    {
        var (task, b) = entry;
        var groupText = b.String(GroupKey) ?? throw b.Missing(GroupKey);
        var group = Enum.GetValues<CapabilityGroup>().Where(g => ConfigEnums.Name(g) == groupText).Cast<CapabilityGroup?>().FirstOrDefault()
            ?? throw b.Error(GroupKey, $"is '{groupText}', not one of {string.Join(", ", Enum.GetValues<CapabilityGroup>().Select(g => ConfigEnums.Name(g)))}");
        return new OpenInstructionScore(task, group, b.String(MetricKey) ?? throw b.Missing(MetricKey), b.Double(ValueKey) ?? throw b.Missing(ValueKey),
            b.Double(LowKey) ?? throw b.Missing(LowKey), b.Double(HighKey) ?? throw b.Missing(HighKey), b.Int32(DocumentsKey) ?? throw b.Missing(DocumentsKey));
    }).ToArray();

    private static LossSpikes ReadSpikes(JsonFieldReader spikes)
    {
        var steps = spikes.Array(SpikeStepsKey, spikes.Int32Item) ?? throw spikes.Missing(SpikeStepsKey);
        var count = spikes.Int32(SpikeCountKey) ?? throw spikes.Missing(SpikeCountKey);
        if (count != steps.Count) throw spikes.Error(SpikeCountKey, $"is {count}, but {steps.Count} spike steps are listed");
        return new LossSpikes(steps);
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
