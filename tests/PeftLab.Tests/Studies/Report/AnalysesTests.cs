using PeftLab.Studies.Report;
using static PeftLab.Tests.Studies.Report.FindingsTests;

namespace PeftLab.Tests.Studies.Report;

public sealed class AnalysesTests
{
    [Fact]
    public void TaskScaling_OrdersTaskCounts_AllTasksLast()
    {
        var v = new StudyView([Row("lora", tasks: null, test: 45), Row("lora", tasks: 32, test: 40), Row("lora", tasks: 8, test: 30)]);
        var a = Analyses.TaskScaling(v);
        Assert.True(a.EnoughData);
        Assert.Equal(["8", "32", "all"], a.Plots[0].XCategories);
        Assert.Equal([30.0, 40, 45], a.Plots[0].Series.Single().Points.Select(p => p.Y));
        Assert.Null(v.MainTaskCount); // the most tasks win the tie for the comparison context
    }

    [Fact]
    public void Capacity_ExplainsWhyThereIsNothingToShow()
    {
        var a = Analyses.Capacity(new StudyView([Row("full", 1e-5), Row("full", 1e-4)]));
        Assert.False(a.EnoughData);
        Assert.Contains("no finished run of a method with a rank/size axis", Assert.Single(a.Notes));
        Assert.StartsWith("not enough data", a.Plots[0].Message);
    }

    [Fact]
    public void LrSensitivity_LeavesOutDivergedRates_ButCountsThem()
    {
        var v = new StudyView([Row("lora", 1e-4, 8, test: 40), Row("lora", 1e-3, 8, diverged: true), Row("lora", 1e-5, 8, test: 30)]);
        var a = Analyses.LrSensitivity(v);
        Assert.True(a.EnoughData);
        Assert.Equal([1e-5, 1e-4], a.Plots[0].Series.Single().Points.Select(p => p.X));
        Assert.Equal(["lora", "1e-3", "–", "–", "–", "–", "–", "1", "1"], a.Tables[0].Rows[2]);
    }

    [Fact]
    public void LearningSpeed_FallsBackToTheCurve_WhenResultHasNoSpeed()
    {
        var run = Row("lora", test: 40) with
        {
            EvalCurve = [new EvalPoint(100, 0, null, 10, null), new EvalPoint(200, 0, null, 34, null), new EvalPoint(300, 0, null, 40, null)],
        };
        var a = Analyses.LearningSpeed(new StudyView([run]));
        Assert.True(a.EnoughData);
        // 50% of 40 = 20 → step 200; 80% = 32 → step 200; 95% = 38 → step 300.
        Assert.Equal(["lora", "lr 1e-4", "200", "200", "300", "–", "40.00"], a.Tables[0].Rows.Single());
    }

    [Fact]
    public void Stability_CountsDivergedAndSpikingRunsPerSetting()
    {
        var v = new StudyView([Row("adapter", 1e-3, 8, seed: 1, spikes: 3, test: 30), Row("adapter", 1e-3, 8, seed: 2, diverged: true),
                               Row("adapter", 1e-4, 8, seed: 1, test: 40), Row("adapter", 1e-4, 8, seed: 2, test: 41)],
            new FindingThresholds { SpikeMinCount = 2 });
        var a = Analyses.Stability(v);
        var row = a.Tables[0].Rows.Single(r => r[1] == "1e-3");
        Assert.Equal(["adapter", "1e-3", "adapter_size 8", "2", "1", "1", "100%", "–", "30.0 [30.0, 30.0]"], row);
        Assert.Equal([0.0, 1.0], a.Plots[0].Series.Single().Points.Select(p => p.Y));
        Assert.Equal(0.71, a.Plots[1].Series.Single().Points.Single().Y, 2); // std of 40 and 41
    }
}
