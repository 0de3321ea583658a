namespace PeftLab.Studies.Report;

/// <summary>
/// A point estimate and its bootstrap percentile interval, in the unit of the scores (ROUGE-L points for scores).
/// <paramref name="Estimate"/> is the statistic on the data as observed (not the mean of the replicates).
/// </summary>
public sealed record Interval(double Estimate, double Lower, double Upper)
{
    /// <summary>Half the interval's width: the "±" of the estimate.</summary>
    public double HalfWidth => (Upper - Lower) / 2;
}

/// <summary>What one bootstrap draw resamples within a split.</summary>
public enum BootstrapUnit
{
    /// <summary>Evaluation instances, each independently (the default).</summary>
    Instance,
    /// <summary>
    /// Whole tasks (every instance of a drawn task comes along): instances of one task are correlated, so this interval
    /// is wider and more honest about generalising to new tasks. Needs each instance's task; an instance without one is
    /// a task of its own.
    /// </summary>
    Task,
}

/// <summary>Settings of the bootstrap: replicates, seed, level and resampling unit.</summary>
public sealed record BootstrapOptions
{
    /// <summary>Replicates drawn per interval.</summary>
    public int Replicates { get; init; } = 2000;
    /// <summary>Seed of the generator; every interval starts from it, so a report is the same each time it is written.</summary>
    public ulong Seed { get; init; } = 20240501;
    /// <summary>Coverage of the percentile interval (0.95: the 2.5th and 97.5th percentiles of the replicates).</summary>
    public double Level { get; init; } = 0.95;
    /// <summary>What is resampled within a split.</summary>
    public BootstrapUnit Unit { get; init; } = BootstrapUnit.Instance;

    /// <summary>2000 replicates, 95 %, instance level.</summary>
    public static BootstrapOptions Default { get; } = new();
}

/// <summary>
/// One term <c>Weight × mean score</c> of a linear combination of settings' mean scores.
/// <paramref name="Runs"/> holds one instance id → score map per run (seed) of the setting.
/// Terms with the same <paramref name="Group"/> are the same runs (e.g. one setting's test and held-out scores) and are
/// resampled with the same run draws, so they must list the same number of runs in the same order. Terms with the same
/// <paramref name="Split"/> are scored on one instance set and share each replicate's instance draw (pairing).
/// </summary>
public sealed record BootstrapTerm(double Weight, string Group, string Split, IReadOnlyList<IReadOnlyDictionary<string, double>> Runs);

/// <summary>
/// Paired percentile bootstrap of mean scores over runs (seeds) × instances, as pure functions with their own seeded
/// generator (no shared state). Each replicate draws, for every split, the instances (or tasks) with replacement once
/// for all terms on that split, and for every group the runs with replacement, then evaluates the statistic; the
/// interval is the <see cref="BootstrapOptions.Level"/> percentile interval of the replicates. Instance ids are sorted
/// (ordinal) and splits and groups are drawn in sorted order, so the result does not depend on dictionary order.
/// </summary>
public static class Bootstrap
{
    /// <summary>Interval of one setting's mean score: instances drawn once per replicate for all runs, runs drawn with replacement.</summary>
    /// <returns>Null when the runs share no instance (or there are no runs).</returns>
    public static Interval? Mean(IReadOnlyList<IReadOnlyDictionary<string, double>> runs, BootstrapOptions? options = null,
        IReadOnlyDictionary<string, string>? taskOf = null) =>
        runs.Count == 0 ? null : Combine([new BootstrapTerm(1, "a", "s", runs)], 0, options, taskOf);

    /// <summary>
    /// Paired interval of <c>mean(A) − scaleB·mean(B) + shift</c> over the instances both settings evaluated: each
    /// replicate draws the common instances once (the same for A and B) and the runs of A and of B independently.
    /// With <paramref name="scaleB"/> = 0.95, the interval lying above 0 means "A ≥ 0.95 × B"; with
    /// <paramref name="shift"/> = 2, "A is at most 2 points below B".
    /// </summary>
    /// <returns>Null when a side has no runs or the two share no instance.</returns>
    public static Interval? Difference(IReadOnlyList<IReadOnlyDictionary<string, double>> a, IReadOnlyList<IReadOnlyDictionary<string, double>> b,
        double scaleB = 1, double shift = 0, BootstrapOptions? options = null, IReadOnlyDictionary<string, string>? taskOf = null) =>
        a.Count == 0 || b.Count == 0 ? null
            : Combine([new BootstrapTerm(1, "a", "s", a), new BootstrapTerm(-scaleB, "b", "s", b)], shift, options, taskOf);

    /// <summary>
    /// Interval of <c>constant + Σ weight · mean(term)</c>, where a term's mean is the mean over its runs of the mean over
    /// the instances that every term of its split evaluated. <paramref name="taskOf"/> (instance id → task) is used by
    /// <see cref="BootstrapUnit.Task"/>.
    /// </summary>
    /// <returns>Null when there is no term, a term has no run, or a split's terms share no instance.</returns>
    /// <exception cref="ArgumentException">Terms of one group list different numbers of runs.</exception>
    public static Interval? Combine(IReadOnlyList<BootstrapTerm> terms, double constant = 0, BootstrapOptions? options = null,
        IReadOnlyDictionary<string, string>? taskOf = null)
    {
        var o = options ?? BootstrapOptions.Default;
        if (terms.Count == 0 || terms.Any(t => t.Runs.Count == 0)) return null;
        var groups = terms.Select(t => t.Group).Distinct().Order(StringComparer.Ordinal).ToArray();
        var runCount = new int[groups.Length];
        for (int g = 0; g < groups.Length; g++)
        {
            var counts = terms.Where(t => t.Group == groups[g]).Select(t => t.Runs.Count).Distinct().ToArray();
            if (counts.Length > 1) throw new ArgumentException($"group '{groups[g]}': its terms list {string.Join(" and ", counts)} runs", nameof(terms));
            runCount[g] = counts[0];
        }
        var splits = terms.Select(t => t.Split).Distinct().Order(StringComparer.Ordinal).ToArray();
        var clusters = new int[splits.Length][][];
        var prepared = new (double Weight, int Group, int Split, double[][] X)[terms.Count];
        var ids = new string[splits.Length][];
        for (int s = 0; s < splits.Length; s++)
        {
            var onSplit = terms.Where(t => t.Split == splits[s]).ToArray();
            IEnumerable<string> common = onSplit[0].Runs[0].Keys;
            foreach (var run in onSplit.SelectMany(t => t.Runs)) common = common.Where(run.ContainsKey);
            ids[s] = common.Order(StringComparer.Ordinal).ToArray();
            if (ids[s].Length == 0) return null;
            clusters[s] = o.Unit == BootstrapUnit.Task
                ? ids[s].Select((id, i) => (Task: taskOf?.GetValueOrDefault(id) ?? "\0" + id, i)).GroupBy(x => x.Task, StringComparer.Ordinal)
                    .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Select(x => x.i).ToArray()).ToArray()
                : ids[s].Select((_, i) => new[] { i }).ToArray();
        }
        for (int k = 0; k < terms.Count; k++)
        {
            int s = Array.IndexOf(splits, terms[k].Split);
            prepared[k] = (terms[k].Weight, Array.IndexOf(groups, terms[k].Group), s,
                terms[k].Runs.Select(run => ids[s].Select(id => run[id]).ToArray()).ToArray());
        }

        var estimate = constant + prepared.Sum(t => t.Weight * t.X.Average(x => x.Average()));
        var rng = new Rng(o.Seed);
        var instanceCount = splits.Select((_, s) => new int[ids[s].Length]).ToArray();
        var instanceTotal = new int[splits.Length];
        var runDraw = runCount.Select(r => new int[r]).ToArray();
        var replicates = new double[o.Replicates];
        for (int b = 0; b < o.Replicates; b++)
        {
            for (int s = 0; s < splits.Length; s++)
            {
                Array.Clear(instanceCount[s]);
                int total = 0;
                for (int j = 0; j < clusters[s].Length; j++)
                    foreach (var i in clusters[s][rng.Below(clusters[s].Length)]) { instanceCount[s][i]++; total++; }
                instanceTotal[s] = total;
            }
            for (int g = 0; g < groups.Length; g++)
            {
                Array.Clear(runDraw[g]);
                for (int j = 0; j < runCount[g]; j++) runDraw[g][rng.Below(runCount[g])]++;
            }
            double value = constant;
            foreach (var (weight, g, s, x) in prepared)
            {
                double sum = 0;
                for (int r = 0; r < x.Length; r++)
                {
                    if (runDraw[g][r] == 0) continue;
                    double runSum = 0;
                    var row = x[r];
                    var count = instanceCount[s];
                    for (int i = 0; i < row.Length; i++) runSum += count[i] * row[i];
                    sum += runDraw[g][r] * runSum;
                }
                value += weight * sum / ((double)x.Length * instanceTotal[s]);
            }
            replicates[b] = value;
        }
        return Percentiles(estimate, replicates, o.Level);
    }

    /// <summary>
    /// Interval of a statistic of per-run numbers (e.g. steps to 80 % of the final score, or a seed spread) when there is
    /// no instance-level data: each replicate redraws every group's values with replacement (same group sizes).
    /// </summary>
    /// <returns>Null when a group is empty.</returns>
    public static Interval? OverRuns(IReadOnlyList<IReadOnlyList<double>> groups, Func<IReadOnlyList<double>[], double> statistic, BootstrapOptions? options = null)
    {
        var o = options ?? BootstrapOptions.Default;
        if (groups.Count == 0 || groups.Any(g => g.Count == 0)) return null;
        var estimate = statistic(groups.ToArray());
        var rng = new Rng(o.Seed);
        var draw = groups.Select(g => new double[g.Count]).ToArray();
        var replicates = new double[o.Replicates];
        for (int b = 0; b < o.Replicates; b++)
        {
            for (int g = 0; g < groups.Count; g++)
                for (int j = 0; j < draw[g].Length; j++) draw[g][j] = groups[g][rng.Below(groups[g].Count)];
            replicates[b] = statistic(draw);
        }
        return Percentiles(estimate, replicates, o.Level);
    }

    /// <summary>The percentile interval (linear interpolation between order statistics) around <paramref name="estimate"/>.</summary>
    private static Interval Percentiles(double estimate, double[] replicates, double level)
    {
        Array.Sort(replicates);
        double Quantile(double p)
        {
            double h = (replicates.Length - 1) * p;
            int lo = (int)Math.Floor(h);
            int hi = Math.Min(lo + 1, replicates.Length - 1);
            return replicates[lo] + (h - lo) * (replicates[hi] - replicates[lo]);
        }
        double tail = (1 - level) / 2;
        return new Interval(estimate, Quantile(tail), Quantile(1 - tail));
    }

    /// <summary>xoshiro256** seeded by SplitMix64: a small, fast generator owned by one computation.</summary>
    private struct Rng
    {
        private ulong _s0, _s1, _s2, _s3;

        public Rng(ulong seed)
        {
            ulong x = seed;
            _s0 = SplitMix(ref x);
            _s1 = SplitMix(ref x);
            _s2 = SplitMix(ref x);
            _s3 = SplitMix(ref x);
        }

        private static ulong SplitMix(ref ulong x)
        {
            ulong z = x += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        private ulong Next()
        {
            ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
            ulong t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = ulong.RotateLeft(_s3, 45);
            return result;
        }

        /// <summary>Uniform in [0, n): the high word of a 64 × 64-bit product (bias below n / 2^64).</summary>
        public int Below(int n) => (int)Math.BigMul(Next(), (ulong)n, out _);
    }
}
