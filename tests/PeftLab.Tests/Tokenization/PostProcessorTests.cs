using System.Text.Json.Nodes;
using PeftLab.Tokenization;
using static PeftLab.Tests.Tokenization.TokenizerFiles;

namespace PeftLab.Tests.Tokenization;

/// <summary>addSpecialTokens on top of a binding that always applies the file's post-processor.</summary>
public sealed class PostProcessorTests
{
    private static HfTokenizer Load(JsonNode? postProcessor, params (string, object)[] extra) =>
        HfTokenizer.Load(Folder([("tokenizer.json", ByteLevelJson(postProcessor)), .. extra]));

    [Fact]
    public void TemplateAddingBosIsAppliedOnlyWhenAsked()
    {
        using var tok = Load(Template("<s>", "$A"));
        Assert.Equal([ByteId('x'), 260, ByteId('c')], tok.Encode("xabc"));
        Assert.Equal([1, ByteId('x'), 260, ByteId('c')], tok.Encode("xabc", addSpecialTokens: true));
        Assert.Equal([], tok.Encode(""));
        Assert.Equal([1], tok.Encode("", addSpecialTokens: true));
        Assert.Equal([1], tok.SpecialPrefix);
        Assert.Empty(tok.SpecialSuffix);
    }

    [Fact]
    public void BosWrittenInTheTextIsKeptWhenTheTemplateOneIsStripped()
    {
        using var tok = Load(Template("<s>", "$A"));
        Assert.Equal([1, ByteId('x')], tok.Encode("<s>x"));
        Assert.Equal([1, 1, ByteId('x')], tok.Encode("<s>x", addSpecialTokens: true));
        Assert.Equal([1], tok.Encode("<s>"));
    }

    [Fact]
    public void PrefixAndSuffixAreToldApartByParsingTheTemplate()
    {
        using var tok = Load(Template("<s>", "$A", "</s>"));
        Assert.Equal([ByteId('q'), 2], tok.Encode("q</s>"));
        Assert.Equal([1, ByteId('q'), 2, 2], tok.Encode("q</s>", addSpecialTokens: true));
        Assert.Equal([1, 2], tok.Encode("", addSpecialTokens: true));
        Assert.Equal([2, 1], tok.Encode("</s><s>"));
    }

    [Fact]
    public void SequenceOfByteLevelAndTemplateAsInLlama3()
    {
        var seq = new JsonObject { ["type"] = "Sequence", ["processors"] = new JsonArray(ByteLevel(), Template("<s>", "$A")) };
        using var tok = Load(seq);
        Assert.Equal([ByteId('h'), ByteId('i')], tok.Encode("hi"));
        Assert.Equal([1, ByteId('h'), ByteId('i')], tok.Encode("hi", true));
    }

    [Theory]
    [InlineData("BertProcessing")]
    [InlineData("RobertaProcessing")]
    public void ClsSepProcessors(string type)
    {
        var pp = new JsonObject { ["type"] = type, ["sep"] = new JsonArray("</s>", 2), ["cls"] = new JsonArray("<s>", 1) };
        if (type == "RobertaProcessing") { pp["trim_offsets"] = true; pp["add_prefix_space"] = false; }
        using var tok = Load(pp);
        Assert.Equal([ByteId('z')], tok.Encode("z"));
        Assert.Equal([1, ByteId('z'), 2], tok.Encode("z", true));
    }

    [Fact]
    public void NullPostProcessorAddsNothing()
    {
        using var tok = Load(null);
        Assert.Equal(tok.Encode("abc"), tok.Encode("abc", true));
    }

    [Fact]
    public void AddBosTokenFalseInTokenizerConfigOverridesTheTemplate()
    {
        using var tok = Load(Template("<s>", "$A"), ("tokenizer_config.json", new JsonObject { ["add_bos_token"] = false, ["bos_token"] = "<s>" }));
        Assert.Equal([ByteId('z')], tok.Encode("z", true));
        Assert.Equal([ByteId('z')], tok.Encode("z", false));
    }

    [Fact]
    public void AddBosAndEosTokenFlagsAddTokensTheFileDoesNot()
    {
        var config = new JsonObject { ["add_bos_token"] = true, ["add_eos_token"] = true, ["bos_token"] = "<s>", ["eos_token"] = "</s>" };
        using var tok = Load(null, ("tokenizer_config.json", config));
        Assert.Equal([1, ByteId('z'), 2], tok.Encode("z", true));
        Assert.Equal([ByteId('z')], tok.Encode("z"));
    }

    [Fact]
    public void AddBosTokenWithoutBosIsAnError()
    {
        string dir = Folder(("tokenizer.json", ByteLevelJson(null)), ("tokenizer_config.json", new JsonObject { ["add_bos_token"] = true, ["bos_token"] = null }));
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains("add_bos_token", e.Message);
    }

    [Fact]
    public void TruncationAndPaddingInTheFileAreNotApplied()
    {
        var json = ByteLevelJson(Template("<s>", "$A"));
        json["truncation"] = new JsonObject { ["direction"] = "Right", ["max_length"] = 3, ["strategy"] = "LongestFirst", ["stride"] = 0 };
        json["padding"] = new JsonObject
        {
            ["strategy"] = new JsonObject { ["Fixed"] = 12 }, ["direction"] = "Right", ["pad_to_multiple_of"] = null,
            ["pad_id"] = 0, ["pad_type_id"] = 0, ["pad_token"] = "<pad>",
        };
        string dir = Folder(("tokenizer.json", json));
        using var tok = HfTokenizer.Load(dir);
        Assert.Equal(Bytes("hello world"), tok.Encode("hello world"));
        Assert.Equal([1, .. Bytes("xyz")], tok.Encode("xyz", true));
        Assert.Single(Directory.GetFiles(dir)); // the sanitised copy went to the temp folder, not next to the model
    }

    [Fact]
    public void UnknownPostProcessorTypeFailsAtLoadNamingIt()
    {
        string dir = Folder(("tokenizer.json", ByteLevelJson(new JsonObject { ["type"] = "Mystery" })));
        var e = Assert.ThrowsAny<Exception>(() => HfTokenizer.Load(dir));
        Assert.Contains("Mystery", e.Message);
        Assert.Contains("tokenizer.json", e.Message);
    }
}
