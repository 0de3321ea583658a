using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.AdaLora;
using PeftLab.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>
/// AdaLoRA: the budget schedule and the pruning against PEFT's formulas, the regulariser against a direct
/// computation, PEFT's file format with a rank pattern built by hand, and real runs (allocation, resume, reload).
/// </summary>
public sealed class AdaLoraTests
{
    private const string Prefix = "base_model.model.";

    [Theory]
    // initial 36, target 24, tinit 10, tfinal 20, total 100: cubic between steps 10 and 80
    [InlineData(0, 36, false)]
    [InlineData(10, 36, false)]
    [InlineData(11, 35, true)]        // 12 · (1 − 1/70)³ + 24 = 35.49 → 35
    [InlineData(45, 25, true)]        // 12 · 0.5³ + 24 = 25.5 → 25
    [InlineData(80, 24, true)]        // 12 · 0 + 24
    [InlineData(81, 24, true)]        // final fine-tuning: the target
    [InlineData(99, 24, true)]
    public void TheBudgetFollowsPeftsCubicSchedule(int step, int budget, bool mask)
    {
        Assert.Equal((budget, mask), RankAllocator.Budget(step, 36, 24, tinit: 10, tfinal: 20, total: 100, deltaT: 1));
    }

    [Fact]
    public void PruningStepsFollowDeltaT()
    {
        Assert.True(RankAllocator.Budget(30, 36, 24, 10, 20, 100, deltaT: 5).Mask);
        Assert.False(RankAllocator.Budget(31, 36, 24, 10, 20, 100, deltaT: 5).Mask);
    }

    [Fact]
    public void TheRegulariserIsTheMeanFrobeniusDistanceFromOrthonormality()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[,] { { 1, 0, 0 }, { 0, 2, 0 } });   // AAᵀ = diag(1, 4): ‖· − I‖ = 3
        Assert.Equal(3.0, RankAllocator.OrthPenalty(a.matmul(a.t())).item<float>(), 5);
        var b = tensor(new float[,] { { 1, 1 }, { 0, 0 } });          // BᵀB = [[1,1],[1,1]]: ‖[[0,1],[1,0]]‖ = √2
        Assert.Equal(Math.Sqrt(2), RankAllocator.OrthPenalty(b.t().matmul(b)).item<float>(), 5);

        var model = TinyModels.Create(TinyModels.Llama);
        var config = new AdaLoraConfig { TargetR = 2, InitR = 3, OrthRegWeight = 0.3 };
        var peft = PeftModel.Apply(model, config);
        using var hook = peft.Method.TrainingHook(peft.Host, config, 10)!;
        var layers = AdaLoraMethod.Layers(peft.Host);
        double expected = layers.Average(l =>
        {
            var (la, _, lb) = l.Layer.Factors;
            double pa = (la.matmul(la.t()) - eye(3)).pow(2).sum().sqrt().item<float>();
            double pb = (lb.t().matmul(lb) - eye(3)).pow(2).sum().sqrt().item<float>();
            return (pa + pb) / 2;
        });
        Assert.Equal(0.3 * expected, hook.ExtraLoss()!.item<float>(), 4);
    }

    [Fact]
    public void MaskingKeepsTheBudgetHighestScoringRanksAcrossLayers()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Llama);
        var config = new AdaLoraConfig { TargetR = 2, InitR = 4, Beta1 = 0.5, Beta2 = 0.5 };
        var peft = PeftModel.Apply(model, config);
        var allocator = (RankAllocator)peft.Method.TrainingHook(peft.Host, config, 10)!;
        var layers = AdaLoraMethod.Layers(peft.Host);
        using (no_grad())
            foreach (var (_, layer) in layers) layer.Factors.E.copy_(randn(4, 1, generator: new Generator(1, CPU)));
        var ids = TinyModels.Tokens(2, 6, TinyModels.Llama.VocabSize);
        TinyModels.LmLoss(peft.Model.Forward(ids), ids).backward();
        allocator.AfterStep(1);                                      // step 1 > tinit 0: update statistics, prune to the cubic budget
        var (budget, mask) = RankAllocator.Budget(1, allocator.InitialBudget, allocator.TargetBudget, 0, 0, 10, 1);
        Assert.True(mask);
        var scores = allocator.RankScores();
        // exactly the `budget` highest triplet scores survive, wherever they are
        var all = scores.SelectMany((s, i) => s.data<float>().ToArray().Select((v, r) => (v, i, r))).OrderByDescending(x => x.v).ToArray();
        var keptSet = all.Take(budget).Select(x => (x.i, x.r)).ToHashSet();
        for (int i = 0; i < layers.Count; i++)
            for (int r = 0; r < 4; r++)
            {
                Assert.Equal(keptSet.Contains((i, r)), layers[i].Layer.Kept[r]);
                if (!layers[i].Layer.Kept[r]) Assert.Equal(0f, layers[i].Layer.Factors.E[r, 0].item<float>());
            }
        Assert.Equal(budget, layers.Sum(l => l.Layer.Kept.Count(k => k)));
        Assert.True(budget < allocator.InitialBudget);
    }

    /// <summary>PEFT's ADALORA file with a rank pattern: only the kept ranks are stored, ΔW = B (A ⊙ E) α / (init_r + 1e-5).</summary>
    [Fact]
    public void APeftFileWithARankPatternComputesTheFormula_AndPeftLabSavesTheSameKeysAndFields()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("peftlab-adalora");
        try
        {
            var g = new Generator(5, CPU);
            var baseModel = TinyModels.Create(TinyModels.Llama);
            var p = baseModel.named_parameters().ToDictionary(x => x.name, x => x.parameter.detach().clone());
            const int initR = 4;
            const double alpha = 6;
            bool[][] kept = [[true, false, true, false], [false, false, false, true]];
            string[] modules = ["model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.v_proj"];
            var fields = new JsonObject
            {
                ["beta1"] = 0.85, ["beta2"] = 0.85, ["bias"] = "none", ["deltaT"] = 1, ["fan_in_fan_out"] = false, ["init_lora_weights"] = true,
                ["init_r"] = initR, ["lora_alpha"] = alpha, ["lora_dropout"] = 0.0, ["modules_to_save"] = null, ["orth_reg_weight"] = 0.5, ["r"] = 8,
                ["target_r"] = 2, ["tfinal"] = 0, ["tinit"] = 0, ["total_step"] = 100,
                ["rank_pattern"] = new JsonObject(modules.Select((m, i) => KeyValuePair.Create(m + ".lora_E", (JsonNode?)new JsonArray(kept[i].Select(k => (JsonNode)k).ToArray())))),
                ["target_modules"] = new JsonArray("v_proj"), ["exclude_modules"] = null, ["layers_pattern"] = null, ["layers_to_transform"] = null,
            };
            var file = new List<KeyValuePair<string, Tensor>>();
            var expected = TinyModels.Create(TinyModels.Llama);
            var ew = expected.named_parameters().ToDictionary(x => x.name, x => x.parameter);
            for (int i = 0; i < 2; i++)
            {
                int k = kept[i].Count(x => x);
                var w = p[modules[i] + ".weight"];
                var a = randn([k, w.shape[1]], generator: g);
                var e = randn([k, 1], generator: g);
                var b = randn([w.shape[0], k], generator: g);
                file.Add(KeyValuePair.Create(Prefix + modules[i] + ".lora_A", a));
                file.Add(KeyValuePair.Create(Prefix + modules[i] + ".lora_E", e));
                file.Add(KeyValuePair.Create(Prefix + modules[i] + ".lora_B", b));
                using (no_grad()) ew[modules[i] + ".weight"].copy_(w + b.matmul(a * e) * (alpha / (initR + 1e-5)));
            }
            PeftModel.WriteAdapterFolder(dir, fields, "ADALORA", "CAUSAL_LM", file);

            var loaded = PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir);
            var ids = TinyModels.Tokens(2, 7, TinyModels.Llama.VocabSize);
            using (no_grad())
                Assert.True(Fixtures.MaxAbsDiff(expected.Forward(ids), loaded.Model.Forward(ids)) < 1e-5);

            // saved again: the same keys, shapes and fields
            var saved = Path.Combine(dir, "saved");
            loaded.SaveAdapter(saved);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(saved, PeftModel.ConfigFile)))!.AsObject();
            foreach (var (key, value) in fields)
                Assert.True(JsonNode.DeepEquals(value, json[key]), $"{key}: {value?.ToJsonString()} vs {json[key]?.ToJsonString()}");
            using (var src = CheckpointSource.OpenFile(Path.Combine(saved, PeftModel.WeightsFile)))
            {
                Assert.Equal(file.Select(f => f.Key).Order(StringComparer.Ordinal), src.Names.Order(StringComparer.Ordinal));
                foreach (var (key, t) in file) Assert.Equal(t.shape, src.Shape(key));
            }

            // bad input names the tensor or the field
            var wrong = Path.Combine(dir, "wrong");
            fields["rank_pattern"]![modules[0] + ".lora_E"] = new JsonArray(true, true, true, false);
            PeftModel.WriteAdapterFolder(wrong, fields, "ADALORA", "CAUSAL_LM", file);
            var m = Assert.Throws<CheckpointMismatchException>(() => PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), wrong)).Message;
            Assert.Contains($"'{Prefix}{modules[0]}.lora_A'", m);
            Assert.Contains("rank pattern keeps 3 of 4", m);
            fields["rank_pattern"]![modules[0] + ".lora_E"] = new JsonArray(true, false);
            PeftModel.WriteAdapterFolder(wrong, fields, "ADALORA", "CAUSAL_LM", file);
            Assert.Contains("with 4 flags (init_r), got 2", Assert.Throws<PeftConfigException>(() => PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), wrong)).Message);
            fields["rank_pattern"] = null;
            fields["use_dora"] = true;
            PeftModel.WriteAdapterFolder(wrong, fields, "ADALORA", "CAUSAL_LM", file);
            Assert.Contains("option 'use_dora'", Assert.Throws<PeftConfigException>(() => PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), wrong)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    private static string[] Run(string data, string output, params string[] extra) =>
    [
        .. MiniTasks.FastRun(data, output), "method.name=adalora", "method.target_r=2", "method.init_r=4", "method.tinit=1", "method.tfinal=3",
        "method.target_modules=all-linear", "train.max_steps=10", "eval.every_steps=2", "checkpoint.every_steps=2", "eval.generate=false", .. extra,
    ];

    private static double[] Losses(string run) =>
        RunFiles.ReadMetrics(Path.Combine(run, "metrics.jsonl")).Where(r => r["type"]!.GetValue<string>() == "step").Select(r => r["loss"]!.GetValue<double>()).ToArray();

    [Fact]
    public void ARunPrunesToTheTargetBudget_ResumesIdentically_AndItsAdapterReloadsToTheSameFunction()
    {
        var data = MiniTasks.Write();
        var straight = TestPaths.NewTempDir();
        var resumed = TestPaths.NewTempDir();
        Trainer.Run(TrainConfigLoader.Load(null, Run(data, straight)));
        Assert.Equal("interrupted", RunStatuses.Name(Trainer.Run(TrainConfigLoader.Load(null, Run(data, resumed)), new TrainOptions { StopAfterStep = 4 }).Status));
        Assert.Equal("completed", RunStatuses.Name(Trainer.Run(TrainConfigLoader.Load(null, Run(data, resumed)), new TrainOptions { Resume = ResumeMode.Required }).Status));
        Assert.Equal(Losses(straight), Losses(resumed));
        string Pattern(string run) => JsonNode.Parse(File.ReadAllText(Path.Combine(run, "best", PeftModel.ConfigFile)))!["rank_pattern"]!.ToJsonString();
        Assert.Equal(Pattern(straight), Pattern(resumed));

        // the best adapter (step 10, after the final allocation at step 7): 2 ranks per matrix on average, total_step written
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(straight, "best", PeftModel.ConfigFile)))!.AsObject();
        var pattern = json["rank_pattern"]!.AsObject();
        int matrices = pattern.Count;
        Assert.Equal(2 * matrices, pattern.Sum(kv => kv.Value!.AsArray().Count(x => x!.GetValue<bool>())));
        Assert.Equal(10, json["total_step"]!.GetValue<int>());
        Assert.True(pattern.Any(kv => kv.Value!.AsArray().Count(x => x!.GetValue<bool>()) != 2), "the allocation is uneven across matrices (else it is not adaptive)");

        // the pruned file on a fresh base = the attached tensors the run ended with
        using var scope = NewDisposeScope();
        var baseDir = Path.Combine(straight, "base");
        var fromFile = PeftModel.LoadAdapter(HfModel.Load(baseDir), Path.Combine(straight, "best"));
        var (_, cfg, _) = PeftModel.ReadAdapterConfig(Path.Combine(straight, "best"));
        var attached = PeftModel.Apply(HfModel.Load(baseDir), cfg with { });
        using (var src = CheckpointSource.OpenFile(Path.Combine(straight, "checkpoints", "best-trainable.safetensors")))
            PeftState.LoadStrict(Injector.Trainable(attached.Host.Module).ToDictionary(x => x.Name, x => (Tensor)x.Parameter), src);
        var ids = TinyModels.Tokens(2, 9, 64);
        using var noGrad = no_grad();
        Assert.True(Fixtures.MaxAbsDiff(fromFile.Model.Forward(ids), attached.Model.Forward(ids)) < 1e-5);
    }

    [Fact]
    public void AScheduleWithNoRoomToAllocateIsAnErrorByKeyPath()
    {
        var data = MiniTasks.Write();
        var e = Assert.Throws<PeftConfigException>(() => Trainer.Run(TrainConfigLoader.Load(null, Run(data, TestPaths.NewTempDir(), "method.tinit=8", "method.tfinal=2"))));
        Assert.Contains("method.tinit (8) must be below total_step − tfinal (10 − 2)", e.Message);
    }
}
