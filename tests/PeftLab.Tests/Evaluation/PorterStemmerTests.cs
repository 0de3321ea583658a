using PeftLab.Evaluation;

namespace PeftLab.Tests.Evaluation;

public sealed class PorterStemmerTests
{
    private static readonly Lazy<Dictionary<string, Dictionary<string, string>>> Rows =
        new(() => EvaluationFixtures.ReadTsv(EvaluationFixtures.PorterTsv).ToDictionary(r => r["word"]));

    public static TheoryData<string> Words()
    {
        var data = new TheoryData<string>();
        foreach (var word in Rows.Value.Keys) data.Add(word);
        return data;
    }

    [Fact]
    public void ReferenceFileHasAllRows() => Assert.Equal(155, Rows.Value.Count);

    [Theory]
    [MemberData(nameof(Words))]
    public void MatchesNltkExtensionsStem(string word) =>
        Assert.Equal(Rows.Value[word]["nltk_extensions_stem"], PorterStemmer.Stem(word));

    [Theory]
    [InlineData("a", "a")]
    [InlineData("as", "as")]           // two letters are never stemmed
    [InlineData("is", "is")]
    [InlineData("ies", "i")]
    [InlineData("spied", "spi")]        // -ied on longer words drops "ed"
    [InlineData("geology", "geolog")]   // -logi keeps the l for the measure
    [InlineData("fully", "fulli")]
    [InlineData("hopefully", "hope")]   // -fulli -> -ful, then step 3
    [InlineData("syzygy", "syzygi")]
    [InlineData("toy", "toy")]
    public void ExtraNltkBehaviour(string word, string stem) => Assert.Equal(stem, PorterStemmer.Stem(word));

    [Fact]
    public void LowercasesButLooksUpIrregularFormsAsGiven()
    {
        Assert.Equal("run", PorterStemmer.Stem("Running"));
        // NLTK checks its irregular table with the original word, so "DYING" is stemmed by the rules.
        Assert.Equal("die", PorterStemmer.Stem("dying"));
        Assert.Equal("dy", PorterStemmer.Stem("DYING"));
        Assert.Equal("ab", PorterStemmer.Stem("AB"));
    }

    [Fact]
    public void CountsCodePointsLikePython()
    {
        // "😀😀" is a double consonant of two code points; UTF-16 indexing would see two different surrogates.
        Assert.Equal("a\U0001F600", PorterStemmer.Stem("a\U0001F600\U0001F600ed"));
        Assert.Equal("\U0001F600\U0001F600", PorterStemmer.Stem("\U0001F600\U0001F600")); // two code points: unstemmed
    }
}
