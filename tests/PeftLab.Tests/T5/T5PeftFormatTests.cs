using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Adapter;
using PeftLab.Peft.BitFit;
using PeftLab.Peft.IA3;
using PeftLab.Peft.Lora;
using PeftLab.Peft.PrefixTuning;
using PeftLab.Peft.PromptTuning;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>Where each method attaches on T5 (PEFT's T5 defaults come from the model) and what its adapter files hold.</summary>
public sealed class T5PeftFormatTests
{
    private static (PeftModel Peft, JsonObject Config, Dictionary<string, long[]> Tensors) SaveAndRead(PeftConfig config, T5Config? model = null)
    {
        var peft = PeftModel.Apply(T5TinyModels.Create(model ?? T5TinyModels.Gated), config, seed: 2);
        var dir = TestPaths.NewTempDir();
        try
        {
            peft.SaveAdapter(dir);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, PeftModel.ConfigFile)))!.AsObject();
            using var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFile));
            return (peft, json, file.Names.ToDictionary(n => n, n => file.GetInfo(n).Shape.ToArray()));
        }
        finally { Directory.Delete(dir, true); }
    }

    private static string[] Strings(JsonNode? n) => n!.AsArray().Select(x => x!.GetValue<string>()).ToArray();

    [Fact]
    public void LoraDefaultsToQAndVEverywhereWithPeftKeys()
    {
        // The fixture model with PEFT's T5 default targets must produce exactly the keys of the fixture's PEFT adapter.
        var peft = PeftModel.Apply(T5Fixtures.Load(), new LoraConfig { R = 4, Alpha = 4 });
        var dir = TestPaths.NewTempDir();
        try
        {
            peft.SaveAdapter(dir);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, PeftModel.ConfigFile)))!.AsObject();
            Assert.Equal(["q", "v"], Strings(json["target_modules"]));
            Assert.Equal("SEQ_2_SEQ_LM", json["task_type"]!.GetValue<string>());
            using var ours = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFile));
            using var theirs = SafeTensorsFile.Open(Path.Combine(T5Fixtures.Adapter("lora"), PeftModel.WeightsFile));
            Assert.Equal(theirs.Names.OrderBy(n => n, StringComparer.Ordinal), ours.Names.OrderBy(n => n, StringComparer.Ordinal));
            Assert.Contains("base_model.model.decoder.block.0.layer.1.EncDecAttention.q.lora_A.weight", ours.Names);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void EmptyTargetSelectorDefersToTheModelKeepingLayers()
    {
        var (_, json, tensors) = SaveAndRead(new LoraConfig { R = 2, Targets = new TargetSelector { Layers = [1] } });
        Assert.Equal(["q", "v"], Strings(json["target_modules"]));
        Assert.Equal([1], json["layers_to_transform"]!.AsArray().Select(x => x!.GetValue<int>()));
        Assert.Equal(["base_model.model.encoder.block.1.layer.0.SelfAttention.q.lora_A.weight", "base_model.model.encoder.block.1.layer.0.SelfAttention.q.lora_B.weight",
            "base_model.model.encoder.block.1.layer.0.SelfAttention.v.lora_A.weight", "base_model.model.encoder.block.1.layer.0.SelfAttention.v.lora_B.weight"],
            tensors.Keys.OrderBy(k => k, StringComparer.Ordinal));
        // the same empty selector on a Llama model means q_proj, v_proj
        var llama = PeftModel.Apply(TinyModels.Create(TinyModels.Llama), new LoraConfig { R = 2 });
        Assert.Contains(llama.Model.named_parameters(), p => p.name.EndsWith("self_attn.v_proj.lora_A.weight", StringComparison.Ordinal));
    }

    [Fact]
    public void IA3UsesPeftT5Defaults()
    {
        var (_, json, tensors) = SaveAndRead(new IA3Config());
        Assert.Equal(["k", "v", "wo"], Strings(json["target_modules"]));
        Assert.Equal(["wo"], Strings(json["feedforward_modules"]));
        // attention targets scale outputs [out, 1]; wo (feed-forward) scales its input [1, d_ff]; cross-attention k, v included
        Assert.Equal([32L, 1], tensors["base_model.model.decoder.block.0.layer.1.EncDecAttention.k.ia3_l"]);
        Assert.Equal([32L, 1], tensors["base_model.model.encoder.block.1.layer.0.SelfAttention.v.ia3_l"]);
        Assert.Equal([1L, 48], tensors["base_model.model.decoder.block.0.layer.2.DenseReluDense.wo.ia3_l"]);
        Assert.Equal(2 * 3 + 1 * 5, tensors.Count);   // encoder: k, v, wo per block; decoder: self k, v, cross k, v, wo
    }

    [Fact]
    public void BitFitAddsZeroBiasesToEveryProjection()
    {
        var (peft, json, tensors) = SaveAndRead(new BitFitConfig(), T5TinyModels.ReluTied);
        Assert.Contains("wi", Strings(json["target_modules"]));
        // relu: encoder 1 block × (q, k, v, o, wi, wo); decoder 2 blocks × (self q, k, v, o, cross q, k, v, o, wi, wo)
        Assert.Equal(1 * 6 + 2 * 10, tensors.Count);
        Assert.All(tensors.Keys, k => Assert.EndsWith(".bias", k));
        var fresh = PeftModel.Apply(T5TinyModels.Create(T5TinyModels.ReluTied), new BitFitConfig());
        Assert.All(Injector.Trainable(fresh.Seq2Seq), p => Assert.Equal(0f, p.Parameter.abs().max().item<float>()));
        Assert.NotNull(peft);
    }

    [Fact]
    public void SerialAdaptersFollowSelfAttentionAndFeedForwardInBothStacks()
    {
        static string[] Wrapped(AdapterConfig c) => PeftModel.Apply(T5TinyModels.Create(T5TinyModels.Gated), c).Seq2Seq.named_parameters()
            .Where(p => p.name.EndsWith(".adapter.adapter_down.weight", StringComparison.Ordinal))
            .Select(p => p.name[..^".adapter.adapter_down.weight".Length]).ToArray();
        var plain = Wrapped(new AdapterConfig { Size = 4 });
        Assert.Equal([
            "encoder.block.0.layer.0.SelfAttention.o", "encoder.block.0.layer.1.DenseReluDense.wo",
            "encoder.block.1.layer.0.SelfAttention.o", "encoder.block.1.layer.1.DenseReluDense.wo",
            "decoder.block.0.layer.0.SelfAttention.o", "decoder.block.0.layer.2.DenseReluDense.wo"], plain);
        Assert.Contains("decoder.block.0.layer.1.EncDecAttention.o", Wrapped(new AdapterConfig { Size = 4, AfterCrossAttention = true }));
        var parallel = Wrapped(new AdapterConfig { Size = 4, Placement = AdapterPlacement.Parallel, AfterCrossAttention = true });
        Assert.Contains("decoder.block.0.layer.1.EncDecAttention", parallel);
        Assert.Contains("encoder.block.1.layer.1.DenseReluDense", parallel);
        var e = Assert.Throws<PeftConfigException>(() => PeftModel.Apply(TinyModels.Create(TinyModels.Llama), new AdapterConfig { AfterCrossAttention = true }));
        Assert.Contains("encoder-decoder", e.Message);
    }

    [Fact]
    public void PromptTuningPromptsTheEncoderOrBothStacks()
    {
        var (one, json1, t1) = SaveAndRead(new PromptTuningConfig { NumVirtualTokens = 3 });
        Assert.Equal(1, json1["num_transformer_submodules"]!.GetValue<int>());
        Assert.Equal([3L, 32], t1["prompt_embeddings"]);
        var (two, json2, t2) = SaveAndRead(new PromptTuningConfig { NumVirtualTokens = 3, NumTransformerSubmodules = 2 });
        Assert.Equal(2, json2["num_transformer_submodules"]!.GetValue<int>());
        Assert.Equal([6L, 32], t2["prompt_embeddings"]);   // PEFT layout: encoder rows, then decoder rows

        using var scope = NewDisposeScope();
        var input = TinyModels.Tokens(2, 5, 64);
        var decoder = T5TinyModels.DecoderInput(2, 4, T5TinyModels.Gated);
        using var noGrad = no_grad();
        foreach (var peft in new[] { one, two })
        {
            peft.Seq2Seq.eval();
            Assert.Equal([2L, 4, 64], peft.Seq2Seq.Forward(input, decoder).shape);   // virtual positions are dropped
        }
        // the encoder output includes the prompt positions, which the decoder attends to
        Assert.Equal(5 + 3, one.Seq2Seq.Encode(input).Hidden.shape[1]);
        var e = Assert.Throws<PeftConfigException>(() => PeftModel.Apply(TinyModels.Create(TinyModels.Llama), new PromptTuningConfig { NumTransformerSubmodules = 2 }));
        Assert.Contains("encoder-decoder", e.Message);
    }

    [Fact]
    public void PrefixTuningPrefixesEverySelfAttentionOfBothStacks()
    {
        var cfg = T5TinyModels.ReluTied;   // 1 encoder + 2 decoder blocks, 2 heads × d_kv 8
        var (peft, json, tensors) = SaveAndRead(new PrefixTuningConfig { NumVirtualTokens = 3 }, cfg);
        Assert.Equal(2, json["num_transformer_submodules"]!.GetValue<int>());
        Assert.Equal([3L, (1 + 2) * 2 * 2 * 8], tensors["prompt_embeddings"]);

        // A Python-PEFT T5 prefix file ([n, L·2·d_model]) is refused with an explanation.
        var dir = TestPaths.NewTempDir();
        try
        {
            File.WriteAllText(Path.Combine(dir, PeftModel.ConfigFile), json.ToJsonString());
            using (var scope = NewDisposeScope())
                SafeTensorsWriter.Write(Path.Combine(dir, PeftModel.WeightsFile), [TensorConversions.FromTensor("prompt_embeddings", zeros(3, 1 * 2 * 32))]);
            var e = Assert.Throws<CheckpointMismatchException>(() => PeftModel.LoadAdapter(T5TinyModels.Create(cfg), dir));
            Assert.Contains("(L_enc + L_dec)", e.Message);
        }
        finally { Directory.Delete(dir, true); }
        Assert.NotNull(peft);
    }

    [Fact]
    public void CausalAdapterIsRefusedByT5()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            PeftModel.Apply(TinyModels.Create(TinyModels.Llama), new LoraConfig()).SaveAdapter(dir);
            var e = Assert.Throws<PeftConfigException>(() => PeftModel.LoadAdapter(T5TinyModels.Create(T5TinyModels.Gated), dir));
            Assert.Contains("CAUSAL_LM", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
