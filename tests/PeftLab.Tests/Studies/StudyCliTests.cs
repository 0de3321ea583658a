using PeftLab.Training;
using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftLab.Studies;

namespace PeftLab.Tests.Studies;

[Collection("study processes")]
public sealed class StudyCliTests
{
    [Fact]
    public void RunTrainsEveryTrialOnceAndStatusAndResultsReadTheFolder()
    {
        var dir = TestPaths.NewTempDir("study-cli");
        var output = Path.Combine(dir, "out");
        var file = StudyFixtures.Write(dir, output, """
            axes:
              method: [lora, full]
              lr: [3.0e-3]
              task_count: [2, 10]    # MiniTasks has 3 training tasks: the task_count=10 trials fail in the trainer
            """, StudyFixtures.Base(StudyFixtures.Data, maxSteps: 6));
        var run = CliRunner.Run("study", "run", file, "--workers", "2", "--threads-per-worker", "1");
        Assert.True(run.ExitCode == 1, $"exit {run.ExitCode} (1 expected: failed trials)\n{run.Stdout}\n{run.Stderr}");
        Assert.Contains("trial 0 done", run.Stdout);
        Assert.Contains("trial 1 FAILED", run.Stdout);
        Assert.Contains("2 done, 0 diverged, 2 failed, 0 running, 0 interrupted, 0 pending", run.Stdout);

        var store = new StudyStore(output);
        var (_, _, plan) = store.ReadPlan();
        Assert.Equal(4, plan.Count);
        Assert.True(File.Exists(store.StudyYaml));
        foreach (var entry in plan)
        {
            var record = store.ReadTrial(entry.Id)!;
            Assert.Equal(1, record.Attempts);
            bool fails = entry.Axis("task_count")!.Value!.GetValue<int>() == 10;
            Assert.Equal(fails ? TrialState.Failed : TrialState.Done, record.State);
            Assert.Equal(!fails, File.Exists(store.ResultJson(entry.Id)));
            if (fails) Assert.Contains("TaskCount 10", record.Error);
            else Assert.Equal(6, StudyFixtures.StepLosses(store.TrialDir(entry.Id)).Length);
        }

        var status = CliRunner.Ok("study", "status", output);
        Assert.Contains("2 done, 0 diverged, 2 failed", status);
        Assert.Contains("TaskCount 10", status);
        var statusJson = JsonNode.Parse(CliRunner.Ok("study", "status", file, "--json"))!;
        Assert.Equal(2, statusJson["counts"]!["done"]!.GetValue<int>());
        Assert.Equal(2, statusJson["counts"]!["failed"]!.GetValue<int>());
        // a finished trial shows its last step from its result, not its last (throttled, lagging) progress record
        foreach (var entry in plan.Where(e => File.Exists(store.ResultJson(e.Id))))
        {
            var record = store.ReadTrial(entry.Id)!;
            store.WriteTrial(record with { Progress = new TrialProgress("train", 2, 6, 1.0, 10, 1) });
        }
        var stale = JsonNode.Parse(CliRunner.Ok("study", "status", file, "--json"))!["trials"]!.AsArray()
            .Where(t => t!["state"]!.GetValue<string>() == "done").Select(t => t!["step"]!.GetValue<int>());
        Assert.All(stale, step => Assert.Equal(6, step));
        Assert.Contains("6/6", CliRunner.Ok("study", "status", output, "--all"));

        // a second run skips finished trials (never twice) and does not retry failures unless asked
        var results = plan.Where(e => File.Exists(store.ResultJson(e.Id))).ToDictionary(e => e.Id, e => File.ReadAllText(store.ResultJson(e.Id)));
        var again = CliRunner.Run("study", "run", file);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("2 finished before, 0 to run", again.Stdout);
        Assert.Contains("2 failed trial(s) skipped", again.Stdout);
        foreach (var (id, text) in results) Assert.Equal(text, File.ReadAllText(store.ResultJson(id)));
        Assert.All(plan, e => Assert.Equal(1, store.ReadTrial(e.Id)!.Attempts));

        // run-trial on a finished trial skips it
        var done = plan.First(e => File.Exists(store.ResultJson(e.Id)));
        var skip = CliRunner.Run("study", "run-trial", store.StudyYaml, "--index", done.Index.ToString());
        Assert.Equal(0, skip.ExitCode);
        Assert.Contains("already finished (done); skipped", skip.Stdout);
        Assert.Equal(1, store.ReadTrial(done.Id)!.Attempts);

        var csv = CliRunner.Ok("study", "results", output, "--format", "csv").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, csv.Length);
        Assert.StartsWith("index,id,state,error,method,lr,task_count,status,", csv[0]);
        var jsonl = Path.Combine(dir, "r.jsonl");
        CliRunner.Ok("study", "results", output, "--format", "jsonl", "--out", jsonl);
        var rows = File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(["done", "failed", "done", "failed"], rows.Select(r => r["state"]!.GetValue<string>()));
        Assert.Equal(6, rows[0]["steps"]!.GetValue<long>());
        Assert.True(rows[0]["trainable_params"]!.GetValue<long>() < rows[2]["trainable_params"]!.GetValue<long>());   // lora vs full
    }

    [Fact]
    public void CtrlCStopsTheWorkersAtACheckpointAndTheNextRunResumes()
    {
        var dir = TestPaths.NewTempDir("study-sigint");
        var output = Path.Combine(dir, "out");
        var file = StudyFixtures.Write(dir, output, "axes: {method: [lora], lr: [3.0e-3]}", StudyFixtures.Base(StudyFixtures.Data, maxSteps: 600, checkpointEvery: 50));
        var (p, log) = StudyFixtures.Start("study", "run", file, "--threads-per-worker", "1");
        var study = Study.Load(file);
        var metrics = Path.Combine(study.Trials[0].Config.Output, "metrics.jsonl");
        var sw = Stopwatch.StartNew();
        while (!p.HasExited && sw.Elapsed < TimeSpan.FromSeconds(60) && (LocalExecutor.LastStep(metrics).Step ?? 0) < 8) Thread.Sleep(20);
        Assert.False(p.HasExited, $"the run ended before it could be interrupted:\n{log}");
        // what Ctrl-C delivers to the executor; SIGTERM (handled alike) when this test runs with SIGINT ignored, as a
        // background job of a non-interactive shell does and hands on to its children
        Assert.True(Posix.Signal(p.Id, SigIntIgnored() ? Posix.SigTerm : Posix.SigInt));
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)), $"study run did not stop after SIGINT:\n{log}");
        p.WaitForExit();
        Assert.True(p.ExitCode == 130, $"exit {p.ExitCode}\n{log}");
        Assert.Contains("stopping: 1 worker(s) checkpoint and exit", log.ToString());
        var record = study.Store.ReadTrial(study.Trials[0].Id)!;
        Assert.Equal(TrialState.Pending, record.State);
        int stoppedAt = record.InterruptedAtStep!.Value;
        Assert.InRange(stoppedAt, 8, 599);   // 600 steps: long enough that the trial cannot finish before the signal lands
        Assert.Equal($"step-{stoppedAt:D8}", File.ReadAllText(Path.Combine(study.Trials[0].Config.Output, "checkpoints", "latest")).Trim());   // not a multiple of 50: the stop itself checkpointed
        Assert.Contains("1 interrupted", CliRunner.Ok("study", "status", output));

        // resume with fewer steps to keep the test short: the same trial id needs the same config, so finish it as is
        var resumed = CliRunner.Run("study", "run", file, "--threads-per-worker", "1");
        Assert.True(resumed.ExitCode == 0, resumed.Stdout + resumed.Stderr);
        Assert.Contains("(resuming)", resumed.Stdout);
        var steps = PeftLab.Training.RunFiles.ReadMetrics(metrics).Where(r => r["type"]!.GetValue<string>() == "step").Select(r => r["step"]!.GetValue<int>()).ToArray();
        Assert.Equal(Enumerable.Range(1, 600), steps);
        Assert.Equal(2, study.Store.ReadTrial(study.Trials[0].Id)!.Attempts);
    }

    /// <summary>Whether this process ignores SIGINT (bit 2 of SigIgn in /proc/self/status).</summary>
    private static bool SigIntIgnored() =>
        File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) is { } line
        && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << (Posix.SigInt - 1))) != 0;

    [Fact]
    public void BadSpecsFailOnTheCommandLineBeforeAnyTraining()
    {
        var dir = TestPaths.NewTempDir("study-cli-bad");
        var output = Path.Combine(dir, "out");
        var file = StudyFixtures.Write(dir, output, "axes: {method: [full, ia3], lora_r: [8]}");
        var r = CliRunner.Run("study", "run", file);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("axes.lora_r: applies only to method lora, which is not on the method axis (full, ia3)", r.Stderr);
        Assert.Contains(file, r.Stderr);   // the file and line
        Assert.False(Directory.Exists(output));
        r = CliRunner.Run("study", "run", file, "lora_r=null", "axes.lr=[]");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("axes.lr: empty axis", r.Stderr);
    }

    [Fact]
    public void PlanPrintsTheTrialTableAndHowTheCostWasEstimated()
    {
        var dir = TestPaths.NewTempDir("study-plan");
        var file = StudyFixtures.Write(dir, Path.Combine(dir, "out"), "axes: {method: [lora, full], lr: [1.0e-3, 3.0e-3]}", StudyFixtures.Base(StudyFixtures.Data, maxSteps: 6));
        var study = Study.Load(file);
        var plan = CliRunner.Ok("study", "plan", file, "--tokens-per-second", "1000");
        Assert.Contains("Study mini: 4 trials", plan);
        foreach (var t in study.Trials) Assert.Contains(t.Id, plan);
        Assert.Contains("Estimated cost:", plan);
        Assert.Contains("throughput: 1000 tokens/s per worker, as given", plan);
        Assert.Contains("one token per byte", plan);
        Assert.False(Directory.Exists(Path.Combine(dir, "out")));   // planning writes nothing

        var quick = CliRunner.Ok("study", "plan", "--no-estimate");   // no file: the repository's quickstart
        Assert.Contains("Study quickstart", quick);
        Assert.Contains("--threads-per-worker", CliRunner.Ok("study", "run", "--help"));
    }

    [Fact]
    public void TheAssumedThroughputCountsEachFamilysOwnParameters()
    {
        // the cost estimate counted a Llama formula for every model, and 1,000,000 parameters for any other (t5-tiny)
        var file = Path.Combine(TestPaths.RepoRoot, "studies", "t5-arm.yaml");
        var study = Study.Load(file);
        var estimate = CostEstimator.Estimate(study);
        foreach (var preset in study.Trials.Select(t => t.Config.Model.Preset).Distinct())
        {
            var n = (long)TrainableModels.ParameterCount(null, preset);
            Assert.Contains(estimate.Method, m => m.Contains($"× {n:N0} parameters"));
        }
        Assert.Contains(estimate.Method, m => m.Contains($"× {(long)PeftLab.Models.T5Presets.Get("t5-tiny").ParameterCount:N0} parameters"));
        Assert.DoesNotContain(estimate.Method, m => m.Contains("× 1,000,000 parameters"));
    }

    [Fact]
    public void TheQuickstartsTokenCountUsesTheShippedBasesTokenizer()
    {
        // a pretrained preset was counted at one token per byte, 3.3x the tokens its learned BPE gives
        var study = Study.Load(Path.Combine(TestPaths.RepoRoot, "studies", "quickstart.yaml"), [$"output={Path.Combine(TestPaths.NewTempDir("qs-cost"), "out")}"]);
        var estimate = CostEstimator.Estimate(study);
        Assert.Contains(estimate.Method, m => m.StartsWith("tokens of preset mini", StringComparison.Ordinal) && m.Contains("measured with the model's tokenizer"));
        Assert.DoesNotContain(estimate.Method, m => m.Contains("one token per byte"));
    }
}
