using PeftLab.Peft;

namespace PeftLab.Studies.Report;

/// <summary>Whether a finding of the reference study holds on this study's results, decided from 95 % intervals.</summary>
public enum Verdict
{
    /// <summary>Every part's interval lies on the finding's side of its threshold.</summary>
    Holds,
    /// <summary>At least one part's interval lies entirely on the other side.</summary>
    DoesNotHold,
    /// <summary>No part is contradicted, but some part's interval straddles its threshold: the study cannot tell.</summary>
    Inconclusive,
    /// <summary>Some part cannot be tested (the study lacks the axis, the runs or the per-instance scores), none is contradicted or inconclusive.</summary>
    NotEnoughData,
}

/// <summary>One finding check: its statement, verdict and the numbers behind the verdict.</summary>
public sealed record FindingResult(string Id, string Statement, Verdict Verdict, string Numbers)
{
    /// <summary>Verdict in words: "holds", "does not hold", "inconclusive", "not enough data".</summary>
    public string VerdictText => Findings.Text(Verdict);
}

/// <summary>
/// The reference study's findings as pure functions of the rows. A finding is a conjunction of parts. Each numeric part
/// is a claim "statistic ≥ 0" (or "&gt; 0") about a difference, e.g. <c>lora − 0.95·full</c>, and is decided by the
/// statistic's 95 % bootstrap interval (<see cref="Decide"/>): entirely on the claim's side → holds, entirely on the other
/// side → does not hold, straddling → inconclusive, no interval → not enough data. Scores use the paired instance-level
/// bootstrap (<see cref="StudyView.Combine"/>); per-run numbers without instances (steps to 80 %, seed spread, unstable
/// share) use the bootstrap over runs, and need at least two seeds where a spread is involved. Parts combine by
/// <see cref="And"/>. Comparisons use each method's best setting (<see cref="StudyView.BestOf"/>) in the comparison
/// context; the untuned baseline is never one of the compared methods.
/// </summary>
public static class Findings
{
    private sealed record Part(Verdict Verdict, string Text);

    /// <summary>All checks in order (a)-(f).</summary>
    public static IReadOnlyList<FindingResult> CheckAll(IReadOnlyList<TrialRow> rows, FindingThresholds? t = null) => CheckAll(new StudyView(rows, t));

    /// <summary>All checks in order (a)-(f) on a view (its thresholds and bootstrap settings).</summary>
    public static IReadOnlyList<FindingResult> CheckAll(StudyView v) =>
        [CloseToFull(v), BestSetting(v), Instability(v), TasksAndSpeed(v), Memorization(v), HardCategories(v)];

    /// <summary>(a) LoRA and adapters get close to full finetuning at their best settings; other methods do not.</summary>
    public static FindingResult CloseToFull(IReadOnlyList<TrialRow> rows, FindingThresholds? t = null) => CloseToFull(new StudyView(rows, t));

    /// <summary>(b) The best setting needs the right learning rate, the largest rank/size and more training tasks.</summary>
    public static FindingResult BestSetting(IReadOnlyList<TrialRow> rows, FindingThresholds? t = null) => BestSetting(new StudyView(rows, t));

    /// <summary>(c) LoRA and adapters are unstable away from their best setting.</summary>
    public static FindingResult Instability(IReadOnlyList<TrialRow> rows, FindingThresholds? t = null) => Instability(new StudyView(rows, t));

    /// <summary>(d) LoRA needs more tasks to generalise and learns more slowly than full finetuning.</summary>
    public static FindingResult TasksAndSpeed(IReadOnlyList<TrialRow> rows, FindingThresholds? t = null) => TasksAndSpeed(new StudyView(rows, t));

    /// <summary>(e) LoRA memorises less than full finetuning.</summary>
    public static FindingResult Memorization(IReadOnlyList<TrialRow> rows, FindingThresholds? t = null) => Memorization(new StudyView(rows, t));

    /// <summary>(f) On harder categories LoRA and adapters fall short of full finetuning, LoRA above adapters.</summary>
    public static FindingResult HardCategories(IReadOnlyList<TrialRow> rows, FindingThresholds? t = null) => HardCategories(new StudyView(rows, t));

    /// <summary>Verdict in words.</summary>
    public static string Text(Verdict v) => v switch
    {
        Verdict.Holds => "holds",
        Verdict.DoesNotHold => "does not hold",
        Verdict.Inconclusive => "inconclusive",
        _ => "not enough data",
    };

    /// <summary>
    /// Four-valued AND: any part that does not hold decides; else any inconclusive part makes the whole inconclusive;
    /// else any untestable part makes it "not enough data"; else (also for no parts) it holds.
    /// </summary>
    public static Verdict And(IEnumerable<Verdict> parts)
    {
        var all = parts.ToArray();
        return all.Contains(Verdict.DoesNotHold) ? Verdict.DoesNotHold
            : all.Contains(Verdict.Inconclusive) ? Verdict.Inconclusive
            : all.Contains(Verdict.NotEnoughData) ? Verdict.NotEnoughData
            : Verdict.Holds;
    }

    /// <summary>
    /// Four-valued OR, the dual of <see cref="And"/>: any part that holds decides; else inconclusive, then "not enough
    /// data"; else (also for no parts) it does not hold.
    /// </summary>
    public static Verdict Or(IEnumerable<Verdict> parts)
    {
        var all = parts.ToArray();
        return all.Contains(Verdict.Holds) ? Verdict.Holds
            : all.Contains(Verdict.Inconclusive) ? Verdict.Inconclusive
            : all.Contains(Verdict.NotEnoughData) ? Verdict.NotEnoughData
            : Verdict.DoesNotHold;
    }

    /// <summary>NOT: holds and does not hold swap; inconclusive and "not enough data" stay.</summary>
    public static Verdict Not(Verdict v) => v switch { Verdict.Holds => Verdict.DoesNotHold, Verdict.DoesNotHold => Verdict.Holds, _ => v };

    /// <summary>
    /// The claim "statistic ≥ 0" (<paramref name="strict"/>: "&gt; 0") decided by the statistic's interval: holds when the
    /// interval lies entirely on the claim's side, does not hold when entirely on the other side, inconclusive when it
    /// straddles 0, not enough data when there is no interval.
    /// </summary>
    public static Verdict Decide(Interval? statistic, bool strict = false) => statistic switch
    {
        null => Verdict.NotEnoughData,
        _ when (strict ? statistic.Lower > 0 : statistic.Lower >= 0) => Verdict.Holds,
        _ when (strict ? statistic.Upper <= 0 : statistic.Upper < 0) => Verdict.DoesNotHold,
        _ => Verdict.Inconclusive,
    };

    // The reference study's claims are about these methods by name.
    private static readonly string FullName = PeftRegistry.NameOf(PeftMethodKind.Full);
    private static readonly string LoraName = PeftRegistry.NameOf(PeftMethodKind.Lora);
    private static readonly string AdapterName = PeftRegistry.NameOf(PeftMethodKind.Adapter);
    private static readonly string[] PeftPair = [LoraName, AdapterName];

    private const string NoInstances = "no per-instance scores (eval/test_predictions.jsonl) to compare";

    /// <summary>A claim part: "expression = difference [interval] → verdict".</summary>
    private static Part Claim(string prefix, string expression, Interval? statistic, Verdict verdict, string? word = null) =>
        statistic is null
            ? new Part(Verdict.NotEnoughData, $"{prefix}{(prefix.Length > 0 ? ": " : "")}{NoInstances}")
            : new Part(verdict, $"{prefix}{(prefix.Length > 0 ? "; " : "")}{expression} = {Fmt.Diff(statistic)} → {word ?? Text(verdict)}");

    /// <summary>A setting's name and mean with its interval, e.g. "lora 41.2 [38.0, 44.1]".</summary>
    private static string Mean(StudyView v, string name, Setting s) => $"{name} {Fmt.Ci(s.Mean, v.MeanCi(s))}";

    private static FindingResult CloseToFull(StudyView v)
    {
        const string statement = "LoRA and adapters get close to full finetuning at their best settings; the other methods do not.";
        var t = v.Thresholds;
        var (scale, shift, expression) = t.CloseToFullRatio is double r
            ? (r, 0.0, (Func<string, string>)(m => $"{m} − {Fmt.Num(r)}·{FullName}"))
            : (1.0, t.CloseToFullPoints, m => $"{m} − {FullName} + {Fmt.Num(t.CloseToFullPoints)}");
        var rule = $"close = the 95% interval of {expression("method")} lies at or above 0; not close = entirely below 0";
        if (v.Best(FullName) is not { } full)
            return Finish("a", statement, [new Part(Verdict.NotEnoughData, "no scored full-finetuning run")], v, rule);
        static string Word(Verdict close) => close switch { Verdict.Holds => "close", Verdict.DoesNotHold => "not close", _ => Text(close) };
        var parts = new List<Part>();
        foreach (var m in PeftPair)
        {
            if (v.Best(m) is not { } best) { parts.Add(new Part(Verdict.NotEnoughData, $"{m}: no scored run")); continue; }
            var d = v.DiffCi(best, full, scale, shift);
            parts.Add(Claim($"{Mean(v, m, best)} vs {Mean(v, FullName, full)}", expression(m), d, Decide(d), Word(Decide(d))));
        }
        var others = v.Methods.Where(m => m != FullName && !PeftPair.Contains(m) && v.Best(m) is not null).ToArray();
        if (others.Length == 0) parts.Add(new Part(Verdict.NotEnoughData, "no other method to contrast"));
        foreach (var m in others)
        {
            var best = v.Best(m)!;
            var d = v.DiffCi(best, full, scale, shift);
            parts.Add(Claim(Mean(v, m, best), expression(m), d, Not(Decide(d)), Word(Decide(d))));
        }
        return Finish("a", statement, parts, v, rule);
    }

    private static FindingResult BestSetting(StudyView v)
    {
        const string statement = "The best setting needs the right learning rate, the largest rank/size and diverse tasks (more tasks are better).";
        var t = v.Thresholds;
        var parts = new List<Part>();
        foreach (var m in PeftPair)
        {
            if (v.Best(m) is not { } best) { parts.Add(new Part(Verdict.NotEnoughData, $"{m}: no scored run")); continue; }
            // Learning rate: the best rate beats the worst by the threshold, at the best rank/size.
            var byLr = v.SettingsOf(m).Where(s => s.KnobLabel == best.KnobLabel && s.Mean is not null).OrderBy(s => s.Lr ?? 0).ToArray();
            if (byLr.Length < 2) parts.Add(new Part(Verdict.NotEnoughData, $"{m}: one learning rate"));
            else
            {
                var top = byLr.MaxBy(s => s.Mean)!;
                var bottom = byLr.MinBy(s => s.Mean)!;
                var d = v.DiffCi(top, bottom, 1, -t.LrSensitivityPoints);
                parts.Add(Claim($"{m} by lr: {string.Join(", ", byLr.Select(s => $"{Fmt.Lr(s.Lr)} {Fmt.Ci(s.Mean, v.MeanCi(s))}"))}",
                    $"lr {Fmt.Lr(top.Lr)} − lr {Fmt.Lr(bottom.Lr)} − {Fmt.Num(t.LrSensitivityPoints)}", d, Decide(d)));
            }
            // Rank/size: the largest is (about) the best at the best learning rate.
            var byCap = v.SettingsOf(m).Where(s => s.Lr == best.Lr && s.Capacity is not null).GroupBy(s => s.Capacity!.Value)
                .Select(g => (Cap: g.Key, Best: StudyView.BestOf(g))).Where(x => x.Best is not null).OrderBy(x => x.Cap).ToArray();
            if (byCap.Length < 2) parts.Add(new Part(Verdict.NotEnoughData, $"{m}: one rank/size"));
            else
            {
                var top = byCap.MaxBy(x => x.Best!.Mean);
                var largest = byCap[^1];
                var d = v.DiffCi(largest.Best!, top.Best!, 1, t.CapacityTolerancePoints);
                parts.Add(Claim($"{m} largest size {largest.Cap}: {Fmt.Ci(largest.Best!.Mean, v.MeanCi(largest.Best))} vs best size {top.Cap}: {Fmt.Ci(top.Best!.Mean, v.MeanCi(top.Best))}",
                    $"size {largest.Cap} − size {top.Cap} + {Fmt.Num(t.CapacityTolerancePoints)}", d, Decide(d)));
            }
            // Tasks: the most training tasks beat the fewest.
            var byTasks = TaskCurve(v, m);
            if (byTasks.Length < 2) parts.Add(new Part(Verdict.NotEnoughData, $"{m}: one training-task count"));
            else
            {
                var (few, many) = (byTasks[0], byTasks[^1]);
                var d = v.DiffCi(many.Best, few.Best, 1, -t.TaskGainPoints);
                parts.Add(Claim($"{m} {Fmt.Tasks(few.Tasks)} → {Fmt.Tasks(many.Tasks)} tasks: {Fmt.Ci(few.Best.Mean, v.MeanCi(few.Best))} → {Fmt.Ci(many.Best.Mean, v.MeanCi(many.Best))}",
                    $"{Fmt.Tasks(many.Tasks)} tasks − {Fmt.Tasks(few.Tasks)} tasks − {Fmt.Num(t.TaskGainPoints)}", d, Decide(d)));
            }
        }
        return Finish("b", statement, parts, v);
    }

    private static FindingResult Instability(StudyView v)
    {
        const string statement = "LoRA and adapters are unstable away from their best setting (more diverged or spiking runs, or a larger spread across seeds).";
        var t = v.Thresholds;
        var parts = new List<Part>();
        foreach (var m in PeftPair)
        {
            if (v.Best(m) is not { } best) { parts.Add(new Part(Verdict.NotEnoughData, $"{m}: no scored run")); continue; }
            var off = v.SettingsOf(m).Where(s => !ReferenceEquals(s, best)).ToArray();
            if (off.Length == 0) { parts.Add(new Part(Verdict.NotEnoughData, $"{m}: only one setting")); continue; }
            // Share of unstable runs: a 0/1 per run, bootstrapped over runs on each side.
            double Unstable(TrialRow r) => r.Diverged || r.SpikeCount >= t.SpikeMinCount ? 1 : 0;
            var offRuns = off.SelectMany(s => s.Runs).Select(Unstable).ToArray();
            var bestRuns = best.Runs.Select(Unstable).ToArray();
            var reach = Bootstrap.OverRuns([offRuns], g => g[0].Average() - t.InstabilityShare, v.Bootstrap);
            var above = Bootstrap.OverRuns([offRuns, bestRuns], g => g[0].Average() - g[1].Average(), v.Bootstrap);
            var share = And([Decide(reach), Decide(above, strict: true)]);
            var shareText = $"{m}: unstable share off-best {Fmt.Share(offRuns.Average())} ({(int)offRuns.Sum()}/{offRuns.Length}) vs best {Fmt.Share(bestRuns.Average())}; " +
                $"off-best − {Fmt.Num(t.InstabilityShare)} = {Fmt.Diff(Scale(reach, 100))} pp, off-best − best = {Fmt.Diff(Scale(above, 100))} pp → {Text(share)}";
            // Seed spread: needs at least two scored seeds in the best setting and in an off-best one.
            var offSeeds = off.Where(s => s.SeedCount >= 2).Select(s => s.Scores).ToArray();
            Part spread;
            if (best.SeedCount < 2 || offSeeds.Length == 0)
                spread = new Part(Verdict.NotEnoughData, $"seed spread: needs ≥ 2 scored seeds in the best setting ({best.SeedCount}) and in an off-best one ({offSeeds.Length} such settings)");
            else
            {
                double Statistic(IReadOnlyList<double>[] g) =>
                    g.Skip(1).Average(s => Stats.Std(s) ?? 0) - t.SeedStdRatio * Math.Max(Stats.Std(g[0]) ?? 0, FindingThresholds.SeedStdFloor);
                var d = Bootstrap.OverRuns([best.Scores, .. offSeeds], Statistic, v.Bootstrap);
                var verdict = Decide(d, strict: true);
                spread = new Part(verdict, $"seed std off-best {Fmt.Score(Stats.Mean(offSeeds.Select(s => Stats.Std(s)!.Value).ToArray()))} vs best {Fmt.Score(best.Std)}; " +
                    $"off-best − {Fmt.Num(t.SeedStdRatio)}×best = {Fmt.Diff(d)} (bootstrap over seeds) → {Text(verdict)}");
            }
            parts.Add(new Part(Or([share, spread.Verdict]), $"{shareText}; {spread.Text}"));
        }
        return Finish("c", statement, parts, v);
    }

    private static FindingResult TasksAndSpeed(StudyView v)
    {
        const string statement = "LoRA needs more tasks to generalise (its unseen-task score grows more with the task count than full finetuning's) and learns more slowly (more steps to 80% of its final score).";
        var parts = new List<Part>();
        var lora = TaskCurve(v, LoraName);
        var full = TaskCurve(v, FullName);
        var common = lora.Select(x => x.Tasks).Intersect(full.Select(x => x.Tasks)).OrderBy(StudyView.TaskOrder).ToArray();
        if (common.Length < 2) parts.Add(new Part(Verdict.NotEnoughData, $"{LoraName} and {FullName} share fewer than two training-task counts"));
        else
        {
            Setting At((int? Tasks, Setting Best)[] c, int? tasks) => c.Single(x => x.Tasks == tasks).Best;
            var (lf, ll, ff, fl) = (At(lora, common[0]), At(lora, common[^1]), At(full, common[0]), At(full, common[^1]));
            var d = v.Combine([new SettingTerm(1, ll), new SettingTerm(-1, lf), new SettingTerm(-1, fl), new SettingTerm(1, ff)]);
            parts.Add(Claim($"{Fmt.Tasks(common[0])} → {Fmt.Tasks(common[^1])} tasks: {LoraName} gains {Fmt.Score(ll.Mean - lf.Mean)} ({Fmt.Ci(lf.Mean, v.MeanCi(lf))} → {Fmt.Ci(ll.Mean, v.MeanCi(ll))}), " +
                $"{FullName} gains {Fmt.Score(fl.Mean - ff.Mean)} ({Fmt.Ci(ff.Mean, v.MeanCi(ff))} → {Fmt.Ci(fl.Mean, v.MeanCi(fl))})", $"{LoraName} gain − {FullName} gain", d, Decide(d, strict: true)));
        }
        var (sl, sf) = (StepsTo80(v, LoraName), StepsTo80(v, FullName));
        if (sl.Length < 2 || sf.Length < 2)
            parts.Add(new Part(Verdict.NotEnoughData, $"steps to 80%: {LoraName} {Fmt.Num(Stats.Mean(sl))} over {sl.Length} seed(s), {FullName} {Fmt.Num(Stats.Mean(sf))} over {sf.Length} seed(s) (needs ≥ 2 seeds each for an interval)"));
        else
        {
            var d = Bootstrap.OverRuns([sl, sf], g => g[0].Average() - g[1].Average(), v.Bootstrap);
            var verdict = Decide(d, strict: true);
            parts.Add(new Part(verdict, $"steps to 80%: {LoraName} {Fmt.Num(sl.Average())}, {FullName} {Fmt.Num(sf.Average())}; {LoraName} − {FullName} = {Fmt.Diff(d)} steps (bootstrap over seeds) → {Text(verdict)}"));
        }
        return Finish("d", statement, parts, v);
    }

    private static FindingResult Memorization(StudyView v)
    {
        const string statement = "LoRA memorises less than full finetuning (a smaller gap between held-out seen-task and unseen-task scores).";
        var t = v.Thresholds;
        var (lora, full) = (v.Best(LoraName), v.Best(FullName));
        string Gap(string m, Setting? s) => s is null ? $"{m}: no scored run"
            : $"{m} held-out {Fmt.Ci(s.MeanOf(r => r.HeldoutRougeL), v.MeanCi(s, EvalSplit.Heldout))} − test {Fmt.Ci(s.Mean, v.MeanCi(s))} = " +
              $"{Fmt.Diff(v.Combine([new SettingTerm(1, s, EvalSplit.Heldout), new SettingTerm(-1, s)]))}";
        var text = $"{Gap(LoraName, lora)}; {Gap(FullName, full)}";
        if (lora is null || full is null) return Finish("e", statement, [new Part(Verdict.NotEnoughData, text)], v);
        var d = v.Combine([new SettingTerm(1, full, EvalSplit.Heldout), new SettingTerm(-1, full), new SettingTerm(-1, lora, EvalSplit.Heldout), new SettingTerm(1, lora)],
            -t.MemorizationMarginPoints);
        var part = d is null
            ? new Part(Verdict.NotEnoughData, text + "; no per-instance held-out and test scores of both (eval/heldout_predictions.jsonl)")
            : new Part(Decide(d, strict: true), $"{text}; {FullName} gap − {LoraName} gap − {Fmt.Num(t.MemorizationMarginPoints)} = {Fmt.Diff(d)} → {Text(Decide(d, strict: true))}");
        return Finish("e", statement, [part], v);
    }

    private static FindingResult HardCategories(StudyView v)
    {
        const string statement = "On harder categories (reasoning, coding, long-form generation) LoRA and adapters fall short of full finetuning, LoRA above adapters.";
        var t = v.Thresholds;
        var bests = new[] { FullName, LoraName, AdapterName }.ToDictionary(m => m, m => v.Best(m));
        if (bests[FullName] is not { } full)
            return Finish("f", statement, [new Part(Verdict.NotEnoughData, "no scored full-finetuning run")], v);
        var present = bests.Where(kv => kv.Value is not null).Select(kv => kv.Value!).ToArray();

        // The hard score: the mean over hard groups (open-instruction benchmarks, when the study has them) or hard
        // SuperNI categories of each one's mean, as one linear combination of per-instance terms.
        Func<Setting, double, IEnumerable<SettingTerm>> terms;
        string what;
        var groups = FindingThresholds.HardGroups.Select(g => (Group: g, Tasks: present.Select(s => Analyses.OpenBenchmarksOf(s).Where(b => b.Group == g).Select(b => b.Task))
            .Aggregate((a, b) => a.Intersect(b)).Order(StringComparer.Ordinal).ToArray())).Where(x => x.Tasks.Length > 0).ToArray();
        if (groups.Length > 0)
        {
            terms = (s, sign) => groups.SelectMany(g => Analyses.OpenTerms(s, sign / groups.Length, g.Tasks));
            what = "hard capability groups (open-instruction benchmarks): " + string.Join(", ", groups.Select(g => $"{Configuration.ConfigEnums.Name(g.Group)} ({string.Join(", ", g.Tasks)})"));
        }
        else
        {
            var hard = present.SelectMany(s => s.Runs.SelectMany(r => r.TestCategories.Keys)).Distinct().Where(Analyses.IsHard)
                .Where(c => present.All(s => Analyses.CategoryScoreOf(s, c) is not null)).OrderBy(c => c, StringComparer.Ordinal).ToArray();
            if (hard.Length == 0)
                return Finish("f", statement, [new Part(Verdict.NotEnoughData, "no open-instruction benchmark in a hard group (" + string.Join("/", FindingThresholds.HardGroups.Select(g => Configuration.ConfigEnums.Name(g))) +
                    ") and no hard category (name containing " + string.Join("/", FindingThresholds.HardCategoryKeywords) + $") scored by {FullName} and the PEFT methods")], v);
            terms = (s, sign) => hard.Select(c => new SettingTerm(sign / hard.Length, s, EvalSplit.Test, c));
            what = "hard categories: " + string.Join(", ", hard);
        }
        string HardMean(string m) => v.Combine(terms(bests[m]!, 1).ToArray()) is { } ci ? $"{m} {Fmt.Ci(ci.Estimate, ci)}" : $"{m}: {NoInstances}";
        var parts = new List<Part> { new(Verdict.Holds, $"{what}; {HardMean(FullName)}") };
        // a floor: when full finetuning adds (about) nothing over the untuned base there (or, without a baseline, scores
        // about nothing), the hard benchmarks are beyond the model: no shortfall can show, so nothing is decided
        var baseline = v.Baseline();
        var gain = baseline is null ? null : v.Combine([.. terms(full, 1), .. terms(baseline, -1)]);
        var floor = gain is not null ? (gain.Upper <= t.FloorPoints ? $"{FullName} − untuned on the hard score = {Fmt.Diff(gain)}, at most {Fmt.Num(t.FloorPoints)} points" : null)
            : v.Combine(terms(full, 1).ToArray()) is { } fullHard && fullHard.Upper <= t.FloorPoints ? $"{FullName}'s hard score is at most {Fmt.Num(t.FloorPoints)} points (upper end {Fmt.Num(fullHard.Upper)})" : null;
        if (floor is not null)
        {
            parts.AddRange(PeftPair.Where(m => bests[m] is not null).Select(m => new Part(Verdict.Holds, HardMean(m))));
            parts.Add(new Part(Verdict.Inconclusive, $"floor: {floor}, so tuning reaches nothing these benchmarks measure and a shortfall cannot show; no comparison is decided (floor_points)"));
            return Finish("f", statement, parts, v);
        }
        foreach (var m in PeftPair)
        {
            if (bests[m] is not { } s) { parts.Add(new Part(Verdict.NotEnoughData, $"{m}: no scored run")); continue; }
            var d = v.Combine([.. terms(full, 1), .. terms(s, -1)], -t.HardCategoryGapPoints);
            parts.Add(Claim(HardMean(m), $"{FullName} − {m} − {Fmt.Num(t.HardCategoryGapPoints)}", d, Decide(d)));
        }
        if (bests[LoraName] is { } lora && bests[AdapterName] is { } adapter)
        {
            var d = v.Combine([.. terms(lora, 1), .. terms(adapter, -1)]);
            parts.Add(Claim("", $"{LoraName} − {AdapterName}", d, Decide(d, strict: true)));
        }
        return Finish("f", statement, parts, v);
    }

    /// <summary>Best setting of a method per task count on the comparison model, fewest tasks first.</summary>
    private static (int? Tasks, Setting Best)[] TaskCurve(StudyView v, string method) =>
        v.TaskCounts.Select(tc => (Tasks: tc, Best: v.Best(method, v.MainModel, tc)))
            .Where(x => x.Best is not null).Select(x => (x.Tasks, x.Best!)).ToArray();

    /// <summary>Steps to 80% of the final validation score per scored run of the method's best setting (result.json, else the run's curve).</summary>
    private static double[] StepsTo80(StudyView v, string method)
    {
        if (v.Best(method) is not { } best) return [];
        static double? FromCurve(TrialRow r)
        {
            var curve = r.EvalCurve.Where(p => p.ValRougeL is not null).ToArray();
            if (curve.Length == 0 || curve[^1].ValRougeL <= 0) return null;
            return curve.First(p => p.ValRougeL >= 0.8 * curve[^1].ValRougeL).Step;
        }
        return best.Runs.Where(r => r.Scored).Select(r => r.StepsTo80 ?? FromCurve(r)).OfType<double>().ToArray();
    }

    private static Interval? Scale(Interval? i, double k) => i is null ? null : new Interval(i.Estimate * k, i.Lower * k, i.Upper * k);

    private static FindingResult Finish(string id, string statement, IReadOnlyList<Part> parts, StudyView v, string? rule = null)
    {
        var numbers = $"[{v.MainContextLabel}] " + string.Join("; ", parts.Select(p => p.Text)) + (rule is null ? "" : $" ({rule})");
        return new FindingResult(id, statement, And(parts.Select(p => p.Verdict)), numbers);
    }
}
