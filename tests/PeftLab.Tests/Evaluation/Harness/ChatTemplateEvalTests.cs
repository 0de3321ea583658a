using PeftLab.Data.Chat;
using PeftLab.Evaluation.Harness;
using PeftLab.Tokenization;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>--apply-chat-template: every context becomes one user turn of the tokenizer's chat template, then the assistant header.</summary>
public sealed class ChatTemplateEvalTests
{
    [Fact]
    public void ContextsAreOneUserTurnOfTheTokenizersTemplate()
    {
        using var tok = HfTokenizer.Load(Path.Combine(TestPaths.Shared, "tokenizers", "qwen2.5"));
        var chat = ChatTemplates.ForTokenizer(tok);
        Assert.Equal(ChatTemplateKind.ChatML, chat.Kind);
        var dir = TestPaths.NewTempDir("chat-eval");
        File.WriteAllText(Path.Combine(dir, "test.jsonl"), "{\"q\": \"2 + 2\", \"a\": \"4\", \"choices\": [\"3\", \"4\"], \"ans\": 1}\n");
        File.WriteAllText(Path.Combine(dir, "gen.yaml"), "dataset_path: .\ntest_split: test\noutput_type: generate_until\ndoc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: a\n");
        File.WriteAllText(Path.Combine(dir, "mc.yaml"), "dataset_path: .\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: ans\ndoc_to_choice: choices\n");
        // ChatML with Qwen2.5's default system turn, the prompt as the user turn, then the assistant header
        var expected = chat.RenderText(new Conversation([new ChatMessage(ChatRole.User, "Q: 2 + 2\nA:")]), addGenerationPrompt: true);
        Assert.EndsWith("<|im_start|>user\nQ: 2 + 2\nA:<|im_end|>\n<|im_start|>assistant\n", expected);
        var seen = tok.Decode(tok.Encode(expected), skipSpecialTokens: true);
        var gen = HarnessEvaluator.Evaluate(HarnessTask.Load(Path.Combine(dir, "gen.yaml")), new ScriptedModel(tok, new() { [seen] = ["4"] }), tok, chat: chat);
        Assert.Equal(expected, gen.Samples[0].Prompt);
        Assert.Equal(1, gen.Scores.Single().Value);
        var contexts = new List<string>();
        var continuations = new List<string>();
        var mc = HarnessEvaluator.Evaluate(HarnessTask.Load(Path.Combine(dir, "mc.yaml")), new ScriptedModel(tok, score: (c, x) => { contexts.Add(c); continuations.Add(x); return x.Trim() == "4" ? -1 : -5; }), tok, chat: chat);
        Assert.Equal([" 3", " 4"], continuations);                                 // the header's newline stays in the context
        Assert.Equal(1, mc.Scores.First(s => s.Metric == "acc").Value);
        Assert.All(contexts, c => Assert.EndsWith("user\nQ: 2 + 2\nA:\nassistant\n", c));     // the model scored the choices after the assistant header
        // without the flag, the raw context
        Assert.Equal("Q: 2 + 2\nA:", HarnessEvaluator.Evaluate(HarnessTask.Load(Path.Combine(dir, "gen.yaml")), new ScriptedModel(tok, new() { ["Q: 2 + 2\nA:"] = ["4"] }), tok).Samples[0].Prompt);
    }
}
