using System.Text;

namespace PeftLab.Data.Chat;

/// <summary>Chat templates PeftLab can render (and so mask) exactly.</summary>
public enum ChatTemplateKind
{
    /// <summary>Meta Llama 3 (3.0) instruct template: <c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;</c>.</summary>
    Llama3,

    /// <summary>ChatML as used by Qwen: <c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c>.</summary>
    ChatML,

    /// <summary>AllenAI Tulu: <c>&lt;|user|&gt;\ncontent\n&lt;|assistant|&gt;\ncontent&lt;eos&gt;</c>.</summary>
    Tulu,
}

/// <summary>
/// A chat template rendered in C#, equivalent to the model's Jinja template with <c>apply_chat_template(tokenize=False)</c>,
/// but split into <see cref="TextSegment"/>s: only assistant replies and their end-of-turn marker are trainable.
/// Role headers (including the assistant header) and the newline after an end-of-turn marker are not.
/// </summary>
public sealed record ChatTemplate
{
    public ChatTemplateKind Kind { get; }

    /// <summary>Text emitted once at the very start (Llama 3 renders <c>bos_token</c> itself); null = none.</summary>
    public string? BosToken { get; init; }

    /// <summary>The tokenizer's EOS text; Tulu ends every assistant reply with it. Llama 3 and ChatML use their fixed markers.</summary>
    public string? EosToken { get; init; }

    /// <summary>System prompt inserted when a conversation does not start with one (Qwen's "You are a helpful assistant."); null = none.</summary>
    public string? DefaultSystemPrompt { get; init; }

    public ChatTemplate(ChatTemplateKind kind)
    {
        if (!Enum.IsDefined(kind)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown chat template kind");
        Kind = kind;
    }

    /// <summary>The marker that closes an assistant reply and is trained on (the model learns to stop).</summary>
    public string EndOfTurn => Kind switch
    {
        ChatTemplateKind.Llama3 => "<|eot_id|>",
        ChatTemplateKind.ChatML => "<|im_end|>",
        _ => string.IsNullOrEmpty(EosToken)
            ? throw new InvalidOperationException("the Tulu template ends replies with the tokenizer's eos_token; set EosToken (e.g. \"</s>\")")
            : EosToken,
    };

    /// <summary>Renders <paramref name="conversation"/>; with <paramref name="addGenerationPrompt"/> the assistant header for the next reply is appended.</summary>
    public IReadOnlyList<TextSegment> Render(Conversation conversation, bool addGenerationPrompt = false)
    {
        ArgumentNullException.ThrowIfNull(conversation);
        var msgs = conversation.Messages;
        if (msgs.Count == 0) throw new ArgumentException("cannot render an empty conversation", nameof(conversation));
        var w = new SegmentWriter();
        if (!string.IsNullOrEmpty(BosToken)) w.Add(BosToken, false);
        if (DefaultSystemPrompt is not null && msgs[0].Role != ChatRole.System)
            msgs = [new ChatMessage(ChatRole.System, DefaultSystemPrompt), .. msgs];
        var end = EndOfTurn;
        for (int i = 0; i < msgs.Count; i++)
        {
            var m = msgs[i];
            bool reply = m.Role == ChatRole.Assistant;
            bool last = i == msgs.Count - 1;
            switch (Kind)
            {
                case ChatTemplateKind.Llama3:
                    // Jinja: '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content | trim + '<|eot_id|>'
                    w.Add($"<|start_header_id|>{RoleName(m.Role)}<|end_header_id|>\n\n", false);
                    w.Add(PyText.Strip(m.Content) + end, reply);
                    break;
                case ChatTemplateKind.ChatML:
                    w.Add($"<|im_start|>{RoleName(m.Role)}\n", false);
                    w.Add(m.Content + end, reply);
                    w.Add("\n", false);
                    break;
                default:
                    if (reply)
                    {
                        w.Add("<|assistant|>\n", false);
                        w.Add(m.Content + end, true);
                        if (!last) w.Add("\n", false);
                    }
                    else
                    {
                        w.Add($"<|{RoleName(m.Role)}|>\n{m.Content}\n", false);
                    }
                    break;
            }
        }
        if (addGenerationPrompt)
        {
            w.Add(Kind switch
            {
                ChatTemplateKind.Llama3 => "<|start_header_id|>assistant<|end_header_id|>\n\n",
                ChatTemplateKind.ChatML => "<|im_start|>assistant\n",
                _ => "<|assistant|>\n",
            }, false);
        }
        return w.Finish();
    }

    /// <summary>The rendered text (all segments concatenated).</summary>
    public string RenderText(Conversation conversation, bool addGenerationPrompt = false) =>
        string.Concat(Render(conversation, addGenerationPrompt).Select(s => s.Text));

    private static string RoleName(ChatRole role) => role switch
    {
        ChatRole.System => "system",
        ChatRole.User => "user",
        ChatRole.Assistant => "assistant",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "unknown chat role"),
    };

    // Merges adjacent pieces with the same trainability so callers see few, maximal segments.
    private sealed class SegmentWriter
    {
        private readonly StringBuilder _current = new();
        private readonly List<TextSegment> _segments = [];
        private bool _trainable;

        public void Add(string text, bool trainable)
        {
            if (text.Length == 0) return;
            if (_current.Length > 0 && trainable != _trainable) Flush();
            _trainable = trainable;
            _current.Append(text);
        }

        private void Flush()
        {
            _segments.Add(new TextSegment(_current.ToString(), _trainable));
            _current.Clear();
        }

        public List<TextSegment> Finish()
        {
            if (_current.Length > 0) Flush();
            return _segments;
        }
    }
}
