using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Adapter;
using PeftLab.Peft.BitFit;
using PeftLab.Peft.Full;
using PeftLab.Peft.IA3;
using PeftLab.Peft.Lora;
using PeftLab.Peft.PrefixTuning;
using PeftLab.Peft.PromptTuning;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>The same checks for every method × model family (see DEVELOPERS.md "table-driven battery").</summary>
public sealed class PeftBatteryTests
{
    private const double Tol = 1e-5;

    /// <summary>Name → (config, output unchanged at init by construction).</summary>
    public static readonly IReadOnlyDictionary<string, (PeftConfig Config, bool UnchangedAtInit)> Cases = new Dictionary<string, (PeftConfig, bool)>
    {
        ["full"] = (new FullConfig(), true),
        ["lora"] = (new LoraConfig { R = 4, Alpha = 8 }, true),
        ["lora-all-rslora"] = (new LoraConfig { R = 4, Alpha = 8, UseRslora = true, Targets = new TargetSelector { AllLinear = true } }, true),
        ["lora-gaussian-layer1"] = (new LoraConfig { R = 2, Init = LoraInit.Gaussian, Targets = new TargetSelector { Names = ["q_proj", "o_proj"], Layers = [1] } }, true),
        ["dora"] = (new LoraConfig { R = 4, Alpha = 8, UseDora = true, Targets = new TargetSelector { Names = ["q_proj", "v_proj", "down_proj"] } }, true),
        ["pissa"] = (new LoraConfig { R = 4, Alpha = 4, Init = LoraInit.Pissa, Targets = new TargetSelector { Regex = @".*\.(q_proj|up_proj)" } }, true),
        ["adapter"] = (new AdapterConfig { Size = 8 }, true),
        ["adapter-parallel-gelu"] = (new AdapterConfig { Size = 8, Placement = AdapterPlacement.Parallel, Activation = AdapterActivation.Gelu }, true),
        ["prefix"] = (new PrefixTuningConfig { NumVirtualTokens = 3 }, false),
        ["prefix-projection"] = (new PrefixTuningConfig { NumVirtualTokens = 3, PrefixProjection = true, EncoderHiddenSize = 16 }, false),
        ["prompt"] = (new PromptTuningConfig { NumVirtualTokens = 4 }, false),
        ["ia3"] = (new IA3Config(), true),
        ["bitfit"] = (new BitFitConfig(), true),
        ["bitfit-norms"] = (new BitFitConfig { IncludeNorms = true }, true),
    };

    public static IEnumerable<object[]> All() =>
        from m in Cases.Keys from f in TinyModels.ByName.Keys select new object[] { m, f };

    private static (CausalLM Base, PeftModel Peft, Tensor Ids) Setup(string method, string family)
    {
        var cfg = TinyModels.ByName[family];
        var peft = PeftModel.Apply(TinyModels.Create(cfg), Cases[method].Config, seed: 3);
        return (TinyModels.Create(cfg), peft, TinyModels.Tokens(2, 9, cfg.VocabSize));
    }

    private static Tensor Eval(CausalLM model, Tensor ids)
    {
        model.eval();
        using var noGrad = no_grad();
        return model.Forward(ids);
    }

    private static void TrainSteps(PeftModel peft, Tensor ids, int steps, double lr = 5e-2)
    {
        var model = peft.Model;
        model.train();
        var trainable = model.parameters().Where(p => p.requires_grad).ToArray();
        var opt = optim.AdamW(trainable, lr: lr);
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            TinyModels.LmLoss(model.Forward(ids), ids).backward();
            opt.step();
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void OutputUnchangedAtInitWhereItHoldsByConstruction(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (baseModel, peft, ids) = Setup(method, family);
        var diff = Fixtures.MaxAbsDiff(Eval(baseModel, ids), Eval(peft.Model, ids));
        if (Cases[method].UnchangedAtInit) Assert.True(diff < Tol, $"{method}: max diff {diff}");
        else Assert.True(diff > Tol, $"{method}: an input-side method should change the output (diff {diff})");
    }

    [Theory]
    [MemberData(nameof(All))]
    public void OnlyMethodParametersChangeAndGetGradients(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (_, peft, ids) = Setup(method, family);
        var model = peft.Model;
        var before = model.named_parameters().ToDictionary(x => x.name, x => x.parameter.detach().clone());
        var trainable = model.named_parameters().Where(x => x.parameter.requires_grad).Select(x => x.name).ToHashSet();
        Assert.NotEmpty(trainable);
        if (method != "full") Assert.True(trainable.Count < before.Count);

        TrainSteps(peft, ids, 1);
        foreach (var (name, p) in model.named_parameters())
        {
            bool changed = !p.detach().allclose(before[name], rtol: 0, atol: 0);
            if (!trainable.Contains(name)) Assert.False(changed, $"{method}: frozen '{name}' changed");
        }
        // A second backward: now every trainable parameter has a gradient path (LoRA's B and adapters' up are non-zero after step 1).
        model.train();
        foreach (var p in model.parameters()) p.grad?.zero_();
        TinyModels.LmLoss(model.Forward(ids), ids).backward();
        foreach (var (name, p) in model.named_parameters())
        {
            if (trainable.Contains(name))
            {
                Assert.True(p.grad is not null, $"{method}: trainable '{name}' has no gradient");
                Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{method}: trainable '{name}' has a zero gradient");
            }
            else Assert.True(p.grad is null, $"{method}: frozen '{name}' got a gradient");
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void SaveLoadRoundTrips(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (_, peft, ids) = Setup(method, family);
        TrainSteps(peft, ids, 2);
        var expected = Eval(peft.Model, ids);
        var dir = TestPaths.NewTempDir();
        try
        {
            CausalLM reloaded;
            if (method == "full")
            {
                HfModel.Save(peft.Model, dir);
                reloaded = HfModel.Load(dir);
            }
            else
            {
                peft.SaveAdapter(dir);
                reloaded = PeftModel.LoadAdapter(TinyModels.Create(TinyModels.ByName[family]), dir).Model;
            }
            var diff = Fixtures.MaxAbsDiff(expected, Eval(reloaded, ids));
            Assert.True(diff < Tol, $"{method}: reloaded differs by {diff}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void MergedEqualsUnmergedWhereMergeable(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (_, peft, ids) = Setup(method, family);
        TrainSteps(peft, ids, 2);
        var unmerged = Eval(peft.Model, ids);
        if (!peft.Method.CanMerge)
        {
            Assert.Throws<NotSupportedException>(() => peft.Merge());
            return;
        }
        peft.Merge();
        Assert.DoesNotContain(peft.Model.named_parameters(), x => x.name.Contains("lora_") || x.name.Contains("ia3_l") || x.name.Contains("base_layer"));
        var diff = Fixtures.MaxAbsDiff(unmerged, Eval(peft.Model, ids));
        Assert.True(diff < Tol, $"{method}: merged differs by {diff}");
    }

    [Theory]
    [MemberData(nameof(All))]
    public void CachedGenerationEqualsUncached(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (_, peft, ids) = Setup(method, family);
        TrainSteps(peft, ids, 2);
        int[][] prompts = [[5, 9, 11, 4], [7, 3]];  // different lengths: exercises left padding
        var cached = TextGenerator.Generate(peft.Model, prompts, new SamplingConfig(MaxNewTokens: 6), [], 0, useCache: true);
        var uncached = TextGenerator.Generate(peft.Model, prompts, new SamplingConfig(MaxNewTokens: 6), [], 0, useCache: false);
        Assert.Equal(uncached, cached);
    }
}
