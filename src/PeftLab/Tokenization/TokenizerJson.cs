using System.Text.Json;

namespace PeftLab.Tokenization;

/// <summary>
/// What PeftLab reads from a Hugging Face tokenizer.json itself (the native binding reads it too, for encoding):
/// the id ↔ token tables, which added tokens are special, the special tokens the post-processor wraps a single
/// sequence in, and the decoder. Errors name the file and the key at fault.
/// </summary>
internal sealed class TokenizerJson
{
    public required string Path { get; init; }
    /// <summary>Token string per id (null for unused ids); its length is the vocabulary size.</summary>
    public required string?[] IdToToken { get; init; }
    /// <summary>Token string to id; added tokens take precedence over the model vocabulary, as in the library.</summary>
    public required Dictionary<string, int> TokenToId { get; init; }
    /// <summary>Ids whose token is an added token marked special (the library tests the token's content, so a model-vocabulary duplicate counts too).</summary>
    public required HashSet<int> SpecialIds { get; init; }
    /// <summary>Ids the post-processor puts before a single sequence.</summary>
    public required int[] TemplatePrefix { get; init; }
    /// <summary>Ids the post-processor puts after a single sequence.</summary>
    public required int[] TemplateSuffix { get; init; }
    /// <summary>The model's unknown token (BPE/WordPiece "unk_token", Unigram "unk_id"), if any.</summary>
    public string? ModelUnkToken { get; init; }
    /// <summary>The managed decoder, or null with <see cref="DecoderError"/> saying why it could not be built.</summary>
    public TokenDecoder? Decoder { get; init; }
    public string? DecoderError { get; init; }
    /// <summary>
    /// Whether decoding must avoid the native library: tokenizers 0.22's Strip decoder indexes out of bounds (a Rust
    /// panic, which aborts the whole process in this build) when asked to strip more trailing characters than a token
    /// has, e.g. on an empty decode result. Files with such a Strip (stop &gt; 0) are decoded by the managed decoder only.
    /// </summary>
    public bool AvoidNativeDecode { get; init; }
    /// <summary>Whether the file enables truncation or padding, which the library would apply to every encode call.</summary>
    public bool HasTruncationOrPadding { get; init; }

    public static TokenizerJson Load(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 256 }); }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not valid JSON: {e.Message}", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object at the top level");
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: missing the \"model\" object");

            var modelVocab = new Dictionary<string, int>(StringComparer.Ordinal);
            string? unk = null;
            if (!model.TryGetProperty("vocab", out var vocab)) throw new InvalidDataException($"{path}: model has no \"vocab\"");
            if (vocab.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in vocab.EnumerateObject()) modelVocab[p.Name] = Id(p.Value, path, $"model.vocab[\"{p.Name}\"]");
                if (model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String) unk = u.GetString();
            }
            else if (vocab.ValueKind == JsonValueKind.Array)
            {
                // Unigram: [[piece, score], ...] with the id being the position.
                int i = 0;
                foreach (var entry in vocab.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Array || entry.GetArrayLength() < 1 || entry[0].ValueKind != JsonValueKind.String)
                        throw new InvalidDataException($"{path}: model.vocab[{i}] must be [piece, score]");
                    modelVocab.TryAdd(entry[0].GetString()!, i++);
                }
                if (model.TryGetProperty("unk_id", out var u) && u.ValueKind == JsonValueKind.Number)
                {
                    int unkId = Id(u, path, "model.unk_id");
                    unk = unkId < i ? vocab[unkId][0].GetString() : throw new InvalidDataException($"{path}: model.unk_id {unkId} is outside the vocabulary");
                }
            }
            else throw new InvalidDataException($"{path}: model.vocab must be an object or an array");

            var added = new List<(int Id, string Content, bool Special)>();
            if (root.TryGetProperty("added_tokens", out var addedJson) && addedJson.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var a in addedJson.EnumerateArray())
                {
                    string where = $"added_tokens[{i++}]";
                    if (!a.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
                        throw new InvalidDataException($"{path}: {where} has no string \"content\"");
                    if (!a.TryGetProperty("id", out var idJson)) throw new InvalidDataException($"{path}: {where} has no \"id\"");
                    bool special = a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                    added.Add((Id(idJson, path, where + ".id"), c.GetString()!, special));
                }
            }

            int size = Math.Max(modelVocab.Count == 0 ? 0 : modelVocab.Values.Max() + 1, added.Count == 0 ? 0 : added.Max(a => a.Id) + 1);
            var idToToken = new string?[size];
            var tokenToId = new Dictionary<string, int>(modelVocab, StringComparer.Ordinal);
            foreach (var (token, id) in modelVocab) idToToken[id] ??= token;
            foreach (var a in added)
            {
                idToToken[a.Id] = a.Content;
                tokenToId[a.Content] = a.Id;
            }
            var specialContents = added.Where(a => a.Special).Select(a => a.Content).ToHashSet(StringComparer.Ordinal);
            var specialIds = new HashSet<int>();
            for (int id = 0; id < size; id++)
                if (idToToken[id] is { } t && specialContents.Contains(t)) specialIds.Add(id);

            var (prefix, suffix) = ParsePostProcessor(root.TryGetProperty("post_processor", out var pp) ? pp : default, path);

            TokenDecoder? decoder = null;
            string? decoderError = null;
            try { decoder = TokenDecoder.Parse(root.TryGetProperty("decoder", out var dj) ? dj : (JsonElement?)null, path); }
            catch (Exception e) when (e is NotSupportedException or InvalidDataException or ArgumentException) { decoderError = e.Message; }

            bool truncOrPad = IsSet(root, "truncation") || IsSet(root, "padding");
            bool avoidNative = root.TryGetProperty("decoder", out var dec) && HasTrailingStrip(dec);
            if (avoidNative && decoder is null)
                throw new NotSupportedException($"{path}: its decoder has a Strip step with \"stop\" > 0, which crashes the native library, " +
                                                $"and PeftLab's managed decoder cannot stand in: {decoderError}");
            return new TokenizerJson
            {
                Path = path, IdToToken = idToToken, TokenToId = tokenToId, SpecialIds = specialIds,
                TemplatePrefix = prefix, TemplateSuffix = suffix, ModelUnkToken = unk,
                Decoder = decoder, DecoderError = decoderError, HasTruncationOrPadding = truncOrPad, AvoidNativeDecode = avoidNative,
            };
        }
    }

    private static bool HasTrailingStrip(JsonElement d) => d.ValueKind == JsonValueKind.Object && (
        (d.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "Strip" &&
         d.TryGetProperty("stop", out var stop) && stop.ValueKind == JsonValueKind.Number && stop.GetDouble() > 0) ||
        (d.TryGetProperty("decoders", out var list) && list.ValueKind == JsonValueKind.Array && list.EnumerateArray().Any(HasTrailingStrip)));

    private static bool IsSet(JsonElement root, string key) =>
        root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    private static int Id(JsonElement e, string path, string where) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int id) && id >= 0
            ? id : throw new InvalidDataException($"{path}: {where} must be a non-negative 32-bit integer id, got {e.GetRawText()}");

    /// <summary>
    /// The ids a post-processor adds before and after a single sequence. All processor types of the library are covered:
    /// TemplateProcessing (the items around <c>$A</c> in "single"), BertProcessing / RobertaProcessing (cls … sep),
    /// ByteLevel (offsets only, no tokens) and Sequence (each later processor wraps the result of the earlier ones).
    /// </summary>
    internal static (int[] Prefix, int[] Suffix) ParsePostProcessor(JsonElement pp, string path)
    {
        if (pp.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return ([], []);
        string type = pp.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
        string where = $"{path}: post_processor \"{type}\"";
        switch (type)
        {
            case "ByteLevel":
                return ([], []);
            case "BertProcessing":
            case "RobertaProcessing":
                return ([ProcessorToken(pp, "cls", where)], [ProcessorToken(pp, "sep", where)]);
            case "Sequence":
                if (!pp.TryGetProperty("processors", out var list) || list.ValueKind != JsonValueKind.Array)
                    throw new InvalidDataException($"{where} has no \"processors\" array");
                var prefix = new List<int>();
                var suffix = new List<int>();
                foreach (var inner in list.EnumerateArray())
                {
                    var (p, s) = ParsePostProcessor(inner, path);
                    prefix.InsertRange(0, p);
                    suffix.AddRange(s);
                }
                return (prefix.ToArray(), suffix.ToArray());
            case "TemplateProcessing":
                return ParseTemplate(pp, where);
            default:
                throw new NotSupportedException($"{where} is not a post-processor type PeftLab knows, so it cannot tell which tokens it adds");
        }
    }

    private static int ProcessorToken(JsonElement pp, string key, string where) =>
        pp.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 2
            ? Id(v[1], where, key + "[1]")
            : throw new InvalidDataException($"{where}: \"{key}\" must be [token, id]");

    private static (int[] Prefix, int[] Suffix) ParseTemplate(JsonElement pp, string where)
    {
        if (!pp.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{where} has no \"single\" template array");
        pp.TryGetProperty("special_tokens", out var specials);
        var prefix = new List<int>();
        var suffix = new List<int>();
        bool seenA = false;
        foreach (var piece in single.EnumerateArray())
        {
            if (piece.TryGetProperty("Sequence", out var seq))
            {
                string id = seq.TryGetProperty("id", out var sid) ? sid.GetString() ?? "" : "";
                if (id != "A" || seenA) throw new InvalidDataException($"{where}: the \"single\" template must hold sequence $A exactly once, found ${id}");
                seenA = true;
            }
            else if (piece.TryGetProperty("SpecialToken", out var st))
            {
                string name = st.TryGetProperty("id", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "";
                if (specials.ValueKind != JsonValueKind.Object || !specials.TryGetProperty(name, out var spec) ||
                    !spec.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                    throw new InvalidDataException($"{where}: special token \"{name}\" used in \"single\" has no entry with \"ids\" in \"special_tokens\"");
                (seenA ? suffix : prefix).AddRange(ids.EnumerateArray().Select(x => Id(x, where, $"special_tokens[\"{name}\"].ids")));
            }
            else throw new InvalidDataException($"{where}: unknown template piece {piece.GetRawText()}");
        }
        if (!seenA) throw new InvalidDataException($"{where}: the \"single\" template has no $A");
        return (prefix.ToArray(), suffix.ToArray());
    }
}
