using System.Text.Json.Nodes;
using PeftLab.Tokenization;
using static PeftLab.Tests.Tokenization.TokenizerFiles;

namespace PeftLab.Tests.Tokenization;

/// <summary>BOS / EOS / PAD / UNK, chat template and missing-file handling across the files of a model folder.</summary>
public sealed class SpecialTokenResolutionTests
{
    private static HfTokenizer Load(params (string, object)[] files) =>
        HfTokenizer.Load(Folder([("tokenizer.json", ByteLevelJson(null)), .. files]));

    [Fact]
    public void TokenizerOnlyGivesNoSpecialIds()
    {
        using var tok = Load();
        Assert.Null(tok.BosId);
        Assert.Empty(tok.EosIds);
        Assert.Null(tok.PadId);
        Assert.Null(tok.UnkId);
        Assert.Null(tok.ChatTemplate);
        Assert.Equal(262, tok.VocabSize);
    }

    [Fact]
    public void TokenizerConfigStringsAndAddedTokenObjects()
    {
        var config = new JsonObject
        {
            ["bos_token"] = new JsonObject { ["__type"] = "AddedToken", ["content"] = "<s>", ["lstrip"] = false, ["special"] = true },
            ["eos_token"] = "</s>",
            ["pad_token"] = new JsonObject { ["content"] = "<pad>" },
            ["unk_token"] = "<unk>",
        };
        using var tok = Load(("tokenizer_config.json", config));
        Assert.Equal(1, tok.BosId);
        Assert.Equal([2], tok.EosIds);
        Assert.Equal(0, tok.PadId);
        Assert.Equal(3, tok.UnkId);
    }

    [Fact]
    public void SpecialTokensMapIsTheFallbackForTokenizerConfig()
    {
        using var tok = Load(
            ("tokenizer_config.json", new JsonObject { ["eos_token"] = "</s>" }),
            ("special_tokens_map.json", new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "<unk>", ["pad_token"] = new JsonObject { ["content"] = "</s>" } }));
        Assert.Equal(1, tok.BosId);
        Assert.Equal([2], tok.EosIds); // tokenizer_config.json wins
        Assert.Equal(2, tok.PadId);
    }

    [Fact]
    public void GenerationConfigEosListFollowsTheTokenizerEos()
    {
        using var tok = Load(
            ("tokenizer_config.json", new JsonObject { ["eos_token"] = "<extra>" }),
            ("generation_config.json", new JsonObject { ["eos_token_id"] = new JsonArray(2, 261, 3), ["bos_token_id"] = 1, ["pad_token_id"] = 0 }),
            ("config.json", new JsonObject { ["eos_token_id"] = 100 }));
        Assert.Equal([261, 2, 3], tok.EosIds);
        Assert.Equal(1, tok.BosId);
        Assert.Equal(0, tok.PadId);
    }

    [Fact]
    public void GenerationConfigSingleEosWithoutTokenizerEos()
    {
        using var tok = Load(("generation_config.json", new JsonObject { ["eos_token_id"] = 2 }));
        Assert.Equal([2], tok.EosIds);
    }

    [Fact]
    public void ConfigJsonIdsAreTheLastFallbackAndNegativeMeansUnset()
    {
        using var tok = Load(("config.json", new JsonObject { ["bos_token_id"] = 1, ["eos_token_id"] = new JsonArray(2, 3), ["pad_token_id"] = -1 }));
        Assert.Equal(1, tok.BosId);
        Assert.Equal([2, 3], tok.EosIds);
        Assert.Null(tok.PadId);
    }

    [Fact]
    public void ExplicitNullInTokenizerConfigMeansNoTokenEvenIfConfigJsonHasAnId()
    {
        // Qwen2's layout: no BOS in the tokenizer although config.json names bos_token_id.
        using var tok = Load(
            ("tokenizer_config.json", new JsonObject { ["bos_token"] = null, ["eos_token"] = "</s>", ["add_bos_token"] = false }),
            ("config.json", new JsonObject { ["bos_token_id"] = 1, ["eos_token_id"] = 2 }));
        Assert.Null(tok.BosId);
        Assert.Equal([2], tok.EosIds);
    }

    [Fact]
    public void UnkFallsBackToTheModelsUnkToken()
    {
        var json = ByteLevelJson(null);
        json["model"]!["unk_token"] = "<unk>";
        using var tok = HfTokenizer.Load(Folder(("tokenizer.json", json)));
        Assert.Equal(3, tok.UnkId);
    }

    [Fact]
    public void ConfigDeclaredSpecialTokensAreSpecialEvenWhenNotMarkedInTokenizerJson()
    {
        // "<extra>" is a non-special added token in tokenizer.json; naming it pad_token makes it special, as transformers does.
        using var tok = Load(("tokenizer_config.json", new JsonObject { ["pad_token"] = "<extra>", ["additional_special_tokens"] = new JsonArray("ab") }));
        Assert.True(tok.IsSpecial(261));
        Assert.True(tok.IsSpecial(260));
        Assert.True(tok.IsSpecial(1));
        Assert.False(tok.IsSpecial(ByteId('a')));
        int[] ids = [ByteId('x'), 261, 260, 1, ByteId('y')];
        Assert.Equal("xy", tok.Decode(ids));
        Assert.Equal("x<extra>ab<s>y", tok.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void TokenMissingFromTheVocabularyIsAnErrorNamingFileAndKey()
    {
        string dir = Folder(("tokenizer.json", ByteLevelJson(null)), ("tokenizer_config.json", new JsonObject { ["eos_token"] = "<|im_end|>" }));
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains("eos_token", e.Message);
        Assert.Contains("<|im_end|>", e.Message);
    }

    [Fact]
    public void IdOutsideTheVocabularyIsAnError()
    {
        string dir = Folder(("tokenizer.json", ByteLevelJson(null)), ("generation_config.json", new JsonObject { ["eos_token_id"] = new JsonArray(2, 5000) }));
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir));
        Assert.Contains("generation_config.json", e.Message);
        Assert.Contains("5000", e.Message);
    }

    [Fact]
    public void ChatTemplateFromTokenizerConfigStringOrNamedList()
    {
        using (var tok = Load(("tokenizer_config.json", new JsonObject { ["chat_template"] = "{{ messages }}" })))
            Assert.Equal("{{ messages }}", tok.ChatTemplate);
        var list = new JsonArray(
            new JsonObject { ["name"] = "tool_use", ["template"] = "T" },
            new JsonObject { ["name"] = "default", ["template"] = "D" });
        using (var tok = Load(("tokenizer_config.json", new JsonObject { ["chat_template"] = list })))
            Assert.Equal("D", tok.ChatTemplate);
        using (var tok = Load(("tokenizer_config.json", new JsonObject { ["chat_template"] = "old" }), ("chat_template.jinja", "new {{ x }}")))
            Assert.Equal("new {{ x }}", tok.ChatTemplate);
    }

    [Fact]
    public void MissingTokenizerJsonNamesTheFolderAndWhatIsExpected()
    {
        string dir = Folder(("config.json", new JsonObject { ["vocab_size"] = 10 }));
        var e = Assert.Throws<FileNotFoundException>(() => HfTokenizer.Load(dir));
        Assert.Contains(dir, e.Message);
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Equal(Path.Combine(dir, "tokenizer.json"), e.FileName);
    }

    [Fact]
    public void MissingFolderAndMalformedJsonAreClearErrors()
    {
        string missing = Path.Combine(Path.GetTempPath(), "peftlab-no-such-" + Guid.NewGuid().ToString("N"));
        var e1 = Assert.Throws<DirectoryNotFoundException>(() => HfTokenizer.Load(missing));
        Assert.Contains(missing, e1.Message);

        string dir = Folder(("tokenizer.json", "{\"model\": {"));
        var e2 = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir));
        Assert.Contains("tokenizer.json", e2.Message);

        string bad = Folder(("tokenizer.json", ByteLevelJson(null)), ("tokenizer_config.json", new JsonObject { ["bos_token"] = 5 }));
        var e3 = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(bad));
        Assert.Contains("bos_token", e3.Message);
    }

    [Fact]
    public void TokenIdLookups()
    {
        using var tok = Load();
        Assert.Equal(260, tok.TokenToId("ab"));
        Assert.Equal(ByteId(' '), tok.TokenToId("Ġ"));
        Assert.Equal("Ġ", tok.IdToToken(ByteId(' ')));
        Assert.Equal("<extra>", tok.IdToToken(261));
        Assert.Null(tok.IdToToken(262));
        Assert.Null(tok.IdToToken(-1));
        Assert.Throws<KeyNotFoundException>(() => tok.TokenToId("nope"));
        Assert.False(tok.TryTokenToId("nope", out _));
    }
}
