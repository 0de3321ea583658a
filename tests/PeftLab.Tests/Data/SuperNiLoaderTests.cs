using PeftLab.Data;
using PeftLab.Data.SuperNi;

namespace PeftLab.Tests.Data;

public sealed class SuperNiLoaderTests
{
    internal static readonly Lazy<TaskCollection> Subset = new(() => TaskLoader.LoadDirectory(TestPaths.SuperNi));

    [Fact]
    public void SharedSubsetLoadsWithOfficialSplits()
    {
        var c = Subset.Value;
        Assert.Equal(74, c.Tasks.Count);
        Assert.Equal(60, c.GetSplit("train").Count);
        Assert.Equal(14, c.GetSplit("test").Count);
        Assert.Equal(7171, c.GetSplit("train").Sum(t => t.Instances.Count));
        Assert.All(c.GetSplit("test"), t => Assert.Equal(100, t.Instances.Count));
        Assert.Equal(0, c.Report.SkippedInstanceCount);
        Assert.Empty(c.Report.Warnings);
        Assert.False(c.HasSplit("validation"));

        var t1146 = c.GetTask("task1146_country_capital");
        Assert.Equal("Misc.", t1146.Category);
        Assert.Equal(120, t1146.Instances.Count);
        Assert.Equal(["English"], t1146.InputLanguage);
        Assert.NotEmpty(t1146.PositiveExamples);
        Assert.All(c.Tasks, t => Assert.All(t.Instances, i => Assert.NotEmpty(i.Outputs)));
        Assert.Equal("Textual Entailment", c.GetTask("task1612_sick_label_classification").Category);
    }

    [Fact]
    public void UnknownOrMissingSplitNamesAreClear()
    {
        var c = Subset.Value;
        var e = Assert.Throws<ArgumentException>(() => c.GetSplit("dev"));
        Assert.Contains("'dev'", e.Message);
        Assert.Contains("train, validation, test", e.Message);
        e = Assert.Throws<ArgumentException>(() => c.GetSplit("validation"));
        Assert.Contains("validation_tasks.txt was not found", e.Message);
        Assert.Contains("train, test", e.Message);
    }

    private static string TaskJson(string definition = "[\"Answer the question\"]", string instances =
        "[{\"id\": \"t-1\", \"input\": \"a\", \"output\": [\"b\"]}, {\"id\": \"t-2\", \"input\": \"c\", \"output\": [\"d\", \"e\"]}]") =>
        $$"""
        {
            "Categories": ["Question Answering"],
            "Definition": {{definition}},
            "Positive Examples": [{"input": "x", "output": "y", "explanation": "z"}],
            "Negative Examples": [],
            "Instances": {{instances}}
        }
        """;

    private static string WriteDir(params (string Name, string Json)[] tasks)
    {
        var dir = TestPaths.NewTempDir();
        Directory.CreateDirectory(Path.Combine(dir, "tasks"));
        foreach (var (name, json) in tasks) File.WriteAllText(Path.Combine(dir, "tasks", name + ".json"), json);
        return dir;
    }

    private static DataFormatException LoadFails(string json, string name = "task9_bad")
    {
        var dir = WriteDir((name, json));
        return Assert.Throws<DataFormatException>(() => TaskLoader.LoadDirectory(dir));
    }

    [Fact]
    public void ValidTempTaskLoadsFromFlatFolderWithoutSplits()
    {
        var dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "task7_ok.json"), TaskJson());
        var c = TaskLoader.LoadDirectory(dir);
        var t = Assert.Single(c.Tasks);
        Assert.Equal("task7_ok", t.Name);
        Assert.Equal(["d", "e"], t.Instances[1].Outputs);
        Assert.Equal("z", t.PositiveExamples[0].Explanation);
        Assert.Contains(c.Report.Warnings, w => w.Contains("no splits folder"));
        Assert.Throws<ArgumentException>(() => c.GetSplit("train"));
    }

    [Fact]
    public void BadJsonNamesFileAndLine()
    {
        var e = LoadFails("{\n  \"Definition\": [\"x\"],\n  \"Instances\": [,]\n}");
        Assert.EndsWith("task9_bad.json", e.FilePath);
        Assert.Equal(3, e.Line);
        Assert.Contains("task9_bad.json:3: invalid JSON", e.Message);
    }

    [Fact]
    public void MissingOrEmptyDefinitionIsAnError()
    {
        var e = LoadFails("{\"Instances\": [{\"id\": \"t-1\", \"input\": \"a\", \"output\": [\"b\"]}]}");
        Assert.Contains("task9_bad.json", e.Message);
        Assert.Contains("missing required key \"Definition\"", e.Message);
        e = LoadFails(TaskJson(definition: "[]"));
        Assert.Contains("\"Definition\" is empty", e.Message);
        e = LoadFails(TaskJson(definition: "[\"   \"]"));
        Assert.Contains("\"Definition\" is empty", e.Message);
        e = LoadFails(TaskJson(definition: "[3]"));
        Assert.Contains("\"Definition\"[0] must be a string, found a number", e.Message);
    }

    [Fact]
    public void EmptyInstancesIsAnError()
    {
        var e = LoadFails(TaskJson(instances: "[]"));
        Assert.Contains("task9_bad.json: \"Instances\" is empty", e.Message);
    }

    [Fact]
    public void NonStringOutputNamesInstanceIndexAndId()
    {
        var e = LoadFails(TaskJson(instances: "[{\"id\": \"t-1\", \"input\": \"a\", \"output\": [\"b\"]}, {\"id\": \"t-2\", \"input\": \"c\", \"output\": [\"d\", 5]}]"));
        Assert.Contains("task9_bad.json", e.Message);
        Assert.Contains("Instances[1] (id t-2).output[1] must be a string, found a number", e.Message);
        e = LoadFails(TaskJson(instances: "[{\"id\": \"t-1\", \"input\": \"a\", \"output\": \"b\"}]"));
        Assert.Contains("Instances[0] (id t-1).output must be a list of strings, found a string", e.Message);
        e = LoadFails(TaskJson(instances: "[{\"id\": \"t-1\", \"input\": \"a\", \"output\": [\"b\"]}, {\"id\": \"t-1\", \"input\": \"c\", \"output\": [\"d\"]}]"));
        Assert.Contains("Instances[1] (id t-1): duplicate instance id", e.Message);
    }

    [Fact]
    public void EmptyOutputListIsSkippedAndReported()
    {
        var dir = WriteDir(("task5_x", TaskJson(instances:
            "[{\"id\": \"t-1\", \"input\": \"a\", \"output\": []}, {\"id\": \"t-2\", \"input\": \"c\", \"output\": [\"d\"]}]")));
        var c = TaskLoader.LoadDirectory(dir);
        Assert.Equal(1, c.Report.SkippedInstanceCount);
        Assert.Equal(1, c.Report.InstanceCount);
        Assert.Equal("t-2", Assert.Single(c.GetTask("task5_x").Instances).Id);
        Assert.Contains(c.Report.Warnings, w => w.Contains("task5_x.json") && w.Contains("Instances[0] (id t-1) skipped: empty output list"));

        var e = LoadFails(TaskJson(instances: "[{\"id\": \"t-1\", \"input\": \"a\", \"output\": []}]"));
        Assert.Contains("none of the 1 instances has a reference output", e.Message);
    }

    [Fact]
    public void SplitFileNamingMissingTaskIsAnError()
    {
        var dir = WriteDir(("task1_a", TaskJson()), ("task2_b", TaskJson()));
        Directory.CreateDirectory(Path.Combine(dir, "splits"));
        File.WriteAllText(Path.Combine(dir, "splits", "train_tasks.txt"), "task1_a\ntask3_missing\n");
        var e = Assert.Throws<DataFormatException>(() => TaskLoader.LoadDirectory(dir));
        Assert.EndsWith("train_tasks.txt", e.FilePath);
        Assert.Equal(2, e.Line);
        Assert.Contains("task 'task3_missing' is listed in the train split but there is no task file task3_missing.json", e.Message);
    }

    [Fact]
    public void OverlappingSplitsAreAnErrorAndUnassignedTasksAWarning()
    {
        var dir = WriteDir(("task1_a", TaskJson()), ("task2_b", TaskJson()), ("task3_c", TaskJson()));
        Directory.CreateDirectory(Path.Combine(dir, "splits"));
        File.WriteAllText(Path.Combine(dir, "splits", "train_tasks.txt"), "task1_a\n");
        File.WriteAllText(Path.Combine(dir, "splits", "test_tasks.txt"), "task2_b\n");
        File.WriteAllText(Path.Combine(dir, "splits", "excluded_tasks.txt"), "whatever\n");
        var c = TaskLoader.LoadDirectory(dir);
        Assert.Contains(c.Report.Warnings, w => w.Contains("in no split") && w.Contains("task3_c"));
        Assert.Contains(c.Report.Warnings, w => w.Contains("excluded_tasks.txt: ignored"));

        File.WriteAllText(Path.Combine(dir, "splits", "test_tasks.txt"), "task2_b\ntask1_a\n");
        var e = Assert.Throws<DataFormatException>(() => TaskLoader.LoadDirectory(dir));
        Assert.Contains("test_tasks.txt:2: task 'task1_a' is also in the train split", e.Message);
    }

    [Fact]
    public void StringDefinitionOfOlderFilesIsAccepted()
    {
        var warnings = new List<string>();
        var t = TaskLoader.Parse(TaskJson(definition: "\"Do it\""), "task1_old", "mem.json", warnings, out _);
        Assert.Equal(["Do it"], t.Definition);
        Assert.Empty(warnings);
        TaskLoader.Parse(TaskJson().Replace("\"Categories\"", "\"Colour\""), "task1_old", "mem.json", warnings, out _);
        Assert.Contains(warnings, w => w.Contains("unknown key \"Colour\" ignored"));
        Assert.Contains(warnings, w => w.Contains("no \"Categories\""));
    }
}
