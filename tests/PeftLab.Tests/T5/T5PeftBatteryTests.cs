using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Adapter;
using PeftLab.Peft.BitFit;
using PeftLab.Peft.Full;
using PeftLab.Peft.IA3;
using PeftLab.Peft.Lora;
using PeftLab.Peft.PrefixTuning;
using PeftLab.Peft.PromptTuning;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>The PEFT battery (see Peft/PeftBatteryTests.cs) for every method × T5 flavour.</summary>
public sealed class T5PeftBatteryTests
{
    private const double Tol = 1e-5;   // relative to the logits' magnitude (see T5TinyModels.RelDiff)

    /// <summary>Name → (config, output unchanged at init by construction).</summary>
    public static readonly IReadOnlyDictionary<string, (PeftConfig Config, bool UnchangedAtInit)> Cases = new Dictionary<string, (PeftConfig, bool)>
    {
        ["full"] = (new FullConfig(), true),
        ["lora"] = (new LoraConfig { R = 4, Alpha = 8 }, true),
        ["lora-all-rslora"] = (new LoraConfig { R = 4, Alpha = 8, UseRslora = true, Targets = new TargetSelector { AllLinear = true } }, true),
        ["lora-gaussian-layer1"] = (new LoraConfig { R = 2, Init = LoraInit.Gaussian, Targets = new TargetSelector { Names = ["q", "o"], Layers = [1] } }, true),
        ["dora"] = (new LoraConfig { R = 4, Alpha = 8, UseDora = true, Targets = new TargetSelector { Names = ["q", "v", "wo"] } }, true),
        ["pissa"] = (new LoraConfig { R = 4, Alpha = 4, Init = LoraInit.Pissa, Targets = new TargetSelector { Regex = @".*\.(q|wi|wi_0)" } }, true),
        ["adapter"] = (new AdapterConfig { Size = 8 }, true),
        ["adapter-cross"] = (new AdapterConfig { Size = 8, AfterCrossAttention = true }, true),
        ["adapter-parallel-gelu"] = (new AdapterConfig { Size = 8, Placement = AdapterPlacement.Parallel, Activation = AdapterActivation.Gelu, AfterCrossAttention = true }, true),
        ["prefix"] = (new PrefixTuningConfig { NumVirtualTokens = 3 }, false),
        ["prefix-projection"] = (new PrefixTuningConfig { NumVirtualTokens = 3, PrefixProjection = true, EncoderHiddenSize = 16 }, false),
        ["prompt"] = (new PromptTuningConfig { NumVirtualTokens = 4 }, false),
        ["prompt-both-stacks"] = (new PromptTuningConfig { NumVirtualTokens = 2, NumTransformerSubmodules = 2 }, false),
        ["ia3"] = (new IA3Config(), true),
        ["bitfit"] = (new BitFitConfig(), true),
        ["bitfit-norms"] = (new BitFitConfig { IncludeNorms = true }, true),
    };

    public static IEnumerable<object[]> All() =>
        from m in Cases.Keys from f in T5TinyModels.ByName.Keys select new object[] { m, f };

    private sealed record Batch(Tensor Input, Tensor Mask, Tensor Decoder);

    private static (T5ForConditionalGeneration Base, PeftModel Peft, Batch Batch) Setup(string method, string family)
    {
        var cfg = T5TinyModels.ByName[family];
        var peft = PeftModel.Apply(T5TinyModels.Create(cfg), Cases[method].Config, seed: 3);
        var input = TinyModels.Tokens(2, 9, cfg.VocabSize);
        var mask = ones(2, 9, dtype: ScalarType.Int64);
        mask[1].narrow(0, 6, 3).fill_(0);   // row 1 is right-padded: exercises the encoder mask
        return (T5TinyModels.Create(cfg), peft, new Batch(input, mask, T5TinyModels.DecoderInput(2, 7, cfg)));
    }

    private static Tensor Eval(T5ForConditionalGeneration model, Batch x)
    {
        model.eval();
        using var noGrad = no_grad();
        return model.Forward(x.Input, x.Decoder, x.Mask);
    }

    private static Tensor Loss(T5ForConditionalGeneration model, Batch x) => TinyModels.LmLoss(model.Forward(x.Input, x.Decoder, x.Mask), x.Decoder);

    private static void TrainSteps(PeftModel peft, Batch x, int steps, double lr = 5e-2)
    {
        var model = peft.Seq2Seq;
        model.train();
        var opt = optim.AdamW(model.parameters().Where(p => p.requires_grad).ToArray(), lr: lr);
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            Loss(model, x).backward();
            opt.step();
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void OutputUnchangedAtInitWhereItHoldsByConstruction(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (baseModel, peft, x) = Setup(method, family);
        var diff = T5TinyModels.RelDiff(Eval(baseModel, x), Eval(peft.Seq2Seq, x));
        if (Cases[method].UnchangedAtInit) Assert.True(diff < Tol, $"{method}: max diff {diff}");
        else Assert.True(diff > Tol, $"{method}: an input-side method should change the output (diff {diff})");
    }

    [Theory]
    [MemberData(nameof(All))]
    public void OnlyMethodParametersChangeAndGetGradients(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (_, peft, x) = Setup(method, family);
        var model = peft.Seq2Seq;
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToHashSet();
        Assert.NotEmpty(trainable);
        if (method != "full") Assert.True(trainable.Count < before.Count);

        TrainSteps(peft, x, 1);
        foreach (var (name, p) in model.named_parameters())
            if (!trainable.Contains(name)) Assert.False(!p.detach().allclose(before[name], rtol: 0, atol: 0), $"{method}: frozen '{name}' changed");
        // A second backward (dropout off, so every path is live): every trainable parameter has a gradient, frozen ones none.
        model.eval();
        foreach (var p in model.parameters()) p.grad?.zero_();
        Loss(model, x).backward();
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
        var (_, peft, x) = Setup(method, family);
        TrainSteps(peft, x, 2);
        var expected = Eval(peft.Seq2Seq, x);
        var dir = TestPaths.NewTempDir();
        try
        {
            T5ForConditionalGeneration reloaded;
            if (method == "full")
            {
                HfT5.Save(peft.Seq2Seq, dir);
                reloaded = HfT5.Load(dir);
            }
            else
            {
                peft.SaveAdapter(dir);
                Assert.Contains("\"task_type\": \"SEQ_2_SEQ_LM\"", File.ReadAllText(Path.Combine(dir, PeftModel.ConfigFile)));
                reloaded = PeftModel.LoadAdapter(T5TinyModels.Create(T5TinyModels.ByName[family]), dir).Seq2Seq;
            }
            var diff = T5TinyModels.RelDiff(expected, Eval(reloaded, x));
            Assert.True(diff < Tol, $"{method}: reloaded differs by {diff}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void MergedEqualsUnmergedWhereMergeable(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (_, peft, x) = Setup(method, family);
        TrainSteps(peft, x, 2);
        var unmerged = Eval(peft.Seq2Seq, x);
        if (!peft.Method.CanMerge)
        {
            Assert.Throws<NotSupportedException>(() => peft.Merge());
            return;
        }
        peft.Merge();
        Assert.DoesNotContain(peft.Seq2Seq.named_parameters(), p => p.name.Contains("lora_") || p.name.Contains("ia3_l") || p.name.Contains("base_layer"));
        var diff = T5TinyModels.RelDiff(unmerged, Eval(peft.Seq2Seq, x));
        Assert.True(diff < Tol, $"{method}: merged differs by {diff}");
    }

    [Theory]
    [MemberData(nameof(All))]
    public void CachedGenerationEqualsUncached(string method, string family)
    {
        using var scope = NewDisposeScope();
        var (_, peft, x) = Setup(method, family);
        TrainSteps(peft, x, 2);
        int[][] inputs = [[5, 9, 11, 4, 1], [7, 3, 1]];  // different lengths: exercises right padding and the encoder mask
        var cfg = new SamplingConfig(MaxNewTokens: 6);
        var cached = Seq2SeqGenerator.Generate(peft.Seq2Seq, inputs, cfg, eosIds: [], useCache: true);
        var uncached = Seq2SeqGenerator.Generate(peft.Seq2Seq, inputs, cfg, eosIds: [], useCache: false);
        Assert.Equal(uncached, cached);
    }
}
