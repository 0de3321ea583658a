using PeftLab.Tokenization;

namespace PeftLab.Tests.Tokenization;

public sealed class TokenCounterTests(BuiltinTokenizerFixture fx) : IClassFixture<BuiltinTokenizerFixture>
{
    [Fact]
    public void CountTokensExcludesAddedSpecialTokens()
    {
        Assert.Equal(0, fx.Trained.CountTokens(""));
        Assert.Equal(5, fx.BytesOnly.CountTokens("hello"));
        Assert.Equal(4, fx.BytesOnly.CountTokens("😀"));
        Assert.Equal(fx.Trained.Encode("the dog").Length, fx.Trained.CountTokens("the dog"));
        Assert.Equal(2, fx.BytesOnly.CountTokens("<s></s>"));
    }

    [Fact]
    public void TextThatFitsIsReturnedUnchanged()
    {
        const string text = "the quick brown fox";
        Assert.Same(text, fx.Trained.TruncateToTokens(text, 100));
        Assert.Same(text, fx.Trained.TruncateToTokens(text, fx.Trained.CountTokens(text)));
    }

    [Fact]
    public void TruncationKeepsTheFirstTokensAsText()
    {
        var tok = fx.Trained;
        const string text = "Instruction: translate the sentence into French.\nInput: the dog sleeps.";
        var ids = tok.Encode(text);
        for (int n = 0; n < ids.Length; n++)
        {
            string cut = tok.TruncateToTokens(text, n);
            Assert.Equal(tok.Decode(ids[..n]), cut);
            Assert.StartsWith(cut, text, StringComparison.Ordinal);
            Assert.True(tok.CountTokens(cut) <= n);
        }
        Assert.Equal("", tok.TruncateToTokens(text, 0));
    }

    [Fact]
    public void CutInsideAMultiByteCharacterDropsTheDanglingBytes()
    {
        var tok = fx.BytesOnly;
        const string text = "a😀b€c";
        Assert.Equal("a", tok.TruncateToTokens(text, 1));
        Assert.Equal("a", tok.TruncateToTokens(text, 2));
        Assert.Equal("a", tok.TruncateToTokens(text, 4));
        Assert.Equal("a😀", tok.TruncateToTokens(text, 5));
        Assert.Equal("a😀b", tok.TruncateToTokens(text, 7));
        Assert.Equal("a😀b€", tok.TruncateToTokens(text, 9));
        foreach (int n in Enumerable.Range(0, 11))
            Assert.DoesNotContain('\uFFFD', tok.TruncateToTokens(text, n));
    }

    [Fact]
    public void GenuineReplacementCharactersAreKept()
    {
        var tok = fx.BytesOnly;
        const string text = "x\uFFFD\uFFFDyz";
        Assert.Equal("x\uFFFD\uFFFD", tok.TruncateToTokens(text, 7));
    }

    [Fact]
    public void SpecialTokensInTheTextSurviveTruncation()
    {
        var tok = fx.Trained;
        const string text = "<s>hello</s> and more text after it";
        Assert.Equal("<s>hello</s>", tok.TruncateToTokens(text, 1 + tok.CountTokens("hello") + 1));
    }

    [Fact]
    public void InvalidArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => fx.Trained.TruncateToTokens("abc", -1));
        Assert.Throws<ArgumentNullException>(() => fx.Trained.TruncateToTokens(null!, 3));
        Assert.Throws<ArgumentNullException>(() => fx.Trained.CountTokens(null!));
    }
}
