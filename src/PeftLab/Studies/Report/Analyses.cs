using PeftLab.Peft;
using PeftLab.Training;

namespace PeftLab.Studies.Report;

/// <summary>
/// The reference study's analyses, each a pure function of a <see cref="StudyView"/> giving tables and plot specs.
/// Comparisons across methods use the comparison context (<see cref="StudyView.MainContextLabel"/>) and each method's
/// best setting there; every mean carries its 95 % interval, every table a row for the untuned baseline and every
/// setting its gain over it; an analysis without enough data still appears, saying why.
/// </summary>
public static class Analyses
{
    /// <summary>Analysis ids in report order.</summary>
    public static readonly IReadOnlyList<string> Ids =
        ["lr_sensitivity", "capacity", "cost", "model_scaling", "task_scaling", "memorization", "learning_speed", "stability", "categories", "open_instruction"];

    private const string Score = "test ROUGE-L (unseen tasks)";

    /// <summary>Runs one analysis by id.</summary>
    /// <exception cref="ArgumentException">Unknown id.</exception>
    public static AnalysisResult Run(string id, StudyView v) => id switch
    {
        "lr_sensitivity" => LrSensitivity(v),
        "capacity" => Capacity(v),
        "cost" => Cost(v),
        "model_scaling" => ModelScaling(v),
        "task_scaling" => TaskScaling(v),
        "memorization" => Memorization(v),
        "learning_speed" => LearningSpeed(v),
        "stability" => Stability(v),
        "categories" => Categories(v),
        "open_instruction" => OpenInstruction(v),
        _ => throw new ArgumentException($"unknown analysis '{id}'; known: {string.Join(", ", Ids)}", nameof(id)),
    };

    /// <summary>Test score against learning rate, one line per method (best rank/size at each learning rate); the baseline as a line.</summary>
    public static AnalysisResult LrSensitivity(StudyView v)
    {
        var rows = new List<IReadOnlyList<string>>();
        var series = new List<PlotSeries>();
        foreach (var m in v.Methods)
        {
            var points = new List<PlotPoint>();
            foreach (var g in v.SettingsOf(m).GroupBy(s => s.Lr).OrderBy(g => g.Key ?? 0))
            {
                var best = StudyView.BestOf(g);
                rows.Add([m, Fmt.Lr(g.Key), best?.KnobLabel ?? "–", Seeds(best), MeanCell(v, best), GainCell(v, best), Fmt.Score(best?.Std),
                    Fmt.Int(g.Sum(s => s.Runs.Count)), Fmt.Int(g.Sum(s => s.DivergedCount))]);
                if (best is not null && g.Key is double x && x > 0) points.Add(Point(v, x, best));
            }
            if (points.Count > 0) series.Add(new(m, m, points));
        }
        var enough = series.Any(s => s.Points.Count >= 2);
        var why = enough ? null : "needs at least two learning rates with finished runs for one method";
        if (v.Baseline() is { } b) rows.Insert(0, [b.Method, "–", "–", Seeds(b), MeanCell(v, b), GainCell(v, b), Fmt.Score(b.Std), Fmt.Int(b.Runs.Count), Fmt.Int(b.DivergedCount)]);
        return Result("lr_sensitivity", "Learning-rate sensitivity",
            $"Mean {Score} over seeds at each learning rate, taking the best rank/size at that rate; {v.MainContextLabel}. {Intervals}",
            why,
            [new ReportTable("Score by learning rate", ["method", "lr", "best rank/size", "seeds", MeanColumn, GainColumn, "std", "runs", "diverged"], rows)],
            [new PlotSpec { Name = "lr_sensitivity", Title = "Learning-rate sensitivity", XLabel = "learning rate", YLabel = Score, XScale = AxisScale.Log10, Series = series, Lines = BaselineLines(v) }]);
    }

    /// <summary>What reports call the methods' size knobs: "LoRA rank, adapter bottleneck, virtual tokens" (each label once, registry order).</summary>
    private static readonly string KnobLabels = string.Join(", ", PeftRegistry.CapacityKnobs.Select(k => k.Knob.Label).Distinct());

    /// <summary>Test score against each method's size knob (LoRA rank, adapter size, virtual tokens, ...), one line per method and learning rate; the baseline as a line.</summary>
    public static AnalysisResult Capacity(StudyView v)
    {
        var rows = new List<IReadOnlyList<string>>();
        var series = new List<PlotSeries>();
        foreach (var m in v.Methods.Where(ReportData.CapacityKnobs.ContainsKey))
        {
            foreach (var byLr in v.SettingsOf(m).Where(s => s.Capacity is not null).GroupBy(s => s.Lr).OrderBy(g => g.Key ?? 0))
            {
                var points = new List<PlotPoint>();
                foreach (var g in byLr.GroupBy(s => s.Capacity!.Value).OrderBy(g => g.Key))
                {
                    var best = StudyView.BestOf(g) ?? g.First();
                    rows.Add([m, Fmt.Lr(byLr.Key), best.CapacityAxis ?? "–", Fmt.Int(g.Key), Seeds(best), MeanCell(v, best), GainCell(v, best), Fmt.Score(best.Std), Fmt.Int(g.Sum(s => s.Runs.Count))]);
                    if (best.Mean is not null && g.Key > 0) points.Add(Point(v, g.Key, best));
                }
                if (points.Count > 0) series.Add(new($"{m} lr {Fmt.Lr(byLr.Key)}", m, points));
            }
        }
        var enough = series.Any(s => s.Points.Count >= 2);
        var why = enough ? null
            : rows.Count == 0 ? $"no finished run of a method with a rank/size axis ({string.Join(", ", StudyAxisNames.KnobAxes)})"
            : "needs at least two ranks/sizes at one learning rate";
        if (v.Baseline() is { } b) rows.Insert(0, [b.Method, "–", "–", "–", Seeds(b), MeanCell(v, b), GainCell(v, b), Fmt.Score(b.Std), Fmt.Int(b.Runs.Count)]);
        return Result("capacity", "Rank / adapter size",
            $"Mean {Score} against the method's size knob ({KnobLabels}), one line per learning rate; {v.MainContextLabel}. {Intervals}",
            why,
            [new ReportTable("Score by rank/size", ["method", "lr", "knob", "size", "seeds", MeanColumn, GainColumn, "std", "runs"], rows)],
            [new PlotSpec { Name = "capacity", Title = "Score vs LoRA rank / adapter size", XLabel = "rank / size", YLabel = Score, XScale = AxisScale.Log10, Series = series, Lines = BaselineLines(v) }]);
    }

    /// <summary>Trainable parameters against test score at each method's best setting, with the other costs; the baseline (nothing trained) as a line.</summary>
    public static AnalysisResult Cost(StudyView v)
    {
        var rows = new List<IReadOnlyList<string>>();
        var series = new List<PlotSeries>();
        if (v.Baseline() is { } b)
            rows.Add([b.Method, b.Label, Seeds(b), "0", "0%", MeanCell(v, b), GainCell(v, b), "–", "–", "–"]);
        foreach (var m in v.Methods)
        {
            if (v.Best(m) is not { } best) continue;
            var trainable = best.MeanOf(r => r.TrainableParams);
            var total = best.MeanOf(r => r.TotalParams);
            rows.Add([m, best.Label, Seeds(best), Fmt.Count(trainable), Fmt.Percent(trainable, total),
                MeanCell(v, best), GainCell(v, best), Fmt.Count(best.MeanOf(r => r.OptimizerStateBytes) / (1024.0 * 1024)), Fmt.Num(best.MeanOf(r => r.WallSeconds)),
                Fmt.Num(best.MeanOf(r => r.CheckpointBytes) / (1024.0 * 1024))]);
            if (trainable is double x && x > 0) series.Add(new(m, m, [Point(v, x, best)]));
        }
        var why = series.Count >= 2 ? null : "needs at least two methods with a scored run reporting trainable parameters";
        return Result("cost", "Trainable parameters vs score",
            $"Each method at its best setting ({v.MainContextLabel}): trainable parameters, share of all parameters, score and training costs; the untuned baseline trains nothing. {Intervals}",
            why,
            [new ReportTable("Best settings and their cost", ["method", "best setting", "seeds", "trainable params", "% of all", "mean test [95% CI]", GainColumn, "optimizer state MiB", "wall s", "checkpoint MiB"], rows)],
            [new PlotSpec { Name = "cost", Title = "Trainable parameters vs score (best settings)", XLabel = "trainable parameters", YLabel = Score, Kind = PlotKind.Points, XScale = AxisScale.Log10, Series = series, Lines = BaselineLines(v) }]);
    }

    /// <summary>Best test score against base model size, one line per method and one for the baseline, at the comparison task count.</summary>
    public static AnalysisResult ModelScaling(StudyView v)
    {
        var rows = new List<IReadOnlyList<string>>();
        var series = new List<PlotSeries>();
        var sizes = v.Models.Select(v.BaseParams).ToArray();
        var numeric = sizes.All(s => s is > 0);
        foreach (var m in v.TableMethods)
        {
            var points = new List<PlotPoint>();
            for (int i = 0; i < v.Models.Count; i++)
            {
                if (v.Best(m, v.Models[i], v.MainTaskCount) is not { } best || best.Model != v.Models[i]) continue;
                rows.Add([m, v.Models[i] ?? "(not varied)", Fmt.Count(sizes[i]), best.Label, Seeds(best), MeanCell(v, best), GainCell(v, best), Fmt.Score(best.Std)]);
                points.Add(Point(v, numeric ? sizes[i]!.Value : i, best));
            }
            if (points.Count > 0) series.Add(new(m, m, points));
        }
        var why = series.Any(s => s.Group != StudyView.BaselineMethod && s.Points.Count >= 2) ? null : "needs at least two base models with scored runs for one method";
        return Result("model_scaling", "Model-size scaling",
            $"Best {Score} per base model (size = smallest total parameter count its runs report), task count {Fmt.Tasks(v.MainTaskCount)}; the untuned base models as their own line. {Intervals}",
            why,
            [new ReportTable("Score by base model", ["method", "model", "base params", "best setting", "seeds", MeanColumn, GainColumn, "std"], rows)],
            [new PlotSpec
            {
                Name = "model_scaling", Title = "Model-size scaling", XLabel = numeric ? "base model parameters" : "base model", YLabel = Score,
                XScale = numeric ? AxisScale.Log10 : AxisScale.Ordinal, XCategories = v.Models.Select(m => m ?? "(not varied)").ToArray(), Series = series,
            }]);
    }

    /// <summary>Best unseen-task score against the number of training tasks, one line per method, on the comparison model; the baseline as a line.</summary>
    public static AnalysisResult TaskScaling(StudyView v)
    {
        var rows = new List<IReadOnlyList<string>>();
        var series = new List<PlotSeries>();
        if (v.Baseline() is { } b) rows.Add([b.Method, "none", b.Label, Seeds(b), MeanCell(v, b), GainCell(v, b), Fmt.Score(b.Std)]);
        foreach (var m in v.Methods)
        {
            var points = new List<PlotPoint>();
            for (int i = 0; i < v.TaskCounts.Count; i++)
            {
                if (v.Best(m, v.MainModel, v.TaskCounts[i]) is not { } best) continue;
                rows.Add([m, Fmt.Tasks(v.TaskCounts[i]), best.Label, Seeds(best), MeanCell(v, best), GainCell(v, best), Fmt.Score(best.Std)]);
                points.Add(Point(v, i, best));
            }
            if (points.Count > 0) series.Add(new(m, m, points));
        }
        var why = series.Any(s => s.Points.Count >= 2) ? null : "needs at least two training-task counts with scored runs for one method";
        return Result("task_scaling", "Number of training tasks",
            $"Best {Score} per number of training tasks, model {v.MainModel ?? "(not varied)"}. {Intervals}",
            why,
            [new ReportTable("Unseen-task score by training tasks", ["method", "training tasks", "best setting", "seeds", MeanColumn, GainColumn, "std"], rows)],
            [new PlotSpec
            {
                Name = "task_scaling", Title = "Training tasks vs unseen-task score", XLabel = "training tasks", YLabel = Score,
                XScale = AxisScale.Ordinal, XCategories = v.TaskCounts.Select(Fmt.Tasks).ToArray(), Series = series, Lines = BaselineLines(v),
            }]);
    }

    /// <summary>Seen-task held-out score against unseen-task score at each method's best setting per task count, and the baseline's.</summary>
    public static AnalysisResult Memorization(StudyView v)
    {
        var rows = new List<IReadOnlyList<string>>();
        var series = new List<PlotSeries>();
        void Add(string m, string tasks, Setting best, List<PlotPoint> points)
        {
            var heldout = best.MeanOf(r => r.HeldoutRougeL);
            var gap = v.Combine([new SettingTerm(1, best, EvalSplit.Heldout), new SettingTerm(-1, best)]);
            rows.Add([m, tasks, best.Label, Seeds(best), Fmt.Ci(heldout, v.MeanCi(best, EvalSplit.Heldout)), MeanCell(v, best),
                gap is null ? Fmt.Score(heldout - best.Mean) : Fmt.Diff(gap)]);
            if (heldout is double h) points.Add(new PlotPoint(v.MeanCi(best, EvalSplit.Heldout)?.Estimate ?? h, Shown(v, best), v.MeanCi(best)?.Lower, v.MeanCi(best)?.Upper));
        }
        foreach (var m in v.TableMethods)
        {
            var points = new List<PlotPoint>();
            if (m == StudyView.BaselineMethod) { if (v.Baseline() is { } b) Add(m, "none", b, points); }
            else
                foreach (var tc in v.TaskCounts)
                    if (v.Best(m, v.MainModel, tc) is { } best) Add(m, Fmt.Tasks(tc), best, points);
            if (points.Count > 0) series.Add(new(m, m, points));
        }
        var why = series.Count > 0 ? null : "no scored run has a held-out (seen-task) evaluation";
        return Result("memorization", "Memorization",
            $"ROUGE-L on held-out instances of the training tasks against ROUGE-L on unseen tasks, best setting per method and task count, model {v.MainModel ?? "(not varied)"}. A large gap (held-out minus test) means memorising the training tasks. {Intervals}",
            why,
            [new ReportTable("Seen vs unseen tasks", ["method", "training tasks", "best setting", "seeds", "held-out (seen tasks) [95% CI]", "test (unseen tasks) [95% CI]", "gap [95% CI]"], rows)],
            [new PlotSpec { Name = "memorization", Title = "Seen-task vs unseen-task score", XLabel = "held-out ROUGE-L (seen tasks)", YLabel = Score, Kind = PlotKind.Points, IdentityLine = true, Series = series }]);
    }

    /// <summary>Validation curves at each method's best setting and the steps to reach 50/80/95% of the final score; the baseline's single evaluation as a line.</summary>
    public static AnalysisResult LearningSpeed(StudyView v)
    {
        var bests = v.Methods.Select(m => (Method: m, Best: v.Best(m))).Where(x => x.Best is not null).ToArray();
        var useRouge = bests.Any(b => b.Best!.Runs.Any(r => r.EvalCurve.Any(p => p.ValRougeL is not null)));
        Func<EvalPoint, double?> pick = useRouge ? p => p.ValRougeL : p => p.ValLoss;
        var rows = new List<IReadOnlyList<string>>();
        var series = new List<PlotSeries>();
        var lines = new List<ReferenceLine>();
        if (v.Baseline() is { } b)
        {
            var start = MeanCurve(b, pick);
            rows.Add([b.Method, b.Label, "–", "–", "–", "–", Fmt.Score(start.Count > 0 ? start[^1].Value : null)]);
            if (start.Count > 0) lines.Add(new ReferenceLine($"{b.Method} {Fmt.One(start[^1].Value)}", b.Method, start[^1].Value));
        }
        foreach (var (m, best) in bests)
        {
            var curve = MeanCurve(best!, pick);
            var fractions = useRouge ? LearningSignals.StepsToFraction(curve.Select(c => (c.Step, 0L, c.Value)).ToArray(), [0.5, 0.8, 0.95]) : null;
            string Steps(Func<TrialRow, double?> fromResult, double f) =>
                Fmt.Num(best!.MeanOf(fromResult) ?? (fractions?[f] is { } hit ? hit.Step : null));
            rows.Add([m, best!.Label, Steps(r => r.StepsTo50, 0.5), Steps(r => r.StepsTo80, 0.8), Steps(r => r.StepsTo95, 0.95),
                Fmt.Num(best.MeanOf(r => r.Auc)), Fmt.Score(curve.Count > 0 ? curve[^1].Value : null)]);
            if (curve.Count > 0) series.Add(new(m, m, curve.Select(c => new PlotPoint(c.Step, c.Value)).ToArray()));
        }
        var why = series.Any(s => s.Points.Count >= 2) ? null : "needs validation curves with at least two evaluations";
        var metric = useRouge ? "validation ROUGE-L" : "validation loss";
        return Result("learning_speed", "Learning speed",
            $"Mean {metric} curve over seeds at each method's best setting ({v.MainContextLabel}); steps to reach 50/80/95% of the final validation score (from result.json, else from the curve). The untuned baseline is evaluated once, at step 0.",
            why,
            [new ReportTable("Steps to a share of the final score", ["method", "best setting", "steps to 50%", "steps to 80%", "steps to 95%", "AUC", "final " + metric], rows)],
            [new PlotSpec { Name = "learning_speed", Title = "Validation curves (best settings)", XLabel = "step", YLabel = metric, Series = series, Lines = lines }]);
    }

    /// <summary>Share of diverged or spiking runs and the seed spread, per method × learning rate × rank/size, and the baseline's.</summary>
    public static AnalysisResult Stability(StudyView v)
    {
        int minSpikes = v.Thresholds.SpikeMinCount;
        var rows = new List<IReadOnlyList<string>>();
        var shareSeries = new List<PlotSeries>();
        var stdSeries = new List<PlotSeries>();
        IReadOnlyList<string> Row(string m, Setting s) =>
            [m, Fmt.Lr(s.Lr), s.KnobLabel, Fmt.Int(s.Runs.Count), Fmt.Int(s.DivergedCount), Fmt.Int(s.SpikingCount(minSpikes)),
             Fmt.Share(s.UnstableShare(minSpikes)), Fmt.Score(s.Std), MeanCell(v, s)];
        var baseline = v.Baseline();
        if (baseline is not null) rows.Add(Row(baseline.Method, baseline));
        foreach (var m in v.Methods)
        {
            var sharePoints = new List<PlotPoint>();
            var stdPoints = new List<PlotPoint>();
            foreach (var g in v.SettingsOf(m).GroupBy(s => s.Lr).OrderBy(g => g.Key ?? 0))
            {
                foreach (var s in g.OrderBy(s => s.Capacity ?? 0).ThenBy(s => s.Key, StringComparer.Ordinal)) rows.Add(Row(m, s));
                if (g.Key is not double lr || lr <= 0) continue;
                int runs = g.Sum(s => s.Runs.Count);
                sharePoints.Add(new(lr, g.Sum(s => s.DivergedCount + s.SpikingCount(minSpikes)) / (double)runs));
                if (Stats.Mean(g.Select(s => s.Std).OfType<double>().ToArray()) is double std) stdPoints.Add(new(lr, std));
            }
            if (sharePoints.Count > 0) shareSeries.Add(new(m, m, sharePoints));
            if (stdPoints.Count > 0) stdSeries.Add(new(m, m, stdPoints));
        }
        var shareWhy = shareSeries.Any(s => s.Points.Count >= 2) ? null : "needs finished runs at two or more learning rates for one method";
        var stdWhy = stdSeries.Count > 0 ? null : "needs at least two scored seeds of one setting";
        var notes = new List<string>();
        if (shareWhy is not null) notes.Add("unstable share: not enough data: " + shareWhy);
        if (stdWhy is not null) notes.Add("seed spread: not enough data: " + stdWhy);
        IReadOnlyList<ReferenceLine> Line(double? y) => baseline is not null && y is double value ? [new ReferenceLine($"{baseline.Method} {Fmt.Num(value)}", baseline.Method, value)] : [];
        return new AnalysisResult
        {
            Id = "stability",
            Title = "Stability",
            Description = $"A run is unstable when it diverged or had at least {minSpikes} loss spike(s); seed spread is the standard deviation of test ROUGE-L across seeds of one setting; {v.MainContextLabel}. {Intervals}",
            EnoughData = shareWhy is null && stdWhy is null,
            Notes = notes,
            Tables = [new ReportTable("Stability by setting", ["method", "lr", "rank/size", "runs", "diverged", "spiking", "unstable share", "seed std", MeanColumn], rows)],
            Plots =
            [
                new PlotSpec { Name = "stability_share", Title = "Share of diverged or spiking runs", XLabel = "learning rate", YLabel = "unstable share of runs", XScale = AxisScale.Log10, Series = shareSeries, Lines = Line(baseline?.UnstableShare(minSpikes)), Message = NotEnough(shareWhy) },
                new PlotSpec { Name = "stability_seed_std", Title = "Spread across seeds", XLabel = "learning rate", YLabel = "std of test ROUGE-L over seeds", XScale = AxisScale.Log10, Series = stdSeries, Lines = Line(baseline?.Std), Message = NotEnough(stdWhy) },
            ],
        };
    }

    /// <summary>Test score per evaluation category at each method's best setting and the baseline's; harder categories are marked.</summary>
    public static AnalysisResult Categories(StudyView v)
    {
        var bests = v.TableMethods.Select(m => (Method: m, Best: v.Best(m))).Where(x => x.Best is not null).ToArray();
        var categories = bests.SelectMany(b => b.Best!.Runs.Where(r => r.Scored).SelectMany(r => r.TestCategories.Keys))
            .Distinct().OrderBy(c => IsHard(c) ? 1 : 0).ThenBy(c => c, StringComparer.Ordinal).ToArray();
        Interval? Ci(Setting s, string c) => v.Combine([new SettingTerm(1, s, EvalSplit.Test, c)]);
        var rows = categories.Select(c => (IReadOnlyList<string>)[IsHard(c) ? c + " (hard)" : c, .. bests.Select(b => Fmt.Ci(CategoryScoreOf(b.Best!, c), Ci(b.Best!, c)))]).ToList();
        var series = bests.Select(b => new PlotSeries(b.Method, b.Method, categories.Select((c, i) => (c, i))
            .Where(x => CategoryScoreOf(b.Best!, x.c) is not null)
            .Select(x => PlotPoint.At(x.i, Ci(b.Best!, x.c)?.Estimate ?? CategoryScoreOf(b.Best!, x.c)!.Value, Ci(b.Best!, x.c))).ToArray()))
            .Where(s => s.Points.Count > 0).ToArray();
        var why = series.Length > 0 ? null : "no scored run reports test scores per category";
        return Result("categories", "Scores by category",
            $"Test ROUGE-L per evaluation category at each method's best setting ({v.MainContextLabel}), the untuned baseline included. Categories whose names contain {string.Join(", ", FindingThresholds.HardCategoryKeywords.Select(k => $"\"{k}\""))} are the harder ones (reasoning, long-form, open generation). {Intervals}",
            why,
            [new ReportTable("Test ROUGE-L by category [95% CI]", ["category", .. bests.Select(b => b.Method)], rows)],
            [new PlotSpec { Name = "categories", Title = "Test ROUGE-L by category (best settings)", XLabel = "category", YLabel = "test ROUGE-L", Kind = PlotKind.Bars, XScale = AxisScale.Ordinal, XCategories = categories, Series = series }]);
    }

    /// <summary>
    /// Open-instruction benchmarks (the stand-ins, or MMLU / GSM8K / HumanEval / AlpacaEval files) at each method's best
    /// setting and the untuned baseline's: each benchmark's headline score in percent, each capability group's (the
    /// mean of its benchmarks), and each PEFT method's difference from full finetuning per group, all with paired
    /// bootstrap intervals over documents and seeds.
    /// </summary>
    public static AnalysisResult OpenInstruction(StudyView v)
    {
        var bests = v.TableMethods.Select(m => (Method: m, Best: v.Best(m))).Where(x => x.Best is not null && OpenBenchmarksOf(x.Best!).Count > 0).ToArray();
        var benchmarks = bests.SelectMany(b => OpenBenchmarksOf(b.Best!)).DistinctBy(b => b.Task).OrderBy(b => b.Group).ThenBy(b => b.Task, StringComparer.Ordinal).ToArray();
        var groups = benchmarks.Select(b => b.Group).Distinct().Order().ToArray();
        string G(Training.CapabilityGroup g) => Configuration.ConfigEnums.Name(g) + (FindingThresholds.HardGroups.Contains(g) ? " (hard)" : "");
        var rows = benchmarks.Select(b => (IReadOnlyList<string>)[b.Task, Configuration.ConfigEnums.Name(b.Group), b.Metric,
            .. bests.Select(x => Fmt.Ci(OpenMeanOf(x.Best!, b.Task), v.Combine(OpenTerms(x.Best!, 1, [b.Task]))))]).ToList();
        var groupRows = groups.Select(g => (IReadOnlyList<string>)[G(g),
            .. bests.Select(x => OpenGroupCi(v, x.Best!, g) is { } ci ? Fmt.Ci(ci.Estimate, ci) : "–")]).ToList();
        var full = v.Best(PeftRegistry.NameOf(PeftMethodKind.Full));
        var peft = bests.Where(x => !x.Best!.IsBaseline && x.Best != full).ToArray();
        var diffRows = full is null || OpenBenchmarksOf(full).Count == 0 ? [] : groups.Select(g => (IReadOnlyList<string>)[G(g),
            .. peft.Select(x => Fmt.Diff(OpenGroupDiff(v, x.Best!, full, g)))]).ToList();
        var series = bests.Select(x => new PlotSeries(x.Method, x.Method, groups.Select((g, i) => (g, i))
            .Select(p => (p.i, Ci: OpenGroupCi(v, x.Best!, p.g))).Where(p => p.Ci is not null)
            .Select(p => PlotPoint.At(p.i, p.Ci!.Estimate, p.Ci)).ToArray())).Where(s => s.Points.Count > 0).ToArray();
        var why = benchmarks.Length > 0 ? null : "no scored run has open-instruction scores (set synthetic_harness or base eval.open_instruction)";
        var tables = new List<ReportTable>
        {
            new("Capability groups [95% CI] (mean of the group's benchmarks, percent)", ["group", .. bests.Select(b => b.Method)], groupRows),
            new("Benchmarks [95% CI] (headline metric, percent)", ["benchmark", "group", "metric", .. bests.Select(b => b.Method)], rows),
        };
        if (diffRows.Count > 0) tables.Add(new("Difference from full finetuning by group [95% CI] (points)", ["group", .. peft.Select(x => $"{x.Method} − full")], diffRows));
        return Result("open_instruction", "Open instruction following",
            $"Each method's best setting ({v.MainContextLabel}) and the untuned base model scored on the open-instruction benchmarks after training: each benchmark's headline metric (accuracy, exact match, F1, pass@1, win rate) in percent, and per capability group the mean of its benchmarks; groups marked hard (reasoning, coding, long-form) are those of finding (f). {Intervals}",
            why, tables,
            [new PlotSpec { Name = "open_instruction", Title = "Open instruction following by capability group (best settings)", XLabel = "capability group", YLabel = "score (percent)", Kind = PlotKind.Bars, XScale = AxisScale.Ordinal, XCategories = groups.Select(G).ToArray(), Series = series }]);
    }

    /// <summary>The open-instruction benchmarks every scored run of a setting reports (task, group, headline metric).</summary>
    public static IReadOnlyList<OpenInstructionScore> OpenBenchmarksOf(Setting s)
    {
        var runs = s.Runs.Where(r => r.Scored && r.OpenInstances is not null).ToArray();
        if (runs.Length == 0) return [];
        return runs[0].OpenScores.Where(b => runs.All(r => r.OpenScores.Any(o => o.Task == b.Task && o.Metric == b.Metric))).ToArray();
    }

    /// <summary>Mean percent score of one benchmark over a setting's scored runs.</summary>
    public static double? OpenMeanOf(Setting s, string task) => s.MeanOf(r => r.OpenScores.FirstOrDefault(o => o.Task == task) is { } o ? 100 * o.Value : null);

    /// <summary>Terms <c>weight × mean of each benchmark</c> over the open-instruction split, one per benchmark, split evenly.</summary>
    public static SettingTerm[] OpenTerms(Setting s, double weight, IReadOnlyList<string> tasks) =>
        tasks.Select(t => new SettingTerm(weight / tasks.Count, s, EvalSplit.Open, Task: t)).ToArray();

    /// <summary>A setting's capability-group score (the mean of its benchmarks in the group) with its interval; null without them.</summary>
    public static Interval? OpenGroupCi(StudyView v, Setting s, Training.CapabilityGroup g) =>
        OpenBenchmarksOf(s).Where(b => b.Group == g).Select(b => b.Task).ToArray() is { Length: > 0 } tasks ? v.Combine(OpenTerms(s, 1, tasks)) : null;

    /// <summary>Paired interval of <c>group score(a) − group score(b)</c> on the benchmarks both report; null without them.</summary>
    public static Interval? OpenGroupDiff(StudyView v, Setting a, Setting b, Training.CapabilityGroup g)
    {
        var tasks = OpenBenchmarksOf(a).Where(x => x.Group == g).Select(x => x.Task).Intersect(OpenBenchmarksOf(b).Where(x => x.Group == g).Select(x => x.Task)).ToArray();
        return tasks.Length == 0 ? null : v.Combine([.. OpenTerms(a, 1, tasks), .. OpenTerms(b, -1, tasks)]);
    }

    /// <summary>Whether a category is one of the harder ones (see <see cref="FindingThresholds.HardCategoryKeywords"/>).</summary>
    public static bool IsHard(string category) =>
        FindingThresholds.HardCategoryKeywords.Any(k => category.Contains(k, StringComparison.OrdinalIgnoreCase));

    /// <summary>Mean ROUGE-L of one category over a setting's scored runs.</summary>
    public static double? CategoryScoreOf(Setting s, string category) =>
        s.MeanOf(r => r.TestCategories.TryGetValue(category, out var c) ? c.RougeL : null);

    /// <summary>Mean curve over a setting's scored runs, at the steps they share.</summary>
    public static IReadOnlyList<(int Step, double Value)> MeanCurve(Setting s, Func<EvalPoint, double?> pick) =>
        s.Runs.Where(r => r.Scored)
            .SelectMany(r => r.EvalCurve.Where(p => pick(p) is not null).Select(p => (p.Step, Value: pick(p)!.Value)))
            .GroupBy(p => p.Step).OrderBy(g => g.Key)
            .Select(g => (g.Key, g.Average(p => p.Value))).ToArray();

    /// <summary>How the intervals in the tables are made (docs/statistics.md has the details).</summary>
    private const string Intervals = "Brackets are 95% paired-bootstrap intervals over instances and seeds; gains are over the untuned base model, on the same instances.";

    private const string MeanColumn = "mean [95% CI]";
    private const string GainColumn = "gain over untuned [95% CI]";

    private static string Seeds(Setting? s) => Fmt.Int(s?.SeedCount);

    private static string MeanCell(StudyView v, Setting? s) => s is null ? "–" : Fmt.Ci(s.Mean, v.MeanCi(s));

    private static string GainCell(StudyView v, Setting? s) => s is null ? "–" : s.IsBaseline ? "(baseline)" : Fmt.Diff(v.GainCi(s));

    private static double Shown(StudyView v, Setting s) => v.Shown(s)!.Value;

    private static PlotPoint Point(StudyView v, double x, Setting s) => PlotPoint.At(x, Shown(v, s), v.MeanCi(s));

    /// <summary>The comparison context's untuned baseline as a reference line, or none.</summary>
    private static IReadOnlyList<ReferenceLine> BaselineLines(StudyView v) =>
        v.Baseline() is { } b ? [new ReferenceLine($"{b.Method} {Fmt.Ci(b.Mean, v.MeanCi(b))}", b.Method, Shown(v, b), v.MeanCi(b)?.Lower, v.MeanCi(b)?.Upper)] : [];

    private static string? NotEnough(string? why) => why is null ? null : "not enough data: " + why;

    private static AnalysisResult Result(string id, string title, string description, string? why, IReadOnlyList<ReportTable> tables, IReadOnlyList<PlotSpec> plots) => new()
    {
        Id = id,
        Title = title,
        Description = description,
        EnoughData = why is null,
        Notes = why is null ? [] : [NotEnough(why)!],
        Tables = tables,
        Plots = plots.Select(p => p with { Message = p.Message ?? NotEnough(why) }).ToArray(),
    };
}
