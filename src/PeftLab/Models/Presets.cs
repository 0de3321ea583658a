using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>
/// Built-in model shapes for tests, benchmarks and the built-in default. <c>tiny</c>, <c>small</c> and
/// <c>medium</c> equal the shapes of the PyTorch peer benchmark (vocab, d_model, layers, heads, d_ff).
/// </summary>
public static class Presets
{
    private static DecoderConfig Llama(int vocab, int d, int layers, int heads, int ff, int? kvHeads = null) => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = vocab,
        HiddenSize = d,
        IntermediateSize = ff,
        NumLayers = layers,
        NumHeads = heads,
        NumKeyValueHeads = kvHeads ?? heads,
        HeadDim = d / heads,
        RmsNormEps = 1e-5,
        Rope = new RopeConfig(10000.0),
        MaxPositionEmbeddings = 2048,
        BosTokenId = 1,
        EosTokenIds = [2],
        PadTokenId = 0,
    };

    /// <summary>Preset name to decoder config.</summary>
    public static readonly IReadOnlyDictionary<string, DecoderConfig> Decoder = new Dictionary<string, DecoderConfig>
    {
        ["nano"] = Llama(512, 48, 2, 4, 128),              // ~0.1M parameters
        ["micro"] = Llama(1024, 96, 3, 4, 256, kvHeads: 2), // ~0.5M, grouped-query attention
        ["tiny"] = Llama(512, 128, 4, 4, 512),             // peer 'tiny', ~0.9M
        ["mini"] = Llama(2048, 192, 4, 6, 512),            // ~3M, BPE vocabulary of 2048
        ["mini-bytes"] = Llama(260, 192, 4, 6, 512),       // ~1.9M, the mini shape with a byte-level vocabulary (letters and digits stay visible)
        ["small"] = Llama(8192, 384, 6, 6, 1024),          // peer 'small', ~17M
        ["medium"] = Llama(32000, 768, 12, 12, 2048),      // peer 'medium', ~134M
        ["qwen-tiny"] = Llama(512, 128, 4, 4, 512, kvHeads: 2) with { Family = DecoderFamily.Qwen2, QkvBias = true, TieWordEmbeddings = true, Rope = new RopeConfig(1000000.0) },
    };

    /// <summary>Looks up a preset with an error listing the known ones.</summary>
    public static DecoderConfig Get(string name) => Decoder.TryGetValue(name, out var c) ? c
        : throw new ArgumentException($"unknown preset '{name}'; known presets: {string.Join(", ", Decoder.Keys)}");

    /// <summary>Writes a transformers-style config.json for a decoder config.</summary>
    public static JsonObject ToHfJson(DecoderConfig c)
    {
        var arch = c.Family switch { DecoderFamily.Qwen2 => "Qwen2ForCausalLM", DecoderFamily.Mistral => "MistralForCausalLM", _ => "LlamaForCausalLM" };
        var json = new JsonObject
        {
            ["model_type"] = c.ModelType,
            ["architectures"] = new JsonArray(arch),
            ["vocab_size"] = c.VocabSize,
            ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize,
            ["num_hidden_layers"] = c.NumLayers,
            ["num_attention_heads"] = c.NumHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads,
            ["head_dim"] = c.HeadDim,
            ["hidden_act"] = "silu",
            ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["rms_norm_eps"] = c.RmsNormEps,
            ["rope_theta"] = c.Rope.Theta,
            ["attention_bias"] = c.Family != DecoderFamily.Qwen2 && c.QkvBias,
            ["mlp_bias"] = c.MlpBias,
            ["tie_word_embeddings"] = c.TieWordEmbeddings,
            ["torch_dtype"] = "float32",
        };
        if (c.Rope.Kind != RopeScalingKind.Default)
        {
            var scaling = new JsonObject { ["rope_type"] = c.Rope.Kind == RopeScalingKind.Llama3 ? "llama3" : "linear", ["factor"] = c.Rope.Factor };
            if (c.Rope.Kind == RopeScalingKind.Llama3)
            {
                scaling["low_freq_factor"] = c.Rope.LowFreqFactor;
                scaling["high_freq_factor"] = c.Rope.HighFreqFactor;
                scaling["original_max_position_embeddings"] = c.Rope.OriginalMaxPositions;
            }
            json["rope_scaling"] = scaling;
        }
        if (c.SlidingWindow is int w) json["sliding_window"] = w;
        if (c.BosTokenId is int bos) json["bos_token_id"] = bos;
        if (c.EosTokenIds.Count == 1) json["eos_token_id"] = c.EosTokenIds[0];
        else if (c.EosTokenIds.Count > 1) json["eos_token_id"] = new JsonArray(c.EosTokenIds.Select(x => (JsonNode)x).ToArray());
        if (c.PadTokenId is int pad) json["pad_token_id"] = pad;
        return json;
    }

    /// <summary>
    /// Initialises weights as transformers does for these models: Linear and Embedding weights N(0, 0.02),
    /// biases 0, norm gains 1. Deterministic for a seed (parameters visited in name order).
    /// </summary>
    public static void InitializeWeights(nn.Module model, long seed, double std = 0.02)
    {
        using var noGrad = no_grad();
        var gen = new Generator((ulong)seed, device: CPU);
        foreach (var (name, p) in model.named_parameters().OrderBy(x => x.name, StringComparer.Ordinal))
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else
            {
                using var values = normal(0.0, std, p.shape, dtype: ScalarType.Float32, device: CPU, generator: gen);
                p.copy_(values);
            }
        }
    }
}
