using PeftLab.Training;

namespace PeftLab.Tests.Training;

/// <summary>T5 through the same trainer: loss curves and resume. Serial: T5 dropout draws from torch's process-wide RNG.</summary>
[Collection("study processes")]
public sealed class Seq2SeqTrainerTests
{
    private static double[] Losses(string run) =>
        RunFiles.ReadMetrics(Path.Combine(run, "metrics.jsonl")).Where(r => r["type"]!.GetValue<string>() == "step").Select(r => r["loss"]!.GetValue<double>()).ToArray();

    private static string[] Run(string data, string output, string method, params string[] extra) =>
        [.. MiniTasks.FastRun(data, output).Select(o => o == "model.preset=nano" ? "model.preset=t5-tiny" : o), $"method.name={method}", "eval.generate=false", .. extra];

    /// <summary>Fixed-seed T5 loss curves (float32, 1 thread); tolerance 2e-3 absolute as for the decoder-only curves.</summary>
    [Theory]
    [InlineData("lora", new[] { 43.4323, 32.2303, 30.9985, 30.9597, 30.4292, 31.9818 })]
    [InlineData("full", new[] { 44.5338, 27.8564, 17.7440, 12.3107, 22.8274, 19.5954 })]
    public void LossCurveRegression(string method, double[] expected)
    {
        var data = MiniTasks.Write();
        var run = TestPaths.NewTempDir();
        var result = Trainer.Run(TrainConfigLoader.Load(null, Run(data, run, method, "train.max_steps=6")));
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        var losses = Losses(run);
        Assert.Equal(expected.Length, losses.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - losses[i]) < 2e-3 * Math.Max(1, Math.Abs(expected[i]) / 10),
                $"{method} step {i + 1}: expected {expected[i]}, got {losses[i]:F4} (all: {string.Join(", ", losses.Select(l => l.ToString("F4")))})");
    }

    [Fact]
    public void InterruptedRunResumesToTheSameLosses()
    {
        var data = MiniTasks.Write();
        var reference = TestPaths.NewTempDir();
        var resumed = TestPaths.NewTempDir();
        string[] Cfg(string output) => Run(data, output, "lora", "train.max_steps=10", "checkpoint.every_steps=2");
        Trainer.Run(TrainConfigLoader.Load(null, Cfg(reference)));
        var first = Trainer.Run(TrainConfigLoader.Load(null, Cfg(resumed)), new TrainOptions { StopAfterStep = 5 });
        Assert.Equal("interrupted", RunStatuses.Name(first.Status));
        var second = Trainer.Run(TrainConfigLoader.Load(null, Cfg(resumed)), new TrainOptions { Resume = ResumeMode.Required });
        Assert.Equal("completed", RunStatuses.Name(second.Status));
        var a = Losses(reference);
        var b = Losses(resumed);
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 1e-4, $"step {i + 1}: {a[i]} vs {b[i]}");
        Assert.True(File.Exists(Path.Combine(resumed, "best", "adapter_config.json")));
        Assert.Contains("SEQ_2_SEQ_LM", File.ReadAllText(Path.Combine(resumed, "best", "adapter_config.json")));
    }
}
