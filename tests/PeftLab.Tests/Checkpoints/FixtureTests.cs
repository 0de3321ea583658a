using PeftLab.Checkpoints;

namespace PeftLab.Tests.Checkpoints;

/// <summary>Files written by Python's safetensors: we must read them, and our writer must reproduce them.</summary>
public sealed class FixtureTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    public static TheoryData<string, int> FixtureFiles() => new()
    {
        { "hf/llama-gqa/model.safetensors", 21 },
        { "hf/llama-gqa/expected.safetensors", 9 },
        { "hf/llama-gqa/adapters/lora-qv/adapter_model.safetensors", 8 },
        { "hf/llama-gqa/adapters/ia3/adapter_model.safetensors", 6 },
        { "hf/llama-gqa/adapters/prompt5/adapter_model.safetensors", 1 },
        { "hf/qwen2-tied-bias/model.safetensors", 38 },
        { "hf/qwen2-tied-bias/expected.safetensors", 5 },
        { "hf/qwen2-tied-bias/adapters/lora-all/adapter_model.safetensors", 42 },
        { "t5/t5-v1_1-lm-adapt-tiny/model.safetensors", 52 },
        { "t5/t5-v1_1-lm-adapt-tiny/expected.safetensors", 8 },
        { "t5/t5-v1_1-lm-adapt-tiny/adapters/lora/adapter_model.safetensors", 24 },
        { "t5/t5-v1_1-lm-adapt-tiny/adapters/prompt/adapter_model.safetensors", 1 },
    };

    private static string Fixture(string relative) => Path.Combine(TestPaths.Shared, "fixtures", relative);

    [Theory]
    [MemberData(nameof(FixtureFiles))]
    public void OpensAndRewritesByteForByte(string relative, int tensorCount)
    {
        string path = Fixture(relative);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(tensorCount, f.Tensors.Count);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(0, f.DataOffset % 8);

        string copy = _tmp.File("copy.safetensors");
        SafeTensorsWriter.Write(copy, f.Names.Select(n => TensorEntry.FromFile(f, n)), f.Metadata);
        using (var g = SafeTensorsFile.Open(copy))
        {
            Assert.Equal(f.Names, g.Names);
            foreach (var name in f.Names)
            {
                Assert.Equal(f.GetInfo(name).DType, g.GetInfo(name).DType);
                Assert.Equal(f.GetInfo(name).Shape, g.GetInfo(name).Shape);
                Assert.True(f.GetSpan(name).SequenceEqual(g.GetSpan(name)), name);
            }
        }
        // Same tensor order, header layout and padding as Python's writer.
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(copy));
    }

    [Fact]
    public void LlamaNamesAndShapes()
    {
        using var f = SafeTensorsFile.Open(Fixture("hf/llama-gqa/model.safetensors"));
        var expected = new Dictionary<string, long[]>
        {
            ["model.embed_tokens.weight"] = [97, 64],
            ["lm_head.weight"] = [97, 64],
            ["model.norm.weight"] = [64],
            ["model.layers.0.self_attn.q_proj.weight"] = [64, 64],
            ["model.layers.0.self_attn.k_proj.weight"] = [32, 64],
            ["model.layers.1.self_attn.v_proj.weight"] = [32, 64],
            ["model.layers.1.mlp.gate_proj.weight"] = [160, 64],
            ["model.layers.1.mlp.down_proj.weight"] = [64, 160],
            ["model.layers.0.input_layernorm.weight"] = [64],
        };
        foreach (var (name, shape) in expected)
        {
            var info = f.GetInfo(name);
            Assert.Equal(SafeDType.F32, info.DType);
            Assert.Equal(shape, info.Shape);
        }
        Assert.All(f.Tensors.Values, t => Assert.Equal(SafeDType.F32, t.DType));
        Assert.Equal(2, f.Names.Count(n => n.EndsWith("self_attn.o_proj.weight", StringComparison.Ordinal)));
    }

    [Fact]
    public void AdapterAndExpectedNamesAndShapes()
    {
        using (var lora = SafeTensorsFile.Open(Fixture("hf/llama-gqa/adapters/lora-qv/adapter_model.safetensors")))
        {
            Assert.Equal([4L, 64], lora.GetInfo("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").Shape);
            Assert.Equal([32L, 4], lora.GetInfo("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight").Shape);
        }
        using (var ia3 = SafeTensorsFile.Open(Fixture("hf/llama-gqa/adapters/ia3/adapter_model.safetensors")))
            Assert.Equal([1L, 160], ia3.GetInfo("base_model.model.model.layers.0.mlp.down_proj.ia3_l").Shape);
        using (var prompt = SafeTensorsFile.Open(Fixture("hf/llama-gqa/adapters/prompt5/adapter_model.safetensors")))
            Assert.Equal([5L, 64], prompt.GetInfo("prompt_embeddings").Shape);
        using (var expected = SafeTensorsFile.Open(Fixture("hf/llama-gqa/expected.safetensors")))
        {
            Assert.Equal(SafeDType.I64, expected.GetInfo("input_ids").DType);
            Assert.Equal([2L, 12], expected.GetInfo("input_ids").Shape);
            Assert.Equal([2L, 12, 97], expected.GetInfo("logits_lora-qv").Shape);
            Assert.Equal([1L, 10], expected.GetInfo("greedy_tokens_prompt5").Shape);
        }
        using (var qwen = SafeTensorsFile.Open(Fixture("hf/qwen2-tied-bias/model.safetensors")))
        {
            Assert.False(qwen.Contains("lm_head.weight"));
            Assert.Equal([16L], qwen.GetInfo("model.layers.2.self_attn.k_proj.bias").Shape);
            Assert.Equal([131L, 48], qwen.GetInfo("model.embed_tokens.weight").Shape);
        }
        using (var t5 = SafeTensorsFile.Open(Fixture("t5/t5-v1_1-lm-adapt-tiny/model.safetensors")))
        {
            Assert.Equal([101L, 32], t5.GetInfo("shared.weight").Shape);
            Assert.Equal([32L, 4], t5.GetInfo("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight").Shape);
            Assert.Equal([64L, 32], t5.GetInfo("decoder.block.1.layer.2.DenseReluDense.wi_1.weight").Shape);
        }
    }

    [Fact]
    public void FixtureFolderOpensAsCheckpoint()
    {
        using var ckpt = CheckpointDirectory.Open(Path.Combine(TestPaths.HfFixtures, "llama-gqa"));
        Assert.False(ckpt.IsSharded);
        Assert.Equal(21, ckpt.Tensors.Count);
        Assert.Equal([97L, 64], ckpt.Tensors["model.embed_tokens.weight"].Shape);

        using var adapter = CheckpointDirectory.Open(Path.Combine(TestPaths.HfFixtures, "llama-gqa", "adapters", "prompt5"), "adapter_model.safetensors");
        Assert.Equal(["prompt_embeddings"], adapter.Names);
    }
}
