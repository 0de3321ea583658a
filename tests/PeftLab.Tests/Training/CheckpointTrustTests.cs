using PeftLab.Training;

namespace PeftLab.Tests.Training;

/// <summary>Damaged checkpoints are passed over with a warning, the pointer stays inside the run, and one run holds a folder.</summary>
public sealed class CheckpointTrustTests
{
    private static readonly string Data = MiniTasks.Write();

    private static string[] Cfg(string output) => [.. MiniTasks.FastRun(Data, output), "method.name=lora", "train.max_steps=8",
        "checkpoint.every_steps=2", "checkpoint.keep=3", "eval.generate=false", "eval.evals_per_run=2"];

    /// <summary>A run stopped after step 6, with checkpoints at steps 2, 4 and 6.</summary>
    private static RunFiles Interrupted()
    {
        var dir = TestPaths.NewTempDir("ckpt-trust");
        var result = Trainer.Run(TrainConfigLoader.Load(null, Cfg(dir)), new TrainOptions { StopAfterStep = 6 });
        Assert.Equal("interrupted", RunStatuses.Name(result.Status));
        var files = new RunFiles(dir);
        Assert.Equal(["step-00000002", "step-00000004", "step-00000006"], Directory.GetDirectories(files.Checkpoints).Select(Path.GetFileName).Order());
        return files;
    }

    private static (RunResult Result, List<string> Warnings) Resume(RunFiles files, ResumeMode mode = ResumeMode.Required)
    {
        var warnings = new List<string>();
        var result = Trainer.Run(TrainConfigLoader.Load(null, Cfg(files.Dir)), new TrainOptions { Resume = mode, Warning = warnings.Add });
        return (result, warnings);
    }

    private static int[] Steps(RunFiles files) => RunFiles.ReadMetrics(files.Metrics).Where(r => r["type"]!.GetValue<string>() == "step")
        .Select(r => r["step"]!.GetValue<int>()).ToArray();

    private static string Ckpt(RunFiles files, int step) => Path.Combine(files.Checkpoints, $"step-{step:D8}");

    public static TheoryData<string, string> Damage => new()
    {
        { "truncated state.json", "state.json" },
        { "truncated weights", "trainable.safetensors" },
        { "flipped byte in the weights", "trainable.safetensors" },
        { "flipped byte in the optimizer state", "optimizer.safetensors" },
        { "missing optimizer state", "optimizer.safetensors" },
        { "missing manifest and broken state.json", "state.json" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void ADamagedNewestCheckpointFallsBackToThePreviousIntactOne(string damage, string file)
    {
        var files = Interrupted();
        var path = Path.Combine(Ckpt(files, 6), file);
        switch (damage)
        {
            case "truncated state.json" or "truncated weights":
                using (var f = File.OpenWrite(path)) f.SetLength(f.Length / 2);
                break;
            case "missing optimizer state":
                File.Delete(path);
                break;
            case "missing manifest and broken state.json":
                File.Delete(Path.Combine(Ckpt(files, 6), CheckpointManifest.FileName));
                File.WriteAllText(path, "{\"step\": 6, \"epo");
                break;
            default:
                var bytes = File.ReadAllBytes(path);
                bytes[^3] ^= 0x40;
                File.WriteAllBytes(path, bytes);
                break;
        }
        var (result, warnings) = Resume(files);
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        var w = Assert.Single(warnings);
        Assert.StartsWith("checkpoint step-00000006 skipped: ", w);
        Assert.Contains(file, w);
        Assert.Contains(w, result.Warnings);
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], Steps(files));   // steps 5 and 6 re-run from the step-4 checkpoint, once each
    }

    [Fact]
    public void ACheckpointNewerThanTheOneResumedFromIsNeverResumedLater()
    {
        // a kill between completing step-6's folder and moving the pointer leaves latest = step-4 beside step-6; the
        // next attempt resumes from step 4 (dropping steps 5-6 from metrics.jsonl) and, with keep = 1, must not leave
        // step-6 as the only folder for the attempt after it
        var dir = TestPaths.NewTempDir("ckpt-stale");
        var files = new RunFiles(dir);
        string[] Keep1(string output) => [.. Cfg(output), "checkpoint.keep=1"];
        Trainer.Run(TrainConfigLoader.Load(null, Keep1(dir)), new TrainOptions { StopAfterStep = 4 });
        var aside = Path.Combine(TestPaths.NewTempDir("ckpt-aside"), "step-4");
        CopyDirectory(Ckpt(files, 4), aside);
        Trainer.Run(TrainConfigLoader.Load(null, Keep1(dir)), new TrainOptions { Resume = ResumeMode.Required, StopAfterStep = 6 });
        Assert.Equal(["step-00000006"], Directory.GetDirectories(files.Checkpoints).Select(Path.GetFileName));
        CopyDirectory(aside, Ckpt(files, 4));
        File.WriteAllText(files.Latest, "step-00000004");

        // resumed from step 4 and stopped at once (an orphaned study worker): it checkpoints step 4 again
        using (var cancelled = new CancellationTokenSource())
        {
            cancelled.Cancel();
            var stopped = Trainer.Run(TrainConfigLoader.Load(null, Keep1(dir)), new TrainOptions { Resume = ResumeMode.Required, Cancel = cancelled.Token });
            Assert.Equal("interrupted", RunStatuses.Name(stopped.Status));
        }
        Assert.Equal(["step-00000004"], Directory.GetDirectories(files.Checkpoints).Select(Path.GetFileName));
        Assert.Equal([1, 2, 3, 4], Steps(files));

        var warnings = new List<string>();
        var result = Trainer.Run(TrainConfigLoader.Load(null, Keep1(dir)), new TrainOptions { Resume = ResumeMode.Required, Warning = warnings.Add });
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        Assert.Empty(warnings);
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], Steps(files));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    [Theory]
    [InlineData("../../..")]
    [InlineData("/etc")]
    [InlineData("step-00000006/../../..")]
    [InlineData("")]
    public void ALatestPointerOutsideTheRunIsIgnored(string pointer)
    {
        var files = Interrupted();
        File.WriteAllText(files.Latest, pointer);
        var (result, warnings) = Resume(files);
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        Assert.Contains(warnings, w => w.Contains("not a checkpoint folder of this run; ignored"));
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], Steps(files));   // resumed from the newest folder, step 6
    }

    [Fact]
    public void ResumeWithoutACheckpointIsAnErrorUnlessAskedToStart()
    {
        var files = new RunFiles(TestPaths.NewTempDir("ckpt-none"));
        var e = Assert.Throws<InvalidDataException>(() => Resume(files));
        Assert.Contains("--resume: no intact checkpoint", e.Message);
        Assert.Contains("has not reached its first checkpoint", e.Message);
        Assert.Contains("--resume-or-start", e.Message);

        var (result, warnings) = Resume(files, ResumeMode.IfPresent);
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        Assert.Empty(warnings);
    }

    [Fact]
    public void WhenEveryCheckpointIsDamagedTheErrorListsEachReason()
    {
        var files = Interrupted();
        foreach (var step in new[] { 2, 4, 6 })
            File.WriteAllText(Path.Combine(Ckpt(files, step), "state.json"), "");
        var e = Assert.Throws<InvalidDataException>(() => Resume(files));
        foreach (var step in new[] { 2, 4, 6 }) Assert.Contains($"checkpoint step-{step:D8} skipped: state.json", e.Message);

        var (result, warnings) = Resume(files, ResumeMode.IfPresent);
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        Assert.Contains("no intact checkpoint: starting from step 0", warnings);
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], Steps(files));
    }

    [Fact]
    public void TheCliSaysWhyResumeFailed()
    {
        var dir = TestPaths.NewTempDir("ckpt-cli");
        var r = CliRunner.Run(["train", "--resume", .. Cfg(dir)]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("error: --resume: no intact checkpoint", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void ASecondRunIntoTheSameFolderIsRefusedWhileTheFirstHoldsIt()
    {
        var dir = TestPaths.NewTempDir("ckpt-lock");
        var files = new RunFiles(dir);
        using (RunLock.Acquire(files))
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var e = Assert.Throws<IOException>(() => Trainer.Run(TrainConfigLoader.Load(null, Cfg(dir)), new TrainOptions { LockWait = TimeSpan.FromSeconds(1) }));
            Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1), "it waited for the holder first");
            Assert.Contains($"{dir} is in use by another training run", e.Message);
            Assert.False(File.Exists(files.Metrics));   // refused before writing anything
        }
        var result = Trainer.Run(TrainConfigLoader.Load(null, Cfg(dir)));   // released: the next run proceeds
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        Assert.False(File.Exists(files.Lock));
    }
}

public sealed class RunFolderReuseTests
{
    [Fact]
    public void ASecondFreshRunIntoAFinishedFolderRewritesItsMetricsCleanly()
    {
        var data = MiniTasks.Write();
        var dir = TestPaths.NewTempDir("rerun");
        string[] cfg = [.. MiniTasks.FastRun(data, dir), "method.name=lora", "train.max_steps=4", "eval.generate=false"];
        Trainer.Run(TrainConfigLoader.Load(null, cfg));
        Trainer.Run(TrainConfigLoader.Load(null, cfg));
        var text = File.ReadAllText(new RunFiles(dir).Metrics);
        Assert.DoesNotContain('\0', text);
        Assert.Equal([1, 2, 3, 4], RunFiles.ReadMetrics(new RunFiles(dir).Metrics).Where(r => r["type"]!.GetValue<string>() == "step").Select(r => r["step"]!.GetValue<int>()));
    }
}
