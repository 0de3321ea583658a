using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PeftLab.Tokenization;

/// <summary>
/// A managed re-implementation of the Hugging Face tokenizers "decoder" pipeline (tokenizers 0.22 semantics), used where
/// the native binding cannot serve a request: it always skips special tokens, so decoding <em>with</em> them goes through
/// this code. Each step maps a list of token strings to a new list; the result is their concatenation.
/// </summary>
internal abstract class TokenDecoder
{
    /// <summary>Runs the decoder over token strings (already looked up from ids) and joins the result.</summary>
    public string Decode(List<string> tokens) => string.Concat(DecodeChain(tokens));

    public abstract List<string> DecodeChain(List<string> tokens);

    /// <summary>
    /// Builds the decoder described by tokenizer.json's "decoder" value (null or missing: tokens joined by spaces, as the
    /// library does). Throws <see cref="NotSupportedException"/> for a type this code does not know.
    /// </summary>
    public static TokenDecoder Parse(JsonElement? decoder, string path)
    {
        if (decoder is not { ValueKind: JsonValueKind.Object } d) return new JoinWithSpace();
        string type = d.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
        string Where() => $"{path}: decoder \"{type}\"";
        return type switch
        {
            "ByteLevel" => new ByteLevelDecoder(),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(SingleRune(d, "content", Where()), Int(d, "start", Where()), Int(d, "stop", Where())),
            "Replace" => ReplaceDecoder.Parse(d, Where()),
            "Metaspace" => MetaspaceDecoder.Parse(d, Where()),
            "WordPiece" => new WordPieceDecoder(Str(d, "prefix", "##"), Bool(d, "cleanup", true)),
            "BPEDecoder" => new BpeSuffixDecoder(Str(d, "suffix", "</w>")),
            "CTC" => new CtcDecoder(Str(d, "pad_token", "<pad>"), Str(d, "word_delimiter_token", "|"), Bool(d, "cleanup", true)),
            "Sequence" => new SequenceDecoder(d.TryGetProperty("decoders", out var list) && list.ValueKind == JsonValueKind.Array
                ? list.EnumerateArray().Select(x => Parse(x, path)).ToArray()
                : throw new InvalidDataException($"{Where()} has no \"decoders\" array")),
            _ => throw new NotSupportedException($"{Where()} is not supported by PeftLab's managed decoder"),
        };
    }

    private static string Str(JsonElement e, string key, string fallback) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;

    private static bool Bool(JsonElement e, string key, bool fallback) =>
        e.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    private static int Int(JsonElement e, string key, string where) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i >= 0
            ? i : throw new InvalidDataException($"{where}: \"{key}\" must be a non-negative integer");

    private static Rune SingleRune(JsonElement e, string key, string where)
    {
        string s = e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        var runes = s.EnumerateRunes().ToArray();
        return runes.Length == 1 ? runes[0] : throw new InvalidDataException($"{where}: \"{key}\" must be a single character");
    }

    private sealed class JoinWithSpace : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Join(' ', tokens)];
    }

    /// <summary>Maps each token's characters back to bytes (a token with any character outside the table contributes its own UTF-8), then decodes the bytes lossily.</summary>
    private sealed class ByteLevelDecoder : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (string token in tokens)
            {
                int start = bytes.Count;
                bool mapped = true;
                foreach (char c in token)
                {
                    if (!ByteLevelAlphabet.TryGetByte(c, out byte b)) { mapped = false; break; }
                    bytes.Add(b);
                }
                if (!mapped)
                {
                    bytes.RemoveRange(start, bytes.Count - start);
                    bytes.AddRange(Encoding.UTF8.GetBytes(token));
                }
            }
            // .NET's decoder substitutes U+FFFD per maximal invalid subsequence, as Rust's from_utf8_lossy does.
            return [Encoding.UTF8.GetString(bytes.ToArray())];
        }
    }

    /// <summary>Turns runs of &lt;0xNN&gt; tokens into their UTF-8 text, or one U+FFFD per byte when the run is not valid UTF-8.</summary>
    private sealed class ByteFallbackDecoder : TokenDecoder
    {
        private static readonly UTF8Encoding Strict = new(false, true);

        public override List<string> DecodeChain(List<string> tokens)
        {
            var result = new List<string>(tokens.Count);
            var pending = new List<byte>();
            foreach (string token in tokens)
            {
                if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>' &&
                    byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte b))
                {
                    pending.Add(b);
                    continue;
                }
                Flush(pending, result);
                result.Add(token);
            }
            Flush(pending, result);
            return result;
        }

        private static void Flush(List<byte> pending, List<string> result)
        {
            if (pending.Count == 0) return;
            try { result.Add(Strict.GetString(pending.ToArray())); }
            catch (DecoderFallbackException) { result.AddRange(Enumerable.Repeat("\uFFFD", pending.Count)); }
            pending.Clear();
        }
    }

    private sealed class FuseDecoder : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing occurrences of a character from every token.</summary>
    private sealed class StripDecoder(Rune content, int start, int stop) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select(StripOne).ToList();

        private string StripOne(string token)
        {
            var runes = token.EnumerateRunes().ToArray();
            int from = 0;
            while (from < Math.Min(start, runes.Length) && runes[from] == content) from++;
            int to = runes.Length;
            for (int i = 0; i < stop && to > 0 && runes[to - 1] == content; i++) to--;
            if (from >= to) return "";
            var sb = new StringBuilder();
            for (int i = from; i < to; i++) sb.Append(runes[i].ToString());
            return sb.ToString();
        }
    }

    /// <summary>Replaces a literal string (or, approximated with .NET's engine, a regex) in every token.</summary>
    private sealed class ReplaceDecoder(Func<string, string> replace) : TokenDecoder
    {
        public static ReplaceDecoder Parse(JsonElement d, string where)
        {
            string content = d.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String
                ? c.GetString()! : throw new InvalidDataException($"{where}: \"content\" must be a string");
            if (!d.TryGetProperty("pattern", out var p) || p.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{where}: \"pattern\" must be an object with \"String\" or \"Regex\"");
            if (p.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String)
            {
                string literal = s.GetString()!;
                return new ReplaceDecoder(t => literal.Length == 0 ? t : t.Replace(literal, content, StringComparison.Ordinal));
            }
            if (p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String)
            {
                var regex = new Regex(r.GetString()!, RegexOptions.CultureInvariant);
                return new ReplaceDecoder(t => regex.Replace(t, content.Replace("$", "$$", StringComparison.Ordinal)));
            }
            throw new InvalidDataException($"{where}: \"pattern\" must hold a \"String\" or \"Regex\" value");
        }

        public override List<string> DecodeChain(List<string> tokens) => tokens.Select(replace).ToList();
    }

    /// <summary>Turns the meta-space character back into spaces, dropping it from the first token when a prefix space was prepended.</summary>
    private sealed class MetaspaceDecoder(Rune replacement, bool prepends) : TokenDecoder
    {
        public static MetaspaceDecoder Parse(JsonElement d, string where)
        {
            var rep = SingleRune(d, "replacement", where);
            string scheme = Str(d, "prepend_scheme", "always");
            // Legacy files say add_prefix_space:false instead of prepend_scheme:"never".
            if (d.TryGetProperty("add_prefix_space", out var a) && a.ValueKind == JsonValueKind.False) scheme = "never";
            return new MetaspaceDecoder(rep, scheme != "never");
        }

        public override List<string> DecodeChain(List<string> tokens)
        {
            var result = new List<string>(tokens.Count);
            for (int i = 0; i < tokens.Count; i++)
            {
                var sb = new StringBuilder();
                foreach (var r in tokens[i].EnumerateRunes())
                {
                    if (r != replacement) sb.Append(r.ToString());
                    else if (!(i == 0 && prepends)) sb.Append(' ');
                }
                result.Add(sb.ToString());
            }
            return result;
        }
    }

    private sealed class WordPieceDecoder(string prefix, bool cleanup) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var result = new List<string>(tokens.Count);
            for (int i = 0; i < tokens.Count; i++)
            {
                string t = tokens[i];
                if (i != 0) t = t.StartsWith(prefix, StringComparison.Ordinal) ? t[prefix.Length..] : " " + t;
                result.Add(cleanup ? Cleanup(t) : t);
            }
            return result;
        }

        internal static string Cleanup(string s) => s
            .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal)
            .Replace(" !", "!", StringComparison.Ordinal).Replace(" ,", ",", StringComparison.Ordinal)
            .Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
            .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" do not", " don't", StringComparison.Ordinal)
            .Replace(" 's", "'s", StringComparison.Ordinal).Replace(" 've", "'ve", StringComparison.Ordinal)
            .Replace(" 're", "'re", StringComparison.Ordinal);
    }

    private sealed class BpeSuffixDecoder(string suffix) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) =>
            tokens.Select((t, i) => suffix.Length == 0 ? t : t.Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal)).ToList();
    }

    private sealed class CtcDecoder(string padToken, string wordDelimiter, bool cleanup) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var result = new List<string>();
            string? previous = null;
            foreach (string token in tokens)
            {
                if (token == previous) continue;
                previous = token;
                string s = padToken.Length == 0 ? token : token.Replace(padToken, "", StringComparison.Ordinal);
                if (cleanup)
                {
                    s = WordPieceDecoder.Cleanup(s);
                    if (wordDelimiter.Length > 0) s = s.Replace(wordDelimiter, " ", StringComparison.Ordinal);
                }
                if (s.Length > 0) result.Add(s);
            }
            return result;
        }
    }

    private sealed class SequenceDecoder(TokenDecoder[] steps) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            foreach (var step in steps) tokens = step.DecodeChain(tokens);
            return tokens;
        }
    }
}
