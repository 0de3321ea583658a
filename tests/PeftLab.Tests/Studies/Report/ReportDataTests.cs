using PeftLab.Configuration;
using PeftLab.Studies;
using PeftLab.Studies.Report;

namespace PeftLab.Tests.Studies.Report;

public sealed class ReportDataTests
{
    [Fact]
    public void LoadsAxesResultsCurvesAndStates()
    {
        using var study = new FakeStudy();
        study.Add(new Dictionary<string, object?> { ["method"] = "lora", ["lr"] = 1e-4, ["lora_r"] = 8, ["task_count"] = 32, ["seed"] = 42, ["optim.weight_decay"] = 0.01 },
            new FakeOutcome { Test = 41.5, Heldout = 50, Spikes = 2, StepsTo80 = 120, Trainable = 8000, Total = 1_008_000,
                Categories = new Dictionary<string, double> { ["Multi-step Reasoning"] = 20 }, Curve = [(50, 10), (100, 30)] });
        study.Add(new Dictionary<string, object?> { ["method"] = "full", ["lr"] = 1e-3, ["task_count"] = null, ["seed"] = 42 }, new FakeOutcome { Diverged = true });
        study.Add(new Dictionary<string, object?> { ["method"] = "adapter", ["lr"] = 1e-4, ["adapter_size"] = 16 }, null);
        study.Add(new Dictionary<string, object?> { ["method"] = "ia3", ["lr"] = 1e-4 }, null, state: "failed", error: "out of memory");
        study.Save();

        var data = ReportData.Load(study.Dir);
        Assert.Equal("fake-study", data.StudyName);
        Assert.Empty(data.Warnings);
        Assert.Equal(4, data.Rows.Count);

        var lora = data.Rows[0];
        Assert.Equal(("lora", 1e-4, 8, "lora_r", 32, 42L), (lora.Method, lora.Lr!.Value, lora.Capacity!.Value, lora.CapacityAxis, lora.TaskCount!.Value, lora.Seed!.Value));
        Assert.Equal(TrialState.Done, lora.State);
        Assert.True(lora.Scored);
        Assert.Equal(41.5, lora.TestRougeL);
        Assert.Equal(50, lora.HeldoutRougeL);
        Assert.Equal(2, lora.SpikeCount);
        Assert.Equal(120, lora.StepsTo80);
        Assert.Equal(8000, lora.TrainableParams);
        Assert.Equal(20, lora.TestCategories["Multi-step Reasoning"].RougeL);
        Assert.Equal([50, 100], lora.EvalCurve.Select(p => p.Step)); // the torn line is skipped
        Assert.Equal(30, lora.EvalCurve[1].ValRougeL);
        Assert.Equal("0.01", lora.OtherAxes["optim.weight_decay"]);
        Assert.Equal(41.5, lora.Metrics["test.rougeL"]);
        Assert.Equal(8000, lora.Metrics["cost.trainable_params"]);
        Assert.DoesNotContain(lora.Metrics.Keys, k => k.Contains("per_task"));

        var full = data.Rows[1];
        Assert.True(full.Diverged);
        Assert.True(full.Finished);
        Assert.False(full.Scored);
        Assert.Null(full.TaskCount); // null task_count: all tasks
        Assert.Equal(TrialState.Pending, data.Rows[2].State);
        Assert.False(data.Rows[2].Finished);
        Assert.Equal(16, data.Rows[2].Capacity);
        Assert.Equal((TrialState.Failed, "out of memory"), (data.Rows[3].State, data.Rows[3].Error));
    }

    [Fact]
    public void BadTrialFilesBecomeWarnings_MissingTrialJsonIsInferred()
    {
        using var study = new FakeStudy();
        var bad = study.Add(new Dictionary<string, object?> { ["method"] = "lora", ["lr"] = 1e-4 }, new FakeOutcome { Test = 30 });
        var noTrialJson = study.Add(new Dictionary<string, object?> { ["method"] = "full", ["lr"] = 1e-5 }, new FakeOutcome { Test = 35 });
        study.Save();
        File.WriteAllText(Path.Combine(study.Dir, "trials", bad, "result.json"), "{ \"status\": ");
        File.Delete(Path.Combine(study.Dir, "trials", noTrialJson, "trial.json"));

        var data = ReportData.Load(study.Dir);
        var warning = Assert.Single(data.Warnings);
        Assert.Contains(Path.Combine("trials", bad, "result.json"), warning);
        Assert.False(data.Rows[0].Finished);
        Assert.Equal(TrialState.Done, data.Rows[1].State);
        Assert.Equal("full", data.Rows[1].Method);
    }

    [Fact]
    public void MissingOrBrokenPlanIsAClearError()
    {
        var dir = TestPaths.NewTempDir("peftlab-report");
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => ReportData.Load(dir));
            Assert.Contains("plan.json", e.Message);
            File.WriteAllText(Path.Combine(dir, "plan.json"), "{\"study\": \"x\"}");
            Assert.Contains("'trials' list missing", Assert.Throws<InvalidDataException>(() => ReportData.Load(dir)).Message);
            Assert.Throws<DirectoryNotFoundException>(() => ReportData.Load(Path.Combine(dir, "nope")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void StudyYaml_ReadsNameAnalysesAndThresholds_IgnoringTheRest()
    {
        var dir = TestPaths.NewTempDir("peftlab-report");
        try
        {
            var path = Path.Combine(dir, "study.yaml");
            File.WriteAllText(path, """
                name: my-study
                output: runs/x
                axes:
                  method: [full, lora]
                analyses: [lr_sensitivity, stability]
                finding_thresholds:
                  close_to_full_points: 1.5
                  unstable_lr_fraction: 0.3
                  spike_min_count: 2
                """);
            var spec = StudyReportSpec.Load(path);
            Assert.Equal("my-study", spec.Name);
            Assert.Equal(["lr_sensitivity", "stability"], spec.Analyses);
            Assert.Equal(1.5, spec.Thresholds.CloseToFullPoints);
            Assert.Equal(0.3, spec.Thresholds.InstabilityShare);
            Assert.Equal(2, spec.Thresholds.SpikeMinCount);
            Assert.Equal(2.0, spec.Thresholds.LrSensitivityPoints); // default

            File.WriteAllText(path, "name: s\nfinding_thresholds:\n  close_to_ful_points: 1\n");
            var e = Assert.Throws<ConfigException>(() => StudyReportSpec.Load(path));
            Assert.Contains("close_to_ful_points", e.Message);
            Assert.Contains("study.yaml:", e.Message);

            File.WriteAllText(path, "analyses: [lr_sensitivity, speed]\n");
            Assert.Contains("unknown analysis 'speed'", Assert.Throws<ConfigException>(() => StudyReportSpec.Load(path)).Message);

            File.WriteAllText(path, "finding_thresholds:\n  instability_share: lots\n");
            Assert.Contains("finding_thresholds.instability_share", Assert.Throws<ConfigException>(() => StudyReportSpec.Load(path)).Message);

            Assert.Same(StudyReportSpec.Default, StudyReportSpec.Load(Path.Combine(dir, "missing.yaml")));
        }
        finally { Directory.Delete(dir, true); }
    }
}
