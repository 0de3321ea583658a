using System.Text.Json.Nodes;
using PeftLab.Tokenization;
using static PeftLab.Tests.Tokenization.TokenizerFiles;

namespace PeftLab.Tests.Tokenization;

/// <summary>
/// The binding can only decode with special tokens skipped, so decoding with them runs PeftLab's managed decoder.
/// Here both decode the same special-free id sequences — random ones, including byte sequences that are not valid
/// UTF-8 — for each decoder family, and must agree exactly.
/// </summary>
public sealed class DecoderParityTests(BuiltinTokenizerFixture fx) : IClassFixture<BuiltinTokenizerFixture>
{
    private static void AssertParity(HfTokenizer tok, int firstId, int seed, int rounds = 300)
    {
        var rng = new Random(seed);
        for (int n = 0; n < rounds; n++)
        {
            var ids = Enumerable.Range(0, rng.Next(0, 12)).Select(_ => rng.Next(firstId, tok.VocabSize)).Where(id => !tok.IsSpecial(id)).ToArray();
            string native = tok.Decode(ids, skipSpecialTokens: true);
            string managed = tok.DecodeManaged(ids.Select(i => (uint)i));
            Assert.True(native == managed, $"ids [{string.Join(", ", ids)}]: binding \"{Escape(native)}\" vs managed \"{Escape(managed)}\"");
        }
    }

    private static string Escape(string s) => string.Concat(s.Select(c => c < 0x20 || c > 0x7E ? $"\\u{(int)c:X4}" : c.ToString()));

    [Fact]
    public void ByteLevelMatchesIncludingBrokenUtf8()
    {
        AssertParity(fx.Trained, 4, seed: 1, rounds: 500);
        AssertParity(fx.BytesOnly, 4, seed: 2, rounds: 500);
        // Handpicked: a 3-byte character cut short, a lone continuation byte, a 4-byte lead before ASCII.
        int[] ids = [4 + 0xE2, 4 + 0x82, 4 + 'a', 4 + 0x80, 4 + 0xF0, 4 + 0x9F, 4 + 'b', 4 + 0xC3];
        Assert.Equal(fx.BytesOnly.Decode(ids), fx.BytesOnly.DecodeManaged(ids.Select(i => (uint)i)));
        Assert.Equal("\uFFFDa\uFFFD\uFFFDb\uFFFD", fx.BytesOnly.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void ByteLevelWithSpecialsKeptSplicesTheirTextBetweenBytes()
    {
        var tok = fx.BytesOnly;
        var e = tok.Encode("é");
        Assert.Equal("x</s>é<pad>", tok.Decode([4 + 'x', 2, .. e, 0], skipSpecialTokens: false));
        Assert.Equal("xé", tok.Decode([4 + 'x', 2, .. e, 0]));
    }

    /// <summary>Llama-2 style: Prepend/Replace normalizer, BPE with byte fallback, decoder Replace + ByteFallback + Fuse + Strip.</summary>
    internal static JsonObject SentencePieceBpeJson()
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 3 + b;
        string[] pieces = ["▁", "a", "b", "c", "h", "e", "l", "o", "w", "r", "d", "▁h", "▁he", "ll", "▁hell", "▁hello", "▁w", "or", "▁wor", "ld", "▁world", "é"];
        for (int i = 0; i < pieces.Length; i++) vocab[pieces[i]] = 259 + i;
        var merges = new JsonArray("▁ h", "▁h e", "l l", "▁he ll", "▁hell o", "▁ w", "o r", "▁w or", "l d", "▁wor ld");
        return new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = new JsonArray(AddedToken(0, "<unk>", true), AddedToken(1, "<s>", true), AddedToken(2, "</s>", true)),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = Template("<s>", "$A"),
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = true, ["byte_fallback"] = true, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = merges,
            },
        };
    }

    [Fact]
    public void SentencePieceStyleByteFallbackMatches()
    {
        using var tok = HfTokenizer.Load(Folder(("tokenizer.json", SentencePieceBpeJson())));
        AssertParity(tok, 0, seed: 3, rounds: 500);
        Assert.Equal("hello world", tok.Decode(tok.Encode("hello world")));
        Assert.Equal("hello wörld 😀", tok.Decode(tok.Encode("hello wörld 😀")));
        Assert.Equal([1, 259 + 15, 259 + 20], tok.Encode("hello world", addSpecialTokens: true));
        // The Strip step only looks at the first token, which is now "<s>".
        Assert.Equal("<s> hello world", tok.Decode(tok.Encode("hello world", true), skipSpecialTokens: false));
        Assert.Equal("hello world", tok.Decode(tok.Encode("hello world", true)));
    }

    [Fact]
    public void MetaspaceMatches()
    {
        var json = SentencePieceBpeJson();
        json["normalizer"] = null;
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "always", ["split"] = true };
        json["decoder"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "always", ["split"] = true };
        using var tok = HfTokenizer.Load(Folder(("tokenizer.json", json)));
        AssertParity(tok, 0, seed: 4);
        Assert.Equal("hello world", tok.Decode(tok.Encode("hello world")));
        Assert.Equal("<s> hello", tok.Decode(tok.Encode("hello", true), skipSpecialTokens: false));

        json["pre_tokenizer"]!["prepend_scheme"] = "never";
        json["decoder"]!["prepend_scheme"] = "never";
        using var never = HfTokenizer.Load(Folder(("tokenizer.json", json)));
        AssertParity(never, 0, seed: 5);
    }

    [Fact]
    public void WordPieceMatches()
    {
        string[] words = ["[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "##ing", "do", "not", "n't", ",", ".", "?", "'", "s", "re", "play"];
        var vocab = new JsonObject();
        for (int i = 0; i < words.Length; i++) vocab[words[i]] = i;
        var json = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = new JsonArray(AddedToken(0, "[UNK]", true), AddedToken(1, "[CLS]", true), AddedToken(2, "[SEP]", true)),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
            ["post_processor"] = new JsonObject { ["type"] = "BertProcessing", ["sep"] = new JsonArray("[SEP]", 2), ["cls"] = new JsonArray("[CLS]", 1) },
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "WordPiece", ["unk_token"] = "[UNK]", ["continuing_subword_prefix"] = "##",
                ["max_input_chars_per_word"] = 100, ["vocab"] = vocab,
            },
        };
        using var tok = HfTokenizer.Load(Folder(("tokenizer.json", json)));
        AssertParity(tok, 0, seed: 6, rounds: 500);
        Assert.Equal([1, 3, 10, 4, 5, 11, 2], tok.Encode("hello, worlds.", true));
        Assert.Equal("[CLS] hello, worlds. [SEP]", tok.Decode(tok.Encode("hello, worlds.", true), skipSpecialTokens: false));

        json["decoder"] = new JsonObject { ["type"] = "CTC", ["pad_token"] = "[UNK]", ["word_delimiter_token"] = "s", ["cleanup"] = true };
        using var ctc = HfTokenizer.Load(Folder(("tokenizer.json", json)));
        AssertParity(ctc, 3, seed: 7);

        json["decoder"] = new JsonObject { ["type"] = "BPEDecoder", ["suffix"] = "##" };
        using var bpeDecoder = HfTokenizer.Load(Folder(("tokenizer.json", json)));
        AssertParity(bpeDecoder, 0, seed: 8);

        json["decoder"] = null;
        using var none = HfTokenizer.Load(Folder(("tokenizer.json", json)));
        AssertParity(none, 0, seed: 9);
        Assert.Equal("[CLS] hello , world ##s . [SEP]", none.Decode(none.Encode("hello, worlds.", true), skipSpecialTokens: false));
    }

    private static JsonObject StripJson(int start, int stop) => ByteLevelJson(null, new JsonObject
    {
        ["type"] = "Sequence",
        ["decoders"] = new JsonArray(ByteLevel(), new JsonObject { ["type"] = "Strip", ["content"] = "a", ["start"] = start, ["stop"] = stop }),
    });

    [Fact]
    public void LeadingStripMatches()
    {
        using var tok = HfTokenizer.Load(Folder(("tokenizer.json", StripJson(2, 0))));
        AssertParity(tok, 4, seed: 10);
        Assert.Equal("abcaaa", tok.Decode(tok.Encode("aaabcaaa")));
        Assert.Equal("", tok.Decode(tok.Encode("aa")));
    }

    [Fact]
    public void TrailingStripIsDecodedManagedBecauseTheLibraryWouldAbortTheProcess()
    {
        // tokenizers 0.22 indexes before the start of a token shorter than "stop" (a panic that aborts the process),
        // e.g. for an empty decode result; PeftLab never hands such files' decoding to the library.
        using var tok = HfTokenizer.Load(Folder(("tokenizer.json", StripJson(2, 3))));
        Assert.Equal("bcaa", tok.Decode(tok.Encode("aabcaaaaa")));
        Assert.Equal("bc", tok.Decode(tok.Encode("abca")));
        Assert.Equal("", tok.Decode(tok.Encode("aa")));
        Assert.Equal("", tok.Decode(tok.Encode("<s>")));
        Assert.Equal("<s>", tok.Decode(tok.Encode("<s>"), skipSpecialTokens: false));
    }

    [Fact]
    public void UnsupportedDecoderOnlyFailsWhenTheManagedPathIsNeeded()
    {
        var json = ByteLevelJson(null);
        json["decoder"] = new JsonObject { ["type"] = "Mystery" };
        string dir = Folder(("tokenizer.json", json));
        // The library itself rejects unknown decoder types, which must surface as a load error naming the file.
        var e = Assert.ThrowsAny<Exception>(() => HfTokenizer.Load(dir));
        Assert.Contains("tokenizer.json", e.Message);
    }
}
