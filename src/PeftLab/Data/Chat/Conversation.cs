namespace PeftLab.Data.Chat;

/// <summary>Who speaks a chat message.</summary>
public enum ChatRole
{
    System,
    User,
    Assistant,
}

/// <summary>One chat turn.</summary>
public sealed record ChatMessage(ChatRole Role, string Content);

/// <summary>
/// A conversation to train on: at least one message and at least one non-empty assistant reply (the readers enforce
/// this). <see cref="Origin"/> says where it came from ("file:line") for messages.
/// </summary>
public sealed record Conversation(IReadOnlyList<ChatMessage> Messages)
{
    /// <summary>"path:line" of the record, when read from a file.</summary>
    public string? Origin { get; init; }

    /// <summary>The record's "id" field, when it has one.</summary>
    public string? Id { get; init; }
}

/// <summary>Open-instruction file layouts PeftLab reads.</summary>
public enum ChatDataFormat
{
    /// <summary>Decide from the first record's keys: "messages", "conversations" or "instruction".</summary>
    Auto,

    /// <summary><c>{"messages": [{"role": "system|user|assistant", "content": "..."}]}</c> per record.</summary>
    Messages,

    /// <summary><c>{"instruction": "...", "input": "...", "output": "..."}</c> per record (Alpaca).</summary>
    Alpaca,

    /// <summary><c>{"conversations": [{"from": "human|gpt|system", "value": "..."}]}</c> per record (ShareGPT).</summary>
    ShareGpt,
}

/// <summary>Conversations read from one file, plus the format that was used.</summary>
public sealed record ChatDataset(string Path, ChatDataFormat Format, IReadOnlyList<Conversation> Conversations);
