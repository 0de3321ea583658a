using System.Text.Json.Nodes;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Tokenization;
using PeftLab.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace PeftLab.Tests.Real;

/// <summary>
/// The real pretrained stories260K model (TinyStories weights, its own sentencepiece BPE vocabulary) through the
/// commands a user runs: generate, train (LoRA, adapter, full) with the untuned model as the baseline, merge and
/// reload, eval, and bf16 against fp32. The measured differences are printed (test output) for the record.
/// </summary>
[Collection("study processes")]
public sealed class RealWeightsTests(ITestOutputHelper output)
{
    private static readonly Lazy<string> Data = new(() => StoryTasks.Write());

    private const string Story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";

    [Fact]
    public void GreedyGenerationReproducesTheOriginalProgram()
    {
        var stdout = CliRunner.Ok(["generate", "--model", StoryTasks.Model, "--prompt", "Once upon a time", "--max-new-tokens", "40", "--threads", "1"]);
        Assert.StartsWith(", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.", stdout.Trim());
    }

    [Fact]
    public void Bf16LogitsStayCloseToFp32OnRealWeights()
    {
        using var scope = NewDisposeScope();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var ids = tok.Encode(Story, addSpecialTokens: true);
        var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
        using var fp32 = HfModel.Load(StoryTasks.Model);
        using var bf16 = HfModel.Load(StoryTasks.Model, ScalarType.BFloat16);
        Tensor a, b;
        using (no_grad()) { a = fp32.Forward(input); b = bf16.Forward(input).to_type(ScalarType.Float32); }
        double maxDiff = (a - b).abs().max().item<float>();
        double range = (a.max() - a.min()).item<float>();
        double agree = a.argmax(-1).eq(b.argmax(-1)).to_type(ScalarType.Float32).mean().item<float>();
        output.WriteLine($"stories260K bf16 vs fp32 over {ids.Length} positions: max |logit diff| {maxDiff:F4} (logit range {range:F1}), top-1 agreement {agree:P1}");
        Assert.True(maxDiff < 0.05 * range, $"max diff {maxDiff} vs range {range}");
        Assert.True(agree >= 0.9, $"top-1 agreement {agree}");
    }

    /// <summary>Mean next-token cross entropy over the target tokens (and EOS) of the run's seen-task held-out instances.</summary>
    private static double HeldOutLoss(TrainConfig cfg, string model, string? adapter)
    {
        using var scope = NewDisposeScope();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var heldOut = TrainingData.Build(cfg.Data, tok, cfg.Train.Seed).HeldOut!.Examples;
        using var lm = HfModel.Load(model);
        if (adapter is not null) PeftModel.LoadAdapter(lm, adapter);
        lm.eval();
        double sum = 0;
        long count = 0;
        using (no_grad())
            foreach (var e in heldOut)
            {
                var source = tok.Encode(e.Source);
                int[] ids = [.. source, .. tok.Encode(e.Target), tok.EosIds[0]];
                var logits = lm.Forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]))[0];
                int n = ids.Length - source.Length;   // predicted from positions source.Length-1 .. end-1
                var targets = tensor(ids[source.Length..].Select(i => (long)i).ToArray());
                sum += nn.functional.cross_entropy(logits.narrow(0, source.Length - 1, n), targets, reduction: nn.Reduction.Sum).item<float>();
                count += n;
            }
        return sum / count;
    }

    [Theory]
    [InlineData("lora", 3e-3, "method.r=16")]
    [InlineData("adapter", 1e-2, "method.size=16")]
    [InlineData("full", 1e-3, "schedule.kind=constant")]
    public void TuningInItsOwnDomainBeatsTheUntunedModel(string method, double lr, string knob)
    {
        var untuned = Trainer.Run(TrainConfigLoader.Load(null, [.. StoryTasks.Run(Data.Value, TestPaths.NewTempDir("real-untuned"), "full", 0)]));
        var dir = TestPaths.NewTempDir($"real-{method}");
        var cfg = TrainConfigLoader.Load(null, [.. StoryTasks.Run(Data.Value, dir, method, method == "full" ? 100 : 160), $"optim.lr={lr}", knob, .. (method == "lora" ? ["method.target_modules=all-linear", "method.alpha=32"] : Array.Empty<string>())]);
        var tuned = Trainer.Run(cfg);
        double lossBefore = HeldOutLoss(cfg, StoryTasks.Model, null);
        var best = Path.Combine(dir, "best");
        double lossAfter = method == "full" ? HeldOutLoss(cfg, best, null) : HeldOutLoss(cfg, StoryTasks.Model, best);
        Assert.Equal("completed", RunStatuses.Name(tuned.Status));
        var losses = RunFiles.ReadMetrics(Path.Combine(dir, "metrics.jsonl")).Where(r => r["type"]!.GetValue<string>() == "step").Select(r => r["loss"]!.GetValue<double>()).ToArray();
        double first = losses.Take(10).Average(), last = losses.TakeLast(10).Average();
        double before = untuned.Heldout!.ExactMatch, after = tuned.Heldout!.ExactMatch;
        double testBefore = untuned.Test!.ExactMatch, testAfter = tuned.Test!.ExactMatch;
        double rougeBefore = untuned.Heldout.RougeL, rougeAfter = tuned.Heldout.RougeL;
        output.WriteLine($"stories260K {method} lr {lr}: held-out ROUGE-L {rougeBefore:F1} untuned -> {rougeAfter:F1} tuned, exact match {before:F1} -> {after:F1}; unseen-task exact match {testBefore:F1} -> {testAfter:F1}; training loss (mean of 10 steps) {first:F3} -> {last:F3}; held-out target loss {lossBefore:F3} -> {lossAfter:F3} nats/token");
        Assert.True(lossAfter < 0.5 * lossBefore, $"held-out loss {lossBefore} -> {lossAfter}");
        Assert.True(last < 0.5 * first, $"training loss {first} -> {last}");
        Assert.True(rougeAfter >= rougeBefore + 20, $"held-out ROUGE-L {rougeBefore} -> {rougeAfter}");
    }

    private static Tensor Logits(string model, string? adapter, int[] ids)
    {
        using var lm = HfModel.Load(model);
        if (adapter is not null) PeftModel.LoadAdapter(lm, adapter);
        lm.eval();
        using (no_grad()) return lm.Forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length])).detach().MoveToOuterDisposeScope();
    }

    [Theory]
    [InlineData("lora", 3e-3, "method.r=16", "method.target_modules=all-linear")]
    [InlineData("ia3", 3e-2, "schedule.warmup_steps=1", "eval.generate=false")]
    public void MergedThenReloadedGivesTheAdaptersOutputs(string method, double lr, string knob1, string knob2)
    {
        var run = TestPaths.NewTempDir($"real-merge-{method}");
        Trainer.Run(TrainConfigLoader.Load(null, [.. StoryTasks.Run(Data.Value, run, method, 20), $"optim.lr={lr}", knob1, knob2, "eval.final=false"]));
        var adapter = Path.Combine(run, "best");
        var merged = Path.Combine(TestPaths.NewTempDir("real-merged"), "m");
        CliRunner.Ok(["merge", "--model", StoryTasks.Model, "--adapter", adapter, "--out", merged]);
        using var scope = NewDisposeScope();
        using var tok = HfTokenizer.Load(merged);
        var ids = tok.Encode(Story, addSpecialTokens: true);
        var unmerged = Logits(StoryTasks.Model, adapter, ids);
        var reloaded = Logits(merged, null, ids);
        var untouched = Logits(StoryTasks.Model, null, ids);
        double diff = (unmerged - reloaded).abs().max().item<float>();
        double moved = (unmerged - untouched).abs().max().item<float>();
        output.WriteLine($"stories260K {method}: merged-and-reloaded vs unmerged adapter max |logit diff| {diff:E2}; the adapter moves logits by up to {moved:F3}");
        Assert.True(moved > 1e-3, "the adapter changed nothing, so the comparison would prove nothing");
        Assert.True(diff < 1e-4, $"max diff {diff}");
    }

    [Fact]
    public void EvalOnTheTestSplitScoresTheTunedAdapter()
    {
        var run = TestPaths.NewTempDir("real-eval");
        Trainer.Run(TrainConfigLoader.Load(null, [.. StoryTasks.Run(Data.Value, run, "adapter", 60), "optim.lr=1e-2", "method.size=16", "eval.final=false"]));
        var outDir = TestPaths.NewTempDir("real-eval-out");
        var stdout = CliRunner.Ok(["eval", "--model", StoryTasks.Model, "--adapter", Path.Combine(run, "best"), "--tasks", Data.Value, "--split", "test",
            "--limit", "16", "--max-new-tokens", "6", "--out", outDir, "--threads", "1"]);
        output.WriteLine("stories260K eval (adapter, 60 steps): " + stdout.Trim().Replace('\n', ' '));
        var scores = Directory.GetFiles(outDir, "*scores.json", SearchOption.AllDirectories);
        Assert.NotEmpty(scores);
        var score = JsonNode.Parse(File.ReadAllText(scores[0]))!;
        Assert.True(score["rougeL"]!.GetValue<double>() > 20, score.ToJsonString());
        var predictions = Directory.GetFiles(outDir, "*predictions.jsonl", SearchOption.AllDirectories);
        var rescored = CliRunner.Ok(["score", "--predictions", predictions[0], "--tasks", Data.Value, "--instances-per-task", "16"]);
        Assert.Equal(score["rougeL"]!.GetValue<double>(), JsonNode.Parse(rescored)!["rougeL"]!.GetValue<double>(), 6);   // score agrees with eval
    }

    [Fact]
    public void ATwoTrialStudyRunsOnTheRealModelWithItsUntunedBaseline()
    {
        var dir = TestPaths.NewTempDir("real-study");
        var outDir = Path.Combine(dir, "out");
        var study = Path.Combine(dir, "study.yaml");
        File.WriteAllText(study, $$"""
            name: real-stories
            output: {{outDir}}
            base:
              model: {path: {{StoryTasks.Model}}}
              data: {path: {{Data.Value}}, max_source_tokens: 200, max_target_tokens: 8, max_length: 216, train_instances_per_task: 32, held_out_instances_per_task: 8, validation_tasks: 0, test_instances_per_task: 8, num_positive_examples: 0}
              train: {batch_size: 8, threads: 1, max_steps: 160}
              schedule: {warmup_steps: 2}
              eval: {evals_per_run: 1, max_new_tokens: 6, generate: false, final: true, batch_size: 16}
            axes:
              method: [lora, adapter]
            method_axes:
              lora: {lr: [3.0e-3]}
              adapter: {lr: [1.0e-2]}
            method_overrides:
              lora: {method.target_modules: all-linear, method.r: 16, method.alpha: 32}
              adapter: {method.size: 16}
            baseline: true
            executor: {workers: 1}
            """);
        CliRunner.Ok(["study", "run", study]);
        var rows = CliRunner.Ok(["study", "results", outDir, "--format", "jsonl"]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(["lora", "adapter", "untuned"], rows.Select(r => r["method"]!.GetValue<string>()));
        Assert.All(rows, r => Assert.Equal("done", r["state"]!.GetValue<string>()));
        var untuned = rows[2]["heldout_rougeL"]!.GetValue<double>();
        foreach (var r in rows[..2])
        {
            output.WriteLine($"stories260K study: {r["method"]} held-out ROUGE-L {r["heldout_rougeL"]} vs untuned {untuned}");
            Assert.True(r["heldout_rougeL"]!.GetValue<double>() > untuned, r.ToJsonString());
        }
    }
}
