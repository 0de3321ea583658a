using PeftLab.Data;
using PeftLab.Data.Chat;

namespace PeftLab.Tests.Data;

public sealed class ChatTemplateTests
{
    private static readonly Conversation TwoTurns = new(
    [
        new(ChatRole.System, "You are terse."),
        new(ChatRole.User, "Hi"),
        new(ChatRole.Assistant, "Hello!"),
        new(ChatRole.User, "2+2?"),
        new(ChatRole.Assistant, " 4\n"),
    ]);

    private static string Trainable(IReadOnlyList<TextSegment> segs) => string.Join("|", segs.Where(s => s.Trainable).Select(s => s.Text));

    private static void AssertAlternating(IReadOnlyList<TextSegment> segs)
    {
        Assert.All(segs, s => Assert.NotEmpty(s.Text));
        for (int i = 1; i < segs.Count; i++) Assert.NotEqual(segs[i - 1].Trainable, segs[i].Trainable);
    }

    [Fact]
    public void Llama3()
    {
        var segs = ChatTemplates.Llama3.Render(TwoTurns);
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>",
            string.Concat(segs.Select(s => s.Text)));
        Assert.Equal("Hello!<|eot_id|>|4<|eot_id|>", Trainable(segs));
        AssertAlternating(segs);
        Assert.Equal(4, segs.Count);

        var prompt = new Conversation([new(ChatRole.User, "Hi")]);
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            ChatTemplates.Llama3.RenderText(prompt, addGenerationPrompt: true));
    }

    [Fact]
    public void ChatMLWithQwenDefaultSystemPrompt()
    {
        var qwen = ChatTemplates.ChatML with { DefaultSystemPrompt = "You are a helpful assistant." };
        var conv = new Conversation([new(ChatRole.User, "Hi"), new(ChatRole.Assistant, "Hello!\n"), new(ChatRole.User, "Bye")]);
        var segs = qwen.Render(conv, addGenerationPrompt: true);
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
            "<|im_start|>user\nHi<|im_end|>\n" +
            "<|im_start|>assistant\nHello!\n<|im_end|>\n" +
            "<|im_start|>user\nBye<|im_end|>\n" +
            "<|im_start|>assistant\n",
            string.Concat(segs.Select(s => s.Text)));
        Assert.Equal("Hello!\n<|im_end|>", Trainable(segs));
        AssertAlternating(segs);

        Assert.Equal(
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n" +
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n 4\n<|im_end|>\n",
            qwen.RenderText(TwoTurns));
        Assert.StartsWith("<|im_start|>user\nHi", ChatTemplates.ChatML.RenderText(conv));
    }

    [Fact]
    public void Tulu()
    {
        var segs = ChatTemplates.Tulu.Render(TwoTurns);
        Assert.Equal(
            "<|system|>\nYou are terse.\n<|user|>\nHi\n<|assistant|>\nHello!</s>\n<|user|>\n2+2?\n<|assistant|>\n 4\n</s>",
            string.Concat(segs.Select(s => s.Text)));
        Assert.Equal("Hello!</s>| 4\n</s>", Trainable(segs));
        Assert.True(segs[^1].Trainable);
        AssertAlternating(segs);

        var tulu3 = ChatTemplates.Tulu with { EosToken = "<|end_of_text|>" };
        Assert.Equal("<|user|>\nQ\n<|assistant|>\nA<|end_of_text|>\n<|user|>\nR\n<|assistant|>\n",
            tulu3.RenderText(new Conversation([new(ChatRole.User, "Q"), new(ChatRole.Assistant, "A"), new(ChatRole.User, "R")]), addGenerationPrompt: true));
        Assert.Throws<InvalidOperationException>(() => (ChatTemplates.Tulu with { EosToken = null }).Render(TwoTurns));
    }

    private const string Llama3Jinja = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
    private const string Qwen2Jinja = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    private const string Qwen25Jinja = "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}";
    private const string TuluJinja = "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}{% elif message['role'] == 'assistant' %}{% if not loop.last %}{{ '<|assistant|>\n'  + message['content'] + eos_token + '\n' }}{% else %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% endif %}{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}{% endfor %}";
    private const string ZephyrJinja = "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + eos_token }}{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% endfor %}";

    [Fact]
    public void RecognisesKnownTokenizerTemplates()
    {
        var l = ChatTemplates.FromTokenizerConfig(Llama3Jinja, bosToken: "<|begin_of_text|>");
        Assert.Equal(ChatTemplateKind.Llama3, l.Kind);
        Assert.Equal(ChatTemplates.Llama3.RenderText(TwoTurns), l.RenderText(TwoTurns));

        var q = ChatTemplates.FromTokenizerConfig(Qwen2Jinja);
        Assert.Equal(ChatTemplateKind.ChatML, q.Kind);
        Assert.Equal("You are a helpful assistant.", q.DefaultSystemPrompt);

        var q25 = ChatTemplates.FromTokenizerConfig(Qwen25Jinja);
        Assert.Equal("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", q25.DefaultSystemPrompt);

        var plain = ChatTemplates.FromTokenizerConfig("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}");
        Assert.Null(plain.DefaultSystemPrompt);

        var t = ChatTemplates.FromTokenizerConfig(TuluJinja, eosToken: "<|end_of_text|>");
        Assert.Equal(ChatTemplateKind.Tulu, t.Kind);
        Assert.Equal("<|end_of_text|>", t.EndOfTurn);
        var e = Assert.Throws<ArgumentException>(() => ChatTemplates.FromTokenizerConfig(TuluJinja));
        Assert.Contains("eos_token", e.Message);
    }

    [Theory]
    [InlineData(ZephyrJinja, "not the Tulu template")]
    [InlineData("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}", "no known markers")]
    [InlineData("{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}Cutting Knowledge Date: December 2023<|eot_id|>", "Llama 3.1+")]
    [InlineData("{%- for message in messages %}<|im_start|>{{ message.role }}<think>{%- endfor %}", "reasoning")]
    [InlineData(null, "no chat_template")]
    [InlineData("  ", "no chat_template")]
    public void RefusesTemplatesItCannotRender(string? jinja, string reason)
    {
        var e = Assert.Throws<NotSupportedException>(() => ChatTemplates.FromTokenizerConfig(jinja, eosToken: "</s>"));
        Assert.Contains("PeftLab cannot render this chat template", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.Contains("Choose a built-in template by name instead (llama3, chatml, tulu)", e.Message);
    }

    [Fact]
    public void ReadsTokenizerConfigFileAndNames()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "tokenizer_config.json");
        File.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["chat_template"] = TuluJinja,
            ["bos_token"] = new Dictionary<string, object> { ["content"] = "<s>", ["lstrip"] = false },
            ["eos_token"] = "</s>",
        }));
        var t = ChatTemplates.FromTokenizerConfigFile(path);
        Assert.Equal(ChatTemplateKind.Tulu, t.Kind);
        Assert.Equal("</s>", t.EosToken);

        File.WriteAllText(path, "{\"eos_token\": \"</s>\"}");
        var e = Assert.Throws<NotSupportedException>(() => ChatTemplates.FromTokenizerConfigFile(path));
        Assert.StartsWith(path, e.Message);

        Assert.Equal(ChatTemplateKind.Llama3, ChatTemplates.FromName("Llama-3").Kind);
        Assert.Equal(ChatTemplateKind.ChatML, ChatTemplates.FromName("chatml").Kind);
        Assert.Equal(ChatTemplateKind.Tulu, ChatTemplates.FromName("TULU").Kind);
        var bad = Assert.Throws<ArgumentException>(() => ChatTemplates.FromName("vicuna"));
        Assert.Contains("unknown chat template 'vicuna'; built-in templates: llama3, chatml, tulu", bad.Message);
    }
}
