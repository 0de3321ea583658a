using System.Diagnostics;
using PeftLab.Configuration;
using PeftLab.Data;
using PeftLab.Data.Batching;
using PeftLab.Models;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Training;

public sealed class TrainerTests
{
    private static double[] StepLosses(string runDir) =>
        RunFiles.ReadMetrics(Path.Combine(runDir, "metrics.jsonl")).Where(r => r["type"]!.GetValue<string>() == "step")
            .Select(r => r["loss"]!.GetValue<double>()).ToArray();

    private static RunResult Train(string data, string output, params string[] extra) =>
        Trainer.Run(TrainConfigLoader.Load(null, MiniTasks.FastRun(data, output).Concat(extra)));

    /// <summary>
    /// Fixed-seed loss curves (float32, 1 thread). Tolerance 2e-3 absolute: CPU kernels may pick other
    /// vector paths on other x86 machines; a real change of semantics moves these by far more.
    /// </summary>
    [Theory]
    [InlineData("full", new[] { 6.2330, 6.1193, 5.8618, 5.6593, 5.4809, 5.4284 })]
    [InlineData("lora", new[] { 6.2330, 6.2681, 6.2181, 6.1386, 6.0342, 5.9858 })]
    [InlineData("prompt_tuning", new[] { 6.2323, 6.3098, 6.3261, 6.2821, 6.2712, 6.2489 })]
    public void LossCurveRegression(string method, double[] expected)
    {
        var data = MiniTasks.Write();
        var run = TestPaths.NewTempDir();
        var extra = new List<string> { $"method.name={method}", "train.max_steps=6", "eval.generate=false" };
        if (method == "lora") extra.Add("method.target_modules=all-linear");
        if (method == "prompt_tuning") extra.Add("method.num_virtual_tokens=4");
        var result = Train(data, run, extra.ToArray());
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        var losses = StepLosses(run);
        Assert.Equal(expected.Length, losses.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - losses[i]) < 2e-3, $"{method} step {i + 1}: expected {expected[i]}, got {losses[i]:F4} (all: {string.Join(", ", losses.Select(l => l.ToString("F4")))})");
    }

    [Fact]
    public void KilledRunResumesWithIdenticalLosses()
    {
        var data = MiniTasks.Write();
        string[] Extra(string output) => [.. MiniTasks.FastRun(data, output), "method.name=lora", "method.dropout=0.1", "train.max_steps=40",
            "checkpoint.every_steps=2", "eval.generate=false", "eval.evals_per_run=4"];
        // the reference runs in its own process too: the thread count is process-global and parallel tests change it
        var reference = TestPaths.NewTempDir();
        CliRunner.Ok(["train", .. Extra(reference)]);
        var expected = StepLosses(reference);

        var killed = TestPaths.NewTempDir();
        var dll = Path.Combine(AppContext.BaseDirectory, "PeftLab.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("train");
        foreach (var a in Extra(killed)) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            var latest = Path.Combine(killed, "checkpoints", "latest");
            var sw = Stopwatch.StartNew();
            while (!(File.Exists(latest) && string.CompareOrdinal(File.ReadAllText(latest), "step-00000010") >= 0) && !p.HasExited && sw.Elapsed < TimeSpan.FromMinutes(3))
                Thread.Sleep(10);
            Assert.False(p.HasExited, "the run finished before it could be killed");
            p.Kill();   // SIGKILL
            p.WaitForExit();
        }
        Assert.False(File.Exists(Path.Combine(killed, "result.json")));
        var resumed = CliRunner.Run(["train", "--resume", .. Extra(killed)]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        var losses = StepLosses(killed);
        Assert.Equal(expected, losses);   // bit-identical
        var result = RunResult.Read(Path.Combine(killed, "result.json"));
        Assert.Equal("completed", RunStatuses.Name(result.Status));
    }

    [Fact]
    public void ZeroStepsScoresTheModelAsLoadedWithTheFinalEvaluation()
    {
        var data = MiniTasks.Write();
        var run = TestPaths.NewTempDir();
        var result = Train(data, run, "method.name=full", "train.max_steps=0", "eval.final=true", "data.test_instances_per_task=2");
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        Assert.Equal(0, result.Steps);
        Assert.Equal(0, result.BestStep);
        Assert.NotNull(result.Test?.RougeL);
        Assert.NotNull(result.Heldout?.RougeL);
        var metrics = RunFiles.ReadMetrics(Path.Combine(run, "metrics.jsonl"));
        Assert.DoesNotContain(metrics, r => r["type"]!.GetValue<string>() == "step");
        var eval = Assert.Single(metrics, r => r["type"]!.GetValue<string>() == "eval");
        Assert.Equal(0, eval["step"]!.GetValue<int>());
        Assert.True(File.Exists(Path.Combine(run, "eval", "test_predictions.jsonl")));
        // nothing trained, so a second zero-step run of the same seed scores exactly the same predictions
        var again = TestPaths.NewTempDir();
        Train(data, again, "method.name=full", "train.max_steps=0", "eval.final=true", "data.test_instances_per_task=2");
        Assert.Equal(File.ReadAllText(Path.Combine(run, "eval", "test_predictions.jsonl")), File.ReadAllText(Path.Combine(again, "eval", "test_predictions.jsonl")));
    }

    [Fact]
    public void PretrainDefaultsNeverReplaceWhatTheConfigFileSets()
    {
        // pretrain's own defaults (cosine, lr 1e-3, rows of 256) used to be applied after the file, silently replacing it
        var dir = TestPaths.NewTempDir();
        var file = Path.Combine(dir, "pre.yaml");
        var text = Path.Combine(dir, "x.txt");
        File.WriteAllText(text, "some text\n");
        File.WriteAllText(file, $"data: {{kind: text, path: {text}, max_length: 512}}\noptim: {{lr: 2.0e-3}}\nmodel: {{preset: nano}}\n");
        var yaml = CliRunner.Ok("pretrain", "--config", file, "--print-config", "train.seed=5");
        Assert.Contains("max_length: 512", yaml);
        Assert.Contains("lr: 0.002", yaml);
        Assert.Contains("packing: true", yaml);        // a default the file does not set still applies
        Assert.Contains("kind: cosine", yaml);
        Assert.Contains("seed: 5", yaml);              // overrides still win
        var plain = CliRunner.Ok("pretrain", "--print-config", $"data.path={text}", "model.preset=nano");
        Assert.Contains("max_length: 256", plain);
        Assert.Contains("lr: 0.001", plain);
    }

    /// <summary>
    /// PiSSA and OLoRA save a converted rank-2r adapter; the final evaluation restores the attached rank-r factors
    /// (checkpoints/best-trainable.safetensors), and the saved adapter on a fresh base computes the same logits.
    /// </summary>
    [Theory]
    [InlineData("pissa")]
    [InlineData("olora")]
    public void BaseModifyingInitsFinishWithTheirFinalEvaluation(string init)
    {
        var data = MiniTasks.Write();
        var run = TestPaths.NewTempDir();
        var result = Train(data, run, "method.name=lora", $"method.init={init}", "method.r=2", "train.max_steps=4", "eval.generate=false", "eval.final=true", "eval.max_final_instances=2");
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        Assert.NotNull(result.Test);
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "best-trainable.safetensors")));
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run, "best", "adapter_config.json")))!;
        Assert.Equal(4, json["r"]!.GetValue<int>());
    }

    /// <summary>LoRA+ through the config: B trains at lr × ratio, so after the same steps B has moved further from 0 than without it; no B → an error.</summary>
    [Fact]
    public void LoraPlusRatioSpeedsUpBAndNeedsLora()
    {
        var data = MiniTasks.Write();
        double NormOfB(string run)
        {
            using var scope = NewDisposeScope();
            using var src = PeftLab.Checkpoints.CheckpointSource.OpenFile(Path.Combine(run, "best", PeftLab.Peft.PeftModel.WeightsFile));
            return src.Names.Where(n => n.Contains("lora_B")).Sum(n => src.Read(n, ScalarType.Float32, CPU).pow(2).sum().item<float>());
        }
        string[] common = ["method.name=lora", "optim.lr=1e-3", "train.max_steps=6", "eval.generate=false", "eval.final=false", "eval.every_steps=6"];
        var plain = TestPaths.NewTempDir();
        var plus = TestPaths.NewTempDir();
        Train(data, plain, common);
        Train(data, plus, [.. common, "optim.loraplus_lr_ratio=16"]);
        Assert.True(NormOfB(plus) > 20 * NormOfB(plain), $"|B|² with LoRA+ {NormOfB(plus)} vs without {NormOfB(plain)}");
        var e = Assert.Throws<ArgumentException>(() => Train(data, TestPaths.NewTempDir(), "method.name=ia3", "optim.loraplus_lr_ratio=16", "train.max_steps=1"));
        Assert.Contains("optim.loraplus_lr_ratio", e.Message);
    }

    [Fact]
    public void AbsurdLearningRateEndsDivergedWithoutException()
    {
        var data = MiniTasks.Write();
        var run = TestPaths.NewTempDir();
        var result = Train(data, run, "method.name=full", "optim.lr=1e4", "optim.clip_norm=0", "train.max_steps=40", "eval.generate=false",
            "stability.divergence_patience=3");
        Assert.Equal("diverged", RunStatuses.Name(result.Status));
        Assert.False(string.IsNullOrEmpty(result.Reason));
        Assert.True(result.DivergedAtStep!.Value < 40);
        var saved = RunResult.Read(Path.Combine(run, "result.json"));
        Assert.Equal("diverged", RunStatuses.Name(saved.Status));
        Assert.Contains(StepLosses(run), double.IsFinite);
    }

    [Fact]
    public void GradientAccumulationEqualsOneLargeBatch()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Llama);
        var rng = new Random(1);
        var examples = Enumerable.Range(0, 4).Select(i =>
        {
            int n = 5 + 3 * i;
            var ids = Enumerable.Range(0, n).Select(_ => rng.Next(3, 64)).ToArray();
            return new MaskedSequence(ids, ids.Select((_, j) => j >= n / 2).ToArray());
        }).ToArray();
        Dictionary<string, Tensor> Grads(int batchSize)
        {
            foreach (var p in model.parameters()) p.grad = null;
            var batches = new Batcher(new BatchingConfig { BatchSize = batchSize, MaxLength = 64, Shuffle = false }).Batches(examples).Batches;
            long total = batches.Sum(b => b.Labels.Where((l, k) => k % b.Length != 0 && l != TokenBatch.IgnoreIndex).LongCount());
            foreach (var b in batches) (new DecoderOnlyModel(model).BatchLoss(b, out _) / total).backward();
            return model.named_parameters().ToDictionary(x => x.name, x => x.parameter.grad!.clone());
        }
        var one = Grads(4);
        var accumulated = Grads(2);
        foreach (var (name, g) in one)
            Assert.True(Fixtures.MaxAbsDiff(g, accumulated[name]) < 1e-6, $"{name}: {Fixtures.MaxAbsDiff(g, accumulated[name])}");
    }

    [Fact]
    public void Bfloat16TrainingTracksFloat32()
    {
        var data = MiniTasks.Write();
        foreach (var method in new[] { "full", "lora" })
        {
            var f32 = TestPaths.NewTempDir();
            var bf16 = TestPaths.NewTempDir();
            Train(data, f32, $"method.name={method}", "train.max_steps=8", "eval.generate=false");
            Train(data, bf16, $"method.name={method}", "train.max_steps=8", "eval.generate=false", "model.dtype=bfloat16");
            var a = StepLosses(f32);
            var b = StepLosses(bf16);
            // stated tolerance: 0.05 nats per step (bf16 has ~3 significant digits)
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 0.05, $"{method} step {i + 1}: f32 {a[i]:F4} bf16 {b[i]:F4}");
            Assert.True(b[^1] < b[0], $"{method}: bf16 loss did not decrease");
            Assert.Equal(ComputeDtype.Float32, RunResult.Read(Path.Combine(f32, "result.json")).Cost!.Dtype);
            Assert.Equal(ComputeDtype.Bfloat16, RunResult.Read(Path.Combine(bf16, "result.json")).Cost!.Dtype);
        }
    }

    [Fact]
    public void AutoPrecisionTrainsInThisHostsFasterOneAndRecordsIt()
    {
        var data = MiniTasks.Write();
        var run = TestPaths.NewTempDir();
        var result = Train(data, run, "method.name=lora", "train.max_steps=2", "eval.generate=false", "model.dtype=auto");
        var expected = ComputeDtypes.Of(ComputeDtypes.Choose(PeftLab.Runtime.HostPrecision.Rates));
        Assert.Equal(expected, result.Cost!.Dtype);
        Assert.Equal(expected, RunResult.Read(Path.Combine(run, "result.json")).Cost!.Dtype);
        // the resolved config a run writes keeps auto as given; result.json says what ran
        Assert.Contains("dtype: auto", TrainConfigLoader.ToYaml(TrainConfigLoader.Load(null, MiniTasks.FastRun(data, run).Append("model.dtype=auto"))));
    }

    [Theory]
    [InlineData("optim.lrr=0.1", "optim.lrr: unknown key", "did you mean 'lr'")]
    [InlineData("train.batch_size=many", "train.batch_size", "many")]
    [InlineData("optim.lr=0", "optim.lr: must be > 0 (got 0)", "")]
    [InlineData("method.name=lorra", "method.name", "lora")]
    [InlineData("data.path=/nonexistent/folder", "data.path: folder '/nonexistent/folder' does not exist", "")]
    public void BadConfigsFailWithKeyPath(string bad, string expected1, string expected2)
    {
        var overrides = new[] { "model.preset=nano", "data.path=" + TestPaths.SuperNi, bad };
        var e = Assert.Throws<ConfigException>(() => TrainConfigLoader.Load(null, overrides));
        Assert.Contains(expected1, e.Message);
        Assert.Contains(expected2, e.Message);
    }

    [Fact]
    public void CliReportsBadConfigClearly()
    {
        var r = CliRunner.Run("train", "model.preset=nano", "optim.lr=-1", "data.path=/nope");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("optim.lr: must be > 0", r.Stderr);
        Assert.Contains("data.path:", r.Stderr);
    }
}

public sealed class ScheduleAndSignalTests
{
    [Fact]
    public void SchedulesAreThePureFunctionsTheyClaim()
    {
        Assert.Equal(0.25, LrSchedule.At(ScheduleKind.Linear, 1.0, 0, 10, 4), 12);
        Assert.Equal(1.0, LrSchedule.At(ScheduleKind.Linear, 1.0, 4, 10, 4), 12);
        Assert.Equal(0.5, LrSchedule.At(ScheduleKind.Linear, 1.0, 7, 10, 4), 12);
        Assert.Equal(1.0, LrSchedule.At(ScheduleKind.Constant, 1.0, 9, 10, 4), 12);
        Assert.Equal(0.5, LrSchedule.At(ScheduleKind.Cosine, 1.0, 7, 10, 4), 12);
        Assert.Equal(3, LrSchedule.WarmupSteps(0, 0.03, 100));
        Assert.Equal(7, LrSchedule.WarmupSteps(7, 0.03, 100));
    }

    /// <summary>
    /// A healthy LoRA run of the quickstart (lr 1e-3, r 8, seed 42; its 192 step losses as logged): under length
    /// grouping single batches reach 1.7× their neighbours at steps 82, 123, 154 and 187 in every method alike. The
    /// single-batch rule called those 4 spikes, and most runs of the study "spiking"; the windowed rule finds none.
    /// </summary>
    [Fact]
    public void LengthGroupedOutlierBatchesOfAHealthyRunAreNotSpikes()
    {
        double[] series =
        [
            8.09, 6.26, 8.37, 8.43, 7.10, 7.09, 8.86, 5.98, 7.25, 6.37, 6.49, 5.34, 4.65, 6.03, 6.57, 6.39, 5.80, 6.27, 4.22, 5.25,
            5.58, 5.01, 3.72, 5.23, 5.29, 3.37, 4.55, 3.40, 4.23, 3.64, 3.30, 3.05, 3.32, 2.14, 1.02, 3.19, 3.92, 3.88, 3.38, 2.90,
            3.26, 1.88, 3.38, 1.59, 4.30, 2.72, 3.03, 1.80, 2.40, 2.70, 2.98, 2.28, 2.56, 2.65, 3.36, 3.46, 3.54, 2.26, 1.76, 3.14,
            3.77, 2.78, 2.86, 3.19, 1.63, 2.78, 3.32, 2.57, 2.51, 1.45, 3.20, 2.97, 2.91, 2.47, 3.39, 3.04, 2.81, 1.93, 2.55, 2.55,
            2.13, 4.30, 3.36, 2.54, 1.90, 2.48, 2.42, 2.21, 2.85, 3.04, 3.32, 2.22, 2.51, 2.08, 2.65, 2.44, 3.55, 3.11, 2.93, 2.13,
            2.95, 2.50, 2.44, 2.05, 3.31, 3.35, 2.11, 2.11, 2.65, 3.40, 2.62, 2.27, 3.05, 1.93, 1.96, 2.39, 2.05, 2.13, 2.75, 2.16,
            2.54, 2.71, 3.96, 2.60, 2.40, 1.38, 2.69, 3.32, 1.91, 2.34, 2.03, 2.07, 2.65, 1.41, 2.58, 2.02, 2.33, 2.35, 2.84, 2.40,
            2.60, 2.72, 2.40, 2.89, 1.60, 2.33, 3.30, 2.72, 3.42, 2.94, 0.75, 2.45, 2.74, 4.07, 1.89, 2.14, 1.26, 2.76, 1.78, 1.59,
            2.36, 3.25, 2.80, 2.16, 1.82, 2.39, 2.60, 1.69, 1.95, 2.21, 2.46, 1.88, 2.58, 1.97, 3.25, 3.16, 2.57, 2.73, 2.45, 1.80,
            1.82, 1.57, 2.91, 2.95, 2.10, 1.83, 3.53, 0.77, 2.05, 2.91, 2.47, 2.57,
        ];
        var losses = series.Select((l, i) => (i + 1, l)).ToArray();
        Assert.Equal([82, 123, 154, 187], LearningSignals.Spikes(losses, 1.5, window: 1));
        Assert.Empty(LearningSignals.Spikes(losses, 1.5));
        // The same run with a real excursion (the loss × 2.2 for 5 steps from step 100) has exactly that spike.
        var broken = losses.Select(p => p.Item1 is >= 100 and < 105 ? (p.Item1, p.l * 2.2) : p).ToArray();
        Assert.Equal([100], LearningSignals.Spikes(broken, 1.5));
    }

    [Fact]
    public void SpikesDivergenceAndLearningSpeed()
    {
        var losses = new[] { 5.0, 4.8, 4.6, 4.5, 4.4, 4.3, 9.0, 4.2, 4.1 }.Select((l, i) => (i + 1, l)).ToArray();
        Assert.Empty(LearningSignals.Spikes(losses, 1.5));                       // one outlier batch: not a spike
        Assert.Equal([7], LearningSignals.Spikes(losses, 1.5, window: 1));       // ... unless a single step is enough
        var jump = new[] { 5.0, 4.8, 4.6, 4.5, 4.4, 4.3, 10, 10, 10, 4.2, 4.1, 4.0, 3.9, 3.8 }.Select((l, i) => (i + 1, l)).ToArray();
        Assert.Equal([7], LearningSignals.Spikes(jump, 1.5));                    // three steps up: one spike, where it starts
        Assert.Null(LearningSignals.Divergence(losses.Select(x => x.l).ToArray(), 4, 3));
        Assert.Contains("NaN", LearningSignals.Divergence([1, 2, double.NaN], 4, 3));
        Assert.NotNull(LearningSignals.Divergence([1, 5, 6, 7, 8], 4, 3, window: 1));
        Assert.Null(LearningSignals.Divergence([1, 5, 6, 7, 8], 4, 3));   // means 1, 3, 4, 4.75, 5.4: above 4 for two steps only
        // Length grouping: one batch of short targets at a fifth of the typical loss must not become the yardstick
        // (a minimum over single batches, 0.3, puts every later 1.4 above 4x it and flagged this healthy run).
        double[] grouped = [.. Enumerable.Repeat(1.5, 30), 0.3, .. Enumerable.Repeat(1.4, 40)];
        Assert.NotNull(LearningSignals.Divergence(grouped, 4, 20, window: 1));
        Assert.Null(LearningSignals.Divergence(grouped, 4, 20));
        // A real divergence still stops the run: the mean climbs from 1.0 to 8 and stays there.
        double[] diverging = [.. Enumerable.Repeat(1.0, 30), .. Enumerable.Repeat(8.0, 40)];
        Assert.Contains("above 4x its lowest (1)", LearningSignals.Divergence(diverging, 4, 20));
        var curve = new (int, long, double)[] { (10, 100, 20), (20, 200, 40), (30, 300, 48), (40, 400, 50) };
        var hits = LearningSignals.StepsToFraction(curve, [0.5, 0.8, 0.95]);
        Assert.Equal(20, hits[0.5]!.Value.Step);
        Assert.Equal(20, hits[0.8]!.Value.Step);    // 40 >= 0.8 * 50
        Assert.Equal(30, hits[0.95]!.Value.Step);   // 48 >= 47.5
        Assert.Equal((10 * 20 + 10 * 30 + 10 * 44 + 10 * 49) / 40.0, LearningSignals.AreaUnderCurve(curve.Select(c => (c.Item1, c.Item3)).ToArray(), 40), 9);
    }
}
