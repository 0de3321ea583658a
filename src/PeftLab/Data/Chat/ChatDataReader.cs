using System.Text.Json;

namespace PeftLab.Data.Chat;

/// <summary>
/// Reads chat / open-instruction data (JSON Lines or one JSON array) into <see cref="Conversation"/>s. Every malformed
/// record fails with a <see cref="DataFormatException"/> naming the file and line; nothing is skipped.
/// </summary>
public static class ChatDataReader
{
    /// <summary>Reads <paramref name="path"/> in the given (or detected) format.</summary>
    public static ChatDataset ReadFile(string path, ChatDataFormat format = ChatDataFormat.Auto)
    {
        ArgumentNullException.ThrowIfNull(path);
        var records = JsonRecords.Read(path);
        if (records.Count == 0) throw new DataFormatException(path, "file contains no records");
        if (format == ChatDataFormat.Auto) format = Detect(path, records[0]);
        Func<JsonRecord, string, Conversation> convert = format switch
        {
            ChatDataFormat.Messages => FromMessages,
            ChatDataFormat.Alpaca => FromAlpaca,
            ChatDataFormat.ShareGpt => FromShareGpt,
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown chat data format"),
        };
        var list = new List<Conversation>(records.Count);
        foreach (var r in records)
        {
            var c = convert(r, path);
            Validate(c, path, r.Line);
            list.Add(c);
        }
        return new ChatDataset(path, format, list);
    }

    /// <summary>JSONL with a "messages" list per line.</summary>
    public static ChatDataset ReadMessages(string path) => ReadFile(path, ChatDataFormat.Messages);

    /// <summary>Alpaca records (JSON array or JSONL).</summary>
    public static ChatDataset ReadAlpaca(string path) => ReadFile(path, ChatDataFormat.Alpaca);

    /// <summary>ShareGPT records (JSON array or JSONL).</summary>
    public static ChatDataset ReadShareGpt(string path) => ReadFile(path, ChatDataFormat.ShareGpt);

    private static ChatDataFormat Detect(string path, JsonRecord first)
    {
        if (first.Element.ValueKind == JsonValueKind.Object)
        {
            if (first.Element.TryGetProperty("messages", out _)) return ChatDataFormat.Messages;
            if (first.Element.TryGetProperty("conversations", out _)) return ChatDataFormat.ShareGpt;
            if (first.Element.TryGetProperty("instruction", out _)) return ChatDataFormat.Alpaca;
        }
        throw new DataFormatException(path,
            "cannot tell the data format from the first record: expected a \"messages\" (chat), \"conversations\" (ShareGPT) or \"instruction\" (Alpaca) key",
            first.Line);
    }

    private static JsonElement Object(JsonRecord r, string path)
    {
        if (r.Element.ValueKind != JsonValueKind.Object)
            throw new DataFormatException(path, $"each record must be a JSON object, found {JsonRecords.Describe(r.Element.ValueKind)}", r.Line);
        return r.Element;
    }

    private static string? OptionalString(JsonElement obj, string key, string where, string path, long line)
    {
        if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String)
            throw new DataFormatException(path, $"{where}\"{key}\" must be a string, found {JsonRecords.Describe(v.ValueKind)}", line);
        return v.GetString();
    }

    private static string RequiredString(JsonElement obj, string key, string where, string path, long line) =>
        OptionalString(obj, key, where, path, line)
        ?? throw new DataFormatException(path, $"{where}missing string \"{key}\"", line);

    private static string? Id(JsonElement obj) =>
        obj.TryGetProperty("id", out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Number => v.GetRawText(),
            _ => null,
        } : null;

    private static JsonElement List(JsonElement obj, string key, string path, long line)
    {
        if (!obj.TryGetProperty(key, out var v))
            throw new DataFormatException(path, $"missing \"{key}\" list", line);
        if (v.ValueKind != JsonValueKind.Array)
            throw new DataFormatException(path, $"\"{key}\" must be a list, found {JsonRecords.Describe(v.ValueKind)}", line);
        return v;
    }

    private static Conversation FromMessages(JsonRecord r, string path)
    {
        var obj = Object(r, path);
        var msgs = new List<ChatMessage>();
        int i = 0;
        foreach (var m in List(obj, "messages", path, r.Line).EnumerateArray())
        {
            var where = $"messages[{i}]: ";
            if (m.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(path, $"{where}must be an object, found {JsonRecords.Describe(m.ValueKind)}", r.Line);
            var role = RequiredString(m, "role", where, path, r.Line);
            var parsed = role switch
            {
                "system" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                _ => throw new DataFormatException(path, $"{where}unknown role \"{role}\"; expected \"system\", \"user\" or \"assistant\"", r.Line),
            };
            msgs.Add(new ChatMessage(parsed, RequiredString(m, "content", where, path, r.Line)));
            i++;
        }
        return new Conversation(msgs) { Origin = $"{path}:{r.Line}", Id = Id(obj) };
    }

    private static Conversation FromAlpaca(JsonRecord r, string path)
    {
        var obj = Object(r, path);
        var instruction = RequiredString(obj, "instruction", "", path, r.Line);
        if (PyText.Strip(instruction).Length == 0) throw new DataFormatException(path, "\"instruction\" is empty", r.Line);
        var input = OptionalString(obj, "input", "", path, r.Line) ?? "";
        var output = RequiredString(obj, "output", "", path, r.Line);
        var system = OptionalString(obj, "system", "", path, r.Line);
        // Same joining as the open-instruct conversion of Alpaca-style data: instruction, blank line, input.
        var user = PyText.Strip(input).Length == 0 ? instruction : instruction + "\n\n" + input;
        var msgs = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(system)) msgs.Add(new ChatMessage(ChatRole.System, system));
        msgs.Add(new ChatMessage(ChatRole.User, user));
        msgs.Add(new ChatMessage(ChatRole.Assistant, output));
        return new Conversation(msgs) { Origin = $"{path}:{r.Line}", Id = Id(obj) };
    }

    private static Conversation FromShareGpt(JsonRecord r, string path)
    {
        var obj = Object(r, path);
        var msgs = new List<ChatMessage>();
        var system = OptionalString(obj, "system", "", path, r.Line);
        if (!string.IsNullOrEmpty(system)) msgs.Add(new ChatMessage(ChatRole.System, system));
        int i = 0;
        foreach (var m in List(obj, "conversations", path, r.Line).EnumerateArray())
        {
            var where = $"conversations[{i}]: ";
            if (m.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(path, $"{where}must be an object, found {JsonRecords.Describe(m.ValueKind)}", r.Line);
            var from = RequiredString(m, "from", where, path, r.Line);
            var role = from switch
            {
                "human" or "user" => ChatRole.User,
                "gpt" or "assistant" => ChatRole.Assistant,
                "system" => ChatRole.System,
                _ => throw new DataFormatException(path,
                    $"{where}unknown speaker \"from\": \"{from}\"; expected \"human\", \"gpt\" or \"system\" (or \"user\"/\"assistant\")", r.Line),
            };
            msgs.Add(new ChatMessage(role, RequiredString(m, "value", where, path, r.Line)));
            i++;
        }
        return new Conversation(msgs) { Origin = $"{path}:{r.Line}", Id = Id(obj) };
    }

    private static void Validate(Conversation c, string path, long line)
    {
        if (c.Messages.Count == 0)
            throw new DataFormatException(path, "empty conversation (no messages)", line);
        if (!c.Messages.Any(m => m.Role == ChatRole.Assistant))
            throw new DataFormatException(path, "conversation has no assistant message, so there is nothing to train on", line);
        if (!c.Messages.Any(m => m.Role == ChatRole.Assistant && PyText.Strip(m.Content).Length > 0))
            throw new DataFormatException(path, "every assistant message in the conversation is empty, so there is nothing to train on", line);
    }
}
