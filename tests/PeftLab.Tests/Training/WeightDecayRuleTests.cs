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
}
