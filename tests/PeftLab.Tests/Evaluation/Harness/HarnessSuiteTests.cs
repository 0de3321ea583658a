using System.Text.RegularExpressions;
using PeftLab.Evaluation.Harness;
using PeftLab.Synthetic;
using PeftLab.Tests.Real;
using PeftLab.Tokenization;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>The synthetic stand-ins of the open-instruction benchmarks: right by construction, deterministic, and each runs through its harness kind.</summary>
public sealed class HarnessSuiteTests
{
    [Fact]
    public void EveryDocumentIsRightByConstructionAndTheSeedDecides()
    {
        var dir = TestPaths.NewTempDir("harness-suite");
        var written = HarnessSuite.Write(dir, 7, 60);
        Assert.Equal(["synth_mc", "synth_arith", "synth_qa", "synth_cloze", "synth_code", "synth_open"], written.Select(w => w.Name));
        Assert.Equal(["multiple_choice", "generate_until", "generate_until", "loglikelihood", "generate_until", "generate_until"], written.Select(w => w.OutputType));
        Assert.Equal([CapabilityGroup.Knowledge, CapabilityGroup.Reasoning, CapabilityGroup.Knowledge, CapabilityGroup.LongForm, CapabilityGroup.Coding, CapabilityGroup.LongForm],
            written.Select(w => w.Group));
        HarnessTask Load(string name) => HarnessTask.Load(Path.Combine(dir, name + ".yaml"));

        var mc = Load("synth_mc");
        foreach (var d in HarnessData.Load(mc, "test"))
        {
            var options = ((List<object?>)d["choices"]!).Cast<string>().ToArray();
            Assert.Equal(4, options.Distinct().Count());
            var right = options[(long)d["answer"]!];
            var q = (string)d["question"]!;
            var expected = Regex.Match(q, "^Which sound does a (\\w+) make\\?$") is { Success: true } m1 ? Sound(m1.Groups[1].Value)
                : Regex.Match(q, "^Which fruit is (\\w+)\\?$") is { Success: true } m2 ? Fruit(m2.Groups[1].Value)
                : Opposite(Regex.Match(q, "^What is the opposite of (\\w+)\\?$").Groups[1].Value);
            Assert.Equal(expected, right);
        }
        var arith = Load("synth_arith");
        var strict = arith.Spec.FilterList!.Single(f => f.Name == "strict-match");
        foreach (var d in HarnessData.Load(arith, "test"))
        {
            var m = Regex.Match((string)d["question"]!, @"has (\d+) \w+ and (buys|gives away) (\d+)");
            int a = int.Parse(m.Groups[1].Value), b = int.Parse(m.Groups[3].Value);
            int result = m.Groups[2].Value == "buys" ? a + b : a - b;
            Assert.True(result >= 0);
            // the worked solution, fed back as if generated, scores 1 through the strict pipeline
            Assert.Equal(1, HarnessScoring.ExactMatch(HarnessScoring.Filter(strict.Filter, " " + (string)d["answer"]!), arith.TargetText(d), arith.Spec.MetricList![0]));
            Assert.EndsWith($"#### {result}", (string)d["answer"]!);
        }
        var qa = Load("synth_qa");
        foreach (var d in HarnessData.Load(qa, "test"))
            Assert.Contains(qa.TargetText(d), (string)d["context"]!);
        var cloze = Load("synth_cloze");
        foreach (var d in HarnessData.Load(cloze, "test"))
            Assert.Equal((string)d["text"]!, cloze.Text(d) + cloze.TargetText(d));

        // code: every canonical solution passes its own check in the sandbox, and a function returning None fails it
        var code = Load("synth_code");
        var sandbox = new PeftLab.Evaluation.Code.PythonSandbox();
        var steps = code.Spec.FilterList!.Single().Filter;
        var docs = HarnessData.Load(code, "test");
        var passing = sandbox.RunAll(docs.Select(d => HarnessScoring.Filter(steps, (string)d["canonical_solution"]!, d) + "\n" + code.TargetText(d)).ToArray());
        Assert.All(passing, r => Assert.True(r.Passed, r.Reason));
        var wrong = sandbox.RunAll(docs.Take(10).Select(d => HarnessScoring.Filter(steps, "    return None\n", d) + "\n" + code.TargetText(d)).ToArray());
        Assert.All(wrong, r => Assert.StartsWith("AssertionError", r.Reason));
        Assert.True(docs.Select(d => (string)d["entry_point"]!).Distinct().Count() >= 5, "the problems vary");
        var open = Load("synth_open");
        Assert.True(open.Spec.NeedsJudge);
        Assert.All(HarnessData.Load(open, "test"), d => Assert.EndsWith(".", open.TargetText(d)));

        var again = TestPaths.NewTempDir("harness-suite");
        HarnessSuite.Write(again, 7, 60);
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "synth_arith", "test.jsonl")), File.ReadAllText(Path.Combine(again, "synth_arith", "test.jsonl")));
        var other = TestPaths.NewTempDir("harness-suite");
        HarnessSuite.Write(other, 8, 60);
        Assert.NotEqual(File.ReadAllText(Path.Combine(dir, "synth_arith", "test.jsonl")), File.ReadAllText(Path.Combine(other, "synth_arith", "test.jsonl")));
    }

    private static string Sound(string animal) => animal switch
    {
        "dog" => "woof", "cat" => "meow", "cow" => "moo", "duck" => "quack", "sheep" => "baa", "pig" => "oink", "owl" => "hoot", "lion" => "roar", "frog" => "croak", "horse" => "neigh",
        _ => throw new InvalidOperationException(animal),
    };

    private static string Fruit(string color) => color switch
    {
        "red" => "cherry", "yellow" => "banana", "green" => "lime", "purple" => "grape", "pink" => "peach", "brown" => "kiwi", _ => throw new InvalidOperationException(color),
    };

    private static string Opposite(string word)
    {
        (string, string)[] pairs = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("old", "new"), ("open", "shut"), ("happy", "sad"), ("early", "late"),
            ("full", "empty"), ("hard", "soft"), ("left", "right"), ("wet", "dry"), ("high", "low"), ("long", "short"), ("rich", "poor"), ("loud", "quiet")];
        return pairs.Select(p => p.Item1 == word ? p.Item2 : p.Item2 == word ? p.Item1 : null).Single(x => x is not null)!;
    }

    [Fact]
    public void EveryStandInRunsThroughItsKindOnRealWeights()
    {
        var dir = TestPaths.NewTempDir("harness-suite-run");
        HarnessSuite.Write(dir, 1, 8);
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var judge = new PairwiseJudge(lm, tok, null, "stories260K");
        foreach (var name in new[] { "synth_mc", "synth_arith", "synth_qa", "synth_cloze", "synth_code", "synth_open" })
        {
            var result = HarnessEvaluator.Evaluate(HarnessTask.Load(Path.Combine(dir, name + ".yaml")), lm, tok, batchSize: 8, judge: judge);
            Assert.Equal(8, result.Samples.Count);
            Assert.NotEmpty(result.Scores);
            Assert.All(result.Scores, s => Assert.True(s.Lower <= s.Value && s.Value <= s.Upper && double.IsFinite(s.Value), $"{name} {s}"));
        }
    }

    /// <summary>The stand-ins' own instruction mixture: every task's zero-shot prompt and its answer as the task scores it, no test document among them.</summary>
    [Fact]
    public void TheMixtureHoldsEachTasksPromptsAndAnswersButNoTestDocument()
    {
        var dir = TestPaths.NewTempDir("harness-mixture");
        HarnessSuite.Write(dir, 4, 20, mixturePerTask: 30);
        var lines = File.ReadAllLines(Path.Combine(dir, HarnessSuite.MixtureFile)).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["messages"]!.AsArray()).ToArray();
        Assert.Equal(6 * 30, lines.Length);
        Assert.All(lines, m => Assert.Equal(("user", "assistant"), ((string)m[0]!["role"]!, (string)m[1]!["role"]!)));
        string User(int i) => (string)lines[i][0]!["content"]!;
        string Assistant(int i) => (string)lines[i][1]!["content"]!;
        Assert.All(Enumerable.Range(0, 30), i => Assert.Matches("^ [ABCD]$", Assistant(i)));                           // synth_mc: " A".." D", as scored
        Assert.All(Enumerable.Range(30, 30), i => Assert.Matches(@"#### \d+$", Assistant(i)));                          // synth_arith: the worked solution
        Assert.All(Enumerable.Range(90, 30), i => Assert.Matches("^ [a-z]+$", Assistant(i)));                           // synth_cloze: the last word, one space
        Assert.All(Enumerable.Range(120, 30), i => Assert.StartsWith("    return ", Assistant(i)));                       // synth_code: the body
        foreach (var name in new[] { "synth_mc", "synth_arith", "synth_qa", "synth_cloze", "synth_open" })
        {
            var task = HarnessTask.Load(Path.Combine(dir, name + ".yaml"));
            var testPrompts = HarnessData.Load(task, "test").Select(d => HarnessEvaluator.Prompt(task, d, [])).ToHashSet();
            Assert.Equal(20, testPrompts.Count > 0 ? 20 : 0);
            int offset = Array.IndexOf(new[] { "synth_mc", "synth_arith", "synth_qa", "synth_cloze", "synth_code", "synth_open" }, name) * 30;
            // no document equals a test document; with these small pools a prompt may recur with another answer set
            Assert.True(Enumerable.Range(offset, 30).Count(i => testPrompts.Contains(User(i))) < 30, name);
        }
    }

    [Fact]
    public void DataSynthWritesTheStandInsOnRequest()
    {
        var dir = TestPaths.NewTempDir("synth-cli");
        var stdout = CliRunner.Ok("data", "synth", "--out", dir, "--instances", "12", "--harness", "--mixture", "3");
        Assert.Equal(18, File.ReadAllLines(Path.Combine(dir, "harness", HarnessSuite.MixtureFile)).Length);
        Assert.Contains("harness task", stdout);
        Assert.Contains("stands in for GSM8K", stdout);
        Assert.True(File.Exists(Path.Combine(dir, "harness", "synth_qa.yaml")));
        Assert.Equal(12, File.ReadAllLines(Path.Combine(dir, "harness", "synth_qa", "test.jsonl")).Length);
    }
}
