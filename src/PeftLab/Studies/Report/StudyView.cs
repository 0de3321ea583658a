using System.Globalization;
using PeftLab.Evaluation;
using PeftLab.Peft;

namespace PeftLab.Studies.Report;

/// <summary>
/// The finished runs of one hyperparameter setting (method, learning rate, rank/size, generic axes) in one context
/// (base model, task count): the seeds of one configuration.
/// </summary>
public sealed record Setting(string Method, string? Model, int? TaskCount, string Key, double? Lr, int? Capacity, string? CapacityAxis, IReadOnlyList<TrialRow> Runs)
{
    /// <summary>Unique name of the setting in a study: method, context and hyperparameter key.</summary>
    public string Id => $"{Method}|{Model}|{TaskCount}|{Key}";
    /// <summary>The untuned baseline's setting.</summary>
    public bool IsBaseline => Method == StudyView.BaselineMethod;
    /// <summary>Completed seeds: runs that finished normally with a test score.</summary>
    public int SeedCount => Scores.Count;
    /// <summary>Mean validation score at the best checkpoint (<see cref="TrialRow.BestScore"/>) over the scored runs that report one.</summary>
    public double? ValidationMean => MeanOf(r => r.BestScore);
    /// <summary>Headline score (<see cref="TrialRow.Headline"/>: test ROUGE-L, else the open-instruction mean) of the runs that finished normally.</summary>
    public IReadOnlyList<double> Scores { get; } = Runs.Where(r => r.Scored).Select(r => r.Headline!.Value).ToArray();
    /// <summary>Mean test ROUGE-L over seeds (null when no run finished normally).</summary>
    public double? Mean => Stats.Mean(Scores);
    /// <summary>Sample standard deviation of test ROUGE-L over seeds (null below two scored runs).</summary>
    public double? Std => Stats.Std(Scores);
    /// <summary>Diverged runs.</summary>
    public int DivergedCount => Runs.Count(r => r.Diverged);
    /// <summary>Runs with at least <paramref name="minSpikes"/> loss spikes (diverged runs not counted twice).</summary>
    public int SpikingCount(int minSpikes) => Runs.Count(r => !r.Diverged && r.SpikeCount >= minSpikes);
    /// <summary>Diverged or spiking runs over all finished runs.</summary>
    public double? UnstableShare(int minSpikes) => Runs.Count == 0 ? null : (DivergedCount + SpikingCount(minSpikes)) / (double)Runs.Count;
    /// <summary>Mean of a per-run number over the runs that finished normally and have it.</summary>
    public double? MeanOf(Func<TrialRow, double?> pick) => Stats.Mean(Runs.Where(r => r.Scored).Select(pick).OfType<double>().ToArray());

    /// <summary>
    /// Scored runs that have per-instance scores of every split in <paramref name="splits"/> (one interval pairs a
    /// run's splits, so a run missing one is left out of it).
    /// </summary>
    public IReadOnlyList<TrialRow> RunsWith(IReadOnlyCollection<EvalSplit> splits) =>
        Runs.Where(r => r.Scored && splits.All(sp => InstancesOf(r, sp) is not null)).ToArray();

    /// <summary>A run's per-instance scores of one split, or null when it has none.</summary>
    public static IReadOnlyDictionary<string, InstanceScore>? InstancesOf(TrialRow r, EvalSplit split) => split switch
    {
        EvalSplit.Test => r.TestInstances,
        EvalSplit.Heldout => r.HeldoutInstances,
        _ => r.OpenInstances,
    };

    /// <summary>Short human label of the hyperparameters, e.g. "lr 1e-4, lora_r 8"; "no training" for the baseline.</summary>
    public string Label => IsBaseline ? "no training" : Lr is null ? KnobLabel : KnobLabel == "–" ? $"lr {Fmt.Lr(Lr)}" : $"lr {Fmt.Lr(Lr)}, {KnobLabel}";

    /// <summary>The hyperparameters other than the learning rate (rank/size, generic axes), or "–".</summary>
    public string KnobLabel
    {
        get
        {
            var parts = new List<string>();
            if (Capacity is int c) parts.Add($"{CapacityAxis} {c}");
            foreach (var (k, v) in Runs[0].OtherAxes.OrderBy(kv => kv.Key, StringComparer.Ordinal)) parts.Add($"{k} {v ?? "null"}");
            return parts.Count == 0 ? "–" : string.Join(", ", parts);
        }
    }
}

/// <summary>The evaluation splits with per-instance scores.</summary>
public enum EvalSplit
{
    /// <summary>Unseen tasks (<c>eval/test_predictions.jsonl</c>).</summary>
    Test,
    /// <summary>Held-out instances of the training tasks (<c>eval/heldout_predictions.jsonl</c>).</summary>
    Heldout,
    /// <summary>Open-instruction benchmark documents (<c>eval/open_instruction/&lt;task&gt;/samples.jsonl</c>; category = capability group).</summary>
    Open,
}

/// <summary>
/// One term <c>Weight × mean score</c> of a comparison: a setting's runs on one split, optionally only the instances
/// of one evaluation category (matched by its official key, so "Multi-step Reasoning" and "multi-step_reasoning" agree)
/// or of one task (an open-instruction benchmark).
/// </summary>
public sealed record SettingTerm(double Weight, Setting Setting, EvalSplit Split = EvalSplit.Test, string? Category = null, string? Task = null);

/// <summary>Mean and spread helpers.</summary>
public static class Stats
{
    /// <summary>Arithmetic mean, null for no values.</summary>
    public static double? Mean(IReadOnlyCollection<double> xs) => xs.Count == 0 ? null : xs.Average();

    /// <summary>Sample standard deviation (n - 1), null below two values.</summary>
    public static double? Std(IReadOnlyCollection<double> xs)
    {
        if (xs.Count < 2) return null;
        var mean = xs.Average();
        return Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1));
    }
}

/// <summary>
/// The finished trials grouped into settings, with the comparison context (the (base model, task count) pair that most
/// methods share), the untuned baseline and the bootstrap intervals of the report.
/// <para>
/// Best setting of a method (<see cref="BestOf"/>): among the method's settings with a scored run, those with the most
/// completed seeds; among them the highest mean validation score (<c>best_score</c>, the metric the trainer selected its
/// checkpoint by, so the choice never looks at the test split); when one of them has no validation score, the highest
/// mean test ROUGE-L instead; ties go to the smaller learning rate, then the smaller rank/size. A two-stage study re-runs
/// each method's best search setting with more seeds, so this rule lands on the confirmed setting. The untuned baseline
/// (<see cref="BaselineMethod"/>) is never a method's best and is not in <see cref="Methods"/>; see <see cref="Baseline(string?, int?)"/>.
/// </para>
/// </summary>
public sealed class StudyView
{
    /// <summary>Method-axis value of the untuned baseline: the base model evaluated with zero training steps.</summary>
    public const string BaselineMethod = StudyAxisNames.Untuned;

    /// <summary>Canonical method order for tables and colours: the registry's (<see cref="PeftRegistry.All"/>).</summary>
    public static readonly IReadOnlyList<string> MethodOrder = PeftRegistry.All.Select(m => m.Name).ToArray();

    private readonly Dictionary<string, Interval?> _intervals = new(StringComparer.Ordinal);

    /// <summary>All rows (finished or not).</summary>
    public IReadOnlyList<TrialRow> Rows { get; }
    /// <summary>Thresholds in effect.</summary>
    public FindingThresholds Thresholds { get; }
    /// <summary>Bootstrap settings of every interval.</summary>
    public BootstrapOptions Bootstrap { get; }
    /// <summary>Finished runs grouped by method, context and hyperparameters (the baseline included).</summary>
    public IReadOnlyList<Setting> Settings { get; }
    /// <summary>Tuning methods with finished runs, canonical order first (the baseline is not one).</summary>
    public IReadOnlyList<string> Methods { get; }
    /// <summary>What tables list: the baseline first when the study has one, then <see cref="Methods"/>.</summary>
    public IReadOnlyList<string> TableMethods { get; }
    /// <summary>Base models in size order (null = not varied).</summary>
    public IReadOnlyList<string?> Models { get; }
    /// <summary>Task counts ascending, "all" (null) last.</summary>
    public IReadOnlyList<int?> TaskCounts { get; }
    /// <summary>Base model of the comparison context.</summary>
    public string? MainModel { get; }
    /// <summary>Task count of the comparison context.</summary>
    public int? MainTaskCount { get; }
    /// <summary>
    /// Whether the study's headline score is the open-instruction mean (its scored runs have open-instruction scores and
    /// no SuperNI test split, e.g. trained on a chat mixture): a plain test-split term then stands for the mean of the
    /// setting's benchmarks, paired document by document.
    /// </summary>
    public bool OpenHeadline { get; }
    /// <summary>What the headline score is, for labels: "test ROUGE-L" or "open-instruction mean".</summary>
    public string HeadlineLabel => OpenHeadline ? "open-instruction mean" : "test ROUGE-L";
    /// <summary>The unit of a headline difference: "ROUGE-L points", or "points" of the open-instruction mean.</summary>
    public string HeadlineUnit => OpenHeadline ? "points of the open-instruction mean" : "ROUGE-L points";
    /// <summary>Instance id → task, from every run's predictions (the clusters of a task-level bootstrap).</summary>
    public IReadOnlyDictionary<string, string> TaskOf { get; }

    /// <summary>Groups <paramref name="rows"/>; unfinished trials are kept in <see cref="Rows"/> only.</summary>
    public StudyView(IReadOnlyList<TrialRow> rows, FindingThresholds? thresholds = null, BootstrapOptions? bootstrap = null)
    {
        Rows = rows;
        Thresholds = thresholds ?? new FindingThresholds();
        Bootstrap = bootstrap ?? BootstrapOptions.Default;
        Settings = rows.Where(r => r.Finished)
            .GroupBy(r => (r.Method, r.Model, r.TaskCount, Key: SettingKey(r)))
            .Select(g => new Setting(g.Key.Method, g.Key.Model, g.Key.TaskCount, g.Key.Key, g.First().Lr, g.First().Capacity, g.First().CapacityAxis, g.ToArray()))
            .ToArray();
        Methods = Settings.Where(s => !s.IsBaseline).Select(s => s.Method).Distinct().OrderBy(MethodRank).ThenBy(m => m, StringComparer.Ordinal).ToArray();
        TableMethods = Settings.Any(s => s.IsBaseline) ? [BaselineMethod, .. Methods] : Methods;
        Models = Settings.Select(s => s.Model).Distinct().OrderBy(m => BaseParams(m) ?? long.MaxValue).ThenBy(m => m, StringComparer.Ordinal).ToArray();
        TaskCounts = Settings.Where(s => !s.IsBaseline).Select(s => s.TaskCount).Distinct().OrderBy(TaskOrder).ToArray();
        var main = Settings.Where(s => s.Mean is not null && !s.IsBaseline)
            .GroupBy(s => (s.Model, s.TaskCount))
            .OrderByDescending(g => g.Select(s => s.Method).Distinct().Count())
            .ThenByDescending(g => g.Sum(s => s.Scores.Count))
            .ThenByDescending(g => TaskOrder(g.Key.TaskCount))
            .ThenByDescending(g => Models.ToList().IndexOf(g.Key.Model))
            .Select(g => g.Key)
            .FirstOrDefault((Model: Models.LastOrDefault(), TaskCount: TaskCounts.LastOrDefault()));
        (MainModel, MainTaskCount) = main;
        var taskOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var r in rows)
            foreach (var (id, score) in (r.TestInstances ?? new Dictionary<string, InstanceScore>()).Concat(r.HeldoutInstances ?? new Dictionary<string, InstanceScore>())
                         .Concat(r.OpenInstances ?? new Dictionary<string, InstanceScore>()))
                if (score.Task.Length > 0) taskOf.TryAdd(id, score.Task);
        TaskOf = taskOf;
        var scored = rows.Where(r => r.Scored).ToArray();
        OpenHeadline = scored.Length > 0 && scored.All(r => r.TestRougeL is null && r.OpenScores.Count > 0);
    }

    /// <summary>Sort key of a method: the baseline first, then the canonical position, unknown methods after.</summary>
    public static int MethodRank(string method) =>
        method == BaselineMethod ? -1 : MethodOrder.ToList().IndexOf(method) is var i and >= 0 ? i : MethodOrder.Count;

    /// <summary>Sort key of a task count: null (all tasks) is the largest.</summary>
    public static long TaskOrder(int? taskCount) => taskCount ?? long.MaxValue;

    /// <summary>Text of the comparison context, e.g. "model mini, 32 tasks".</summary>
    public string MainContextLabel =>
        $"model {MainModel ?? "(not varied)"}, task count {(Rows.Any(r => r.Axes.ContainsKey("task_count")) ? Fmt.Tasks(MainTaskCount) : "(not varied)")}";

    /// <summary>Base model size: the smallest total parameter count any run of that model reports (full finetuning adds nothing).</summary>
    public long? BaseParams(string? model) =>
        Rows.Where(r => r.Model == model && r.TotalParams is not null).Select(r => r.TotalParams!.Value).DefaultIfEmpty(-1).Min() is var p and >= 0 ? p : null;

    /// <summary>Settings of a method in a context.</summary>
    public IEnumerable<Setting> SettingsOf(string method, string? model, int? taskCount) =>
        Settings.Where(s => s.Method == method && s.Model == model && s.TaskCount == taskCount);

    /// <summary>Settings of a method in the comparison context.</summary>
    public IEnumerable<Setting> SettingsOf(string method) => SettingsOf(method, MainModel, MainTaskCount);

    /// <summary>
    /// Best setting of a method in a context (see the class remarks), or null when none scored; for
    /// <see cref="BaselineMethod"/> the baseline of that context.
    /// </summary>
    public Setting? Best(string method, string? model, int? taskCount) =>
        method == BaselineMethod ? Baseline(model, taskCount) : BestOf(SettingsOf(method, model, taskCount));

    /// <summary>Best setting of a method in the comparison context.</summary>
    public Setting? Best(string method) => Best(method, MainModel, MainTaskCount);

    /// <summary>
    /// The best setting among <paramref name="settings"/>: most completed seeds, then the highest mean validation score
    /// (the highest mean test ROUGE-L when one of those settings has no validation score), then the smaller learning
    /// rate and rank/size. Baseline settings are never chosen.
    /// </summary>
    public static Setting? BestOf(IEnumerable<Setting> settings)
    {
        var scored = settings.Where(s => s.Mean is not null && !s.IsBaseline).ToArray();
        if (scored.Length == 0) return null;
        var most = scored.Max(s => s.SeedCount);
        var tier = scored.Where(s => s.SeedCount == most).ToArray();
        bool byValidation = tier.All(s => s.ValidationMean is not null);
        return tier.OrderByDescending(s => byValidation ? s.ValidationMean : s.Mean).ThenBy(s => s.Lr ?? 0).ThenBy(s => s.Capacity ?? 0).First();
    }

    /// <summary>
    /// The untuned baseline for a context: a scored baseline setting of that base model (or of an unnamed model), the
    /// one at <paramref name="taskCount"/> first (a baseline does not train, so another task count serves too), then the
    /// one with the most runs. Null when the study has none.
    /// </summary>
    public Setting? Baseline(string? model, int? taskCount) =>
        Settings.Where(s => s.IsBaseline && s.Mean is not null && (s.Model == model || s.Model is null))
            .OrderByDescending(s => s.Model == model).ThenByDescending(s => s.TaskCount == taskCount).ThenByDescending(s => s.SeedCount)
            .ThenBy(s => s.Key, StringComparer.Ordinal).FirstOrDefault();

    /// <summary>The baseline of the comparison context.</summary>
    public Setting? Baseline() => Baseline(MainModel, MainTaskCount);

    /// <summary>The mean test ROUGE-L a report shows for a setting: its interval's estimate, else the mean of its result.json scores.</summary>
    public double? Shown(Setting s) => MeanCi(s)?.Estimate ?? s.Mean;

    /// <summary>Interval of a setting's mean ROUGE-L on a split (over its runs with per-instance scores), or null without them.</summary>
    public Interval? MeanCi(Setting s, EvalSplit split = EvalSplit.Test) => Combine([new SettingTerm(1, s, split)]);

    /// <summary>Paired interval of <c>mean(a) − scaleB·mean(b) + shift</c> on the test split, or null without common instances.</summary>
    public Interval? DiffCi(Setting a, Setting b, double scaleB = 1, double shift = 0) =>
        Combine([new SettingTerm(1, a), new SettingTerm(-scaleB, b)], shift);

    /// <summary>Paired interval of a setting's gain over the untuned baseline of its context; null for the baseline itself or without one.</summary>
    public Interval? GainCi(Setting s) => !s.IsBaseline && Baseline(s.Model, s.TaskCount) is { } b ? DiffCi(s, b) : null;

    /// <summary>
    /// Interval of <c>constant + Σ weight · mean ROUGE-L</c> (<see cref="Report.Bootstrap.Combine"/>): terms on one split and
    /// category are paired on their common instances; a setting's terms share its run draws, over its runs that have
    /// every split it is used with. Null when a setting has no such run or a split has no common instance. Memoised.
    /// </summary>
    public Interval? Combine(IReadOnlyList<SettingTerm> terms, double constant = 0)
    {
        var key = string.Join("\n", terms.Select(t => $"{t.Weight.ToString("R", CultureInfo.InvariantCulture)}*{t.Setting.Id}@{t.Split}/{t.Category}/{t.Task}"))
            + "\n+" + constant.ToString("R", CultureInfo.InvariantCulture);
        if (_intervals.TryGetValue(key, out var cached)) return cached;
        if (OpenHeadline)                                                                 // the headline: the mean of the benchmarks
            terms = terms.SelectMany(t => t is { Split: EvalSplit.Test, Category: null, Task: null }
                ? Analyses.OpenTerms(t.Setting, t.Weight, Analyses.OpenBenchmarksOf(t.Setting).Select(b => b.Task).ToArray())
                : [t]).ToArray();
        var runsOf = terms.GroupBy(t => t.Setting.Id).ToDictionary(g => g.Key, g => g.First().Setting.RunsWith(g.Select(t => t.Split).Distinct().ToArray()));
        Interval? result = null;
        if (runsOf.Values.All(r => r.Count > 0))
        {
            var categoryKey = terms.Select(t => t.Category).Distinct().ToDictionary(c => c ?? "", c => c is null ? null : SuperNiScorer.CategoryKey(c));
            var bootstrapTerms = terms.Select(t => new BootstrapTerm(t.Weight, t.Setting.Id, $"{t.Split}/{t.Category}/{t.Task}",
                runsOf[t.Setting.Id].Select(r => Project(Setting.InstancesOf(r, t.Split)!, categoryKey[t.Category ?? ""], t.Task)).ToArray())).ToArray();
            result = Report.Bootstrap.Combine(bootstrapTerms, constant, Bootstrap, TaskOf);
        }
        _intervals[key] = result;
        return result;
    }

    /// <summary>Score by instance id, only the instances of a category (by official key) and of a task when given.</summary>
    private static IReadOnlyDictionary<string, double> Project(IReadOnlyDictionary<string, InstanceScore> scores, string? categoryKey, string? task) =>
        scores.Where(kv => (categoryKey is null || SuperNiScorer.CategoryKey(kv.Value.Category) == categoryKey) && (task is null || kv.Value.Task == task))
            .ToDictionary(kv => kv.Key, kv => kv.Value.RougeL, StringComparer.Ordinal);

    /// <summary>The grouping key of the hyperparameters: everything but method, model, task count and seed.</summary>
    public static string SettingKey(TrialRow r)
    {
        var parts = new List<string> { "lr=" + (r.Lr?.ToString("R", CultureInfo.InvariantCulture) ?? "") };
        if (r.CapacityAxis is not null) parts.Add($"{r.CapacityAxis}={r.Capacity}");
        parts.AddRange(r.OtherAxes.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
        return string.Join(";", parts);
    }
}
