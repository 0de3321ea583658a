using System.Text.Json;
using System.Text.Json.Nodes;
using Tokenizers.DotNet;

namespace PeftLab.Tokenization;

/// <summary>
/// A Hugging Face tokenizer loaded from a model folder: <c>tokenizer.json</c> (required) plus the optional
/// <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c>, <c>generation_config.json</c>, <c>config.json</c> and
/// <c>chat_template.jinja</c>. Encoding runs in the Rust tokenizers library through the Tokenizers.DotNet binding; the
/// parts that binding cannot do are done here, faithfully to the library:
/// <list type="bullet">
/// <item>The binding always applies the file's post-processor (e.g. a TemplateProcessing that prepends BOS). PeftLab parses
/// "post_processor" to learn exactly which ids it puts before and after a single sequence and strips that many ids from
/// each result (checked against them, so a mismatch fails loudly). Parsing was chosen over probing with an empty string
/// because a probe cannot tell a prefix from a suffix (is <c>[&lt;s&gt;, &lt;/s&gt;]</c> two prefix tokens or one of each?),
/// and stripping by position stays exact even when the text itself contains those special tokens.</item>
/// <item>The binding's decode always skips special tokens; decoding with them runs the managed re-implementation of the
/// file's decoder (<see cref="TokenDecoder"/>), which is tested against the binding where the two overlap.</item>
/// <item>A decoder with a trailing Strip step can crash the native library (see <see cref="TokenizerJson.AvoidNativeDecode"/>);
/// such files are decoded by the managed decoder only.</item>
/// <item>Truncation or padding enabled in tokenizer.json would be applied to every call by the library; transformers
/// disables both unless a call asks for them, so PeftLab hands the binding a copy with both turned off.</item>
/// </list>
/// Instances are immutable and thread-safe; dispose to release the native tokenizer.
/// </summary>
public sealed class HfTokenizer : ITokenizer, IDisposable
{
    private readonly Tokenizer _native;
    private readonly TokenizerJson _file;
    private readonly HashSet<int> _specialIds;
    private readonly int[] _prefix;
    private readonly int[] _suffix;
    private bool _disposed;

    private HfTokenizer(string dir, Tokenizer native, TokenizerJson file, SpecialTokens specials, string? chatTemplate)
    {
        ModelDirectory = dir;
        _native = native;
        _file = file;
        BosId = specials.Bos;
        EosIds = specials.Eos;
        PadId = specials.Pad;
        UnkId = specials.Unk;
        ChatTemplate = chatTemplate;
        _prefix = specials.Prefix;
        _suffix = specials.Suffix;
        _specialIds = [.. file.SpecialIds, .. specials.All];
    }

    /// <summary>The folder the tokenizer was loaded from.</summary>
    public string ModelDirectory { get; }

    /// <inheritdoc/>
    public int VocabSize => _file.IdToToken.Length;
    /// <inheritdoc/>
    public int? BosId { get; }
    /// <inheritdoc/>
    public IReadOnlyList<int> EosIds { get; }
    /// <inheritdoc/>
    public int? PadId { get; }
    /// <inheritdoc/>
    public int? UnkId { get; }
    /// <inheritdoc/>
    public string? ChatTemplate { get; }

    /// <summary>The ids <see cref="Encode"/> puts before the text when asked to add special tokens.</summary>
    public IReadOnlyList<int> SpecialPrefix => _prefix;

    /// <summary>The ids <see cref="Encode"/> puts after the text when asked to add special tokens.</summary>
    public IReadOnlyList<int> SpecialSuffix => _suffix;

    /// <summary>
    /// Loads the tokenizer of a Hugging Face model folder. Special tokens are resolved as transformers does:
    /// token strings from tokenizer_config.json, then special_tokens_map.json (an explicit null there means "none");
    /// failing those, ids from generation_config.json, then config.json (negative ids count as unset). EOS ids are the
    /// tokenizer's EOS followed by generation_config.json's (or config.json's) eos_token_id, which may be a list.
    /// When tokenizer_config.json sets add_bos_token / add_eos_token, they decide whether BOS / EOS is added, as
    /// transformers' Llama-family tokenizers rebuild their post-processor from those flags; otherwise the
    /// post-processor in tokenizer.json decides.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder has no tokenizer.json.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or names a token the vocabulary lacks.</exception>
    public static HfTokenizer Load(string modelDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDirectory);
        string dir = Path.GetFullPath(modelDirectory);
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"tokenizer folder {dir} does not exist; expected a Hugging Face model folder containing tokenizer.json");
        string jsonPath = Path.Combine(dir, "tokenizer.json");
        if (!File.Exists(jsonPath))
            throw new FileNotFoundException(
                $"no tokenizer.json in {dir}: PeftLab needs a Hugging Face fast-tokenizer file (tokenizer.json, as written by " +
                "transformers' save_pretrained or BuiltinTokenizer.Write); slow-tokenizer files alone (tokenizer.model, vocab.json + merges.txt) are not supported",
                jsonPath);

        var file = TokenizerJson.Load(jsonPath);
        var configs = new ConfigFiles(dir);
        var specials = SpecialTokens.Resolve(file, configs);
        string? chatTemplate = configs.ChatTemplate();

        CheckFitsModel(file, configs.ModelConfig);
        var native = LoadNative(file);
        var tokenizer = new HfTokenizer(dir, native, file, specials, chatTemplate);
        try
        {
            // Sanity probe: the binding must wrap text in exactly the ids parsed from "post_processor".
            tokenizer.Encode("a");
        }
        catch
        {
            tokenizer.Dispose();
            throw;
        }
        return tokenizer;
    }

    /// <summary>
    /// A tokenizer whose ids reach past the model's embedding (config.json's vocab_size) would feed the model ids it
    /// cannot look up: an error at load, naming both sizes. A model may have more rows than the tokenizer has tokens.
    /// </summary>
    private static void CheckFitsModel(TokenizerJson file, ConfigFile? modelConfig)
    {
        if (modelConfig is null || !modelConfig.Root.TryGetProperty("vocab_size", out var v) || !v.TryGetInt64(out long vocab)) return;
        int tokens = file.IdToToken.Length;
        if (tokens > vocab)
            throw new InvalidDataException(
                $"{file.Path}: the tokenizer has ids up to {tokens - 1} ({tokens} tokens) but {modelConfig.Path} says vocab_size {vocab}; " +
                $"ids {vocab}..{tokens - 1} would index past the model's embedding (the tokenizer and model do not belong together)");
    }

    private static Tokenizer LoadNative(TokenizerJson file)
    {
        string path = file.Path;
        string? temp = null;
        if (file.HasTruncationOrPadding)
        {
            var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            node["truncation"] = null;
            node["padding"] = null;
            temp = Path.Combine(Path.GetTempPath(), $"peftlab-tokenizer-{Guid.NewGuid():N}.json");
            File.WriteAllText(temp, node.ToJsonString());
            path = temp;
        }
        try
        {
            return new Tokenizer(path);
        }
        catch (TokenizerException e)
        {
            throw new InvalidDataException($"{file.Path}: the Hugging Face tokenizers library (Tokenizers.DotNet) could not load it: {e.Message}", e);
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException)
        {
            throw new InvalidOperationException(
                "the native tokenizers library (libhf_tokenizers.so from the Tokenizers.DotNet.runtime.* package) could not be loaded; " +
                $"it should sit in runtimes/<rid>/native next to PeftLab.dll ({AppContext.BaseDirectory}): {e.Message}", e);
        }
        finally
        {
            if (temp is not null) File.Delete(temp);
        }
    }

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckSurrogates(text);
        uint[] raw;
        try { raw = _native.Encode(text); }
        catch (TokenizerException e) { throw new InvalidOperationException($"tokenizer {_file.Path} failed to encode text: {e.Message}", e); }

        var pre = _file.TemplatePrefix;
        var post = _file.TemplateSuffix;
        if (raw.Length < pre.Length + post.Length || !Matches(raw, 0, pre) || !Matches(raw, raw.Length - post.Length, post))
            throw new InvalidOperationException(
                $"tokenizer {_file.Path}: the library's output [{string.Join(", ", raw.Take(8))}{(raw.Length > 8 ? ", …" : "")}] does not start with " +
                $"[{string.Join(", ", pre)}] and end with [{string.Join(", ", post)}] as its post_processor implies; PeftLab cannot separate the text's tokens");

        int core = raw.Length - pre.Length - post.Length;
        int extra = addSpecialTokens ? _prefix.Length + _suffix.Length : 0;
        var ids = new int[core + extra];
        int k = 0;
        if (addSpecialTokens) foreach (int id in _prefix) ids[k++] = id;
        for (int i = 0; i < core; i++) ids[k++] = checked((int)raw[pre.Length + i]);
        if (addSpecialTokens) foreach (int id in _suffix) ids[k++] = id;
        return ids;
    }

    /// <inheritdoc/>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var kept = new List<uint>(ids.Count);
        // The binding always drops special tokens; when one must be kept, decode in managed code instead.
        bool keepsSpecialToken = false;
        for (int i = 0; i < ids.Count; i++)
        {
            int id = ids[i];
            if (id < 0) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} at position {i} is negative");
            if (skipSpecialTokens && _specialIds.Contains(id)) continue;
            if (_file.SpecialIds.Contains(id)) keepsSpecialToken = true;
            kept.Add((uint)id);
        }
        if (kept.Count == 0) return "";
        if (keepsSpecialToken || _file.AvoidNativeDecode) return DecodeManaged(kept);
        try { return _native.Decode(kept.ToArray()); }
        catch (TokenizerException e) { throw new InvalidOperationException($"tokenizer {_file.Path} failed to decode ids: {e.Message}", e); }
    }

    /// <summary>Decodes with the managed decoder, never skipping (callers filter first); exposed to tests to compare with the binding.</summary>
    internal string DecodeManaged(IEnumerable<uint> ids)
    {
        var decoder = _file.Decoder ?? throw new NotSupportedException(
            $"tokenizer {_file.Path}: decoding with special tokens kept needs PeftLab's managed decoder, which cannot handle this file: {_file.DecoderError}");
        var tokens = new List<string>();
        foreach (uint id in ids)
            if (id < (uint)_file.IdToToken.Length && _file.IdToToken[id] is { } token) tokens.Add(token);
        return decoder.Decode(tokens);
    }

    /// <inheritdoc/>
    public int TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _file.TokenToId.TryGetValue(token, out int id)
            ? id : throw new KeyNotFoundException($"token \"{token}\" is not in the vocabulary of {_file.Path}");
    }

    /// <summary>Looks up a token's id without throwing.</summary>
    public bool TryTokenToId(string token, out int id) => _file.TokenToId.TryGetValue(token, out id);

    /// <inheritdoc/>
    public string? IdToToken(int id) => id >= 0 && id < _file.IdToToken.Length ? _file.IdToToken[id] : null;

    /// <inheritdoc/>
    public bool IsSpecial(int id) => _specialIds.Contains(id);

    /// <summary>Releases the native tokenizer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _native.Dispose();
    }

    private static bool Matches(uint[] raw, int start, int[] expected)
    {
        for (int i = 0; i < expected.Length; i++)
            if (raw[start + i] != (uint)expected[i]) return false;
        return true;
    }

    // The library takes Rust strings, which cannot hold unpaired surrogates; say where the bad character is.
    private static void CheckSurrogates(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c))
                throw new ArgumentException($"text contains an unpaired UTF-16 surrogate (U+{(int)c:X4}) at index {i}; it is not valid Unicode and cannot be tokenized", nameof(text));
        }
    }

    /// <summary>The optional JSON side files of a model folder.</summary>
    private sealed class ConfigFiles(string dir)
    {
        public ConfigFile? TokenizerConfig { get; } = ConfigFile.TryLoad(dir, "tokenizer_config.json");
        public ConfigFile? SpecialTokensMap { get; } = ConfigFile.TryLoad(dir, "special_tokens_map.json");
        public ConfigFile? GenerationConfig { get; } = ConfigFile.TryLoad(dir, "generation_config.json");
        public ConfigFile? ModelConfig { get; } = ConfigFile.TryLoad(dir, "config.json");

        /// <summary>chat_template.jinja, then chat_template.json, then tokenizer_config.json's "chat_template" (newer transformers save the first).</summary>
        public string? ChatTemplate()
        {
            string jinja = Path.Combine(dir, "chat_template.jinja");
            if (File.Exists(jinja)) return File.ReadAllText(jinja);
            var json = ConfigFile.TryLoad(dir, "chat_template.json");
            foreach (var f in new[] { json, TokenizerConfig })
            {
                if (f is null || !f.Root.TryGetProperty("chat_template", out var t)) continue;
                switch (t.ValueKind)
                {
                    case JsonValueKind.Null: continue;
                    case JsonValueKind.String: return t.GetString();
                    case JsonValueKind.Array:
                        // A list of named templates: transformers uses the one named "default".
                        var named = t.EnumerateArray()
                            .Where(x => x.ValueKind == JsonValueKind.Object)
                            .Select(x => (Name: x.TryGetProperty("name", out var n) ? n.GetString() : null,
                                          Template: x.TryGetProperty("template", out var v) ? v.GetString() : null))
                            .Where(x => x.Template is not null).ToList();
                        if (named.Count == 0) throw new InvalidDataException($"{f.Path}: \"chat_template\" list holds no {{\"name\", \"template\"}} entries");
                        return (named.FirstOrDefault(x => x.Name == "default") is { Template: not null } d ? d : named[0]).Template;
                    default:
                        throw new InvalidDataException($"{f.Path}: \"chat_template\" must be a string or a list of named templates");
                }
            }
            return null;
        }
    }

    private sealed class ConfigFile
    {
        public required string Path { get; init; }
        public required JsonElement Root { get; init; }

        public static ConfigFile? TryLoad(string dir, string name)
        {
            string path = System.IO.Path.Combine(dir, name);
            if (!File.Exists(path)) return null;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object at the top level");
                return new ConfigFile { Path = path, Root = doc.RootElement.Clone() };
            }
            catch (JsonException e) { throw new InvalidDataException($"{path} is not valid JSON: {e.Message}", e); }
        }
    }

    /// <summary>Special token ids resolved from the model folder's files.</summary>
    private sealed record SpecialTokens(int? Bos, int[] Eos, int? Pad, int? Unk, int[] Additional, int[] Prefix, int[] Suffix)
    {
        public IEnumerable<int> All => new[] { Bos, Pad, Unk }.OfType<int>().Concat(Eos).Concat(Additional);

        public static SpecialTokens Resolve(TokenizerJson file, ConfigFiles c)
        {
            ConfigFile?[] tokenFiles = [c.TokenizerConfig, c.SpecialTokensMap];
            ConfigFile?[] idFiles = [c.GenerationConfig, c.ModelConfig];

            int? bos = ByToken(file, tokenFiles, "bos_token", out bool bosSaid) ?? (bosSaid ? null : FirstId(file, idFiles, "bos_token_id"));
            int? pad = ByToken(file, tokenFiles, "pad_token", out bool padSaid) ?? (padSaid ? null : FirstId(file, idFiles, "pad_token_id"));
            int? unk = ByToken(file, tokenFiles, "unk_token", out bool unkSaid)
                       ?? (unkSaid || file.ModelUnkToken is null ? null : Lookup(file, file.ModelUnkToken, file.Path, "model unk_token"));
            int? eos = ByToken(file, tokenFiles, "eos_token", out _);
            // generation_config.json is derived from config.json when a model is saved, so it wins when present.
            var stop = Ids(file, c.GenerationConfig, "eos_token_id") ?? Ids(file, c.ModelConfig, "eos_token_id") ?? [];
            int[] eosIds = (eos is { } e ? new[] { e } : []).Concat(stop).Distinct().ToArray();

            var additional = new List<int>();
            foreach (var f in tokenFiles)
            {
                if (f is null || !f.Root.TryGetProperty("additional_special_tokens", out var list) || list.ValueKind == JsonValueKind.Null) continue;
                if (list.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{f.Path}: \"additional_special_tokens\" must be a list");
                int i = 0;
                foreach (var item in list.EnumerateArray())
                {
                    string key = $"additional_special_tokens[{i++}]";
                    if (TokenContent(item, f.Path, key) is { } s) additional.Add(Lookup(file, s, f.Path, key));
                }
            }

            int[] prefix = file.TemplatePrefix, suffix = file.TemplateSuffix;
            var tc = c.TokenizerConfig;
            if (Flag(tc, "add_bos_token") is { } addBos)
                prefix = addBos ? [bos ?? throw new InvalidDataException($"{tc!.Path}: add_bos_token is true but no BOS token is defined")] : [];
            if (Flag(tc, "add_eos_token") is { } addEos)
                suffix = addEos ? [eos ?? (eosIds.Length > 0 ? eosIds[0] : throw new InvalidDataException($"{tc!.Path}: add_eos_token is true but no EOS token is defined"))] : [];
            return new SpecialTokens(bos, eosIds, pad, unk, additional.ToArray(), prefix, suffix);
        }

        /// <summary>The id of a special token named by string in the first file that has the key; <paramref name="said"/> tells whether some file had it (an explicit null means "none").</summary>
        private static int? ByToken(TokenizerJson file, ConfigFile?[] files, string key, out bool said)
        {
            said = false;
            foreach (var f in files)
            {
                if (f is null || !f.Root.TryGetProperty(key, out var v)) continue;
                said = true;
                return TokenContent(v, f.Path, key) is { } s ? Lookup(file, s, f.Path, key) : null;
            }
            return null;
        }

        /// <summary>A token given as a string or as an AddedToken object {"content": ...}; null for JSON null.</summary>
        private static string? TokenContent(JsonElement v, string path, string key) => v.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw new InvalidDataException($"{path}: \"{key}\" must be a token string, an object with \"content\", or null; got {v.GetRawText()}"),
        };

        private static int Lookup(TokenizerJson file, string token, string path, string key) =>
            file.TokenToId.TryGetValue(token, out int id)
                ? id : throw new InvalidDataException($"{path}: {key} \"{token}\" is not in the vocabulary of {file.Path}");

        private static int? FirstId(TokenizerJson file, ConfigFile?[] files, string key)
        {
            foreach (var f in files)
                if (Ids(file, f, key) is [var first, ..]) return first;
            return null;
        }

        /// <summary>An id or list of ids under <paramref name="key"/>; null when absent, null or only negative ids (the conventional "unset").</summary>
        private static int[]? Ids(TokenizerJson file, ConfigFile? f, string key)
        {
            if (f is null || !f.Root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            var items = v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().ToArray() : [v];
            var ids = new List<int>();
            foreach (var item in items)
            {
                if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id))
                    throw new InvalidDataException($"{f.Path}: \"{key}\" must be an integer id or a list of them; got {v.GetRawText()}");
                if (id < 0) continue;
                if (id >= file.IdToToken.Length)
                    throw new InvalidDataException($"{f.Path}: \"{key}\" {id} is outside the vocabulary of {file.Path} (size {file.IdToToken.Length})");
                ids.Add(id);
            }
            return ids.Count > 0 ? ids.ToArray() : null;
        }

        private static bool? Flag(ConfigFile? f, string key)
        {
            if (f is null || !f.Root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? v.GetBoolean() : throw new InvalidDataException($"{f.Path}: \"{key}\" must be true or false");
        }
    }
}
