using System.Text.Json;
using System.Text.RegularExpressions;

namespace PeftLab.Data.Chat;

/// <summary>Built-in chat templates and recognition of a model's own template.</summary>
public static partial class ChatTemplates
{
    /// <summary>Llama 3 with <c>&lt;|begin_of_text|&gt;</c> as BOS, no default system prompt.</summary>
    public static ChatTemplate Llama3 { get; } = new(ChatTemplateKind.Llama3) { BosToken = "<|begin_of_text|>" };

    /// <summary>Plain ChatML (no default system prompt; Qwen2's own template adds "You are a helpful assistant.").</summary>
    public static ChatTemplate ChatML { get; } = new(ChatTemplateKind.ChatML);

    /// <summary>Tulu with Llama 2's <c>&lt;/s&gt;</c> as EOS (Tulu 3 uses <c>&lt;|end_of_text|&gt;</c>: <c>Tulu with { EosToken = ... }</c>).</summary>
    public static ChatTemplate Tulu { get; } = new(ChatTemplateKind.Tulu) { EosToken = "</s>" };

    private static readonly string Names = string.Join(", ", Enum.GetNames<ChatTemplateKind>().Select(n => n.ToLowerInvariant()));

    /// <summary>The built-in template of a kind.</summary>
    public static ChatTemplate Get(ChatTemplateKind kind) => kind switch
    {
        ChatTemplateKind.Llama3 => Llama3,
        ChatTemplateKind.ChatML => ChatML,
        ChatTemplateKind.Tulu => Tulu,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown chat template kind"),
    };

    /// <summary>A built-in template by name ("llama3", "chatml", "tulu"; case-insensitive).</summary>
    public static ChatTemplate FromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var key = name.Trim().Replace("-", "").Replace("_", "");
        foreach (var kind in Enum.GetValues<ChatTemplateKind>())
            if (string.Equals(kind.ToString(), key, StringComparison.OrdinalIgnoreCase)) return Get(kind);
        throw new ArgumentException($"unknown chat template '{name}'; built-in templates: {Names}");
    }

    /// <summary>
    /// Recognises a tokenizer_config.json <c>chat_template</c> that PeftLab can render exactly (Llama 3, ChatML/Qwen2,
    /// Tulu) by its characteristic markers; anything else is refused rather than rendered approximately.
    /// </summary>
    /// <param name="jinjaTemplate">The Jinja source (JSON-decoded).</param>
    /// <param name="bosToken">The tokenizer's bos_token (Llama 3 renders it; default "&lt;|begin_of_text|&gt;").</param>
    /// <param name="eosToken">The tokenizer's eos_token (required for Tulu, which renders it after each reply).</param>
    /// <exception cref="NotSupportedException">The template is missing or not one PeftLab can render.</exception>
    public static ChatTemplate FromTokenizerConfig(string? jinjaTemplate, string? bosToken = null, string? eosToken = null)
    {
        if (string.IsNullOrWhiteSpace(jinjaTemplate))
            throw Unsupported("the tokenizer has no chat_template");
        // Templates spell newlines either as real newlines or as Jinja "\n" escapes; compare one form.
        var t = jinjaTemplate.Replace("\\n", "\n");

        if (t.Contains("<|start_header_id|>"))
        {
            if (!t.Contains("<|eot_id|>"))
                throw Unsupported("it uses <|start_header_id|> but not <|eot_id|>, so it is not the Llama 3 template");
            if (t.Contains("Cutting Knowledge Date") || t.Contains("ipython") || t.Contains("tools"))
                throw Unsupported("it is a Llama 3.1+ template (dated system header / tool calls), which differs from Llama 3's");
            return Llama3 with { BosToken = bosToken ?? Llama3.BosToken };
        }
        if (t.Contains("<|im_start|>"))
        {
            if (t.Contains("<think>"))
                throw Unsupported("it is a reasoning ChatML template (<think> handling, e.g. Qwen3)");
            var m = ChatMlDefaultSystem().Match(t);
            return ChatML with { DefaultSystemPrompt = m.Success ? m.Groups[1].Value : null };
        }
        if (t.Contains("<|user|>") && t.Contains("<|assistant|>"))
        {
            if (!TuluUserTurn().IsMatch(t) || !TuluAssistantTurn().IsMatch(t))
                throw Unsupported("it uses <|user|>/<|assistant|> but is not the Tulu template (e.g. Zephyr or Phi-3 end turns differently)");
            if (string.IsNullOrEmpty(eosToken))
                throw new ArgumentException("the Tulu chat template renders the tokenizer's eos_token after each reply; pass eosToken (eos_token from tokenizer_config.json)");
            return Tulu with { EosToken = eosToken };
        }
        throw Unsupported("no known markers (<|start_header_id|>, <|im_start|>, <|user|>) were found");
    }

    /// <summary>
    /// The template a model is used with: <paramref name="kind"/> when given, else the one its tokenizer's
    /// <c>chat_template</c> names (with its bos and eos tokens).
    /// </summary>
    /// <exception cref="NotSupportedException">No kind given and the tokenizer's template is missing or not one PeftLab renders.</exception>
    public static ChatTemplate ForTokenizer(Tokenization.ITokenizer tokenizer, ChatTemplateKind? kind = null) =>
        kind is { } k ? Get(k)
            : FromTokenizerConfig(tokenizer.ChatTemplate,
                tokenizer.BosId is int b ? tokenizer.IdToToken(b) : null,
                tokenizer.EosIds.Count > 0 ? tokenizer.IdToToken(tokenizer.EosIds[0]) : null);

    /// <summary>Reads <c>chat_template</c>, <c>bos_token</c> and <c>eos_token</c> from a tokenizer_config.json and calls <see cref="FromTokenizerConfig"/>.</summary>
    public static ChatTemplate FromTokenizerConfigFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer config not found: {path}", path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(Utf8Text.ReadAllText(path)); }
        catch (JsonException e) { throw new DataFormatException(path, $"invalid JSON ({e.Message})", (e.LineNumber ?? 0) + 1, e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DataFormatException(path, "tokenizer config must be a JSON object");
            string? template = null;
            if (root.TryGetProperty("chat_template", out var ct))
            {
                template = ct.ValueKind switch
                {
                    JsonValueKind.String => ct.GetString(),
                    JsonValueKind.Null => null,
                    // Several named templates: use the "default" one, as transformers does.
                    JsonValueKind.Array => ct.EnumerateArray()
                        .Where(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String && n.GetString() == "default")
                        .Select(e => e.TryGetProperty("template", out var x) && x.ValueKind == JsonValueKind.String ? x.GetString() : null)
                        .FirstOrDefault()
                        ?? throw new DataFormatException(path, "chat_template is a list without a \"default\" entry"),
                    _ => throw new DataFormatException(path, $"chat_template must be a string, found {JsonRecords.Describe(ct.ValueKind)}"),
                };
            }
            try
            {
                return FromTokenizerConfig(template, TokenText(root, "bos_token", path), TokenText(root, "eos_token", path));
            }
            catch (NotSupportedException e)
            {
                throw new NotSupportedException($"{path}: {e.Message}", e);
            }
        }
    }

    // Special tokens are stored either as a string or as an AddedToken object {"content": "..."}.
    private static string? TokenText(JsonElement root, string key, string path)
    {
        if (!root.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Null => null,
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw new DataFormatException(path, $"{key} must be a string or an object with \"content\""),
        };
    }

    private static NotSupportedException Unsupported(string why) =>
        new($"PeftLab cannot render this chat template: {why}. Choose a built-in template by name instead ({Names}).");

    [GeneratedRegex(@"<\|im_start\|>system\n([^'""{}<]*)<\|im_end\|>")]
    private static partial Regex ChatMlDefaultSystem();

    [GeneratedRegex(@"'<\|user\|>\n'\s*\+\s*message\[['""]content['""]\]\s*\+\s*'\n'")]
    private static partial Regex TuluUserTurn();

    [GeneratedRegex(@"'<\|assistant\|>\n'\s*\+\s*message\[['""]content['""]\]\s*\+\s*eos_token")]
    private static partial Regex TuluAssistantTurn();
}
