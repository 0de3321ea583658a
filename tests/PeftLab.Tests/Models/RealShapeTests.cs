using System.Text.Json.Nodes;
using PeftLab.Models;

namespace PeftLab.Tests.Models;

/// <summary>The real-shape presets are the published models' shapes, and one trains LoRA within a memory bound.</summary>
public sealed class RealShapeTests
{
    [Theory]
    [InlineData("qwen2.5-0.5b", 494_032_768L)]     // Qwen/Qwen2.5-0.5B (tied head)
    [InlineData("qwen2.5-1.5b", 1_543_714_304L)]   // Qwen/Qwen2.5-1.5B
    [InlineData("llama-3.2-1b", 1_235_814_400L)]   // meta-llama/Llama-3.2-1B
    public void PresetsHaveThePublishedParameterCounts(string preset, long published) =>
        Assert.Equal(published, (long)Presets.Get(preset).ParameterCount);

    [Fact]
    public void PresetsWriteThePublishedConfigFields()
    {
        var qwen = Presets.ToHfJson(Presets.Get("qwen2.5-0.5b"));
        Assert.Equal("qwen2", (string?)qwen["model_type"]);
        Assert.Equal(151936, (int?)qwen["vocab_size"]);
        Assert.Equal(2, (int?)qwen["num_key_value_heads"]);
        Assert.True((bool?)qwen["tie_word_embeddings"]);
        Assert.Equal(1e6, (double?)qwen["rope_theta"]);
        var llama = Presets.ToHfJson(Presets.Get("llama-3.2-1b"));
        var scaling = llama["rope_scaling"]!;
        Assert.Equal("llama3", (string?)scaling["rope_type"]);
        Assert.Equal(32.0, (double?)scaling["factor"]);
        Assert.Equal(8192, (int?)scaling["original_max_position_embeddings"]);
        Assert.Equal(64, (int?)llama["head_dim"]);
    }

    [Fact]
    public void QwenShapeWithTwoLayersTrainsLoraWithinItsMemoryBound()
    {
        // the full vocabulary (151,936) and widths of Qwen2.5-0.5B with 2 of its 24 blocks: 166M parameters, 636 MiB in
        // float32. LoRA r16 on every linear layer, T = 512, with activation checkpointing and the chunked loss. Whole
        // float32 logits alone would be 311 MB, with their log-softmax and gradient about 1 GB.
        // float32, not bf16: the subject is the memory of the chunked loss, and bf16 matmul speed depends on the host —
        // on one CI machine the bf16 run passed 5 minutes (its LM head on a slow bf16 path) where here it takes 6 s.
        var json = JsonNode.Parse(CliRunner.Ok("bench", "--mode", "train", "--preset", "qwen2.5-0.5b", "--n-layers", "2", "--method", "lora",
            "--lora-r", "16", "--lora-alpha", "32", "--lora-targets", "all", "--seq-len", "512", "--batch", "1",
            "--warmup", "0", "--steps", "3", "--activation-checkpointing", "1"))!;
        Assert.Equal("fp32", (string?)json["dtype"]);
        Assert.True((bool)json["chunked_loss"]!);
        Assert.Equal(1, (int)json["activation_checkpointing"]!);
        // r·(in + out) for q, k, v, o (896 -> 896, 128, 128, 896), gate, up (896 -> 4864) and down (4864 -> 896), 2 blocks
        long perBlock = 16L * ((896 + 896) + 2 * (896 + 128) + (896 + 896) + 3 * (896 + 4864));
        Assert.Equal(2 * perBlock, (long)json["trainable_params"]!);
        double first = (double)json["loss_first"]!, last = (double)json["loss_last"]!;
        Assert.True(double.IsFinite(first) && double.IsFinite(last) && Math.Abs(first - Math.Log(151936)) < 1.0, $"loss {first} → {last}");
        double before = (double)json["rss_before_steps_mib"]!, peak = (double)json["peak_rss_mib"]!;
        Assert.True(before < 166.7e6 * 4 / (1 << 20) + 400, $"{before} MiB before the first step: weights (636 MiB) and the runtime only");
        if ((bool)json["peak_rss_is_steps_only"]!)
            Assert.True(peak - before < 800, $"the steps added {peak - before:F0} MiB (bound 800 MiB; measured 485, and 1,518 with whole logits)");
        else
            Assert.True(peak < 2000, $"peak RSS {peak} MiB (bound 2000 MiB; measured 1,306, and 2,339 with whole logits)");
    }
}
