using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PeftLab.Tokenization;

/// <summary>What <see cref="BuiltinTokenizer.Write"/> produced.</summary>
/// <param name="VocabSize">Size of the written vocabulary (equals the requested size).</param>
/// <param name="LearnedMerges">Merges learned from the corpus.</param>
/// <param name="UnusedTokens">Filler tokens added to reach the requested size.</param>
public sealed record BuiltinTokenizerSummary(int VocabSize, int LearnedMerges, int UnusedTokens);

/// <summary>
/// Writes the byte-level BPE tokenizer of PeftLab's built-in tiny models as a standard Hugging Face tokenizer folder
/// (tokenizer.json, tokenizer_config.json, special_tokens_map.json), so it is loaded by <see cref="HfTokenizer"/> — and by
/// transformers — like any other.
/// <para>
/// Layout: ids 0–3 are the special tokens (pad, bos, eos, unk — bos 1 / eos 2 as in Llama configs), ids 4–259 the 256
/// bytes in byte order, then the learned merges in the order learned, then unused filler tokens <c>&lt;unused_N&gt;</c> up
/// to <see cref="BuiltinTokenizerOptions.VocabSize"/>, because a model's embedding must have exactly vocab_size rows. The
/// fillers are ordinary model-vocabulary entries that no merge produces, so they are never emitted by encoding, and text
/// that happens to spell one is tokenized as plain text.
/// </para>
/// <para>
/// Exact round trips of any Unicode text: no normalizer, a ByteLevel pre-tokenizer without prefix space (it splits with
/// GPT-2's regex but keeps every character), a ByteLevel decoder, and all 256 bytes in the vocabulary, so decoding the
/// encoding of a text gives back its UTF-8 bytes exactly (special-token spellings in the text are kept when decoding with
/// special tokens). The post-processor is a TemplateProcessing adding BOS when <see cref="BuiltinTokenizerOptions.AddBosToken"/>
/// is set, otherwise null.
/// </para>
/// The output is byte-identical for identical options and corpus.
/// </summary>
public static partial class BuiltinTokenizer
{
    private const int SpecialCount = 4;

    /// <summary>Trains on the corpus and writes the tokenizer files into <paramref name="directory"/> (created if needed; existing files are replaced).</summary>
    public static BuiltinTokenizerSummary Write(string directory, BuiltinTokenizerOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(options);
        string[] specials = Validate(options);

        var wordCounts = CountWords(options.Corpus ?? [], specials);
        var merges = BpeTrainer.Train(wordCounts, options.VocabSize - SpecialCount - 256, options.MinPairFrequency);

        var vocab = new List<string>(options.VocabSize);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string s in specials) { vocab.Add(s); seen.Add(s); }
        for (int b = 0; b < 256; b++)
        {
            string t = ByteLevelAlphabet.ByteToChar[b].ToString();
            seen.Add(t);
            vocab.Add(t);
        }
        foreach (var m in merges)
            if (seen.Add(m.Result)) vocab.Add(m.Result);
        int unused = 0;
        for (int n = 0; vocab.Count < options.VocabSize; n++)
        {
            string filler = $"<unused_{n}>";
            if (!seen.Add(filler)) continue;
            vocab.Add(filler);
            unused++;
        }

        Directory.CreateDirectory(directory);
        WriteFile(Path.Combine(directory, "tokenizer.json"), w => WriteTokenizerJson(w, options, specials, vocab, merges));
        WriteFile(Path.Combine(directory, "tokenizer_config.json"), w => WriteTokenizerConfig(w, options, specials));
        WriteFile(Path.Combine(directory, "special_tokens_map.json"), w =>
        {
            w.WriteStartObject();
            WriteSpecialNames(w, options);
            w.WriteEndObject();
        });
        return new BuiltinTokenizerSummary(vocab.Count, merges.Count, unused);
    }

    private static string[] Validate(BuiltinTokenizerOptions o)
    {
        if (o.VocabSize is < BuiltinTokenizerOptions.MinVocabSize or > BuiltinTokenizerOptions.MaxVocabSize)
            throw new ArgumentOutOfRangeException(nameof(o), o.VocabSize,
                $"BuiltinTokenizerOptions.VocabSize must be between {BuiltinTokenizerOptions.MinVocabSize} (256 bytes + 4 special tokens) and {BuiltinTokenizerOptions.MaxVocabSize}");
        if (o.MinPairFrequency < 1)
            throw new ArgumentOutOfRangeException(nameof(o), o.MinPairFrequency, "BuiltinTokenizerOptions.MinPairFrequency must be at least 1");
        string[] specials = [o.PadToken, o.BosToken, o.EosToken, o.UnkToken];
        if (specials.Any(string.IsNullOrEmpty))
            throw new ArgumentException("BuiltinTokenizerOptions: PadToken, BosToken, EosToken and UnkToken must be non-empty", nameof(o));
        if (specials.Distinct(StringComparer.Ordinal).Count() != specials.Length)
            throw new ArgumentException($"BuiltinTokenizerOptions: special tokens must be distinct, got {string.Join(", ", specials)}", nameof(o));
        // A special token spelled as one byte-level character would share its vocabulary entry with that byte.
        if (specials.FirstOrDefault(s => s.Length == 1 && ByteLevelAlphabet.TryGetByte(s[0], out _)) is { } clash)
            throw new ArgumentException($"BuiltinTokenizerOptions: special token \"{clash}\" is also the token of a byte; use a longer spelling", nameof(o));
        return specials;
    }

    /// <summary>Splits the corpus as encoding will: special-token spellings first, then GPT-2's pre-tokenization regex.</summary>
    private static Dictionary<string, long> CountWords(IEnumerable<string> corpus, string[] specials)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (string text in corpus)
        {
            if (text is null) throw new ArgumentException("BuiltinTokenizerOptions.Corpus contains a null text", nameof(corpus));
            foreach (string segment in SplitOnSpecials(text, specials))
                foreach (Match m in Gpt2Split().Matches(segment))
                    counts[m.Value] = counts.GetValueOrDefault(m.Value) + 1;
        }
        return counts;
    }

    private static IEnumerable<string> SplitOnSpecials(string text, string[] specials)
    {
        int start = 0;
        while (start < text.Length)
        {
            int best = -1, bestLen = 0;
            foreach (string s in specials)
            {
                int i = text.IndexOf(s, start, StringComparison.Ordinal);
                if (i >= 0 && (best < 0 || i < best || (i == best && s.Length > bestLen))) { best = i; bestLen = s.Length; }
            }
            if (best < 0) { yield return text[start..]; yield break; }
            if (best > start) yield return text[start..best];
            start = best + bestLen;
        }
    }

    // GPT-2's pre-tokenization pattern, as the ByteLevel pre-tokenizer applies it.
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Gpt2Split();

    private static void WriteFile(string path, Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(w);
        stream.WriteByte((byte)'\n');
        File.WriteAllBytes(path, stream.ToArray());
    }

    private static void WriteTokenizerJson(Utf8JsonWriter w, BuiltinTokenizerOptions o, string[] specials, List<string> vocab, List<BpeTrainer.Merge> merges)
    {
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        for (int id = 0; id < specials.Length; id++)
        {
            w.WriteStartObject();
            w.WriteNumber("id", id);
            WriteAddedTokenFields(w, specials[id]);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("normalizer");
        w.WritePropertyName("pre_tokenizer");
        WriteByteLevel(w);
        if (o.AddBosToken)
        {
            w.WriteStartObject("post_processor");
            w.WriteString("type", "TemplateProcessing");
            w.WriteStartArray("single");
            WriteTemplatePiece(w, "SpecialToken", o.BosToken, 0);
            WriteTemplatePiece(w, "Sequence", "A", 0);
            w.WriteEndArray();
            w.WriteStartArray("pair");
            WriteTemplatePiece(w, "SpecialToken", o.BosToken, 0);
            WriteTemplatePiece(w, "Sequence", "A", 0);
            WriteTemplatePiece(w, "SpecialToken", o.BosToken, 1);
            WriteTemplatePiece(w, "Sequence", "B", 1);
            w.WriteEndArray();
            w.WriteStartObject("special_tokens");
            w.WriteStartObject(o.BosToken);
            w.WriteString("id", o.BosToken);
            w.WriteStartArray("ids");
            w.WriteNumberValue(1);
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue(o.BosToken);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        else w.WriteNull("post_processor");
        w.WritePropertyName("decoder");
        WriteByteLevel(w);
        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        w.WriteBoolean("ignore_merges", false);
        w.WriteStartObject("vocab");
        for (int id = 0; id < vocab.Count; id++) w.WriteNumber(vocab[id], id);
        w.WriteEndObject();
        // "left right" strings: byte-level tokens never contain a space, and every tokenizers version reads this form.
        w.WriteStartArray("merges");
        foreach (var m in merges) w.WriteStringValue(m.Left + " " + m.Right);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteByteLevel(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", false);
        w.WriteBoolean("use_regex", true);
        w.WriteEndObject();
    }

    private static void WriteTemplatePiece(Utf8JsonWriter w, string kind, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject(kind);
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteAddedTokenFields(Utf8JsonWriter w, string content)
    {
        w.WriteString("content", content);
        w.WriteBoolean("single_word", false);
        w.WriteBoolean("lstrip", false);
        w.WriteBoolean("rstrip", false);
        w.WriteBoolean("normalized", false);
        w.WriteBoolean("special", true);
    }

    private static void WriteTokenizerConfig(Utf8JsonWriter w, BuiltinTokenizerOptions o, string[] specials)
    {
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", o.AddBosToken);
        w.WriteBoolean("add_eos_token", false);
        w.WriteStartObject("added_tokens_decoder");
        for (int id = 0; id < specials.Length; id++)
        {
            w.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            WriteAddedTokenFields(w, specials[id]);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        WriteSpecialNames(w, o);
        if (o.ChatTemplate is not null) w.WriteString("chat_template", o.ChatTemplate);
        // transformers would otherwise "clean up" spaces before punctuation when decoding, breaking round trips.
        w.WriteBoolean("clean_up_tokenization_spaces", false);
        w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
        w.WriteEndObject();
    }

    private static void WriteSpecialNames(Utf8JsonWriter w, BuiltinTokenizerOptions o)
    {
        w.WriteString("bos_token", o.BosToken);
        w.WriteString("eos_token", o.EosToken);
        w.WriteString("pad_token", o.PadToken);
        w.WriteString("unk_token", o.UnkToken);
    }
}
