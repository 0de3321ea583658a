using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftLab.Models;

/// <summary>Decoder-only architectures sharing the Llama layout.</summary>
public enum DecoderFamily
{
    /// <summary><c>model_type: llama</c>.</summary>
    Llama,
    /// <summary><c>model_type: mistral</c> (Llama layout plus an optional sliding attention window).</summary>
    Mistral,
    /// <summary><c>model_type: qwen2</c> (Llama layout with q/k/v biases).</summary>
    Qwen2,
}

/// <summary>Rotary-embedding frequency scaling.</summary>
public enum RopeScalingKind
{
    /// <summary>Plain RoPE: inv_freq = 1/theta^(2i/d).</summary>
    Default,
    /// <summary>Positions divided by a factor (<c>rope_type: linear</c>).</summary>
    Linear,
    /// <summary>Llama 3.1 frequency-dependent scaling (<c>rope_type: llama3</c>).</summary>
    Llama3,
}

/// <summary>RoPE parameters, from either <c>rope_theta</c>/<c>rope_scaling</c> or the newer <c>rope_parameters</c>.</summary>
/// <param name="Theta">Base of the frequency ladder.</param>
/// <param name="Kind">Scaling kind.</param>
/// <param name="Factor">Scaling factor (linear, llama3).</param>
/// <param name="LowFreqFactor">llama3: low-frequency factor.</param>
/// <param name="HighFreqFactor">llama3: high-frequency factor.</param>
/// <param name="OriginalMaxPositions">llama3: original context length.</param>
public sealed record RopeConfig(
    double Theta,
    RopeScalingKind Kind = RopeScalingKind.Default,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositions = 8192);

/// <summary>
/// A decoder-only model's shape and semantics, read from a Hugging Face <c>config.json</c>.
/// Field meanings follow transformers' LlamaConfig / MistralConfig / Qwen2Config.
/// </summary>
public sealed record DecoderConfig
{
    /// <summary>Architecture family (<c>model_type</c>).</summary>
    public required DecoderFamily Family { get; init; }
    /// <summary>Vocabulary size (rows of the embedding and LM head).</summary>
    public required int VocabSize { get; init; }
    /// <summary>Model width d.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>SwiGLU inner width.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Number of decoder blocks.</summary>
    public required int NumLayers { get; init; }
    /// <summary>Query heads.</summary>
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads (grouped-query attention when smaller than <see cref="NumHeads"/>).</summary>
    public required int NumKeyValueHeads { get; init; }
    /// <summary>Per-head width (defaults to hidden/heads; <c>head_dim</c> overrides).</summary>
    public required int HeadDim { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>Rotary embedding settings.</summary>
    public RopeConfig Rope { get; init; } = new(10000.0);
    /// <summary>Biases on q/k/v (always on for qwen2; <c>attention_bias</c> for llama/mistral, which also covers o).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on the output projection (llama's <c>attention_bias</c>).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Biases on the MLP projections (<c>mlp_bias</c>).</summary>
    public bool MlpBias { get; init; }
    /// <summary>LM head shares the input embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Longest position the model was trained for (informational).</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;
    /// <summary>Mistral sliding attention window, or null for full attention.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Beginning-of-sequence id from config.json, if any.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence ids from config.json (may be several).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>Padding id from config.json, if any.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>model_type values this class accepts.</summary>
    public static readonly IReadOnlyDictionary<string, DecoderFamily> SupportedModelTypes = new Dictionary<string, DecoderFamily>
    {
        ["llama"] = DecoderFamily.Llama,
        ["mistral"] = DecoderFamily.Mistral,
        ["qwen2"] = DecoderFamily.Qwen2,
    };

    /// <summary>The <c>model_type</c> string of <see cref="Family"/>.</summary>
    public string ModelType => SupportedModelTypes.First(kv => kv.Value == Family).Key;

    /// <summary>
    /// Parameters of the model this config describes (embedding, untied head, attention and MLP projections with
    /// their biases, norms), computed in floating point so absurd sizes saturate instead of overflowing.
    /// </summary>
    public double ParameterCount
    {
        get
        {
            double h = HiddenSize, q = (double)NumHeads * HeadDim, kv = (double)NumKeyValueHeads * HeadDim, i = IntermediateSize;
            double attention = h * q + 2 * h * kv + q * h + (QkvBias ? q + 2 * kv : 0) + (OutputBias ? h : 0);
            double mlp = 3 * h * i + (MlpBias ? 2 * i + h : 0);
            double embeddings = (double)VocabSize * h * (TieWordEmbeddings ? 1 : 2);
            return embeddings + NumLayers * (attention + mlp + 2 * h) + h;
        }
    }

    /// <summary>Validates shape relations; throws <see cref="ModelConfigException"/> listing every problem.</summary>
    public void Validate(string source)
    {
        var errors = new List<string>();
        void Positive(string key, int value) { if (value <= 0) errors.Add($"{key} must be > 0 (got {value})"); }
        Positive("vocab_size", VocabSize);
        Positive("hidden_size", HiddenSize);
        Positive("intermediate_size", IntermediateSize);
        Positive("num_hidden_layers", NumLayers);
        Positive("num_attention_heads", NumHeads);
        Positive("num_key_value_heads", NumKeyValueHeads);
        Positive("head_dim", HeadDim);
        if (NumHeads > 0 && NumKeyValueHeads > 0 && NumHeads % NumKeyValueHeads != 0)
            errors.Add($"num_attention_heads ({NumHeads}) must be a multiple of num_key_value_heads ({NumKeyValueHeads})");
        if (HeadDim > 0 && HeadDim % 2 != 0) errors.Add($"head_dim must be even for rotary embeddings (got {HeadDim})");
        if (RmsNormEps <= 0) errors.Add($"rms_norm_eps must be > 0 (got {RmsNormEps})");
        if (Rope.Theta <= 0) errors.Add($"rope_theta must be > 0 (got {Rope.Theta})");
        Positive("max_position_embeddings", MaxPositionEmbeddings);
        if (SlidingWindow is int w) Positive("sliding_window", w);
        // special-token ids index the embedding (negative ids mean "unset", as transformers writes them)
        void Id(string key, int? id) { if (VocabSize > 0 && id >= VocabSize) errors.Add($"{key} {id} is outside the vocabulary (vocab_size {VocabSize})"); }
        Id("bos_token_id", BosTokenId);
        Id("pad_token_id", PadTokenId);
        foreach (var e in EosTokenIds) Id("eos_token_id", e);
        if (errors.Count > 0) throw new ModelConfigException($"{source}: invalid config: {string.Join("; ", errors)}");
    }

    /// <summary>Reads <c>config.json</c> from a model folder.</summary>
    public static DecoderConfig Load(string modelDir)
    {
        var (json, path) = ConfigReader.ReadConfigJson(modelDir);
        return Parse(json, path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static DecoderConfig Parse(string json, string source)
    {
        var r = ConfigReader.Parse(json, source);
        var modelType = r.String("model_type");
        if (modelType is null || !SupportedModelTypes.TryGetValue(modelType, out var family))
            throw new ModelConfigException(
                $"{source}: unsupported model_type '{modelType ?? "(missing)"}'; supported decoder-only types: " +
                $"{string.Join(", ", SupportedModelTypes.Keys)} (and t5 for encoder-decoder)");

        int hidden = r.RequiredInt("hidden_size");
        int heads = r.RequiredInt("num_attention_heads");
        string act = r.String("hidden_act") ?? "silu";
        if (act != "silu")
            throw new ModelConfigException($"{source}: hidden_act '{act}' is not supported for {modelType}; supported: silu");
        bool attentionBias = r.Bool("attention_bias") ?? false;
        var cfg = new DecoderConfig
        {
            Family = family,
            VocabSize = r.RequiredInt("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = r.RequiredInt("intermediate_size"),
            NumLayers = r.RequiredInt("num_hidden_layers"),
            NumHeads = heads,
            NumKeyValueHeads = r.Int("num_key_value_heads") ?? heads,
            HeadDim = r.Int("head_dim") ?? (heads > 0 ? hidden / heads : 0),
            RmsNormEps = r.Double("rms_norm_eps") ?? 1e-6,
            Rope = ParseRope(r, source),
            QkvBias = family == DecoderFamily.Qwen2 || attentionBias,
            OutputBias = family != DecoderFamily.Qwen2 && attentionBias,
            MlpBias = r.Bool("mlp_bias") ?? false,
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? false,
            MaxPositionEmbeddings = r.Int("max_position_embeddings") ?? 2048,
            SlidingWindow = family == DecoderFamily.Mistral ? r.Int("sliding_window")
                : (r.Bool("use_sliding_window") ?? false) ? r.Int("sliding_window") : null,
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            PadTokenId = r.Int("pad_token_id"),
        };
        cfg.Validate(source);
        return cfg;
    }

    private static RopeConfig ParseRope(ConfigReader r, string source)
    {
        // transformers >= 4.5x writes rope_parameters {rope_type, rope_theta, ...}; older files use rope_theta + rope_scaling.
        var parameters = r.Object("rope_parameters");
        var scaling = parameters ?? r.Object("rope_scaling");
        double theta = (parameters is not null ? new ConfigReader(parameters, source + ": rope_parameters").Double("rope_theta") : null)
                       ?? r.Double("rope_theta") ?? 10000.0;
        if (scaling is null) return new RopeConfig(theta);
        var s = new ConfigReader(scaling, source + (parameters is not null ? ": rope_parameters" : ": rope_scaling"));
        var type = s.String("rope_type") ?? s.String("type") ?? "default";
        return type switch
        {
            "default" => new RopeConfig(theta),
            "linear" => new RopeConfig(theta, RopeScalingKind.Linear, s.Double("factor") ?? 1.0),
            "llama3" => new RopeConfig(theta, RopeScalingKind.Llama3,
                s.Double("factor") ?? throw new ModelConfigException($"{source}: rope_scaling type llama3 needs 'factor'"),
                s.Double("low_freq_factor") ?? 1.0,
                s.Double("high_freq_factor") ?? 4.0,
                s.Int("original_max_position_embeddings") ?? 8192),
            _ => throw new ModelConfigException($"{source}: rope scaling type '{type}' is not supported; supported: default, linear, llama3"),
        };
    }
}

/// <summary>A config.json could not be read or describes something PeftLab does not support.</summary>
public sealed class ModelConfigException(string message) : Exception(message);

/// <summary>Typed access to a JSON config object with errors that name the key and file.</summary>
internal sealed class ConfigReader(JsonObject obj, string source)
{
    /// <summary>The text and path of a model folder's config.json.</summary>
    public static (string Json, string Path) ReadConfigJson(string modelDir)
    {
        var path = System.IO.Path.Combine(modelDir, "config.json");
        if (!File.Exists(path)) throw new ModelConfigException($"{modelDir}: no config.json (expected a Hugging Face model folder)");
        return (PeftLab.Data.Utf8Text.ReadAllText(path), path);
    }

    /// <summary>A reader over config.json text, with malformed JSON reported against <paramref name="source"/>.</summary>
    public static ConfigReader Parse(string json, string source)
    {
        try
        {
            return new ConfigReader(JsonNode.Parse(json) as JsonObject ?? throw new ModelConfigException($"{source}: config.json must hold a JSON object"), source);
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{source}: malformed config.json: {e.Message}");
        }
    }

    private JsonNode? Get(string key) => obj.TryGetPropertyValue(key, out var v) ? v : null;

    /// <summary>Is the key present (even as null)?</summary>
    public bool Has(string key) => obj.ContainsKey(key);

    private T? Read<T>(string key, string expected) where T : struct
    {
        var node = Get(key);
        if (node is null) return null;
        try { return node.GetValue<T>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            // integers written as 1.0 are still integers
            if (typeof(T) == typeof(int) && node is JsonValue jv && jv.TryGetValue<double>(out var d) && d == Math.Floor(d))
                return (T)(object)(int)d;
            throw new ModelConfigException($"{source}: '{key}' must be {expected} (got {node.ToJsonString()})");
        }
    }

    public int? Int(string key) => Read<int>(key, "an integer");
    public double? Double(string key) => Read<double>(key, "a number");
    public bool? Bool(string key) => Read<bool>(key, "true or false");
    public int RequiredInt(string key) => Int(key) ?? throw new ModelConfigException($"{source}: missing required key '{key}'");

    public string? String(string key)
    {
        var node = Get(key);
        if (node is null) return null;
        return node is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new ModelConfigException($"{source}: '{key}' must be a string (got {node.ToJsonString()})");
    }

    public JsonObject? Object(string key)
    {
        var node = Get(key);
        return node switch
        {
            null => null,
            JsonObject o => o,
            _ => throw new ModelConfigException($"{source}: '{key}' must be an object or null (got {node.ToJsonString()})"),
        };
    }

    public IReadOnlyList<int> IntOrList(string key)
    {
        var node = Get(key);
        if (node is null) return [];
        if (node is JsonArray arr)
            return arr.Select(x => x is JsonValue v && v.TryGetValue<int>(out var i) ? i
                : throw new ModelConfigException($"{source}: '{key}' must hold integers (got {node.ToJsonString()})")).ToArray();
        return [Int(key)!.Value];
    }
}
