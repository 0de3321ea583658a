using System.Diagnostics;
using System.Text.Json;
using PeftLab.Synthetic;

namespace PeftLab.Tests.Synthetic;

/// <summary>Writes the default suite twice (the slow part) and shares it across the suite tests.</summary>
public sealed class SyntheticSuiteFixture : IDisposable
{
    public SyntheticSuiteFixture()
    {
        Options = new SyntheticSuiteOptions();
        DirA = TestPaths.NewTempDir("peftlab-synth-a");
        DirB = TestPaths.NewTempDir("peftlab-synth-b");
        var sw = Stopwatch.StartNew();
        Infos = SyntheticSuite.Write(DirA, Options);
        FirstWrite = sw.Elapsed;
        sw.Restart();
        SyntheticSuite.Write(DirB, Options);
        SecondWrite = sw.Elapsed;
        Tasks = Infos.ToDictionary(i => i.Name, i => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(DirA, "tasks", i.Name + ".json"))));
    }

    public SyntheticSuiteOptions Options { get; }
    public string DirA { get; }
    public string DirB { get; }
    public IReadOnlyList<SyntheticTaskInfo> Infos { get; }
    public TimeSpan FirstWrite { get; }
    public TimeSpan SecondWrite { get; }
    public IReadOnlyDictionary<string, JsonDocument> Tasks { get; }

    /// <summary>The parsed task file whose name is "synthNNN_" + <paramref name="slug"/>.</summary>
    public JsonElement Task(string slug)
    {
        var info = Infos.Single(i => i.Name[(i.Name.IndexOf('_') + 1)..] == slug);
        return Tasks[info.Name].RootElement;
    }

    /// <summary>(input, canonical output, all outputs) of every instance of a task.</summary>
    public IEnumerable<(string Input, string Output, string[] All)> Instances(string slug) =>
        Task(slug).GetProperty("Instances").EnumerateArray().Select(i =>
        {
            var outs = i.GetProperty("output").EnumerateArray().Select(o => o.GetString()!).ToArray();
            return (i.GetProperty("input").GetString()!, outs[0], outs);
        });

    public void Dispose()
    {
        foreach (var d in Tasks.Values) d.Dispose();
        foreach (var dir in new[] { DirA, DirB })
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Lets several test classes share one written suite.</summary>
[CollectionDefinition(Name)]
public sealed class SyntheticSuiteCollection : ICollectionFixture<SyntheticSuiteFixture>
{
    public const string Name = "synthetic-suite";
}
