using PeftLab.Data;
using PeftLab.Data.Chat;

namespace PeftLab.Tests.Data;

public sealed class ChatDataReaderTests
{
    private static string Write(string name, string text)
    {
        var path = Path.Combine(TestPaths.NewTempDir(), name);
        File.WriteAllText(path, text);
        return path;
    }

    private static ChatMessage M(ChatRole r, string c) => new(r, c);

    [Fact]
    public void MessagesJsonlMultiTurn()
    {
        var path = Write("chat.jsonl",
            "{\"id\": \"a\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"Bye\"}, {\"role\": \"assistant\", \"content\": \"Bye.\"}]}\n" +
            "\n" +
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n");
        var ds = ChatDataReader.ReadFile(path);
        Assert.Equal(ChatDataFormat.Messages, ds.Format);
        Assert.Equal(2, ds.Conversations.Count);
        var c = ds.Conversations[0];
        Assert.Equal([M(ChatRole.System, "Be brief."), M(ChatRole.User, "Hi"), M(ChatRole.Assistant, "Hello!"), M(ChatRole.User, "Bye"), M(ChatRole.Assistant, "Bye.")], c.Messages);
        Assert.Equal("a", c.Id);
        Assert.Equal($"{path}:1", c.Origin);
        Assert.Equal($"{path}:3", ds.Conversations[1].Origin);
    }

    [Fact]
    public void AlpacaArrayAndJsonl()
    {
        var arr = Write("alpaca.json", """
            [
              {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
              {"instruction": "Say hi.", "input": "", "output": "Hi!"}
            ]
            """);
        var ds = ChatDataReader.ReadAlpaca(arr);
        Assert.Equal([M(ChatRole.User, "Add the numbers.\n\n2 and 3"), M(ChatRole.Assistant, "5")], ds.Conversations[0].Messages);
        Assert.Equal([M(ChatRole.User, "Say hi."), M(ChatRole.Assistant, "Hi!")], ds.Conversations[1].Messages);
        Assert.Equal($"{arr}:2", ds.Conversations[0].Origin);
        Assert.Equal($"{arr}:3", ds.Conversations[1].Origin);

        var jsonl = Write("alpaca.jsonl", "{\"instruction\": \"I\", \"output\": \"O\", \"system\": \"S\"}\n");
        var one = Assert.Single(ChatDataReader.ReadFile(jsonl).Conversations);
        Assert.Equal([M(ChatRole.System, "S"), M(ChatRole.User, "I"), M(ChatRole.Assistant, "O")], one.Messages);
    }

    [Fact]
    public void ShareGpt()
    {
        var path = Write("sharegpt.json", """
            [{"id": 7, "conversations": [
                {"from": "system", "value": "You help."},
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello"},
                {"from": "human", "value": "More"},
                {"from": "gpt", "value": "Sure"}]}]
            """);
        var ds = ChatDataReader.ReadFile(path);
        Assert.Equal(ChatDataFormat.ShareGpt, ds.Format);
        var c = Assert.Single(ds.Conversations);
        Assert.Equal("7", c.Id);
        Assert.Equal([M(ChatRole.System, "You help."), M(ChatRole.User, "Hi"), M(ChatRole.Assistant, "Hello"), M(ChatRole.User, "More"), M(ChatRole.Assistant, "Sure")], c.Messages);
    }

    private static DataFormatException Fails(string name, string text, ChatDataFormat format = ChatDataFormat.Auto)
    {
        var path = Write(name, text);
        var e = Assert.Throws<DataFormatException>(() => ChatDataReader.ReadFile(path, format));
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path, e.Message);
        return e;
    }

    [Fact]
    public void UnknownRolesNameFileAndLine()
    {
        var e = Fails("bad.jsonl",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n" +
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"tool\", \"content\": \"b\"}]}\n");
        Assert.Equal(2, e.Line);
        Assert.Contains("bad.jsonl:2: messages[1]: unknown role \"tool\"; expected \"system\", \"user\" or \"assistant\"", e.Message);

        e = Fails("bad_sharegpt.json", "[\n {\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, {\"from\": \"gpt\", \"value\": \"b\"}]},\n {\"conversations\": [{\"from\": \"bing\", \"value\": \"a\"}]}\n]");
        Assert.Equal(3, e.Line);
        Assert.Contains("conversations[0]: unknown speaker \"from\": \"bing\"", e.Message);
    }

    [Fact]
    public void BadJsonEmptyAndAssistantlessConversations()
    {
        var e = Fails("emptyconv.jsonl", "{\"messages\": []}\n");
        Assert.Equal(1, e.Line);
        Assert.Contains("empty conversation", e.Message);

        e = Fails("broken2.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n{\"messages\": [\n", ChatDataFormat.Messages);
        Assert.Equal(2, e.Line);
        Assert.Contains("invalid JSON", e.Message);
        Assert.Contains("one complete JSON object per line", e.Message);

        e = Fails("broken.json", "[\n {\"instruction\": \"a\", \"output\": \"b\"},\n {\"instruction\": \"a\" \"output\": \"b\"}\n]", ChatDataFormat.Alpaca);
        Assert.Equal(3, e.Line);
        Assert.Contains("invalid JSON", e.Message);

        e = Fails("noassistant.jsonl", "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"a\"}]}\n");
        Assert.Contains("noassistant.jsonl:1: conversation has no assistant message", e.Message);

        e = Fails("emptyreply.json", "[{\"instruction\": \"Do.\", \"output\": \"  \"}]");
        Assert.Contains("every assistant message in the conversation is empty", e.Message);

        e = Fails("missing.json", "[{\"instruction\": \"Do.\"}]", ChatDataFormat.Alpaca);
        Assert.Contains("missing.json:1: missing string \"output\"", e.Message);

        e = Fails("nonstring.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}");
        Assert.Contains("messages[0]: \"content\" must be a string, found a number", e.Message);

        e = Fails("what.jsonl", "{\"prompt\": \"x\"}");
        Assert.Contains("cannot tell the data format", e.Message);

        e = Fails("empty.jsonl", "\n\n");
        Assert.Contains("file is empty", e.Message);
    }
}
