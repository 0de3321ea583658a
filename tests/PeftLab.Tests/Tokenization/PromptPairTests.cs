using PeftLab.Tokenization;
using static PeftLab.Tests.Tokenization.TokenizerFiles;

namespace PeftLab.Tests.Tokenization;

/// <summary>
/// <see cref="TokenizerExtensions.EncodePair"/>: a SuperNI source ("... Output: ") and its target as the model reads
/// them in one text, on real tokenizers of both kinds (byte-level BPE: GPT-2, Qwen2.5; sentencepiece BPE: stories260K) and on the fallback.
/// </summary>
public sealed class PromptPairTests
{
    private const string Prompt = "Definition: Take the value of the name field.\n\nNow complete the following example -\nInput: name: Kate; age: 40.\nOutput: ";

    public static TheoryData<string> RealTokenizers => new()
    {
        Path.Combine(TestPaths.Shared, "tokenizers", "gpt2"),
        Path.Combine(TestPaths.Shared, "tokenizers", "qwen2.5"),
        Path.Combine(TestPaths.Shared, "fixtures", "real", "stories260K"),
    };

    [Theory]
    [MemberData(nameof(RealTokenizers))]
    public void TheTargetHasTheTokensOfTheWordInRunningText(string dir)
    {
        using var tok = HfTokenizer.Load(dir);
        var (prompt, target) = tok.EncodePair(Prompt, "Kate");
        Assert.Equal(tok.EncodePrompt(Prompt), prompt);
        var head = tok.EncodeWithBos(Prompt.TrimEnd());
        var whole = tok.EncodeWithBos(Prompt.TrimEnd() + " Kate");
        Assert.Equal(head, whole[..head.Length]);
        Assert.Equal(whole[head.Length..], target);
        Assert.Equal("Kate", tok.Decode(target, skipSpecialTokens: true).Trim());
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("qwen2.5")]
    public void AByteLevelTargetStartsWithTheWordAsTheInputSpellsIt(string name)
    {
        // apart, "Output: " + "Kate" is [.. ":" "Ġ"] + ["K" "ate"]; the input holds "ĠKate" (or "ĠK" "ate")
        using var tok = HfTokenizer.Load(Path.Combine(TestPaths.Shared, "tokenizers", name));
        Assert.True(tok.MovesPromptSpace());
        var (prompt, target) = tok.EncodePair(Prompt, "Kate");
        Assert.NotEqual(tok.Encode("Kate", addSpecialTokens: false), target);
        Assert.Equal(tok.Encode(" Kate", addSpecialTokens: false), target);
        Assert.Contains(target[0], tok.Encode("Input: name: Kate;", addSpecialTokens: false));
        // the prompt no longer ends in a lone space token
        Assert.NotEqual(tok.Encode(" ", addSpecialTokens: false).Single(), prompt[^1]);
    }

    [Fact]
    public void ASentencepieceTokenizerKeepsThePairAsItWasEncodedApart()
    {
        // its prepended "▁" spells "Kate" as in running text already; the prompt keeps its trailing "▁", as the real
        // stories260K model's tuning tests were calibrated on
        using var tok = HfTokenizer.Load(Path.Combine(TestPaths.Shared, "fixtures", "real", "stories260K"));
        Assert.False(tok.MovesPromptSpace());
        var (prompt, target) = tok.EncodePair(Prompt, "Kate");
        Assert.Equal(tok.EncodeWithBos(Prompt), prompt);
        Assert.Equal(tok.Encode("Kate", addSpecialTokens: false), target);
    }

    [Fact]
    public void AMergeAcrossTheBoundaryFallsBackToTheTargetOnItsOwn()
    {
        // "x" + "ab": together "xab" merges "a b" into one token that straddles the boundary
        using var tok = HfTokenizer.Load(Folder(("tokenizer.json", ByteLevelJson(null))));
        var (prompt, target) = tok.EncodePair("xa", "b");
        Assert.Equal(Bytes("xa"), prompt);
        Assert.Equal(Bytes("b"), target);
        // the prompt's trailing whitespace moves to the target
        (prompt, target) = tok.EncodePair("x \n", "c");
        Assert.Equal(Bytes("x"), prompt);
        Assert.Equal(" \nc", tok.Decode(target));
    }

    [Fact]
    public void AnEmptyTargetAfterAnEmptyTrimIsEmpty()
    {
        using var tok = HfTokenizer.Load(Folder(("tokenizer.json", ByteLevelJson(null))));
        Assert.Empty(tok.EncodePair("xy", "").Continuation);
        Assert.Equal(Bytes("xy"), tok.EncodePair("xy ", "").Prompt);
    }
}
