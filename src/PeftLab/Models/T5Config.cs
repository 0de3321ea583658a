using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftLab.Models;

/// <summary>Nonlinearity of a T5 feed-forward block (transformers' <c>dense_act_fn</c>).</summary>
public enum T5Activation
{
    /// <summary><c>relu</c> (original T5).</summary>
    Relu,
    /// <summary><c>gelu</c>: the exact (erf) GELU.</summary>
    Gelu,
    /// <summary><c>gelu_new</c>: the tanh approximation; what <c>gated-gelu</c> (T5 v1.1, LM-adapt, Flan-T5) uses.</summary>
    GeluNew,
    /// <summary><c>silu</c>.</summary>
    Silu,
}

/// <summary>
/// A T5 encoder-decoder's shape and semantics, read from a Hugging Face <c>config.json</c> with
/// <c>model_type: t5</c>. Field meanings follow transformers' T5Config; keys that transformers defaults are
/// defaulted the same way, except the shape keys, which are required.
/// </summary>
public sealed record T5Config
{
    /// <summary>Vocabulary size (<c>vocab_size</c>): rows of the shared embedding and the LM head.</summary>
    public required int VocabSize { get; init; }
    /// <summary>Model width d (<c>d_model</c>).</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Per-head width (<c>d_kv</c>); heads × d_kv need not equal d_model.</summary>
    public required int HeadDim { get; init; }
    /// <summary>Feed-forward inner width (<c>d_ff</c>).</summary>
    public required int FeedForwardSize { get; init; }
    /// <summary>Encoder blocks (<c>num_layers</c>).</summary>
    public required int NumLayers { get; init; }
    /// <summary>Decoder blocks (<c>num_decoder_layers</c>, defaults to <c>num_layers</c>).</summary>
    public required int NumDecoderLayers { get; init; }
    /// <summary>Attention heads (<c>num_heads</c>).</summary>
    public required int NumHeads { get; init; }
    /// <summary>Relative-position buckets (<c>relative_attention_num_buckets</c>).</summary>
    public int RelativeAttentionNumBuckets { get; init; } = 32;
    /// <summary>Distance beyond which all relative positions share a bucket (<c>relative_attention_max_distance</c>).</summary>
    public int RelativeAttentionMaxDistance { get; init; } = 128;
    /// <summary>Dropout on embeddings, sublayer outputs, attention weights and the feed-forward hidden (<c>dropout_rate</c>); training only.</summary>
    public double DropoutRate { get; init; } = 0.1;
    /// <summary>T5LayerNorm epsilon (<c>layer_norm_epsilon</c>).</summary>
    public double LayerNormEpsilon { get; init; } = 1e-6;
    /// <summary>Scale of the initialisation standard deviations (<c>initializer_factor</c>).</summary>
    public double InitializerFactor { get; init; } = 1.0;
    /// <summary>
    /// <c>feed_forward_proj</c>: an activation (relu, gelu, gelu_new, silu), optionally prefixed by <c>gated-</c> for the
    /// gated form act(wi_0 x) ⊙ wi_1 x; <c>gated-gelu</c> means gated <c>gelu_new</c>, as in transformers.
    /// </summary>
    public string FeedForwardProj { get; init; } = "relu";
    /// <summary>The LM head is the shared embedding, and the decoder output is scaled by d_model^-0.5 first (original T5). Default true, as in transformers.</summary>
    public bool TieWordEmbeddings { get; init; } = true;
    /// <summary>Padding id (<c>pad_token_id</c>).</summary>
    public int PadTokenId { get; init; }
    /// <summary>End-of-sequence ids (<c>eos_token_id</c>, an id or a list).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [1];
    /// <summary>First decoder input (<c>decoder_start_token_id</c>; T5 uses the pad id, which is also the fallback when the key is absent).</summary>
    public int DecoderStartTokenId { get; init; }

    /// <summary>Whether the feed-forward block is gated (wi_0, wi_1, wo) rather than wi, wo.</summary>
    public bool IsGated => ParseFeedForward(FeedForwardProj, "config").Gated;

    /// <summary>The feed-forward nonlinearity.</summary>
    public T5Activation Activation => ParseFeedForward(FeedForwardProj, "config").Activation;

    /// <summary>
    /// Splits <c>feed_forward_proj</c> as transformers does: "ACT" or "gated-ACT"; "gated-gelu" maps to gelu_new.
    /// Throws naming <paramref name="source"/> for anything else.
    /// </summary>
    public static (T5Activation Activation, bool Gated) ParseFeedForward(string value, string source)
    {
        var parts = value.Split('-');
        bool gated = parts[0] == "gated";
        if (parts.Length > 2 || (parts.Length == 2 && !gated))
            throw new ModelConfigException($"{source}: feed_forward_proj '{value}' is not valid; use an activation optionally prefixed by 'gated-' (e.g. relu, gated-gelu)");
        string act = value == "gated-gelu" ? "gelu_new" : parts[^1];
        T5Activation activation = act switch
        {
            "relu" => T5Activation.Relu,
            "gelu" => T5Activation.Gelu,
            "gelu_new" => T5Activation.GeluNew,
            "silu" or "swish" => T5Activation.Silu,
            _ => throw new ModelConfigException(
                $"{source}: feed_forward_proj '{value}' uses activation '{act}', which is not supported; supported: relu, gelu, gelu_new, silu (each optionally 'gated-')"),
        };
        return (activation, gated);
    }

    /// <summary>
    /// Parameters of the model this config describes (shared embedding, untied head, attention and feed-forward
    /// projections, each stack's relative-position bias in its first block, norms), in floating point so absurd sizes
    /// saturate instead of overflowing.
    /// </summary>
    public double ParameterCount
    {
        get
        {
            double d = HiddenSize, inner = (double)NumHeads * HeadDim, attention = 4 * d * inner;
            double ff = (IsGated ? 3 : 2) * d * FeedForwardSize;
            double encoder = NumLayers * (attention + ff + 2 * d) + d;
            double decoder = NumDecoderLayers * (2 * attention + ff + 3 * d) + d;
            double relativeBias = 2.0 * RelativeAttentionNumBuckets * NumHeads;
            return (double)VocabSize * d * (TieWordEmbeddings ? 1 : 2) + encoder + decoder + relativeBias;
        }
    }

    /// <summary>Validates shape relations; throws <see cref="ModelConfigException"/> listing every problem.</summary>
    public void Validate(string source)
    {
        var errors = new List<string>();
        void Positive(string key, int value) { if (value <= 0) errors.Add($"{key} must be > 0 (got {value})"); }
        Positive("vocab_size", VocabSize);
        Positive("d_model", HiddenSize);
        Positive("d_kv", HeadDim);
        Positive("d_ff", FeedForwardSize);
        Positive("num_layers", NumLayers);
        Positive("num_decoder_layers", NumDecoderLayers);
        Positive("num_heads", NumHeads);
        // Bidirectional bucketing halves the buckets and keeps half of those exact; both halves must be non-empty,
        // and the logarithmic range must extend past the exact one (otherwise log(max_distance / max_exact) <= 0).
        if (RelativeAttentionNumBuckets < 4)
            errors.Add($"relative_attention_num_buckets must be >= 4 (got {RelativeAttentionNumBuckets})");
        else if (RelativeAttentionMaxDistance <= RelativeAttentionNumBuckets / 2)
            errors.Add($"relative_attention_max_distance ({RelativeAttentionMaxDistance}) must exceed relative_attention_num_buckets / 2 ({RelativeAttentionNumBuckets / 2})");
        if (DropoutRate is < 0 or >= 1) errors.Add($"dropout_rate must be in [0, 1) (got {DropoutRate})");
        if (LayerNormEpsilon <= 0) errors.Add($"layer_norm_epsilon must be > 0 (got {LayerNormEpsilon})");
        if (VocabSize > 0)
        {
            if (PadTokenId < 0 || PadTokenId >= VocabSize) errors.Add($"pad_token_id {PadTokenId} is outside the vocabulary (size {VocabSize})");
            if (DecoderStartTokenId < 0 || DecoderStartTokenId >= VocabSize) errors.Add($"decoder_start_token_id {DecoderStartTokenId} is outside the vocabulary (size {VocabSize})");
            foreach (var e in EosTokenIds)
                if (e < 0 || e >= VocabSize) errors.Add($"eos_token_id {e} is outside the vocabulary (size {VocabSize})");
        }
        try { ParseFeedForward(FeedForwardProj, source); }
        catch (ModelConfigException e) { errors.Add(e.Message[(source.Length + 2)..]); }
        if (errors.Count > 0) throw new ModelConfigException($"{source}: invalid config: {string.Join("; ", errors)}");
    }

    /// <summary>Whether <paramref name="modelDir"/> holds a config.json with <c>model_type: t5</c> (false when there is none or it cannot be read).</summary>
    public static bool IsT5Folder(string modelDir)
    {
        var path = Path.Combine(modelDir, "config.json");
        if (!File.Exists(path)) return false;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) is JsonObject o && o["model_type"] is JsonValue v && v.TryGetValue<string>(out var s) && s == "t5";
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Reads <c>config.json</c> from a model folder.</summary>
    public static T5Config Load(string modelDir)
    {
        var (json, path) = ConfigReader.ReadConfigJson(modelDir);
        return Parse(json, path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static T5Config Parse(string json, string source)
    {
        var r = ConfigReader.Parse(json, source);
        var modelType = r.String("model_type");
        if (modelType != "t5")
            throw new ModelConfigException($"{source}: model_type '{modelType ?? "(missing)"}' is not t5");
        if (r.Bool("is_encoder_decoder") == false)
            throw new ModelConfigException($"{source}: is_encoder_decoder is false; PeftLab's T5 is the encoder-decoder T5ForConditionalGeneration");
        int layers = r.RequiredInt("num_layers");
        int pad = r.Int("pad_token_id") ?? 0;
        var cfg = new T5Config
        {
            VocabSize = r.RequiredInt("vocab_size"),
            HiddenSize = r.RequiredInt("d_model"),
            HeadDim = r.RequiredInt("d_kv"),
            FeedForwardSize = r.RequiredInt("d_ff"),
            NumLayers = layers,
            NumDecoderLayers = r.Int("num_decoder_layers") ?? layers,
            NumHeads = r.RequiredInt("num_heads"),
            RelativeAttentionNumBuckets = r.Int("relative_attention_num_buckets") ?? 32,
            RelativeAttentionMaxDistance = r.Int("relative_attention_max_distance") ?? 128,
            DropoutRate = r.Double("dropout_rate") ?? 0.1,
            LayerNormEpsilon = r.Double("layer_norm_epsilon") ?? 1e-6,
            InitializerFactor = r.Double("initializer_factor") ?? 1.0,
            FeedForwardProj = r.String("feed_forward_proj") ?? "relu",
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? true,
            PadTokenId = pad,
            EosTokenIds = r.Has("eos_token_id") ? r.IntOrList("eos_token_id") : [1],
            DecoderStartTokenId = r.Int("decoder_start_token_id") ?? pad,
        };
        cfg.Validate(source);
        return cfg;
    }

    /// <summary>A transformers-style config.json for this config.</summary>
    public JsonObject ToHfJson()
    {
        var json = new JsonObject
        {
            ["model_type"] = "t5",
            ["architectures"] = new JsonArray("T5ForConditionalGeneration"),
            ["vocab_size"] = VocabSize,
            ["d_model"] = HiddenSize,
            ["d_kv"] = HeadDim,
            ["d_ff"] = FeedForwardSize,
            ["num_layers"] = NumLayers,
            ["num_decoder_layers"] = NumDecoderLayers,
            ["num_heads"] = NumHeads,
            ["relative_attention_num_buckets"] = RelativeAttentionNumBuckets,
            ["relative_attention_max_distance"] = RelativeAttentionMaxDistance,
            ["dropout_rate"] = DropoutRate,
            ["layer_norm_epsilon"] = LayerNormEpsilon,
            ["initializer_factor"] = InitializerFactor,
            ["feed_forward_proj"] = FeedForwardProj,
            ["is_encoder_decoder"] = true,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["pad_token_id"] = PadTokenId,
            ["decoder_start_token_id"] = DecoderStartTokenId,
            ["torch_dtype"] = "float32",
        };
        json["eos_token_id"] = EosTokenIds.Count == 1 ? EosTokenIds[0] : new JsonArray(EosTokenIds.Select(x => (JsonNode)x).ToArray());
        return json;
    }
}
