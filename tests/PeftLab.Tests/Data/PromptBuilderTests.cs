using System.Security.Cryptography;
using System.Text;
using PeftLab.Data;
using PeftLab.Data.SuperNi;

namespace PeftLab.Tests.Data;

public sealed class PromptBuilderTests
{
    // The README's filled example is the first test instance of task1159_bard_analogical_reasoning_containers (an
    // official test task that is not part of the shared 74-task subset), so the task is rebuilt here from the README.
    private static readonly TaskFile Containers = new()
    {
        Name = "task1159_bard_analogical_reasoning_containers",
        Categories = ["Word Analogy"],
        Definition = ["Two analogies that relate items to the associated containers is given in the form \"A : B. C : ?\". \"A : B\" relates item A to its associated container B. Your task is to replace the question mark (?) with the appropriate container for the given item C, following the \"A : B\" relation."],
        PositiveExamples =
        [
            new("soda : can. water : ?", "bottle", "The given analogy relates items to their containers. Soda can be stored in a can. Water can be stored in a bottle."),
            new("jam : jar. cereal : ?", "box", "The given analogy relates items to their containers. Jam can be stored in a jar. Cereal can be stored in a box."),
            new("diapers : bag. honey : ?", "bottle", "The given analogy relates items to their containers. Diapers can be stored in a bag. Honey can be stored in a bottle."),
        ],
        NegativeExamples =
        [
            new("trash : can. plates : ?", "wash", "The given analogy relates items to their containers. Trash can be stored in a can. But, wash is not the correct answer to plates, since wash is not a container. Further, the answer models an affordance"),
        ],
        Instances = [new Instance("task1159-honey-potatoes", "honey : jar. potatoes : ?", ["sack"])],
    };

    private const string FilledExample =
        "Definition: Two analogies that relate items to the associated containers is given in the form \"A : B. C : ?\". \"A : B\" relates item A to its associated container B. Your task is to replace the question mark (?) with the appropriate container for the given item C, following the \"A : B\" relation.\n" +
        "\n" +
        " Positive Example 1 -\n" +
        "Input: soda : can. water : ?\n" +
        " Output: bottle.\n" +
        "\n" +
        " Positive Example 2 -\n" +
        "Input: jam : jar. cereal : ?\n" +
        " Output: box.\n" +
        "\n" +
        "Now complete the following example -\n" +
        "Input: honey : jar. potatoes : ?\n" +
        "Output: ";

    private static readonly ITokenCounter Ws = WhitespaceTokenCounter.Instance;

    [Fact]
    public void ReproducesReadmeFilledExampleExactly()
    {
        var source = PromptBuilder.Build(Containers, Containers.Instances[0], new PromptConfig(), Ws);
        Assert.Equal(FilledExample, source);

        // And the README text itself, character for character.
        var readme = File.ReadAllText(Path.Combine(TestPaths.SuperNi, "README.md"));
        var start = readme.IndexOf("```\nDefinition: Two analogies", StringComparison.Ordinal);
        Assert.True(start >= 0, "filled example not found in README");
        start += 4;
        var end = readme.IndexOf("\n```", start, StringComparison.Ordinal);
        Assert.Equal(readme[start..end], source);
    }

    [Fact]
    public void OtherFormatsAndOptions()
    {
        var inst = Containers.Instances[0];
        var defOnly = PromptBuilder.Build(Containers, inst, new PromptConfig { Format = PromptFormat.DefinitionOnly }, Ws);
        Assert.Equal(FilledExample[..(FilledExample.IndexOf(" Positive", StringComparison.Ordinal))] + "Now complete the following example -\nInput: honey : jar. potatoes : ?\nOutput: ", defOnly);

        var full = PromptBuilder.Build(Containers, inst,
            new PromptConfig { NumPositiveExamples = 1, NumNegativeExamples = 1, AddExplanation = true, AddTaskName = true }, Ws);
        Assert.Equal(
            "task1159_bard_analogical_reasoning_containers. " + FilledExample[..FilledExample.IndexOf(" Positive", StringComparison.Ordinal)] +
            " Positive Example 1 -\nInput: soda : can. water : ?\n Output: bottle.\n Explanation: The given analogy relates items to their containers. Soda can be stored in a can. Water can be stored in a bottle.\n\n" +
            " Negative Example 1 -\nInput: trash : can. plates : ?\n Output: wash.\n Explanation: The given analogy relates items to their containers. Trash can be stored in a can. But, wash is not the correct answer to plates, since wash is not a container. Further, the answer models an affordance.\n\n" +
            "Now complete the following example -\nInput: honey : jar. potatoes : ?\nOutput: ", full);
    }

    [Fact]
    public void PunctuationRuleLooksAtAccumulatedText()
    {
        var task = new TaskFile
        {
            Name = "t", Definition = ["  Say it!  "],
            PositiveExamples = [new("", "  ", null), new("x\n", "y)", null)],
            Instances = [new Instance("t-1", "   ", ["z"])],
        };
        var s = PromptBuilder.Build(task, task.Instances[0], new PromptConfig { AddExplanation = true }, Ws);
        // Empty input: "Input: " ends in a space, so "." is appended; "Output: " likewise; ")" is punctuation.
        Assert.Equal("Definition: Say it!\n\n" +
                     " Positive Example 1 -\nInput: .\n Output: .\n\n" +
                     " Positive Example 2 -\nInput: x.\n Output: y)\n\n" +
                     "Now complete the following example -\nInput: .\nOutput: ", s);
    }

    [Fact]
    public void ExamplesAreDroppedWhenTheyDoNotFitTheBudget()
    {
        var inst = Containers.Instances[0];
        int defAndQuery = Ws.Count(PromptBuilder.Build(Containers, inst, new PromptConfig { Format = PromptFormat.DefinitionOnly }, Ws));
        int ex1 = Ws.Count(" Positive Example 1 -\nInput: soda : can. water : ?\n Output: bottle.\n\n");
        int ex2 = Ws.Count(" Positive Example 2 -\nInput: jam : jar. cereal : ?\n Output: box.\n\n");

        string Build(int max) => PromptBuilder.Build(Containers, inst, new PromptConfig { MaxSourceTokens = max }, Ws);
        Assert.Equal(FilledExample, Build(defAndQuery + ex1 + ex2));
        var one = Build(defAndQuery + ex1 + ex2 - 1);
        Assert.Contains("Positive Example 1", one);
        Assert.DoesNotContain("Positive Example 2", one);
        Assert.Equal(defAndQuery + ex1, Ws.Count(one));
        var none = Build(defAndQuery + ex1 - 1);
        Assert.DoesNotContain("Positive Example", none);
        Assert.EndsWith("\nOutput: ", none);

        // The whole source is over budget: truncated to its first tokens (the query is cut off).
        var cut = Build(10);
        Assert.Equal(10, Ws.Count(cut));
        Assert.Equal("Definition: Two analogies that relate items to the associated containers", cut);

        // An example that does not fit stops the loop: later (smaller) examples are not tried.
        var task = Containers with
        {
            PositiveExamples = [new(string.Join(" ", Enumerable.Repeat("w", 50)), "o", null), Containers.PositiveExamples[1]],
        };
        var stop = PromptBuilder.Build(task, inst, new PromptConfig { MaxSourceTokens = defAndQuery + ex2 + 5 }, Ws);
        Assert.DoesNotContain("Positive Example", stop);
    }

    [Fact]
    public void TrainingTargetIsASeededReferenceAndEvaluationKeepsAll()
    {
        var inst = new Instance("t-9", "q", ["a", "b", "c", "d"]);
        var task = Containers with { Instances = [inst] };
        var cfg = new PromptConfig();
        var picks = Enumerable.Range(0, 40).Select(s => PromptBuilder.BuildTraining(task, inst, cfg, Ws, s).Target).ToList();
        Assert.Equal(picks, Enumerable.Range(0, 40).Select(s => PromptBuilder.BuildTraining(task, inst, cfg, Ws, s).Target));
        Assert.True(picks.Distinct().Count() >= 3, "targets should vary with the seed");
        var ex = PromptBuilder.BuildTraining(task, inst, cfg, Ws, 1);
        Assert.Equal(["a", "b", "c", "d"], ex.References);
        Assert.Equal(("task1159_bard_analogical_reasoning_containers", "t-9", "Word Analogy"), (ex.TaskName, ex.InstanceId, ex.Category));
        Assert.Equal("a", PromptBuilder.BuildEvaluation(task, inst, cfg, Ws).Target);

        var e = Assert.Throws<ArgumentException>(() => PromptBuilder.Build(task with { Definition = [] }, inst, cfg, Ws));
        Assert.Contains("task 'task1159_bard_analogical_reasoning_containers' has no Definition", e.Message);

        var longRef = new Instance("t-10", "q", [string.Join(" ", Enumerable.Range(0, 200))]);
        var trunc = PromptBuilder.BuildTraining(task, longRef, cfg with { MaxTargetTokens = 5 }, Ws, 0);
        Assert.Equal("0 1 2 3 4", trunc.Target);
        Assert.Equal(longRef.Outputs, trunc.References);
    }

    [Fact]
    public void SubsetPromptsMatchIndependentPythonRendering()
    {
        // prompt_hashes.tsv comes from Fixtures/make_prompt_hashes.py, an independent Python rendering of the README template.
        var settings = new Dictionary<string, PromptConfig>
        {
            ["def_pos2"] = new(),
            ["def_only"] = new() { Format = PromptFormat.DefinitionOnly },
            ["pos2_neg2_expl_name"] = new() { NumNegativeExamples = 2, AddExplanation = true, AddTaskName = true },
            ["budget60"] = new() { NumNegativeExamples = 2, MaxSourceTokens = 60 },
            ["budget150"] = new() { NumNegativeExamples = 2, AddExplanation = true, MaxSourceTokens = 150 },
        };
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, "tests", "PeftLab.Tests", "Data", "Fixtures", "prompt_hashes.tsv"));
        Assert.Equal(1 + 74 * settings.Count, lines.Length);
        var c = SuperNiLoaderTests.Subset.Value;
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split('\t');
            var task = c.GetTask(f[0]);
            var inst = task.Instances[0];
            Assert.Equal(f[1], inst.Id);
            var source = PromptBuilder.Build(task, inst, settings[f[2]], Ws);
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(source)));
            Assert.True(f[3] == hash, $"{f[0]} / {f[2]}: source differs from the Python rendering:\n{source}");
            Assert.Equal(int.Parse(f[4]), Ws.Count(source));
        }
    }

    [Fact]
    public void WhitespaceCounterCountsAndTruncates()
    {
        Assert.Equal(0, Ws.Count("  \n "));
        Assert.Equal(3, Ws.Count(" a  b\nc "));
        Assert.Equal(" a  b", Ws.TruncateToTokens(" a  b\nc ", 2));
        Assert.Equal(" a  b\nc ", Ws.TruncateToTokens(" a  b\nc ", 3));
        Assert.Equal("", Ws.TruncateToTokens(" a", 0));
    }
}

/// <summary>A huge field costs no more than the token budget it is truncated to (issue: 50 MB took 90 s and 13 GB).</summary>
public sealed class PromptBudgetTests
{
    private static TaskFile Task(string definition, string exampleInput) => new()
    {
        Name = "task_huge", Categories = ["Misc"], Definition = [definition],
        PositiveExamples = [new(exampleInput, "ok", null)], NegativeExamples = [],
        Instances = [],
    };

    [Theory]
    [InlineData("qwen2.5")]
    [InlineData("gpt2")]
    public void AHugeInputIsCutBeforeItIsEncodedAndGivesTheSamePrompt(string tokenizerName)
    {
        using var tok = PeftLab.Tokenization.HfTokenizer.Load(Path.Combine(TestPaths.Shared, "tokenizers", tokenizerName));
        var counter = new PeftLab.Tokenization.TokenizerCounter(tok);
        var config = new PromptConfig { MaxSourceTokens = 200, MaxTargetTokens = 16 };
        var rng = new Random(5);
        string Words(int chars)
        {
            var sb = new StringBuilder(chars + 16);
            while (sb.Length < chars) sb.Append(rng.Next(3) == 0 ? "zebra " : "quantum leap ").Append(rng.Next(1000)).Append(' ');
            return sb.ToString(0, chars);
        }
        var head = Words(20_000);
        foreach (var (task, instance) in new[]
        {
            (Task("Answer.", "x"), new Instance("i1", head + new string('y', 50_000_000), [head + "out"])),   // a 50 MB instance
            (Task(head + Words(5_000_000), "x"), new Instance("i2", "short", ["out"])),                       // a 5 MB definition
            (Task("Answer.", head + new string('z', 5_000_000)), new Instance("i3", "short", ["out"])),       // a 5 MB example
        })
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var built = PromptBuilder.BuildTraining(task, instance, config, counter, seed: 1);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"{instance.Id}: {watch.Elapsed}");
            Assert.True(counter.Count(built.Source) <= config.MaxSourceTokens);
            Assert.True(counter.Count(built.Target) <= config.MaxTargetTokens);
            // the same prompt as from a field only 100k characters long: nothing past the cut could have survived
            static string Cut(string s) => s.Length > 100_000 ? s[..100_000] : s;
            var small = PromptBuilder.BuildTraining(
                task with { Definition = [Cut(task.Definition[0])], PositiveExamples = [new(Cut(task.PositiveExamples[0].Input), "ok", null)] },
                instance with { Input = Cut(instance.Input), Outputs = [Cut(instance.Outputs[0])] }, config, counter, seed: 1);
            Assert.Equal(small.Source, built.Source);
            Assert.Equal(small.Target, built.Target);
        }
    }
}
