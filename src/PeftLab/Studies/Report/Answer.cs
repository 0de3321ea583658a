using PeftLab.Peft;

namespace PeftLab.Studies.Report;

/// <summary>
/// The opening of a report: the answer a practitioner came for, each sentence already worded.
/// </summary>
/// <param name="Recommended">The recommended method's best setting, or null when no tuning method scored.</param>
/// <param name="Recommendation">The recommended method and setting with its score, interval, seeds, trainable parameters and gain over the baseline.</param>
/// <param name="Rule">How the recommendation was chosen, with the candidates.</param>
/// <param name="Baseline">The untuned baseline's score with its interval, or why there is none.</param>
/// <param name="Resolution">Median half-width of the method-vs-full-finetuning difference intervals, in ROUGE-L points; null when there is none.</param>
/// <param name="ResolutionText">The resolution in words ("differences smaller than ±X points cannot be told apart"), or why it is unknown.</param>
/// <param name="BestSettings">Each method's best setting (the baseline first): seeds, validation and test score, gain over the baseline and difference to full finetuning.</param>
public sealed record ReportAnswer(Setting? Recommended, string Recommendation, string Rule, string Baseline, double? Resolution, string ResolutionText, ReportTable BestSettings);

/// <summary>The report's answer as a pure function of a <see cref="StudyView"/>.</summary>
public static class Answer
{
    /// <summary>
    /// Recommends, among the tuning methods whose best mean test ROUGE-L is within
    /// <see cref="FindingThresholds.AnswerTolerancePoints"/> of the top-scoring method's and whose 95 % interval overlaps
    /// the top method's interval (the interval condition is dropped when either has no interval), the one with the
    /// highest test ROUGE-L per trainable parameter (methods that report no parameter count rank last, by score). The
    /// resolution is the median half-width of the paired intervals of each method's best minus full finetuning's best.
    /// </summary>
    public static ReportAnswer Of(StudyView v)
    {
        var tolerance = v.Thresholds.AnswerTolerancePoints;
        var bests = v.Methods.Select(v.Best).OfType<Setting>().ToArray();
        var top = bests.MaxBy(s => Shown(v, s));
        var candidates = top is null ? [] : bests.Where(s => Shown(v, s) >= Shown(v, top) - tolerance && Overlap(v.MeanCi(s), v.MeanCi(top))).ToArray();
        var recommended = candidates.OrderByDescending(s => Trainable(s) is double p && p > 0 ? Shown(v, s) / p : double.NegativeInfinity)
            .ThenByDescending(s => Shown(v, s)).FirstOrDefault();
        var rule = top is null
            ? "No tuning method has a scored run yet."
            : $"Rule: among the methods whose best mean {v.HeadlineLabel} is within {Fmt.Num(tolerance)} {v.HeadlineUnit} of the top-scoring method " +
              $"({top.Method}, {Fmt.Ci(top.Mean, v.MeanCi(top))}) and whose 95% interval overlaps its interval, the one with the highest score per trainable parameter " +
              $"(finding_thresholds.answer_tolerance_points sets the tolerance). Candidates: {string.Join(", ", candidates.Select(s => s.Method))}.";

        var baseline = v.Baseline();
        var baselineText = baseline is null
            ? "No untuned baseline in this study (a study with baseline: true evaluates the base model without training)."
            : $"Untuned baseline (the base model with zero training steps, same prompts and decoding): {Fmt.Ci(baseline.Mean, v.MeanCi(baseline))} {v.HeadlineLabel}. {DoesTuningHelp(v, bests)}";

        var full = v.Best(PeftRegistry.NameOf(PeftMethodKind.Full));
        var halfWidths = full is null ? [] : bests.Where(s => !ReferenceEquals(s, full)).Select(s => v.DiffCi(s, full)?.HalfWidth).OfType<double>().Order().ToArray();
        double? resolution = halfWidths.Length == 0 ? null
            : halfWidths.Length % 2 == 1 ? halfWidths[halfWidths.Length / 2] : (halfWidths[halfWidths.Length / 2 - 1] + halfWidths[halfWidths.Length / 2]) / 2;
        var resolutionText = resolution is double res
            ? $"Resolution: ±{Fmt.One(res)} {v.HeadlineUnit} — differences smaller than ±{Fmt.One(res)} points cannot be told apart by this study " +
              $"(median half-width of the 95% intervals of each method's difference to full finetuning, over {halfWidths.Length} method(s))."
            : "Resolution: unknown — it needs per-instance test scores of full finetuning and at least one other method.";

        return new ReportAnswer(recommended, Recommendation(v, recommended), rule, baselineText, resolution, resolutionText, BestTable(v, full));
    }

    /// <summary>
    /// Whether tuning beats the untuned base, from each method's gain interval: helps when some method's interval lies
    /// above 0, does not help when every method's lies below 0, else inconclusive.
    /// </summary>
    internal static string DoesTuningHelp(StudyView v, IReadOnlyList<Setting> bests)
    {
        var gains = bests.Where(s => !s.IsBaseline).Select(s => (s.Method, Gain: v.GainCi(s))).Where(x => x.Gain is not null).ToArray();
        if (gains.Length == 0) return "Whether tuning helps: unknown (no method has per-instance scores paired with the baseline's).";
        var above = gains.Where(x => x.Gain!.Lower > 0).ToArray();
        if (above.Length > 0) return $"Tuning helps: {above.Length} of {gains.Length} method(s) beat the untuned base with 95% confidence ({List(above)}).";
        if (gains.All(x => x.Gain!.Upper < 0)) return $"Tuning does not help here: every method's best setting scores below the untuned base, each interval entirely below 0 ({List(gains)}).{WhyNot(v, bests)}";
        return $"Inconclusive whether tuning helps: no method beats the untuned base with 95% confidence ({List(gains)}).{WhyNot(v, bests)}";
    }

    /// <summary>
    /// Why no method beats the base on unseen tasks, from the seen tasks' held-out instances: if tuning raises those
    /// (some method's held-out gain interval above 0), the model learned its training tasks and what it learned does not
    /// transfer; if not even those rise, it did not learn the training tasks at all. Empty without held-out scores.
    /// </summary>
    private static string WhyNot(StudyView v, IReadOnlyList<Setting> bests)
    {
        if (v.OpenHeadline) return "";
        var learned = bests.Where(s => !s.IsBaseline).Select(s => (s.Method, Gain: v.Baseline(s.Model, s.TaskCount) is { } b
                ? v.Combine([new SettingTerm(1, s, EvalSplit.Heldout), new SettingTerm(-1, b, EvalSplit.Heldout)]) : null))
            .Where(x => x.Gain is not null).ToArray();
        if (learned.Length == 0) return "";
        var up = learned.Where(x => x.Gain!.Lower > 0).ToArray();
        return up.Length > 0
            ? $" Why: tuning does raise the training tasks' held-out instances over the untuned base ({List(up)}), so the model learns its " +
              "training tasks but what it learns does not carry over to the unseen ones; more and more varied training tasks, or a larger base, are what to change."
            : $" Why: tuning does not raise even the training tasks' held-out instances over the untuned base with 95% confidence ({List(learned)}): " +
              "the model does not learn the training tasks themselves, so no transfer to unseen tasks can show; the base is too small or too far from these tasks.";
    }

    /// <summary>"method ±gain [interval], ..." for the answer's sentences.</summary>
    private static string List(IEnumerable<(string Method, Interval? Gain)> xs) => string.Join(", ", xs.Select(x => $"{x.Method} {Fmt.Diff(x.Gain)}"));

    private static string Recommendation(StudyView v, Setting? s)
    {
        if (s is null) return "Recommended: none yet (no tuning method has a scored run).";
        var trainable = Trainable(s);
        var total = s.MeanOf(r => r.TotalParams);
        var share = Fmt.Percent(trainable, total) is var p && p != "–" ? $" ({p} of all)" : "";
        var gain = v.GainCi(s) is { } g ? $", {Fmt.Diff(g)} over the untuned base model" : "";
        return $"Recommended: {s.Method} ({s.Label}) — {v.HeadlineLabel} {Fmt.Ci(s.Mean, v.MeanCi(s))} over {s.SeedCount} seed(s), " +
               $"{(trainable is null ? "trainable parameters not reported" : $"{Fmt.Count(trainable)} trainable parameters{share}")}{gain}.";
    }

    private static ReportTable BestTable(StudyView v, Setting? full)
    {
        var rows = v.TableMethods.Select(v.Best).OfType<Setting>().Select(s => (IReadOnlyList<string>)
        [
            s.Method, s.Label, Fmt.Int(s.SeedCount), Fmt.Score(s.ValidationMean), Fmt.Ci(s.Mean, v.MeanCi(s)),
            s.IsBaseline ? "(baseline)" : Fmt.Diff(v.GainCi(s)),
            full is null || ReferenceEquals(s, full) ? "–" : Fmt.Diff(v.DiffCi(s, full)),
            s.IsBaseline ? "0" : Fmt.Count(Trainable(s)),
        ]).ToArray();
        return new ReportTable($"Best setting per method ({v.MainContextLabel}; most seeds, then highest validation score)",
            ["method", "best setting", "seeds", "validation (best_score)", "mean test [95% CI]", "gain over untuned [95% CI]", "vs full [95% CI]", "trainable params"], rows);
    }

    private static double? Trainable(Setting s) => s.MeanOf(r => r.TrainableParams);

    private static double Shown(StudyView v, Setting s) => v.Shown(s) ?? double.NegativeInfinity;

    private static bool Overlap(Interval? a, Interval? b) => a is null || b is null || (a.Lower <= b.Upper && b.Lower <= a.Upper);
}
