using System.Text;
using PeftLab.Tokenization;

namespace PeftLab.Tests.Tokenization;

/// <summary>Encode/decode round trips through the built-in tokenizer loaded by <see cref="HfTokenizer"/>.</summary>
public sealed class RoundTripTests(BuiltinTokenizerFixture fx) : IClassFixture<BuiltinTokenizerFixture>
{
    internal static readonly string[] Samples =
    [
        "",
        "plain ascii text.",
        "café naïve résumé Ångström façade",
        "漢字かな交じり文、한국어 텍스트, 中文标点。",
        "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 keycap 1️⃣",
        "combining e\u0301 a\u0308 o\u0302\u0323 Z\u0324\u0354\u0367\u0311",
        "decomposed vs precomposed: \u00e9 e\u0301",
        "   leading spaces",
        "trailing spaces   ",
        " ",
        "\ttabs\tbetween\t\twords\t",
        "line one\nline two\r\nline three\n\n\n",
        "multiple     spaces  and\u00a0nbsp\u2003em-space",
        "\u200b zero width \ufeff bom \u2028 line sep",
        "Instruction: translate.\nInput: the dog.\nOutput:",
        "code: if (x != y) { return a[i] >> 2; } // 'quoted' \"double\"",
        "replacement char \ufffd stays \ufffd",
        "\u0000 nul and \u007f del",
    ];

    public static TheoryData<string> Texts => new(Samples);

    [Theory]
    [MemberData(nameof(Texts))]
    public void TextRoundTripsExactly(string text)
    {
        foreach (var tok in new[] { fx.Trained, fx.BytesOnly })
        {
            var ids = tok.Encode(text);
            Assert.Equal(text, tok.Decode(ids));
            Assert.Equal(text, tok.Decode(ids, skipSpecialTokens: false));
            Assert.Equal(text, tok.Decode(tok.Encode(text, addSpecialTokens: true)));
            Assert.Equal("<s>" + text, tok.Decode(tok.Encode(text, addSpecialTokens: true), skipSpecialTokens: false));
        }
        Assert.Equal(Encoding.UTF8.GetByteCount(text), fx.BytesOnly.Encode(text).Length);
    }

    [Fact]
    public void SpecialTokensWrittenInTextAreRecognisedAndKeptOrSkipped()
    {
        var tok = fx.Trained;
        const string text = "Hello</s>world<s> <pad>end<unk>";
        var ids = tok.Encode(text);
        Assert.Contains(2, ids);
        Assert.Contains(1, ids);
        Assert.Contains(0, ids);
        Assert.Contains(3, ids);
        Assert.Equal(text, tok.Decode(ids, skipSpecialTokens: false));
        Assert.Equal("Helloworld end", tok.Decode(ids));
        Assert.Equal([1, .. ids], tok.Encode(text, addSpecialTokens: true));
    }

    [Fact]
    public void RandomUnicodeRoundTrips()
    {
        var rng = new Random(1234);
        for (int n = 0; n < 300; n++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(0, 40);
            for (int i = 0; i < len; i++)
            {
                int cp = rng.Next(6) switch
                {
                    0 => rng.Next(0x20, 0x7F),
                    1 => " \t\n\r"[rng.Next(4)],
                    2 => rng.Next(0xA0, 0x800),
                    3 => rng.Next(0x3000, 0xA000),
                    4 => rng.Next(0x1F300, 0x1FAFF),
                    _ => rng.Next(0, 0x110000),
                };
                if (cp is >= 0xD800 and <= 0xDFFF) cp = 0xFFFD;
                sb.Append(char.ConvertFromUtf32(cp));
            }
            string text = sb.ToString();
            foreach (var tok in new[] { fx.Trained, fx.BytesOnly })
            {
                var ids = tok.Encode(text);
                Assert.Equal(text, tok.Decode(ids));
                Assert.Equal(text, tok.Decode(ids, skipSpecialTokens: false));
            }
        }
    }

    [Fact]
    public void UnpairedSurrogateIsRejectedWithItsPosition()
    {
        var e = Assert.Throws<ArgumentException>(() => fx.Trained.Encode("ab\uD83Dc"));
        Assert.Contains("index 2", e.Message);
        Assert.Throws<ArgumentException>(() => fx.Trained.Encode("x\uDE00"));
        Assert.Equal("\uD83D\uDE00", fx.Trained.Decode(fx.Trained.Encode("\uD83D\uDE00"))); // a valid pair is fine
    }

    [Fact]
    public void DecodeSkipsIdsWithoutTokensAndRejectsNegativeIds()
    {
        var tok = fx.BytesOnly;
        Assert.Equal("ab", tok.Decode([4 + 'a', 100_000, 4 + 'b']));
        Assert.Equal("ab", tok.Decode([4 + 'a', 100_000, 2, 4 + 'b'], skipSpecialTokens: false).Replace("</s>", ""));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([4 + 'a', -1]));
        Assert.Equal("", tok.Decode([]));
        Assert.Equal("", tok.Decode([1, 2, 0]));
    }

    [Fact]
    public void ConcurrentUseGivesTheSameResults()
    {
        var tok = fx.Trained;
        var texts = Samples;
        var expected = texts.Select(t => tok.Encode(t)).ToArray();
        Parallel.For(0, 200, i =>
        {
            int k = i % texts.Length;
            Assert.Equal(expected[k], tok.Encode(texts[k]));
            Assert.Equal(texts[k], tok.Decode(expected[k], skipSpecialTokens: i % 2 == 0));
        });
    }

    [Fact]
    public void DisposedTokenizerThrows()
    {
        var tok = HfTokenizer.Load(BuiltinTokenizerTests.Write(new BuiltinTokenizerOptions { VocabSize = 260 }));
        tok.Dispose();
        tok.Dispose();
        Assert.Throws<ObjectDisposedException>(() => tok.Encode("x"));
        Assert.Throws<ObjectDisposedException>(() => tok.Decode([5]));
    }
}
