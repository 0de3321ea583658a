using PeftLab.Studies;
using PeftLab.Studies.Report;
using PeftLab.Training;

namespace PeftLab.Tests.Studies.Report;

/// <summary>The open_instruction analysis and finding (f) from capability groups, on rows built in memory with constant per-document scores (so every interval is a point, worked out by hand).</summary>
public sealed class OpenInstructionReportTests
{
    private static readonly (string Task, CapabilityGroup Group, string Metric)[] Benchmarks =
    [
        ("arith", CapabilityGroup.Reasoning, "exact_match,strict-match"), ("code", CapabilityGroup.Coding, "pass@1,create_test"),
        ("mc", CapabilityGroup.Knowledge, "acc"), ("open", CapabilityGroup.LongForm, "win_rate,answer"),
    ];

    /// <summary>A row with 20 documents per benchmark, each scoring the benchmark's value (percent).</summary>
    private static TrialRow Row(string method, params double[] scores) => FindingsTests.Row(method) with
    {
        OpenScores = Benchmarks.Select((b, i) => new OpenInstructionScore(b.Task, b.Group, b.Metric, scores[i] / 100, scores[i] / 100, scores[i] / 100, 20)).ToArray(),
        OpenInstances = Benchmarks.SelectMany((b, i) => Enumerable.Range(0, 20).Select(d => (Id: $"{b.Task}/{d}", Score: new InstanceScore(b.Task, PeftLab.Configuration.ConfigEnums.Name(b.Group), scores[i], scores[i]))))
            .ToDictionary(x => x.Id, x => x.Score),
    };

    private static TrialRow[] Rows(double[] lora, double[] adapter) =>
    [
        Row(StudyView.BaselineMethod, 10, 0, 25, 5),
        Row("full", 40, 30, 50, 20),
        Row("lora", lora),
        Row("adapter", adapter),
    ];

    [Fact]
    public void FindingFIsJudgedFromTheHardGroupsWhenPresent()
    {
        // hard = mean of reasoning, coding, long-form: full (40+30+20)/3 = 30, lora (35+25+15)/3 = 25, adapter (32+22+12)/3 = 22
        var f = Findings.HardCategories(Rows([35, 25, 50, 15], [32, 22, 50, 12]));
        Assert.Equal(Verdict.Holds, f.Verdict);
        Assert.Contains("hard capability groups (open-instruction benchmarks): reasoning (arith), coding (code), long_form (open); full 30.0 [30.0, 30.0]", f.Numbers);
        Assert.Contains("lora 25.0 [25.0, 25.0]", f.Numbers);
        Assert.Contains("lora − adapter = +3.0 [+3.0, +3.0] → holds", f.Numbers);
        Assert.DoesNotContain("mc", f.Numbers);                                 // knowledge is not a hard group
        // LoRA as good as full on the hard groups (knowledge alone differs): it does not fall short, so (f) does not hold
        var even = Findings.HardCategories(Rows([40, 30, 10, 20], [32, 22, 50, 12]));
        Assert.Equal(Verdict.DoesNotHold, even.Verdict);
    }

    /// <summary>
    /// Full finetuning no better than the untuned base on the hard groups (the benchmarks are beyond the model, as a
    /// judge's 50 % or zeros on code show): (f) is not decided on that floor; without a baseline, an absolute floor.
    /// </summary>
    [Fact]
    public void AFloorLeavesFindingFInconclusive()
    {
        // untuned hard = (10 + 0 + 5) / 3 = 5; full (10 + 0 + 5.9) / 3 = 5.3: a gain of 0.3, at most floor_points (1)
        TrialRow[] rows = [Row(StudyView.BaselineMethod, 10, 0, 25, 5), Row("full", 10, 0, 60, 5.9), Row("lora", 0, 0, 50, 0), Row("adapter", 0, 0, 50, 0)];
        var f = Findings.HardCategories(rows);
        Assert.True(f.Verdict == Verdict.Inconclusive, f.Numbers);
        Assert.True(f.Numbers.Contains("floor: full − untuned on the hard score = +0.3 [+0.3, +0.3], at most 1 points", StringComparison.Ordinal), f.Numbers);
        var absolute = Findings.HardCategories(rows.Skip(1).Select(r => r.Method == "full" ? Row("full", 0, 0, 60, 3) : r).ToArray());
        Assert.True(absolute.Numbers.Contains("floor: full's hard score is at most 1 points (upper end 1)", StringComparison.Ordinal), absolute.Numbers);
        Assert.Equal(Verdict.Holds, Findings.HardCategories(Rows([35, 25, 50, 15], [32, 22, 50, 12])).Verdict);   // well above the floor: decided
    }

    [Fact]
    public void TheAnalysisTabulatesBenchmarksGroupsAndDifferencesFromFull()
    {
        var a = Analyses.OpenInstruction(new StudyView(Rows([35, 25, 50, 15], [32, 22, 50, 12])));
        Assert.True(a.EnoughData);
        var groups = a.Tables[0];
        Assert.Equal(["group", StudyView.BaselineMethod, "full", "lora", "adapter"], groups.Columns);
        Assert.Equal(["reasoning (hard)", "10.0 [10.0, 10.0]", "40.0 [40.0, 40.0]", "35.0 [35.0, 35.0]", "32.0 [32.0, 32.0]"], groups.Rows[0]);
        Assert.Equal(["knowledge", "25.0 [25.0, 25.0]", "50.0 [50.0, 50.0]", "50.0 [50.0, 50.0]", "50.0 [50.0, 50.0]"], groups.Rows[2]);
        var benchmarks = a.Tables[1];
        Assert.Equal(["code", "coding", "pass@1,create_test", "0.0 [0.0, 0.0]", "30.0 [30.0, 30.0]", "25.0 [25.0, 25.0]", "22.0 [22.0, 22.0]"], benchmarks.Rows[1]);
        var diff = a.Tables[2];
        Assert.Equal(["group", "lora − full", "adapter − full"], diff.Columns);
        Assert.Equal(["reasoning (hard)", "−5.0 [−5.0, −5.0]", "−8.0 [−8.0, −8.0]"], diff.Rows[0]);
        Assert.Equal(4, a.Plots.Single().Series.Count);
        var none = Analyses.OpenInstruction(new StudyView([FindingsTests.Row("full"), FindingsTests.Row("lora")]));
        Assert.False(none.EnoughData);
        Assert.Contains("no scored run has open-instruction scores", none.Notes.Single());
    }

    /// <summary>A study trained on chat data (no SuperNI test split): the headline is the mean of the benchmarks, with paired intervals.</summary>
    [Fact]
    public void WithoutATestSplitTheHeadlineIsTheOpenMean()
    {
        TrialRow Chat(string method, params double[] scores) => Row(method, scores) with { TestRougeL = null, TestInstances = null };
        var v = new StudyView([Chat(StudyView.BaselineMethod, 10, 0, 25, 5), Chat("full", 40, 30, 50, 20), Chat("lora", 35, 25, 50, 15)]);
        Assert.True(v.OpenHeadline);
        Assert.Equal("open-instruction mean", v.HeadlineLabel);
        var full = v.Best("full")!;
        Assert.Equal(35.0, full.Mean!.Value, 9);                                   // (40 + 30 + 50 + 20) / 4
        Assert.Equal((35.0, 35.0, 35.0), (v.MeanCi(full)!.Estimate, v.MeanCi(full)!.Lower, v.MeanCi(full)!.Upper));
        Assert.Equal(25.0, v.GainCi(full)!.Estimate, 9);                            // over the untuned 10
        Assert.Equal(-3.75, v.DiffCi(v.Best("lora")!, full)!.Estimate, 9);
        Assert.False(new StudyView(Rows([35, 25, 50, 15], [32, 22, 50, 12])).OpenHeadline);   // with a test split: test ROUGE-L
    }

    /// <summary>Seeds and documents that vary: the group interval is the paired bootstrap's, so it contains the mean and narrows when documents agree across methods.</summary>
    [Fact]
    public void IntervalsPairDocumentsAcrossMethods()
    {
        TrialRow Noisy(string method, double shift, int seed) => FindingsTests.Row(method, seed: seed) with
        {
            OpenScores = [new OpenInstructionScore("arith", CapabilityGroup.Reasoning, "acc", 0.5, 0.4, 0.6, 100)],
            OpenInstances = Enumerable.Range(0, 100).ToDictionary(d => $"arith/{d}", d => new InstanceScore("arith", "reasoning", (d % 2 == 0 ? 100 : 0) + shift, 0)),
        };
        var v = new StudyView([Noisy("full", 0, 1), Noisy("lora", -5, 1)]);
        var full = v.Best("full")!;
        var lora = v.Best("lora")!;
        var alone = Analyses.OpenGroupCi(v, full, CapabilityGroup.Reasoning)!;
        Assert.Equal(50, alone.Estimate, 9);
        Assert.True(alone.Lower < 45 && alone.Upper > 55, $"{alone.Lower}..{alone.Upper}");     // half 0, half 100: a wide interval
        var diff = Analyses.OpenGroupDiff(v, lora, full, CapabilityGroup.Reasoning)!;
        Assert.Equal((-5.0, -5.0, -5.0), (Math.Round(diff.Estimate, 9), Math.Round(diff.Lower, 9), Math.Round(diff.Upper, 9)));   // paired: the shift only
    }
}
