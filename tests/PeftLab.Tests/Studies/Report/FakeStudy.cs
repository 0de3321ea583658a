using System.Text.Json;
using System.Text.Json.Nodes;
using PeftLab.Evaluation;
using PeftLab.Peft;
using PeftLab.Studies.Report;
using PeftLab.Training;
using SplitCategoryScore = PeftLab.Evaluation.CategoryScore;

namespace PeftLab.Tests.Studies.Report;

/// <summary>One instance of a fake final evaluation (a line of eval/{split}_predictions.jsonl).</summary>
internal sealed record FakeInstance(string Id, string Task, string Category, double RougeL);

/// <summary>What a fake trial produced; null fields are null in result.json.</summary>
internal sealed record FakeOutcome
{
    /// <summary>Validation score at the best checkpoint (result.json best_score).</summary>
    public double? Validation { get; init; }
    /// <summary>Per-instance unseen-task scores (eval/test_predictions.jsonl); null writes no file.</summary>
    public IReadOnlyList<FakeInstance>? TestInstances { get; init; }
    /// <summary>Per-instance seen-task held-out scores (eval/heldout_predictions.jsonl); null writes no file.</summary>
    public IReadOnlyList<FakeInstance>? HeldoutInstances { get; init; }
    public bool Diverged { get; init; }
    public double? Test { get; init; }
    public double? Heldout { get; init; }
    public IReadOnlyDictionary<string, double> Categories { get; init; } = new Dictionary<string, double>();
    public int Spikes { get; init; }
    public int? StepsTo80 { get; init; }
    public long Trainable { get; init; } = 1000;
    public long Total { get; init; } = 1_000_000;
    /// <summary>Validation ROUGE-L per eval step.</summary>
    public IReadOnlyList<(int Step, double Rouge)> Curve { get; init; } = [];
    /// <summary>Open-instruction benchmarks: each one's per-document headline score (a share in [0, 1]); null writes none.</summary>
    public IReadOnlyList<(string Task, CapabilityGroup Group, string Metric, IReadOnlyList<double> Docs)>? Open { get; init; }
}

/// <summary>Writes a study folder by hand, following the study results contract.</summary>
internal sealed class FakeStudy : IDisposable
{
    private readonly JsonArray _plan = [];
    public string Dir { get; } = TestPaths.NewTempDir("peftlab-report");

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>Adds a trial; <paramref name="outcome"/> null leaves it pending (no result.json).</summary>
    public string Add(IReadOnlyDictionary<string, object?> axes, FakeOutcome? outcome, string? state = null, string? error = null)
    {
        int index = _plan.Count;
        var id = index.ToString("x12");
        var axesJson = ToJson(axes);
        _plan.Add(new JsonObject { ["id"] = id, ["index"] = index, ["axes"] = axesJson.DeepClone() });
        var dir = Path.Combine(Dir, "trials", id);
        Directory.CreateDirectory(dir);
        state ??= outcome is null ? "pending" : outcome.Diverged ? "diverged" : "done";
        Write(Path.Combine(dir, "trial.json"), new JsonObject { ["id"] = id, ["index"] = index, ["axes"] = axesJson, ["state"] = state, ["error"] = error });
        if (outcome is null) return id;
        File.WriteAllText(Path.Combine(dir, "config.yaml"), $"method:\n  name: {axes["method"]}\noptim:\n  lr: {axes.GetValueOrDefault("lr") ?? 1e-4}\n");
        var lines = new List<string>();
        for (int s = 1; s <= 4; s++)
            lines.Add(new JsonObject { ["type"] = "step", ["step"] = s, ["epoch"] = 0, ["tokens"] = s * 100, ["loss"] = 2.0 / s, ["lr"] = 1e-4, ["grad_norm"] = 1.0, ["tokens_per_s"] = 1000.0, ["wall_s"] = s * 0.1 }.ToJsonString());
        foreach (var (step, rouge) in outcome.Curve)
            lines.Add(new JsonObject { ["type"] = "eval", ["step"] = step, ["tokens"] = step * 100, ["val_loss"] = 1.0, ["val_rougeL"] = rouge, ["val_exact_match"] = rouge / 2 }.ToJsonString());
        lines.Add("{\"type\":\"step\",\"step\":99,"); // a torn last line, as a killed run leaves it
        File.WriteAllText(Path.Combine(dir, "metrics.jsonl"), string.Join("\n", lines) + "\n");
        Result(axes["method"]!.ToString()!, outcome).Write(new RunFiles(dir).Result);
        if (!outcome.Diverged)
        {
            WritePredictions(Path.Combine(dir, "eval", "test_predictions.jsonl"), outcome.TestInstances);
            WritePredictions(Path.Combine(dir, "eval", "heldout_predictions.jsonl"), outcome.HeldoutInstances);
            foreach (var b in outcome.Open ?? [])
            {
                var folder = Path.Combine(dir, "eval", PeftLab.Evaluation.Harness.OpenInstructionEval.FolderName, b.Task);
                Directory.CreateDirectory(folder);
                File.WriteAllText(Path.Combine(folder, "samples.jsonl"), string.Concat(b.Docs.Select((v, i) =>
                    new JsonObject { ["doc"] = i, ["prompt"] = "p", ["metrics"] = new JsonObject { [b.Metric] = v } }.ToJsonString() + "\n")));
            }
        }
        return id;
    }

    /// <summary>Instances in the evaluator's JSONL format (prediction and references are placeholders).</summary>
    private static void WritePredictions(string path, IReadOnlyList<FakeInstance>? instances)
    {
        if (instances is null) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, string.Concat(instances.Select(i => new JsonObject
        {
            ["task"] = i.Task, ["id"] = i.Id, ["category"] = i.Category, ["prediction"] = "p", ["references"] = new JsonArray("r"),
            ["rougeL"] = i.RougeL, ["exact_match"] = i.RougeL >= 50 ? 100.0 : 0.0,
        }.ToJsonString() + "\n")));
    }

    /// <summary>
    /// Instances whose scores average exactly each category's score: <paramref name="perCategory"/> per category (ids
    /// depend only on the category's position and the index, so every trial's instances pair), each at the category
    /// score plus a fixed zero-sum pattern of ±<paramref name="noise"/>.
    /// </summary>
    public static IReadOnlyList<FakeInstance> Instances(IReadOnlyDictionary<string, double> categoryScores, int perCategory = 20, double noise = 5, string prefix = "t") =>
        categoryScores.SelectMany((c, k) => Enumerable.Range(0, perCategory).Select(i =>
            new FakeInstance($"{prefix}{k}-{i}", $"{c.Key}-task{i % 4}", c.Key, c.Value + (i % 2 == 0 ? noise : -noise)))).ToArray();

    /// <summary>Writes plan.json (and study.yaml when given).</summary>
    public FakeStudy Save(string? studyYaml = null)
    {
        Write(Path.Combine(Dir, "plan.json"), new JsonObject { ["study"] = "fake-study", ["trials"] = _plan.DeepClone() });
        if (studyYaml is not null) File.WriteAllText(Path.Combine(Dir, "study.yaml"), studyYaml);
        return this;
    }

    private static RunResult Result(string method, FakeOutcome o)
    {
        var noScores = new Dictionary<string, SplitCategoryScore>();
        return new RunResult
        {
            Status = o.Diverged ? RunStatus.Diverged : RunStatus.Completed,
            Reason = o.Diverged ? "loss is NaN" : null,
            DivergedAtStep = o.Diverged ? 120 : null,
            Test = o.Test is double t && !o.Diverged
                ? new ScoreReport(t / 2, t, new Dictionary<string, TaskScore> { ["task1"] = new(1.0, t, 10) },
                    o.Categories.ToDictionary(c => c.Key, c => new SplitCategoryScore(c.Value / 2, c.Value, 10, PrimaryMetric.RougeL)), Missing: 0, Count: 10)
                : null,
            Heldout = o.Heldout is double h && !o.Diverged ? new ScoreReport(h / 2, h, new Dictionary<string, TaskScore>(), noScores, Missing: 0, Count: 10) : null,
            OpenInstruction = o.Open is null || o.Diverged ? null
                : o.Open.Select(b => new OpenInstructionScore(b.Task, b.Group, b.Metric, b.Docs.Average(), b.Docs.Min(), b.Docs.Max(), b.Docs.Count)).ToArray(),
            // the untuned baseline is the base model with zero steps of full finetuning
            Method = method == StudyView.BaselineMethod ? PeftMethodKind.Full : PeftRegistry.ParseKind(method),
            Steps = 400,
            Tokens = 40000,
            BestMetric = o.Validation is null ? null : BestMetric.RougeL,
            BestScore = o.Validation,
            Spikes = new LossSpikes(Enumerable.Range(0, o.Spikes).Select(i => 10 + i).ToArray()),
            LearningSpeed = new LearningSpeed(o.StepsTo80 / 2, o.StepsTo80, o.StepsTo80 * 2, Auc: 10.0),
            Cost = new RunCost
            {
                TrainableParams = o.Trainable, TotalParams = o.Total, OptimizerStateBytes = o.Trainable * 8, PeakRssMib = 100.0,
                WallSeconds = 12.5, TokensPerSecond = 3200.0, CheckpointBytes = o.Trainable * 4,
            },
        };
    }

    private static JsonObject ToJson(IReadOnlyDictionary<string, object?> axes)
    {
        var o = new JsonObject();
        foreach (var (k, v) in axes)
            o[k] = v switch
            {
                null => null,
                string text => JsonValue.Create(text),
                int i => JsonValue.Create(i),
                long l => JsonValue.Create(l),
                double d => JsonValue.Create(d),
                _ => throw new ArgumentException($"axis {k}: unsupported value type {v.GetType()}"),
            };
        return o;
    }

    private static void Write(string path, JsonNode node) => File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>
    /// A study shaped like the reference study's results, where every finding holds: all seven methods and the untuned
    /// baseline, three learning rates, two ranks/sizes, two task counts, two models, two seeds, one diverged LoRA trial,
    /// spiking LoRA and adapter runs away from the best learning rate, and per-instance scores of every run.
    /// </summary>
    public static FakeStudy Reference(string? studyYaml = null)
    {
        var study = new FakeStudy();
        string[] methods = ["full", "lora", "adapter", "prefix_tuning", "prompt_tuning", "ia3", "bitfit"];
        double[] lrs = [1e-5, 1e-4, 1e-3];
        foreach (var model in new[] { "mini", "small" })
            foreach (var tasks in new[] { 8, 64 })
                foreach (var method in methods)
                    foreach (var lr in lrs)
                        foreach (var cap in method is "lora" or "adapter" ? new int?[] { 8, 64 } : [null])
                            foreach (var seed in new[] { 1, 2 })
                            {
                                var axes = new Dictionary<string, object?> { ["method"] = method, ["lr"] = lr, ["model"] = model, ["task_count"] = tasks, ["seed"] = seed };
                                if (cap is int c) axes[method == "lora" ? "lora_r" : "adapter_size"] = c;
                                study.Add(axes, ReferenceOutcome(method, lr, cap, model, tasks, seed));
                            }
        foreach (var model in new[] { "mini", "small" })
        {
            double untuned = model == "small" ? 15 : 10;
            study.Add(new Dictionary<string, object?> { ["method"] = "untuned", ["model"] = model, ["task_count"] = 64, ["seed"] = 1 }, new FakeOutcome
            {
                Test = untuned, Heldout = untuned, Validation = untuned,
                Categories = new Dictionary<string, double> { ["Arithmetic"] = untuned + 2, ["Multi-step Reasoning"] = untuned - 2 },
                TestInstances = Instances(new Dictionary<string, double> { ["Arithmetic"] = untuned + 2, ["Multi-step Reasoning"] = untuned - 2 }, ReferenceInstances),
                HeldoutInstances = Instances(new Dictionary<string, double> { ["Arithmetic"] = untuned, ["Multi-step Reasoning"] = untuned }, ReferenceInstances, prefix: "h"),
                Trainable = model == "small" ? 4_000_000 : 1_000_000, Total = model == "small" ? 4_000_000 : 1_000_000,
                Curve = [(0, untuned)],
                Open = OpenOutcome(untuned, 0),
            });
        }
        return study.Save(studyYaml);
    }

    /// <summary>Instances per category in the reference study: enough that a 1-point margin is resolved.</summary>
    private const int ReferenceInstances = 50;

    private static FakeOutcome ReferenceOutcome(string method, double lr, int? cap, string model, int tasks, int seed)
    {
        double bestLr = method == "full" ? 1e-5 : 1e-4;
        bool atBest = lr == bestLr && (cap ?? 64) == 64;
        if (method == "lora" && lr == 1e-3 && cap == 64 && seed == 1) return new FakeOutcome { Diverged = true };
        double score = method switch { "full" => 40, "lora" => 39.5, "adapter" => 39, "prefix_tuning" => 25, "prompt_tuning" => 20, "ia3" => 28, _ => 30 };
        score -= Math.Abs(Math.Log10(lr / bestLr)) * (method == "full" ? 2 : 5);
        if (cap == 8) score -= 2;
        if (tasks == 8) score -= method switch { "lora" => 6, "adapter" => 4, _ => 2 };
        if (model == "small") score += 5;
        bool peft = method is "lora" or "adapter";
        score += (seed == 1 ? 1 : -1) * (peft && !atBest ? 2 : 0.1);
        double tau = method == "lora" ? 120 : 50;
        double hardGap = method switch { "full" => 5, "lora" => 10, "adapter" => 12, _ => 15 };
        var categories = new Dictionary<string, double> { ["Arithmetic"] = score + hardGap / 2, ["Multi-step Reasoning"] = score - hardGap / 2 };
        double heldout = score + (method == "full" ? 15 : 5);
        return new FakeOutcome
        {
            Test = score,
            Heldout = heldout,
            Categories = categories,
            TestInstances = Instances(categories, ReferenceInstances),
            HeldoutInstances = Instances(new Dictionary<string, double> { ["Arithmetic"] = heldout, ["Multi-step Reasoning"] = heldout }, ReferenceInstances, prefix: "h"),
            Spikes = peft && lr != bestLr ? 3 : 0,
            StepsTo80 = method == "lora" ? 200 : 100,
            Trainable = method switch { "full" => 1_000_000, "lora" => cap!.Value * 1000L, "adapter" => cap!.Value * 1200L, "prefix_tuning" => 5000, "prompt_tuning" => 1000, "ia3" => 500, _ => 2000 },
            Total = (model == "small" ? 4_000_000 : 1_000_000) + (method == "full" ? 0 : 5000),
            Curve = Enumerable.Range(1, 8).Select(i => (i * 50, score * (1 - Math.Exp(-i * 50 / tau)))).ToArray(),
            Open = OpenOutcome(score, hardGap),
        };
    }

    /// <summary>
    /// Open-instruction benchmarks shaped like the reference study's finding (f): knowledge above the score, the hard
    /// groups (reasoning, coding) below it by the method's gap; 50 documents each at the mean ± 0.05 in one fixed pattern.
    /// </summary>
    private static IReadOnlyList<(string, CapabilityGroup, string, IReadOnlyList<double>)> OpenOutcome(double score, double hardGap)
    {
        IReadOnlyList<double> Docs(double percent) => Enumerable.Range(0, ReferenceInstances).Select(i => percent / 100 + (i % 2 == 0 ? 0.05 : -0.05)).ToArray();
        return
        [
            ("synth_mc", CapabilityGroup.Knowledge, "acc", Docs(score + hardGap / 2)),
            ("synth_arith", CapabilityGroup.Reasoning, "exact_match,strict-match", Docs(score - hardGap / 2)),
            ("synth_code", CapabilityGroup.Coding, "pass@1,create_test", Docs(score - hardGap / 2 - 3)),
        ];
    }
}
