using System.Text.Json;
using PeftLab.Tokenization;

namespace PeftLab.Tests.Tokenization;

public sealed class BuiltinTokenizerTests
{
    internal static readonly string[] Corpus =
    [
        "The quick brown fox jumps over the lazy dog.",
        "Instruction: translate the sentence into French.\nInput: the dog sleeps.\nOutput: le chien dort.",
        "Instruction: classify the sentiment of the review.\nInput: the movie was wonderful.\nOutput: positive",
        "Instruction: answer the question.\nInput: what colour is the sky?\nOutput: blue",
        "Définition: résumé, café, naïve — and 漢字 too.",
        "the the the the instruction instruction input input output output",
    ];

    internal static string Write(BuiltinTokenizerOptions options) { string dir = TestPaths.NewTempDir("peftlab-builtin"); BuiltinTokenizer.Write(dir, options); return dir; }

    [Fact]
    public void EmptyCorpusGivesBytesSpecialsAndUnusedFillers()
    {
        string dir = TestPaths.NewTempDir("peftlab-builtin");
        var summary = BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { VocabSize = 300 });
        Assert.Equal(new BuiltinTokenizerSummary(300, 0, 40), summary);
        using var tok = HfTokenizer.Load(dir);
        Assert.Equal(300, tok.VocabSize);
        Assert.Equal(0, tok.PadId);
        Assert.Equal(1, tok.BosId);
        Assert.Equal([2], tok.EosIds);
        Assert.Equal(3, tok.UnkId);
        Assert.Equal("a", tok.IdToToken(4 + 'a'));
        Assert.Equal("Ġ", tok.IdToToken(4 + ' '));
        Assert.Equal("<unused_0>", tok.IdToToken(260));
        Assert.Equal("<unused_39>", tok.IdToToken(299));
        Assert.Equal(new[] { 'h', 'i', ' ', '!' }.Select(c => 4 + c), tok.Encode("hi !"));
        Assert.Equal([1, 4 + 'h'], tok.Encode("h", addSpecialTokens: true));
        // Fillers are never produced, even for text that spells one.
        Assert.Equal(10, tok.Encode("<unused_0>").Length);
        Assert.Equal([4 + 0xE2, 4 + 0x82, 4 + 0xAC], tok.Encode("€"));
    }

    [Fact]
    public void MinimumVocabularyHasNoFillers()
    {
        string dir = TestPaths.NewTempDir("peftlab-builtin");
        Assert.Equal(new BuiltinTokenizerSummary(260, 0, 0), BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { VocabSize = 260, Corpus = Corpus }));
        using var tok = HfTokenizer.Load(dir);
        Assert.Equal(260, tok.VocabSize);
    }

    [Fact]
    public void SameCorpusGivesByteIdenticalFiles()
    {
        var options = new BuiltinTokenizerOptions { VocabSize = 400, Corpus = Corpus };
        string a = Write(options);
        // A lazily enumerated copy of the corpus, written to another folder.
        string b = Write(options with { Corpus = Corpus.Select(s => new string(s.AsSpan())) });
        foreach (string name in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, name)), File.ReadAllBytes(Path.Combine(b, name)));
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(a, "tokenizer.json")),
            File.ReadAllBytes(Path.Combine(Write(options with { Corpus = Corpus.Reverse().Skip(1) }), "tokenizer.json")));
    }

    [Fact]
    public void LearnedMergesShortenCorpusLikeText()
    {
        string trainedDir = Write(new BuiltinTokenizerOptions { VocabSize = 512, Corpus = Corpus });
        string bytesDir = Write(new BuiltinTokenizerOptions { VocabSize = 512 });
        using var trained = HfTokenizer.Load(trainedDir);
        using var bytes = HfTokenizer.Load(bytesDir);
        const string text = "Instruction: translate the review into French.\nInput: the quick dog.\nOutput: le chien";
        int plain = bytes.CountTokens(text);
        int merged = trained.CountTokens(text);
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), plain);
        Assert.True(merged * 10 < plain * 6, $"trained tokenizer used {merged} tokens against {plain} bytes");
        Assert.Equal(text, trained.Decode(trained.Encode(text)));
        Assert.Single(trained.Encode("Instruction"));
        Assert.Single(trained.Encode(" the"));
    }

    [Fact]
    public void TiesAreBrokenByTheSmallerPairAndFrequentPairsComeFirst()
    {
        string dir = Write(new BuiltinTokenizerOptions { VocabSize = 263, Corpus = ["abcd", "xyxy", "xyxy"], MinPairFrequency = 1 });
        var merges = ReadMerges(dir);
        // "x y" occurs 4 times, then "xy xy" twice; then among the count-1 pairs of "abcd" "a b" has the smallest ids.
        Assert.Equal(["x y", "xy xy", "a b"], merges);
    }

    [Fact]
    public void MinPairFrequencyStopsTrainingAndFillersTakeTheRest()
    {
        string dir = TestPaths.NewTempDir("peftlab-builtin");
        var summary = BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { VocabSize = 300, Corpus = ["abcd", "xyxy"] });
        Assert.Equal(new BuiltinTokenizerSummary(300, 1, 39), summary); // only "x y" occurs twice
        Assert.Equal(["x y"], ReadMerges(dir));
    }

    [Fact]
    public void SpecialTokensInTheCorpusAreNotLearnedAsText()
    {
        string dir = Write(new BuiltinTokenizerOptions { VocabSize = 300, Corpus = Enumerable.Repeat("</s></s></s>", 10) });
        Assert.Empty(ReadMerges(dir));
    }

    [Fact]
    public void LargeVocabularyOnASmallCorpusIsFast()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        string dir = TestPaths.NewTempDir("peftlab-builtin");
        var summary = BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { VocabSize = 32000, Corpus = Corpus, MinPairFrequency = 1 });
        using var tok = HfTokenizer.Load(dir);
        Assert.Equal(32000, tok.VocabSize);
        Assert.Equal(32000 - 260 - summary.LearnedMerges, summary.UnusedTokens);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), sw.Elapsed.ToString());
        foreach (string s in Corpus) Assert.Equal(s, tok.Decode(tok.Encode(s)));
    }

    [Fact]
    public void TransformersStyleConfigFiles()
    {
        string dir = Write(new BuiltinTokenizerOptions { ChatTemplate = "{% for m in messages %}{{ m.content }}{% endfor %}" });
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")));
        var root = config.RootElement;
        Assert.True(root.GetProperty("add_bos_token").GetBoolean());
        Assert.False(root.GetProperty("clean_up_tokenization_spaces").GetBoolean());
        Assert.Equal("</s>", root.GetProperty("added_tokens_decoder").GetProperty("2").GetProperty("content").GetString());
        using var tok = HfTokenizer.Load(dir);
        Assert.Equal("{% for m in messages %}{{ m.content }}{% endfor %}", tok.ChatTemplate);
        Assert.All(new[] { 0, 1, 2, 3 }, id => Assert.True(tok.IsSpecial(id)));
        Assert.False(tok.IsSpecial(4));

        string noBos = Write(new BuiltinTokenizerOptions { AddBosToken = false });
        using var tok2 = HfTokenizer.Load(noBos);
        Assert.Equal(tok2.Encode("x"), tok2.Encode("x", addSpecialTokens: true));
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        string dir = TestPaths.NewTempDir("peftlab-builtin");
        Assert.Throws<ArgumentOutOfRangeException>(() => BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { VocabSize = 259 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { VocabSize = 32001 }));
        Assert.Throws<ArgumentException>(() => BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { PadToken = "<s>" }));
        Assert.Throws<ArgumentException>(() => BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { UnkToken = "" }));
        Assert.Throws<ArgumentException>(() => BuiltinTokenizer.Write(dir, new BuiltinTokenizerOptions { PadToken = "a" }));
        Assert.Empty(Directory.GetFiles(dir));
    }

    internal static string[] ReadMerges(string dir)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")));
        return doc.RootElement.GetProperty("model").GetProperty("merges").EnumerateArray().Select(m => m.GetString()!).ToArray();
    }
}
