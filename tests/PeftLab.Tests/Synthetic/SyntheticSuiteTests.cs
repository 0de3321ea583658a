using System.Text;
using System.Text.Json;
using PeftLab.Synthetic;

namespace PeftLab.Tests.Synthetic;

[Collection(SyntheticSuiteCollection.Name)]
public sealed class SyntheticSuiteTests(SyntheticSuiteFixture fx)
{
    private static readonly string[] StandardKeys =
    [
        "Contributors", "Source", "URL", "Categories", "Reasoning", "Definition", "Input_language", "Output_language",
        "Instruction_language", "Domains", "Positive Examples", "Negative Examples", "Instances", "Instance License",
    ];

    [Fact]
    public void Suite_HasAtLeast120TasksIn10Categories()
    {
        var infos = SyntheticSuite.Describe(new SyntheticSuiteOptions());
        Assert.True(infos.Count >= 120, $"only {infos.Count} tasks");
        Assert.True(infos.Select(i => i.Category).Distinct().Count() >= 10);
        Assert.True(infos.Count(i => i.Split == TaskSplit.Train) >= 100);
        Assert.True(infos.Count(i => i.Split == TaskSplit.Test) >= 20);
        Assert.Equal(infos.Count, infos.Select(i => i.Name).Distinct(StringComparer.Ordinal).Count());
        Assert.All(infos, i => Assert.Matches(@"^synth\d{3}_[a-z0-9_]+$", i.Name));
        // Every category has training tasks; the test split spans many categories, including the hard ones.
        Assert.All(Enum.GetValues<SyntheticCategory>(), c => Assert.Contains(infos, i => i.Category == c && i.Split == TaskSplit.Train));
        var testCats = infos.Where(i => i.Split == TaskSplit.Test).Select(i => i.Category).ToHashSet();
        Assert.True(testCats.Count >= 8, $"test tasks cover only {testCats.Count} categories");
        Assert.Contains(SyntheticCategory.MultiStepReasoning, testCats);
        Assert.Contains(SyntheticCategory.LongFormGeneration, testCats);
    }

    [Fact]
    public void Categories_KeepTheirTrainTasksAndOnlyTestTasksWhosePrimitivesTheyTrain()
    {
        SyntheticCategory[] kept = [SyntheticCategory.RuleClassification, SyntheticCategory.Extraction, SyntheticCategory.Counting, SyntheticCategory.ListOperations];
        var all = SyntheticSuite.Describe(new SyntheticSuiteOptions());
        var some = SyntheticSuite.Describe(new SyntheticSuiteOptions { Categories = kept });
        Assert.All(some, t => Assert.Contains(t.Category, kept));
        Assert.Equal(all.Where(t => t.Split == TaskSplit.Train && kept.Contains(t.Category)).Select(t => t.Name),
            some.Where(t => t.Split == TaskSplit.Train).Select(t => t.Name));
        var trained = some.Where(t => t.Split == TaskSplit.Train).SelectMany(t => t.Primitives).ToHashSet(StringComparer.Ordinal);
        var tests = some.Where(t => t.Split == TaskSplit.Test).ToArray();
        Assert.NotEmpty(tests);
        Assert.All(tests, t => Assert.All(t.Primitives, p => Assert.Contains(p, trained)));
        // a kept-category test task that needs a primitive only another category trains is dropped, not kept untrained
        var dropped = all.Where(t => t.Split == TaskSplit.Test && kept.Contains(t.Category) && !t.Primitives.All(trained.Contains)).Select(t => t.Name).ToArray();
        Assert.NotEmpty(dropped);     // e.g. sum_even_or_odd: only Arithmetic trains sum
        Assert.DoesNotContain(some, t => dropped.Contains(t.Name));
        // definitions and order do not change with the filter
        Assert.Equal(some.Select(t => t.Definition), all.Where(t => some.Any(s => s.Name == t.Name)).Select(t => t.Definition));
    }

    [Fact]
    public void DataSynth_WritesOnlyTheGivenCategories()
    {
        var dir = TestPaths.NewTempDir("synth-cats");
        var stdout = CliRunner.Ok("data", "synth", "--out", dir, "--instances", "2", "--categories", "list_operations, comparison_sorting");
        var rows = File.ReadAllLines(Path.Combine(dir, "splits", "categories.tsv")).Skip(1).Select(l => l.Split('\t')).ToArray();
        Assert.Equal(["Comparison and Sorting", "List Operations"], rows.Select(r => r[1]).Distinct().Order());
        Assert.Equal(rows.Length, Directory.GetFiles(Path.Combine(dir, "tasks"), "*.json").Length);
        Assert.Contains($"wrote {rows.Length} tasks", stdout);
        Assert.Contains(rows, r => r[3] == "test");
    }

    [Fact]
    public void Categories_ThatKeepNoTestTask_AreRefusedByName()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticSuite.Describe(new SyntheticSuiteOptions { Categories = [SyntheticCategory.Counting] }));
        Assert.Contains("Categories keeps no test task", e.Message);
        Assert.Equal("Categories", e.ParamName);
    }

    [Fact]
    public void Describe_MatchesWrittenFilesAndDoesNotDependOnSeed()
    {
        var other = SyntheticSuite.Describe(new SyntheticSuiteOptions(Seed: 99, InstancesPerTask: 5));
        Assert.Equal(fx.Infos.Select(i => (i.Name, i.Category, string.Join(",", i.Primitives), i.Split, i.Definition)),
            other.Select(i => (i.Name, i.Category, string.Join(",", i.Primitives), i.Split, i.Definition)));
        var files = Directory.GetFiles(Path.Combine(fx.DirA, "tasks"), "*.json").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal);
        Assert.Equal(fx.Infos.Select(i => i.Name).Order(StringComparer.Ordinal), files);
    }

    [Fact]
    public void EveryTaskFile_FollowsTheSuperNiSchema()
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var info in fx.Infos)
        {
            var path = Path.Combine(fx.DirA, "tasks", info.Name + ".json");
            var bytes = File.ReadAllBytes(path);
            Assert.False(bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF, $"{info.Name}: BOM");
            Assert.All(bytes, b => Assert.True(b < 0x80 && b != (byte)'\r' && b != (byte)'\t', $"{info.Name}: non-ASCII, CR or tab byte {b}"));
            var text = Encoding.UTF8.GetString(bytes);
            Assert.StartsWith("{\n    \"Contributors\": [\n        \"", text);
            Assert.EndsWith("\n}", text);

            var root = fx.Tasks[info.Name].RootElement;
            Assert.Equal(StandardKeys.Append("Primitives"), root.EnumerateObject().Select(p => p.Name));
            foreach (var key in StandardKeys.Where(k => k is not ("Positive Examples" or "Negative Examples" or "Instances")))
                Assert.All(root.GetProperty(key).EnumerateArray(), e => Assert.Equal(JsonValueKind.String, e.ValueKind));
            Assert.Equal(info.CategoryName, root.GetProperty("Categories")[0].GetString());
            Assert.Equal(["English"], root.GetProperty("Input_language").EnumerateArray().Select(e => e.GetString()));
            var definition = root.GetProperty("Definition")[0].GetString()!;
            Assert.False(string.IsNullOrWhiteSpace(definition), info.Name);
            Assert.Equal(info.Definition, definition);
            Assert.EndsWith(".", definition);
            Assert.Equal(info.Primitives, root.GetProperty("Primitives").EnumerateArray().Select(e => e.GetString()));

            var positives = root.GetProperty("Positive Examples").EnumerateArray().ToArray();
            Assert.InRange(positives.Length, 2, 3);
            foreach (var ex in positives.Concat(root.GetProperty("Negative Examples").EnumerateArray()))
            {
                Assert.Equal(["input", "output", "explanation"], ex.EnumerateObject().Select(p => p.Name));
                Assert.All(ex.EnumerateObject(), p => Assert.False(string.IsNullOrWhiteSpace(p.Value.GetString()), $"{info.Name}: empty {p.Name}"));
            }

            var instances = root.GetProperty("Instances").EnumerateArray().ToArray();
            Assert.Equal(fx.Options.InstancesPerTask, instances.Length);
            var prefix = info.Name[..info.Name.IndexOf('_')];
            foreach (var inst in instances)
            {
                Assert.Equal(["id", "input", "output"], inst.EnumerateObject().Select(p => p.Name));
                var id = inst.GetProperty("id").GetString()!;
                Assert.Matches("^" + prefix + "-[0-9a-f]{32}$", id);
                Assert.True(ids.Add(id), $"duplicate id {id}");
                Assert.False(string.IsNullOrWhiteSpace(inst.GetProperty("input").GetString()), $"{info.Name}: empty input");
                var outputs = inst.GetProperty("output").EnumerateArray().ToArray();
                Assert.NotEmpty(outputs);
                Assert.All(outputs, o => Assert.False(string.IsNullOrWhiteSpace(o.GetString()), $"{info.Name}/{id}: empty output"));
                Assert.Equal(outputs.Length, outputs.Select(o => o.GetString()).Distinct().Count());
            }
            // Examples are not repeated as instances.
            var inputs = instances.Select(i => i.GetProperty("input").GetString()).ToHashSet();
            Assert.All(positives, p => Assert.DoesNotContain(p.GetProperty("input").GetString(), inputs));
        }
    }

    [Fact]
    public void SplitFiles_ListEveryTaskOnce()
    {
        var splits = Path.Combine(fx.DirA, "splits");
        var train = File.ReadAllText(Path.Combine(splits, "train_tasks.txt"));
        var test = File.ReadAllText(Path.Combine(splits, "test_tasks.txt"));
        Assert.EndsWith("\n", train);
        Assert.DoesNotContain("\r", train + test);
        var trainNames = train.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var testNames = test.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(fx.Infos.Where(i => i.Split == TaskSplit.Train).Select(i => i.Name), trainNames);
        Assert.Equal(fx.Infos.Where(i => i.Split == TaskSplit.Test).Select(i => i.Name), testNames);
        Assert.Empty(trainNames.Intersect(testNames));

        var tsv = File.ReadAllLines(Path.Combine(splits, "categories.tsv"));
        Assert.Equal("task\tcategory\tprimitives\tsplit", tsv[0]);
        Assert.Equal(fx.Infos.Count, tsv.Length - 1);
        foreach (var (line, info) in tsv.Skip(1).Zip(fx.Infos))
            Assert.Equal($"{info.Name}\t{info.CategoryName}\t{string.Join(",", info.Primitives)}\t{(info.Split == TaskSplit.Train ? "train" : "test")}", line);

        var readme = File.ReadAllText(Path.Combine(fx.DirA, "README.md"));
        Assert.Contains($"Tasks: {fx.Infos.Count} ", readme);
        Assert.All(fx.Infos, i => Assert.Contains(i.Name, readme));
    }

    [Fact]
    public void TestTasks_AreNewCombinationsOfTrainedPrimitives()
    {
        var train = fx.Infos.Where(i => i.Split == TaskSplit.Train).ToArray();
        var trainPrimitives = train.SelectMany(i => i.Primitives).ToHashSet(StringComparer.Ordinal);
        var trainSets = train.Select(i => i.Primitives.ToHashSet(StringComparer.Ordinal)).ToArray();
        foreach (var t in fx.Infos.Where(i => i.Split == TaskSplit.Test))
        {
            Assert.True(t.Primitives.Count >= 2, $"{t.Name} is not a composition");
            Assert.All(t.Primitives, p => Assert.Contains(p, trainPrimitives));
            // Stronger than "not equal to a train combination": no train task even contains all of its primitives.
            Assert.DoesNotContain(trainSets, s => s.IsSupersetOf(t.Primitives));
        }
        // The example from the design: reverse and uppercase are each trained, alone and composed with others, never together.
        var revUpper = fx.Infos.Single(i => i.Name.EndsWith("_reverse_then_uppercase", StringComparison.Ordinal));
        Assert.Equal(TaskSplit.Test, revUpper.Split);
        Assert.Contains(train, i => i.Primitives.SequenceEqual(["reverse_letters"]));
        Assert.Contains(train, i => i.Primitives.SequenceEqual(["uppercase"]));
        Assert.Contains(train, i => i.Primitives.Count > 1 && i.Primitives.Contains("reverse_letters"));
        Assert.Contains(train, i => i.Primitives.Count > 1 && i.Primitives.Contains("uppercase"));
    }

    [Fact]
    public void SameSeed_WritesByteIdenticalFiles()
    {
        var a = Directory.GetFiles(fx.DirA, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(fx.DirA, f)).Order(StringComparer.Ordinal).ToArray();
        var b = Directory.GetFiles(fx.DirB, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(fx.DirB, f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(a, b);
        Assert.Equal(fx.Infos.Count + 4, a.Length);
        foreach (var rel in a)
            Assert.True(File.ReadAllBytes(Path.Combine(fx.DirA, rel)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(fx.DirB, rel))), $"{rel} differs");
    }

    [Fact]
    public void DifferentSeed_WritesDifferentData()
    {
        var x = TestPaths.NewTempDir("peftlab-synth-seed");
        var y = TestPaths.NewTempDir("peftlab-synth-seed");
        try
        {
            SyntheticSuite.Write(x, new SyntheticSuiteOptions(Seed: 1, InstancesPerTask: 10));
            SyntheticSuite.Write(y, new SyntheticSuiteOptions(Seed: 2, InstancesPerTask: 10));
            var differing = fx.Infos.Count(i => !File.ReadAllBytes(Path.Combine(x, "tasks", i.Name + ".json"))
                .AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(y, "tasks", i.Name + ".json"))));
            Assert.Equal(fx.Infos.Count, differing);
            // The task list and split are fixed; only the data change.
            Assert.Equal(File.ReadAllText(Path.Combine(x, "splits", "categories.tsv")), File.ReadAllText(Path.Combine(y, "splits", "categories.tsv")));
        }
        finally
        {
            Directory.Delete(x, true);
            Directory.Delete(y, true);
        }
    }

    [Fact]
    public void WholeSuite_IsGeneratedInUnderFiveSeconds()
    {
        // The fixture wrote the 200-instance suite twice; the second run excludes JIT start-up on a loaded machine.
        var best = fx.FirstWrite < fx.SecondWrite ? fx.FirstWrite : fx.SecondWrite;
        Assert.True(best < TimeSpan.FromSeconds(5), $"writing the suite took {fx.FirstWrite.TotalSeconds:F2} s then {fx.SecondWrite.TotalSeconds:F2} s");
    }

    [Fact]
    public void InputsAndOutputs_AreShortExceptLongFormTasks()
    {
        foreach (var info in fx.Infos)
        {
            var inst = fx.Instances(info.Name[(info.Name.IndexOf('_') + 1)..]).ToArray();
            var medianIn = Median(inst.Select(i => i.Input.Length));
            var medianOut = Median(inst.Select(i => i.Output.Length));
            Assert.True(medianIn < 80, $"{info.Name}: median input {medianIn}");
            if (info.Category == SyntheticCategory.LongFormGeneration)
            {
                Assert.InRange(medianOut, 50, 150);
                Assert.True(inst.Max(i => i.Output.Length) <= 150, $"{info.Name}: output over 150 chars");
            }
            else Assert.True(medianOut < 40, $"{info.Name}: median output {medianOut}");
        }
    }

    [Fact]
    public void ClassificationTasks_AreLabelBalanced()
    {
        foreach (var info in fx.Infos.Where(i => i.Definition.Contains("Answer \"yes\"", StringComparison.Ordinal) || i.Definition.Contains("answer \"yes\"", StringComparison.Ordinal)
                                                  || i.Definition.Contains("\"even\"", StringComparison.Ordinal)))
        {
            var labels = fx.Instances(info.Name[(info.Name.IndexOf('_') + 1)..]).GroupBy(i => i.Output).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(2, labels.Count);
            Assert.All(labels.Values, n => Assert.InRange(n, 70, 130));
        }
    }

    [Fact]
    public void Options_AreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticSuite.Describe(new SyntheticSuiteOptions(InstancesPerTask: 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticSuite.Generate(new SyntheticSuiteOptions(PositiveExamplesPerTask: 4)));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticSuite.Generate(new SyntheticSuiteOptions(PositiveExamplesPerTask: 1)));
        Assert.Contains("PositiveExamplesPerTask", ex.Message);
    }

    [Fact]
    public void InMemoryGeneration_MatchesOptions()
    {
        var tasks = SyntheticSuite.Generate(new SyntheticSuiteOptions(InstancesPerTask: 3, PositiveExamplesPerTask: 3, NegativeExamples: false));
        Assert.Equal(fx.Infos.Count, tasks.Count);
        Assert.All(tasks, t =>
        {
            Assert.Equal(3, t.Instances.Count);
            Assert.Equal(3, t.PositiveExamples.Count);
            Assert.Empty(t.NegativeExamples);
        });
        // Some tasks do have negative examples by default, and they are wrong answers.
        var withNeg = fx.Infos.Where(i => fx.Tasks[i.Name].RootElement.GetProperty("Negative Examples").GetArrayLength() > 0).ToArray();
        Assert.True(withNeg.Length > fx.Infos.Count / 2);
    }

    private static double Median(IEnumerable<int> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2.0;
    }
}
