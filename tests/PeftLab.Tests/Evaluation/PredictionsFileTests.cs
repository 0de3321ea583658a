using PeftLab.Evaluation;

namespace PeftLab.Tests.Evaluation;

public sealed class PredictionsFileTests
{
    private static string Write(string content)
    {
        var path = Path.Combine(TestPaths.NewTempDir("peftlab-preds"), "predictions.jsonl");
        File.WriteAllText(path, content);
        return path;
    }

    private static string Fails(string content)
    {
        var path = Write(content);
        var e = Assert.Throws<InvalidDataException>(() => PredictionsFile.Read(path));
        Assert.Contains(path, e.Message);
        return e.Message;
    }

    [Fact]
    public void ReadsIdsAndPredictions()
    {
        var path = Write("{\"id\": \"t1-a\", \"prediction\": \"Yes\"}\n\n{\"id\": \"t1-b\", \"prediction\": \"caf\\u00e9 \\\"x\\\"\", \"task\": \"t1\"}\r\n{\"id\":\"t1-c\",\"prediction\":\"\"}");
        var p = PredictionsFile.Read(path);
        Assert.Equal(3, p.Count);
        Assert.Equal("Yes", p["t1-a"]);
        Assert.Equal("café \"x\"", p["t1-b"]);
        Assert.Equal("", p["t1-c"]);
    }

    [Fact]
    public void BadJsonNamesLine() =>
        Assert.Contains("line 2: invalid JSON", Fails("{\"id\": \"a\", \"prediction\": \"x\"}\n{\"id\": \"b\", \"prediction\": }\n"));

    [Fact]
    public void NonObjectNamesLine() =>
        Assert.Contains("line 1: expected a JSON object with \"id\" and \"prediction\", got an array", Fails("[\"a\", \"x\"]\n"));

    [Fact]
    public void MissingIdNamesLine() => Assert.Contains("line 1: missing \"id\"", Fails("{\"prediction\": \"x\"}\n"));

    [Fact]
    public void NonStringIdNamesLine() => Assert.Contains("line 1: \"id\" must be a string, got a number", Fails("{\"id\": 7, \"prediction\": \"x\"}\n"));

    [Fact]
    public void MissingPredictionNamesIdAndLine() =>
        Assert.Contains("line 1: missing \"prediction\" for id 'a'", Fails("{\"id\": \"a\"}\n"));

    [Theory]
    [InlineData("{\"id\": \"a\", \"prediction\": 3}", "a number")]
    [InlineData("{\"id\": \"a\", \"prediction\": null}", "null")]
    [InlineData("{\"id\": \"a\", \"prediction\": [\"x\"]}", "an array")]
    public void NonStringPredictionNamesIdAndLine(string line, string kind) =>
        Assert.Contains($"line 2: \"prediction\" for id 'a' must be a string, got {kind}", Fails("{\"id\": \"z\", \"prediction\": \"ok\"}\n" + line + "\n"));

    [Fact]
    public void DuplicateIdNamesBothLines() =>
        Assert.Contains("line 3: duplicate id 'a' (first seen on line 1)",
            Fails("{\"id\": \"a\", \"prediction\": \"x\"}\n{\"id\": \"b\", \"prediction\": \"y\"}\n{\"id\": \"a\", \"prediction\": \"z\"}\n"));

    [Fact]
    public void MissingFileIsNamed()
    {
        var path = Path.Combine(TestPaths.NewTempDir("peftlab-preds"), "absent.jsonl");
        var e = Assert.Throws<FileNotFoundException>(() => PredictionsFile.Read(path));
        Assert.Contains(path, e.Message);
    }
}
