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
        // real shapes (random weights): the published config.json of each model, field for field where PeftLab reads it
        ["qwen2.5-0.5b"] = Qwen25(896, 24, 14, 4864, maxPositions: 32768),   // Qwen/Qwen2.5-0.5B, 494M
        ["qwen2.5-1.5b"] = Qwen25(1536, 28, 12, 8960, maxPositions: 131072), // Qwen/Qwen2.5-1.5B, 1.54B
        ["llama-3.2-1b"] = Llama(128256, 2048, 16, 32, 8192, kvHeads: 8) with   // meta-llama/Llama-3.2-1B, 1.24B
        {
            TieWordEmbeddings = true, MaxPositionEmbeddings = 131072, BosTokenId = 128000, EosTokenIds = [128001], PadTokenId = null,
            Rope = new RopeConfig(500000.0, RopeScalingKind.Llama3, Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192),
        },
    };

    /// <summary>A Qwen2.5 shape: 2 key/value heads, q/k/v bias, tied head, θ = 10⁶, RMSNorm ε = 10⁻⁶, vocabulary 151,936.</summary>
    private static DecoderConfig Qwen25(int d, int layers, int heads, int ff, int maxPositions) => Llama(151936, d, layers, heads, ff, kvHeads: 2) with
    {
        Family = DecoderFamily.Qwen2, QkvBias = true, TieWordEmbeddings = true, Rope = new RopeConfig(1000000.0), RmsNormEps = 1e-6,
        MaxPositionEmbeddings = maxPositions, BosTokenId = null, EosTokenIds = [151643], PadTokenId = 151643,
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

    /// <summary>Parameters with more values than this are drawn in row slices of about 8M values.</summary>
    public const long InitSliceElements = 64L << 20;

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
            else if (p.numel() <= InitSliceElements)
            {
                using var values = normal(0.0, std, p.shape, dtype: ScalarType.Float32, device: CPU, generator: gen);
                p.copy_(values);
            }
            else
            {
                // real-shape embeddings (151,936 × 1,536 = 233M values): rows in slices, so no whole float32 copy of
                // a bfloat16 table is ever made. Smaller tensors keep the one-draw stream, so existing presets
                // (and the shipped bases built from them) get the same weights as before.
                long rows = p.shape[0], rowsPerSlice = Math.Max(1, (8L << 20) / Math.Max(1, p.numel() / rows));
                for (long r = 0; r < rows; r += rowsPerSlice)
                {
                    using var slice = p.narrow(0, r, Math.Min(rowsPerSlice, rows - r));
                    using var values = normal(0.0, std, slice.shape, dtype: ScalarType.Float32, device: CPU, generator: gen);
                    slice.copy_(values);
                }
            }
        }
    }
}
