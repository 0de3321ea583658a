namespace PeftLab.Studies.Report;

/// <summary>Whether a finding of the reference study holds on this study's results.</summary>
public enum Verdict
{
    /// <summary>The data support the finding.</summary>
    Holds,
    /// <summary>The data contradict at least one part of it.</summary>
    DoesNotHold,
    /// <summary>Some part cannot be tested and none is contradicted.</summary>
    NotEnoughData,
}

/// <summary>One finding check: its statement, verdict and the numbers behind the verdict.</summary>
public sealed record FindingResult(string Id, string Statement, Verdict Verdict, string Numbers)
{
    /// <summary>Verdict in words: "holds", "does not hold", "not enough data".</summary>
    public string VerdictText => Findings.Text(Verdict);
}

/// <summary>
/// The reference study's findings as pure functions of the rows. A finding is a conjunction of parts; each part holds,
/// does not hold, or lacks data, and they combine like three-valued logic: any contradicted part makes the finding not
/// hold, otherwise any untestable part makes it "not enough data". Comparisons use each method's best setting (highest
/// mean test ROUGE-L over seeds) in the comparison context (<see cref="StudyView"/>).
/// </summary>
public static class Findings
{
    private sealed record Part(Verdict Verdict, string Text);

    /// <summary>All checks in order (a)-(f).</summary>
    public static IReadOnlyList<FindingResult> CheckAll(IReadOnlyList<TrialRow> rows, FindingThresholds? t = null)
    {
        var v = new StudyView(rows, t);
        return [CloseToFull(v), BestSetting(v), Instability(v), TasksAndSpeed(v), Memorization(v), HardCategories(v)];
    }

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
        _ => "not enough data",
    };

    /// <summary>Three-valued AND: false wins, then unknown.</summary>
    public static Verdict And(IEnumerable<Verdict> parts)
    {
        var all = parts.ToArray();
        return all.Contains(Verdict.DoesNotHold) ? Verdict.DoesNotHold : all.Contains(Verdict.NotEnoughData) ? Verdict.NotEnoughData : Verdict.Holds;
    }

    /// <summary>Three-valued OR: true wins, then unknown.</summary>
    public static Verdict Or(IEnumerable<Verdict> parts)
    {
        var all = parts.ToArray();
        return all.Contains(Verdict.Holds) ? Verdict.Holds : all.Contains(Verdict.NotEnoughData) ? Verdict.NotEnoughData : Verdict.DoesNotHold;
    }

    private static readonly string[] PeftPair = ["lora", "adapter"];

    private static FindingResult CloseToFull(StudyView v)
    {
        const string statement = "LoRA and adapters get close to full finetuning at their best settings; the other methods do not.";
        var t = v.Thresholds;
        var rule = t.CloseToFullRatio is double r ? $"close = at least {Fmt.Share(r)} of full finetuning" : $"close = at most {Fmt.Num(t.CloseToFullPoints)} points below full finetuning";
        if (v.Best("full")?.Mean is not double full)
            return Finish("a", statement, [new Part(Verdict.NotEnoughData, "no scored full-finetuning run")], v, rule);
        bool Close(double score) => t.CloseToFullRatio is double ratio ? score >= ratio * full : full - score <= t.CloseToFullPoints;
        var parts = new List<Part> { new(Verdict.Holds, $"full {Fmt.Score(full)}") };
        foreach (var m in PeftPair)
            parts.Add(v.Best(m)?.Mean is double s
                ? new Part(Close(s) ? Verdict.Holds : Verdict.DoesNotHold, $"{m} {Fmt.Score(s)} (gap {Fmt.Score(full - s)}, {(Close(s) ? "close" : "not close")})")
                : new Part(Verdict.NotEnoughData, $"{m}: no scored run"));
        var others = v.Methods.Where(m => m != "full" && !PeftPair.Contains(m) && v.Best(m)?.Mean is not null).ToArray();
        if (others.Length == 0) parts.Add(new Part(Verdict.NotEnoughData, "no other method to contrast"));
        foreach (var m in others)
        {
            var s = v.Best(m)!.Mean!.Value;
            parts.Add(new Part(Close(s) ? Verdict.DoesNotHold : Verdict.Holds, $"{m} {Fmt.Score(s)} (gap {Fmt.Score(full - s)}, {(Close(s) ? "close" : "not close")})"));
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
            // Learning rate: the spread across rates at the best rank/size.
            var byLr = v.SettingsOf(m).Where(s => s.KnobLabel == best.KnobLabel && s.Mean is not null).OrderBy(s => s.Lr ?? 0).ToArray();
            if (byLr.Length < 2) parts.Add(new Part(Verdict.NotEnoughData, $"{m}: one learning rate"));
            else
            {
                var span = byLr.Max(s => s.Mean!.Value) - byLr.Min(s => s.Mean!.Value);
                parts.Add(new Part(span >= t.LrSensitivityPoints ? Verdict.Holds : Verdict.DoesNotHold,
                    $"{m} scores across lr span {Fmt.Score(span)} ({string.Join(", ", byLr.Select(s => $"{Fmt.Lr(s.Lr)}: {Fmt.Score(s.Mean)}"))}; needs ≥ {Fmt.Num(t.LrSensitivityPoints)})"));
            }
            // Rank/size: the largest is (about) the best at the best learning rate.
            var byCap = v.SettingsOf(m).Where(s => s.Lr == best.Lr && s.Capacity is not null).GroupBy(s => s.Capacity!.Value)
                .Select(g => (Cap: g.Key, Mean: StudyView.BestOf(g)?.Mean)).Where(x => x.Mean is not null).OrderBy(x => x.Cap).ToArray();
            if (byCap.Length < 2) parts.Add(new Part(Verdict.NotEnoughData, $"{m}: one rank/size"));
            else
            {
                var top = byCap.Max(x => x.Mean!.Value);
                var largest = byCap[^1];
                parts.Add(new Part(largest.Mean >= top - t.CapacityTolerancePoints ? Verdict.Holds : Verdict.DoesNotHold,
                    $"{m} largest size {largest.Cap}: {Fmt.Score(largest.Mean)} vs best size {byCap.First(x => x.Mean == top).Cap}: {Fmt.Score(top)}"));
            }
            // Tasks: the most training tasks beat the fewest.
            var byTasks = TaskCurve(v, m);
            if (byTasks.Length < 2) parts.Add(new Part(Verdict.NotEnoughData, $"{m}: one training-task count"));
            else
            {
                var gain = byTasks[^1].Score - byTasks[0].Score;
                parts.Add(new Part(gain >= t.TaskGainPoints ? Verdict.Holds : Verdict.DoesNotHold,
                    $"{m} {Fmt.Tasks(byTasks[0].Tasks)} → {Fmt.Tasks(byTasks[^1].Tasks)} tasks: {Fmt.Score(byTasks[0].Score)} → {Fmt.Score(byTasks[^1].Score)} (gain {Fmt.Score(gain)}, needs ≥ {Fmt.Num(t.TaskGainPoints)})"));
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
            int offRuns = off.Sum(s => s.Runs.Count), offBad = off.Sum(s => s.DivergedCount + s.SpikingCount(t.SpikeMinCount));
            double shareOff = offBad / (double)offRuns, shareBest = best.UnstableShare(t.SpikeMinCount) ?? 0;
            var share = shareOff >= t.InstabilityShare && shareOff > shareBest ? Verdict.Holds : Verdict.DoesNotHold;
            var stdOff = Stats.Mean(off.Select(s => s.Std).OfType<double>().ToArray());
            var spread = stdOff is double so && best.Std is double sb
                ? (so > t.SeedStdRatio * Math.Max(sb, FindingThresholds.SeedStdFloor) ? Verdict.Holds : Verdict.DoesNotHold)
                : Verdict.NotEnoughData;
            parts.Add(new Part(Or([share, spread]),
                $"{m}: unstable share off-best {Fmt.Share(shareOff)} ({offBad}/{offRuns}) vs best {Fmt.Share(shareBest)} (needs ≥ {Fmt.Share(t.InstabilityShare)}); " +
                $"seed std off-best {Fmt.Score(stdOff)} vs best {Fmt.Score(best.Std)} (needs > {Fmt.Num(t.SeedStdRatio)}×)"));
        }
        return Finish("c", statement, parts, v);
    }

    private static FindingResult TasksAndSpeed(StudyView v)
    {
        const string statement = "LoRA needs more tasks to generalise (its unseen-task score grows more with the task count than full finetuning's) and learns more slowly (more steps to 80% of its final score).";
        var parts = new List<Part>();
        var lora = TaskCurve(v, "lora");
        var full = TaskCurve(v, "full");
        var common = lora.Select(x => x.Tasks).Intersect(full.Select(x => x.Tasks)).OrderBy(StudyView.TaskOrder).ToArray();
        if (common.Length < 2) parts.Add(new Part(Verdict.NotEnoughData, "lora and full share fewer than two training-task counts"));
        else
        {
            double Growth((int? Tasks, double Score)[] c) => c.Single(x => x.Tasks == common[^1]).Score - c.Single(x => x.Tasks == common[0]).Score;
            var (gl, gf) = (Growth(lora), Growth(full));
            parts.Add(new Part(gl > gf ? Verdict.Holds : Verdict.DoesNotHold,
                $"{Fmt.Tasks(common[0])} → {Fmt.Tasks(common[^1])} tasks: lora gains {Fmt.Score(gl)}, full gains {Fmt.Score(gf)}"));
        }
        var (sl, sf) = (StepsTo80(v, "lora"), StepsTo80(v, "full"));
        parts.Add(sl is double l && sf is double f
            ? new Part(l > f ? Verdict.Holds : Verdict.DoesNotHold, $"steps to 80%: lora {Fmt.Num(l)}, full {Fmt.Num(f)}")
            : new Part(Verdict.NotEnoughData, $"steps to 80%: lora {Fmt.Num(sl)}, full {Fmt.Num(sf)} (needs both)"));
        return Finish("d", statement, parts, v);
    }

    private static FindingResult Memorization(StudyView v)
    {
        const string statement = "LoRA memorises less than full finetuning (a smaller gap between held-out seen-task and unseen-task scores).";
        var t = v.Thresholds;
        (double? Gap, string Text) Gap(string m)
        {
            if (v.Best(m) is not { } b) return (null, $"{m}: no scored run");
            var h = b.MeanOf(r => r.HeldoutRougeL);
            return (h - b.Mean, $"{m} held-out {Fmt.Score(h)} − test {Fmt.Score(b.Mean)} = {Fmt.Score(h - b.Mean)}");
        }
        var (lora, full) = (Gap("lora"), Gap("full"));
        var text = $"{lora.Text}; {full.Text}";
        var verdict = lora.Gap is double gl && full.Gap is double gf
            ? (gl < gf - t.MemorizationMarginPoints ? Verdict.Holds : Verdict.DoesNotHold)
            : Verdict.NotEnoughData;
        return Finish("e", statement, [new Part(verdict, text + $" (margin {Fmt.Num(t.MemorizationMarginPoints)})")], v);
    }

    private static FindingResult HardCategories(StudyView v)
    {
        const string statement = "On harder categories (reasoning, long-form generation) LoRA and adapters fall short of full finetuning, LoRA above adapters.";
        var t = v.Thresholds;
        var bests = new[] { "full", "lora", "adapter" }.ToDictionary(m => m, m => v.Best(m));
        if (bests["full"] is not { } full)
            return Finish("f", statement, [new Part(Verdict.NotEnoughData, "no scored full-finetuning run")], v);
        var present = bests.Where(kv => kv.Value is not null).Select(kv => kv.Value!).ToArray();
        var hard = present.SelectMany(s => s.Runs.SelectMany(r => r.TestCategories.Keys)).Distinct().Where(Analyses.IsHard)
            .Where(c => present.All(s => Analyses.CategoryScoreOf(s, c) is not null)).OrderBy(c => c, StringComparer.Ordinal).ToArray();
        if (hard.Length == 0)
            return Finish("f", statement, [new Part(Verdict.NotEnoughData, "no hard category (name containing " + string.Join("/", FindingThresholds.HardCategoryKeywords) + ") scored by full and the PEFT methods")], v);
        double? HardMean(string m) => bests[m] is { } s ? hard.Average(c => Analyses.CategoryScoreOf(s, c)!.Value) : null;
        var fullScore = HardMean("full")!.Value;
        var parts = new List<Part> { new(Verdict.Holds, $"hard categories: {string.Join(", ", hard)}; full {Fmt.Score(fullScore)}") };
        foreach (var m in PeftPair)
            parts.Add(HardMean(m) is double s
                ? new Part(fullScore - s >= t.HardCategoryGapPoints ? Verdict.Holds : Verdict.DoesNotHold, $"{m} {Fmt.Score(s)} (short by {Fmt.Score(fullScore - s)}, needs ≥ {Fmt.Num(t.HardCategoryGapPoints)})")
                : new Part(Verdict.NotEnoughData, $"{m}: no scored run"));
        if (HardMean("lora") is double l && HardMean("adapter") is double a)
            parts.Add(new Part(l > a ? Verdict.Holds : Verdict.DoesNotHold, $"lora {(l > a ? ">" : "≤")} adapter"));
        return Finish("f", statement, parts, v);
    }

    /// <summary>Best mean test score of a method per task count on the comparison model, fewest tasks first.</summary>
    private static (int? Tasks, double Score)[] TaskCurve(StudyView v, string method) =>
        v.TaskCounts.Select(tc => (Tasks: tc, Score: v.Best(method, v.MainModel, tc)?.Mean))
            .Where(x => x.Score is not null).Select(x => (x.Tasks, x.Score!.Value)).ToArray();

    /// <summary>Mean steps to 80% of the final validation score at the method's best setting (result.json, else from the curve).</summary>
    private static double? StepsTo80(StudyView v, string method)
    {
        if (v.Best(method) is not { } best) return null;
        if (best.MeanOf(r => r.StepsTo80) is double s) return s;
        var curve = Analyses.MeanCurve(best, p => p.ValRougeL);
        if (curve.Count == 0 || curve[^1].Value <= 0) return null;
        return curve.First(c => c.Value >= 0.8 * curve[^1].Value).Step;
    }

    private static FindingResult Finish(string id, string statement, IReadOnlyList<Part> parts, StudyView v, string? rule = null)
    {
        var numbers = $"[{v.MainContextLabel}] " + string.Join("; ", parts.Select(p => p.Text)) + (rule is null ? "" : $" ({rule})");
        return new FindingResult(id, statement, And(parts.Select(p => p.Verdict)), numbers);
    }
}
