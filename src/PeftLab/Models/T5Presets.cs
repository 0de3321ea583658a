using System.Text.Json;
using System.Text.Json.Nodes;
using PeftLab.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>
/// Built-in T5 shapes (T5 v1.1 / LM-adapt style: gated-GELU, untied head) for tests, benchmarks and small studies.
/// Special ids follow PeftLab's built-in tokenizer (<see cref="BuiltinTokenizer"/>): 0 &lt;pad&gt; (also the decoder
/// start, as in T5), 1 &lt;s&gt; (unused by T5), 2 &lt;/s&gt; (EOS), 3 &lt;unk&gt;; real T5 checkpoints use pad 0, eos 1.
/// </summary>
public static class T5Presets
{
    private static T5Config Shape(int vocab, int d, int dk, int ff, int heads, int layers) => new()
    {
        VocabSize = vocab,
        HiddenSize = d,
        HeadDim = dk,
        FeedForwardSize = ff,
        NumLayers = layers,
        NumDecoderLayers = layers,
        NumHeads = heads,
        FeedForwardProj = "gated-gelu",
        TieWordEmbeddings = false,
        PadTokenId = 0,
        EosTokenIds = [2],
        DecoderStartTokenId = 0,
    };

    /// <summary>Preset name to config.</summary>
    public static readonly IReadOnlyDictionary<string, T5Config> All = new Dictionary<string, T5Config>
    {
        ["t5-tiny"] = Shape(512, 128, 32, 512, 4, 4),          // ~2.5M parameters
        ["t5-small-shape"] = Shape(8192, 384, 64, 1024, 6, 6),  // ~31M; widths of the decoder-only 'small' preset
    };

    /// <summary>Looks up a preset with an error listing the known ones.</summary>
    public static T5Config Get(string name) => All.TryGetValue(name, out var c) ? c
        : throw new ArgumentException($"unknown T5 preset '{name}'; known presets: {string.Join(", ", All.Keys)}");
}

/// <summary>Initialisation and on-disk creation of built-in T5 models.</summary>
public static class T5Init
{
    /// <summary>
    /// Initialises weights as transformers' T5PreTrainedModel does (factor f = initializer_factor): shared embedding and
    /// untied head N(0, f); q N(0, f·(d·dk)^-½); k, v N(0, f·d^-½); o N(0, f·(H·dk)^-½); wi, wi_0, wi_1 N(0, f·d^-½);
    /// wo N(0, f·ff^-½); relative_attention_bias N(0, f·d^-½); norm gains f. Deterministic for a seed (parameters
    /// visited in name order). Call on a model without PEFT modules.
    /// </summary>
    public static void InitializeWeights(T5ForConditionalGeneration model, long seed)
    {
        var c = model.Config;
        double f = c.InitializerFactor, d = c.HiddenSize;
        using var noGrad = no_grad();
        var gen = new Generator((ulong)seed, device: CPU);
        foreach (var (name, p) in model.named_parameters().OrderBy(x => x.name, StringComparer.Ordinal))
        {
            var leaf = name.Split('.');
            string module = leaf.Length >= 2 ? leaf[^2] : "";
            double? std = module switch
            {
                _ when name.EndsWith("layer_norm.weight", StringComparison.Ordinal) => null,
                "shared" or "lm_head" => f,
                "q" => f * Math.Pow(d * c.HeadDim, -0.5),
                "k" or "v" or "wi" or "wi_0" or "wi_1" or "relative_attention_bias" => f * Math.Pow(d, -0.5),
                "o" => f * Math.Pow((double)c.NumHeads * c.HeadDim, -0.5),
                "wo" => f * Math.Pow(c.FeedForwardSize, -0.5),
                _ => throw new InvalidOperationException($"T5 initialisation does not know parameter '{name}' (initialise before attaching PEFT methods)"),
            };
            if (std is null) p.fill_(f);
            else
            {
                using var values = normal(0.0, std.Value, p.shape, dtype: ScalarType.Float32, device: CPU, generator: gen);
                p.copy_(values);
            }
        }
    }

    /// <summary>Writes a complete Hugging Face T5 folder for a preset; see <see cref="WriteModelFolder(string, T5Config, long, IEnumerable{string}?)"/>.</summary>
    public static T5Config WriteModelFolder(string dir, string preset, long seed = 0, IEnumerable<string>? corpus = null)
        => WriteModelFolder(dir, T5Presets.Get(preset), seed, corpus);

    /// <summary>
    /// Writes a complete Hugging Face T5 folder: config.json (decoder_start_token_id = pad id), model.safetensors with
    /// T5-style initialisation (<see cref="InitializeWeights"/>), and PeftLab's built-in tokenizer trained on
    /// <paramref name="corpus"/>. That tokenizer is a byte-level BPE (tokenizer.json), not T5's SentencePiece Unigram; it
    /// is made T5-like by appending &lt;/s&gt; to every encoded sequence. Its special ids (pad 0, eos 2) must match the
    /// config's, which the built-in presets do. Returns the config written.
    /// </summary>
    public static T5Config WriteModelFolder(string dir, T5Config config, long seed = 0, IEnumerable<string>? corpus = null)
    {
        config.Validate("T5 config");
        const int Pad = 0, Eos = 2; // BuiltinTokenizer's ids
        if (config.PadTokenId != Pad || config.DecoderStartTokenId != Pad || !config.EosTokenIds.SequenceEqual([Eos]))
            throw new ArgumentException($"the built-in tokenizer has pad id {Pad} and eos id {Eos}; the config must use pad_token_id {Pad}, decoder_start_token_id {Pad}, eos_token_id {Eos}");
        if (config.VocabSize is < BuiltinTokenizerOptions.MinVocabSize or > BuiltinTokenizerOptions.MaxVocabSize)
            throw new ArgumentException($"vocab_size {config.VocabSize} is outside what the built-in tokenizer supports ({BuiltinTokenizerOptions.MinVocabSize}..{BuiltinTokenizerOptions.MaxVocabSize})");
        Directory.CreateDirectory(dir);
        var options = new BuiltinTokenizerOptions { VocabSize = config.VocabSize, Corpus = corpus ?? [], AddBosToken = false };
        BuiltinTokenizer.Write(dir, options);
        MakeT5Like(dir, options.EosToken, Eos);

        Runtime.TorchRuntime.EnsureInitialised();
        using var model = new T5ForConditionalGeneration(config, CPU);
        InitializeWeights(model, seed);
        HfT5.Save(model, dir);
        return config;
    }

    /// <summary>T5 tokenizers end every sequence with &lt;/s&gt;: a TemplateProcessing "$A &lt;/s&gt;", and add_eos_token for tools that read the flag.</summary>
    private static void MakeT5Like(string dir, string eosToken, int eosId)
    {
        var options = new JsonSerializerOptions { WriteIndented = true };
        var tokPath = Path.Combine(dir, "tokenizer.json");
        var tok = JsonNode.Parse(File.ReadAllText(tokPath))!.AsObject();
        JsonObject Piece(string kind, string id, int typeId) => new() { [kind] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };
        tok["post_processor"] = new JsonObject
        {
            ["type"] = "TemplateProcessing",
            ["single"] = new JsonArray(Piece("Sequence", "A", 0), Piece("SpecialToken", eosToken, 0)),
            ["pair"] = new JsonArray(Piece("Sequence", "A", 0), Piece("SpecialToken", eosToken, 0), Piece("Sequence", "B", 0), Piece("SpecialToken", eosToken, 0)),
            ["special_tokens"] = new JsonObject
            {
                [eosToken] = new JsonObject { ["id"] = eosToken, ["ids"] = new JsonArray(eosId), ["tokens"] = new JsonArray(eosToken) },
            },
        };
        File.WriteAllText(tokPath, tok.ToJsonString(options) + "\n");
        var cfgPath = Path.Combine(dir, "tokenizer_config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        cfg["add_bos_token"] = false;
        cfg["add_eos_token"] = true;
        File.WriteAllText(cfgPath, cfg.ToJsonString(options) + "\n");
    }
}
