using System.Text.Json.Nodes;
using PeftLab.Data.Chat;
using PeftLab.Tokenization;

namespace PeftLab.Tests.Real;

/// <summary>The real Qwen2.5 and GPT-2 tokenizers in model folders made by <c>init-model --tokenizer</c>, and Qwen2.5's chat template.</summary>
public sealed class RealTokenizerTests
{
    private static string Tokenizer(string name) => Path.Combine(TestPaths.Shared, "tokenizers", name);

    private static string Config(string modelType, int vocab, bool tied)
    {
        var path = Path.Combine(TestPaths.NewTempDir("real-tok-cfg"), "config.json");
        File.WriteAllText(path, new JsonObject
        {
            ["model_type"] = modelType, ["vocab_size"] = vocab, ["hidden_size"] = 32, ["intermediate_size"] = 64,
            ["num_hidden_layers"] = 1, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 256,
            ["tie_word_embeddings"] = tied,
        }.ToJsonString());
        return path;
    }

    [Theory]
    [InlineData("qwen2.5", "qwen2", 151_936, "Hello, world! 你好")]   // the Qwen2.5 models' own padded vocab_size
    [InlineData("gpt2", "llama", 50_257, "Hello, world! Ünïcode")]
    public void InitModelWithARealTokenizerGivesAWorkingModelFolder(string tokenizer, string modelType, int vocab, string text)
    {
        var dir = Path.Combine(TestPaths.NewTempDir("real-tok"), "m");
        CliRunner.Ok(["init-model", "--config", Config(modelType, vocab, tied: true), "--tokenizer", Tokenizer(tokenizer), "--out", dir, "--threads", "1"]);
        using var tok = HfTokenizer.Load(dir);
        using var original = HfTokenizer.Load(Tokenizer(tokenizer));
        Assert.Equal(original.Encode(text), tok.Encode(text));
        Assert.Equal(text, tok.Decode(tok.Encode(text)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Equal(vocab, config["vocab_size"]!.GetValue<int>());
        Assert.Equal(tok.EosIds[0], config["eos_token_id"] is JsonArray a ? a[0]!.GetValue<int>() : config["eos_token_id"]!.GetValue<int>());
        // the random model runs on the real vocabulary end to end
        var r = CliRunner.Run(["generate", "--model", dir, "--prompt", text, "--max-new-tokens", "4", "--threads", "1"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
    }

    [Fact]
    public void ATokenizerLargerThanTheModelVocabularyIsRefused()
    {
        var dir = Path.Combine(TestPaths.NewTempDir("real-tok-small"), "m");
        var r = CliRunner.Run(["init-model", "--config", Config("qwen2", 50_000, tied: true), "--tokenizer", Tokenizer("qwen2.5"), "--out", dir]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("its ids reach 151664, but the model's vocab_size is 50000", r.Stderr);
        Assert.False(Directory.Exists(dir));   // nothing half-written
    }

    [Fact]
    public void Qwen25sOwnChatTemplateIsRecognisedAndRenderedAsChatML()
    {
        var template = ChatTemplates.FromTokenizerConfigFile(Path.Combine(Tokenizer("qwen2.5"), "tokenizer_config.json"));
        Assert.Equal(ChatTemplateKind.ChatML, template.Kind);
        var text = template.RenderText(new Conversation([new ChatMessage(ChatRole.User, "Hi!"), new ChatMessage(ChatRole.Assistant, "Hello.")]));
        Assert.Equal("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
                     "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n", text);
        using var tok = HfTokenizer.Load(Tokenizer("qwen2.5"));
        var ids = tok.Encode(text);
        Assert.Equal(tok.TokenToId("<|im_start|>"), ids[0]);   // the markers are single special tokens
        Assert.Equal(3, ids.Count(i => i == tok.TokenToId("<|im_end|>")));
    }
}
