using System.Globalization;

namespace PeftLab.Studies.Report;

/// <summary>
/// The finished runs of one hyperparameter setting (method, learning rate, rank/size, generic axes) in one context
/// (base model, task count): the seeds of one configuration.
/// </summary>
public sealed record Setting(string Method, string? Model, int? TaskCount, string Key, double? Lr, int? Capacity, string? CapacityAxis, IReadOnlyList<TrialRow> Runs)
{
    /// <summary>Test ROUGE-L of the runs that finished normally.</summary>
    public IReadOnlyList<double> Scores { get; } = Runs.Where(r => r.Scored).Select(r => r.TestRougeL!.Value).ToArray();
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

    /// <summary>Short human label of the hyperparameters, e.g. "lr 1e-4, lora_r 8".</summary>
    public string Label => Lr is null ? KnobLabel : KnobLabel == "–" ? $"lr {Fmt.Lr(Lr)}" : $"lr {Fmt.Lr(Lr)}, {KnobLabel}";

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
/// The finished trials grouped into settings, with the comparison context: the (base model, task count) pair that
/// most methods share. "Best setting" of a method = the setting with the highest mean test ROUGE-L over seeds.
/// </summary>
public sealed class StudyView
{
    /// <summary>Canonical method order for tables and colours.</summary>
    public static readonly IReadOnlyList<string> MethodOrder = ["full", "lora", "adapter", "prefix_tuning", "prompt_tuning", "ia3", "bitfit"];

    /// <summary>All rows (finished or not).</summary>
    public IReadOnlyList<TrialRow> Rows { get; }
    /// <summary>Thresholds in effect.</summary>
    public FindingThresholds Thresholds { get; }
    /// <summary>Finished runs grouped by method, context and hyperparameters.</summary>
    public IReadOnlyList<Setting> Settings { get; }
    /// <summary>Methods with finished runs, canonical order first.</summary>
    public IReadOnlyList<string> Methods { get; }
    /// <summary>Base models in size order (null = not varied).</summary>
    public IReadOnlyList<string?> Models { get; }
    /// <summary>Task counts ascending, "all" (null) last.</summary>
    public IReadOnlyList<int?> TaskCounts { get; }
    /// <summary>Base model of the comparison context.</summary>
    public string? MainModel { get; }
    /// <summary>Task count of the comparison context.</summary>
    public int? MainTaskCount { get; }

    /// <summary>Groups <paramref name="rows"/>; unfinished trials are kept in <see cref="Rows"/> only.</summary>
    public StudyView(IReadOnlyList<TrialRow> rows, FindingThresholds? thresholds = null)
    {
        Rows = rows;
        Thresholds = thresholds ?? new FindingThresholds();
        Settings = rows.Where(r => r.Finished)
            .GroupBy(r => (r.Method, r.Model, r.TaskCount, Key: SettingKey(r)))
            .Select(g => new Setting(g.Key.Method, g.Key.Model, g.Key.TaskCount, g.Key.Key, g.First().Lr, g.First().Capacity, g.First().CapacityAxis, g.ToArray()))
            .ToArray();
        Methods = Settings.Select(s => s.Method).Distinct().OrderBy(MethodRank).ThenBy(m => m, StringComparer.Ordinal).ToArray();
        Models = Settings.Select(s => s.Model).Distinct().OrderBy(m => BaseParams(m) ?? long.MaxValue).ThenBy(m => m, StringComparer.Ordinal).ToArray();
        TaskCounts = Settings.Select(s => s.TaskCount).Distinct().OrderBy(TaskOrder).ToArray();
        var main = Settings.Where(s => s.Mean is not null)
            .GroupBy(s => (s.Model, s.TaskCount))
            .OrderByDescending(g => g.Select(s => s.Method).Distinct().Count())
            .ThenByDescending(g => g.Sum(s => s.Scores.Count))
            .ThenByDescending(g => TaskOrder(g.Key.TaskCount))
            .ThenByDescending(g => Models.ToList().IndexOf(g.Key.Model))
            .Select(g => g.Key)
            .FirstOrDefault((Model: Models.LastOrDefault(), TaskCount: TaskCounts.LastOrDefault()));
        (MainModel, MainTaskCount) = main;
    }

    /// <summary>Sort key of a method: canonical position, unknown methods after.</summary>
    public static int MethodRank(string method) => MethodOrder.ToList().IndexOf(method) is var i and >= 0 ? i : MethodOrder.Count;

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

    /// <summary>Best-scoring setting of a method in a context, or null when none scored.</summary>
    public Setting? Best(string method, string? model, int? taskCount) => BestOf(SettingsOf(method, model, taskCount));

    /// <summary>Best-scoring setting of a method in the comparison context.</summary>
    public Setting? Best(string method) => Best(method, MainModel, MainTaskCount);

    /// <summary>Highest mean test score; ties go to the earlier (smaller learning rate, smaller size) setting.</summary>
    public static Setting? BestOf(IEnumerable<Setting> settings) =>
        settings.Where(s => s.Mean is not null).OrderByDescending(s => s.Mean).ThenBy(s => s.Lr ?? 0).ThenBy(s => s.Capacity ?? 0).FirstOrDefault();

    /// <summary>The grouping key of the hyperparameters: everything but method, model, task count and seed.</summary>
    public static string SettingKey(TrialRow r)
    {
        var parts = new List<string> { "lr=" + (r.Lr?.ToString("R", CultureInfo.InvariantCulture) ?? "") };
        if (r.CapacityAxis is not null) parts.Add($"{r.CapacityAxis}={r.Capacity}");
        parts.AddRange(r.OtherAxes.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
        return string.Join(";", parts);
    }
}
