using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Training;

namespace PeftLab.Tests.Training;

/// <summary>Weight decay by rank: matrices decay, vectors and looked-up tables do not.</summary>
public sealed class WeightDecayRuleTests
{
    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj.weight", 2, true)]
    [InlineData("model.layers.0.self_attn.q_proj.lora_A.default.weight", 2, true)]
    [InlineData("lm_head.weight", 2, true)]
    [InlineData("model.layers.0.self_attn.q_proj.bias", 1, false)]
    [InlineData("model.layers.0.input_layernorm.weight", 1, false)]
    [InlineData("model.norm.weight", 1, false)]
    [InlineData("model.layers.0.mlp.down_proj.ia3_l.default", 1, false)]
    [InlineData("model.layers.0.self_attn.q_proj.lora_magnitude_vector.default.weight", 1, false)]
    [InlineData("model.embed_tokens.weight", 2, false)]
    [InlineData("prompt_encoder.default.embedding.weight", 2, false)]
    public void MatricesDecayVectorsAndTablesDoNot(string name, long rank, bool decays)
    {
        Assert.Equal(decays, WeightDecayRule.Decays(name, rank, decayAll: false));
        Assert.True(WeightDecayRule.Decays(name, rank, decayAll: true));
    }

    [Fact]
    public void OnAFullyTrainedModelEveryMatrixButTheEmbeddingDecays()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var model = new CausalLM(Presets.Get("tiny"));
        PeftModel.Apply(model, new PeftLab.Peft.Full.FullConfig());
        var decayed = Injector.Trainable(model).Where(p => WeightDecayRule.Decays(p.Name, p.Parameter.dim(), false)).Select(p => p.Name).ToHashSet();
        foreach (var (name, p) in Injector.Trainable(model))
            Assert.Equal(p.dim() >= 2 && name != "model.embed_tokens.weight", decayed.Contains(name));
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", decayed);
        Assert.DoesNotContain("model.layers.0.input_layernorm.weight", decayed);
    }

    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj.lora_B.weight", 2, 16.0)]
    [InlineData("model.layers.0.self_attn.q_proj.lora_A.weight", 2, 1.0)]
    [InlineData("model.layers.0.self_attn.q_proj.lora_magnitude_vector", 1, 16.0)]
    [InlineData("model.layers.0.self_attn.q_proj.base_layer.bias", 1, 16.0)]
    [InlineData("lm_head.weight", 2, 1.0)]
    public void LoraPlusRaisesTheLearningRateOfBAndOfVectors(string name, long rank, double scale)
    {
        Assert.Equal(scale, LoraPlusRule.LearningRateScale(name, rank, 16));
        Assert.Equal(1.0, LoraPlusRule.LearningRateScale(name, rank, null));
    }

    [Fact]
    public void LoraPlusNeedsLoraBMatrices()
    {
        LoraPlusRule.Check(["x.lora_A.weight", "x.lora_B.weight"], 16);
        LoraPlusRule.Check(["x.ia3_l"], null);
        Assert.Contains("optim.loraplus_lr_ratio: the method has no lora_B matrices", Assert.Throws<ArgumentException>(() => LoraPlusRule.Check(["x.ia3_l"], 16)).Message);
    }

    /// <summary>Adam's first step moves every entry by lr·sign(g) (m̂/√v̂ = g/|g|): with a scale, by scale·lr·sign(g); decay too uses the scaled rate.</summary>
    [Fact]
    public void AdamWScalesEachParametersLearningRate()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var a = new TorchSharp.Modules.Parameter(TorchSharp.torch.tensor(new float[] { 1, -2, 3 }));
        var b = new TorchSharp.Modules.Parameter(TorchSharp.torch.tensor(new float[] { 1, -2, 3 }));
        a.grad = TorchSharp.torch.tensor(new float[] { 0.5f, -1, 2 });
        b.grad = TorchSharp.torch.tensor(new float[] { 0.5f, -1, 2 });
        using var opt = new AdamW([("a", a), ("b", b)], _ => true, 0.9, 0.999, 1e-12, weightDecay: 0.1, lrScale: n => n == "b" ? 4 : 1);
        opt.Step(0.01);
        float[] Expected(double lr) => new[] { 1.0, -2, 3 }.Zip(new[] { 1.0, -1, 1 }, (p, sg) => (float)(p * (1 - lr * 0.1) - lr * sg)).ToArray();
        Assert.Equal(Expected(0.01), a.data<float>().ToArray(), (x, y) => Math.Abs(x - y) < 1e-6);
        Assert.Equal(Expected(0.04), b.data<float>().ToArray(), (x, y) => Math.Abs(x - y) < 1e-6);
    }
}
