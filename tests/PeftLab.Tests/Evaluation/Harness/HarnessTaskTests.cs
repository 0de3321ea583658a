using Parquet.Schema;
using Parquet.Serialization;
using PeftLab.Configuration;
using PeftLab.Evaluation.Harness;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>Harness task files: the shipped definitions load, local data in every format reads alike, bad files are errors with their line.</summary>
public sealed class HarnessTaskTests
{
    private static string Evals => Path.Combine(TestPaths.RepoRoot, "evals");

    private static readonly (string Question, string[] Choices, long Answer)[] Mmlu =
    [
        ("What is 2 + 2?", ["3", "4", "5", "22"], 1),
        ("Which is a colour?", ["dog", "run", "red", "if"], 2),
        ("  Capital of France? ", ["Paris", "Rome", "Oslo", "Bern"], 0),
    ];

    /// <summary>An MMLU-layout folder: <c>all/test.jsonl</c> and <c>all/dev.jsonl</c>.</summary>
    internal static string MmluFolder()
    {
        var dir = TestPaths.NewTempDir("mmlu");
        Directory.CreateDirectory(Path.Combine(dir, "all"));
        string Line((string Q, string[] C, long A) r) => System.Text.Json.JsonSerializer.Serialize(new { question = r.Q, choices = r.C, answer = r.A });
        File.WriteAllLines(Path.Combine(dir, "all", "test.jsonl"), Mmlu.Select(Line));
        File.WriteAllLines(Path.Combine(dir, "all", "dev.jsonl"), Mmlu.Reverse().Select(Line));
        return dir;
    }

    [Fact]
    public void TheShippedMmluDefinitionBuildsTheHarnessPrompt()
    {
        var task = HarnessTask.Load(Path.Combine(Evals, "mmlu.yaml"), MmluFolder());
        Assert.Equal(("mmlu", HarnessOutputType.MultipleChoice, 5, "test", "dev"), (task.Name, task.Spec.OutputType, task.Spec.NumFewshot, task.ScoredSplit, task.FewshotSplit));
        var docs = HarnessData.Load(task, "test");
        Assert.Equal(3, docs.Count);
        var examples = HarnessEvaluator.Examples(task, HarnessData.Load(task, "dev"), 2, -1, 0);
        Assert.Equal(
            "Capital of France?\nA. Paris\nB. Rome\nC. Oslo\nD. Bern\nAnswer: A\n\n" +
            "Which is a colour?\nA. dog\nB. run\nC. red\nD. if\nAnswer: C\n\n" +
            "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:",
            HarnessEvaluator.Prompt(task, docs[0], examples));
        Assert.Equal(["A", "B", "C", "D"], task.Choices(docs[0]));
        Assert.Equal([1, 2, 0], docs.Select(d => task.TargetIndex(d, task.Choices(d))));
    }

    [Fact]
    public void TheShippedArcAndLambadaDefinitionsLoad()
    {
        var dir = TestPaths.NewTempDir("arc");
        Directory.CreateDirectory(Path.Combine(dir, "ARC-Easy"));
        File.WriteAllText(Path.Combine(dir, "ARC-Easy", "test.jsonl"),
            """{"id": "q1", "question": "Which melts ice?", "choices": {"text": ["heat", "cold"], "label": ["A", "B"]}, "answerKey": "A"}""" + "\n");
        var arc = HarnessTask.Load(Path.Combine(Evals, "arc_easy.yaml"), dir);
        var doc = HarnessData.Load(arc, "test")[0];
        Assert.Equal(("Question: Which melts ice?\nAnswer:", 0), (arc.Text(doc), arc.TargetIndex(doc, arc.Choices(doc))));
        Assert.Equal(["heat", "cold"], arc.Choices(doc));

        var lambadaDir = TestPaths.NewTempDir("lambada");
        File.WriteAllText(Path.Combine(lambadaDir, "test.jsonl"), """{"text": "she opened the door and saw the garden"}""" + "\n");
        var lambada = HarnessTask.Load(Path.Combine(Evals, "lambada_openai.yaml"), lambadaDir);
        var l = HarnessData.Load(lambada, "test")[0];
        Assert.Equal(("she opened the door and saw the", " garden"), (lambada.Text(l), lambada.TargetText(l)));
    }

    [Fact]
    public async Task JsonLinesJsonCsvAndParquetReadTheSameDocuments()
    {
        var dir = TestPaths.NewTempDir("formats");
        File.WriteAllText(Path.Combine(dir, "a.jsonl"), "{\"q\": \"one, \\\"two\\\"\", \"n\": 3, \"x\": 0.25}\n\n{\"q\": \"line\\nbreak\", \"n\": -1, \"x\": 2}\n");
        File.WriteAllText(Path.Combine(dir, "a.json"), "{\"data\": [{\"q\": \"one, \\\"two\\\"\", \"n\": 3, \"x\": 0.25}, {\"q\": \"line\\nbreak\", \"n\": -1, \"x\": 2.0}]}");
        File.WriteAllText(Path.Combine(dir, "a.csv"), "q,n,x\n\"one, \"\"two\"\"\",3,0.25\n\"line\nbreak\",-1,2\n");
        var schema = new ParquetSchema(new DataField<string>("q"), new DataField<long>("n"), new DataField<double>("x"));
        await using (var f = File.Create(Path.Combine(dir, "a.parquet")))
            await ParquetSerializer.SerializeUntypedAsync(
                [new Dictionary<string, object?> { ["q"] = "one, \"two\"", ["n"] = 3L, ["x"] = 0.25 }, new Dictionary<string, object?> { ["q"] = "line\nbreak", ["n"] = -1L, ["x"] = 2.0 }],
                schema, f);
        foreach (var ext in new[] { "jsonl", "json", "csv", "parquet" })
        {
            var docs = HarnessData.Read(Path.Combine(dir, "a." + ext));
            Assert.Equal(2, docs.Count);
            Assert.Equal(("one, \"two\"", 3L, 0.25), ((string)docs[0]["q"]!, (long)docs[0]["n"]!, (double)docs[0]["x"]!));
            Assert.Equal("line\nbreak", docs[1]["q"]);
            Assert.Equal(-1L, docs[1]["n"]);
            Assert.Equal(2.0, Convert.ToDouble(docs[1]["x"]));
        }
    }

    [Fact]
    public async Task ParquetListColumnsStayLists()
    {
        var dir = TestPaths.NewTempDir("parquet-list");
        await using (var f = File.Create(Path.Combine(dir, "test-00000-of-00001.parquet")))
            await ParquetSerializer.SerializeAsync([new McRow { question = "2+2?", choices = ["3", "4", "5", "6"], answer = 1 }], f);
        File.WriteAllText(Path.Combine(dir, "task.yaml"), "dataset_path: .\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{question}}\"\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: answer\n");
        var task = HarnessTask.Load(Path.Combine(dir, "task.yaml"));
        var doc = HarnessData.Load(task, "test").Single();
        Assert.Equal(["3", "4", "5", "6"], task.Choices(doc));
        Assert.Equal(1, task.TargetIndex(doc, task.Choices(doc)));
    }

    [Fact]
    public void IncludeMergesTheSharedTemplateAndDataFilesNameSplits()
    {
        var dir = TestPaths.NewTempDir("include");
        File.WriteAllText(Path.Combine(dir, "_template_yaml"), "output_type: multiple_choice\ndoc_to_text: \"Q: {{q}}\"\ndoc_to_choice: [\"yes\", \"no\"]\ndoc_to_target: a\ntest_split: test\nnum_fewshot: 3\n");
        File.WriteAllText(Path.Combine(dir, "docs.jsonl"), "{\"q\": \"up?\", \"a\": \"no\"}\n");
        File.WriteAllText(Path.Combine(dir, "sub.yaml"), "include: _template_yaml\ntask: sub\nnum_fewshot: 0\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: docs.jsonl\n");
        var task = HarnessTask.Load(Path.Combine(dir, "sub.yaml"));
        Assert.Equal(("sub", 0), (task.Name, task.Spec.NumFewshot));                        // the including file wins
        var doc = HarnessData.Load(task, "test").Single();
        Assert.Equal(("Q: up?", 1), (task.Text(doc), task.TargetIndex(doc, task.Choices(doc))));   // a choice text as target
    }

    [Theory]
    [InlineData("test_split: test\ndoc_to_text: q\ndoc_to_target: a\nprocess_docs: x\n", "process_docs: unknown key", "task.yaml:4")]
    [InlineData("test_split: test\ndoc_to_text: q\ndoc_to_target: a\nprocess_docs: !function utils.process_docs\n", "a Python function (!function) cannot run in PeftLab", "task.yaml:4")]
    [InlineData("test_split: test\ndoc_to_text: q\ndoc_to_target: a\noutput_type: multiple_choise\n", "output_type: expected one of: multiple_choice, loglikelihood, generate_until", "did you mean 'multiple_choice'")]
    [InlineData("test_split: test\ndoc_to_text: q\ndoc_to_target: a\noutput_type: multiple_choice\n", "doc_to_choice: is required for output_type multiple_choice", "")]
    [InlineData("doc_to_text: q\ndoc_to_target: a\noutput_type: loglikelihood\n", "test_split: give test_split or validation_split", "")]
    [InlineData("test_split: test\ndoc_to_text: q\ndoc_to_target: a\noutput_type: loglikelihood\nmetric_list:\n  - metric: bleu\n", "metric_list.0.metric: 'bleu' is not computed for output_type loglikelihood (known: perplexity, acc)", "")]
    [InlineData("test_split: test\ndoc_to_text: \"{% if q %}{{q}}{% endif %}\"\ndoc_to_target: a\noutput_type: loglikelihood\n", "Jinja statements", "doc_to_text")]
    [InlineData("test_split: test\ndoc_to_text: q\ndoc_to_target: a\nnum_fewshot: -1\n", "num_fewshot: must be in [0, 10000] (got -1)", "")]
    [InlineData("include: missing.yaml\n", "include: 'missing.yaml' does not exist", "")]
    public void BadTaskFilesAreErrorsNamingTheKey(string yaml, string expected, string alsoExpected)
    {
        var dir = TestPaths.NewTempDir("bad-task");
        File.WriteAllText(Path.Combine(dir, "task.yaml"), yaml);
        var e = Assert.Throws<ConfigException>(() => HarnessTask.Load(Path.Combine(dir, "task.yaml")));
        Assert.Contains(expected, e.Message);
        Assert.Contains(alsoExpected, e.Message);
    }

    [Fact]
    public void AHubDatasetWithoutALocalCopyIsRefusedSayingHowToGiveOne()
    {
        var task = HarnessTask.Load(Path.Combine(Evals, "mmlu.yaml"));
        var e = Assert.Throws<FileNotFoundException>(() => HarnessData.Load(task, "test"));
        Assert.Contains("dataset_path 'cais/mmlu' is not a local folder or file", e.Message);
        Assert.Contains("--dataset-path DIR", e.Message);
        var missing = Assert.Throws<FileNotFoundException>(() => HarnessData.Load(HarnessTask.Load(Path.Combine(Evals, "mmlu.yaml"), MmluFolder()), "validation"));
        Assert.Contains("no file for split 'validation'", missing.Message);
    }

    [Fact]
    public void AcceptanceByLogLikelihoodFollowsTheHarness()
    {
        // acc: argmax of the sums; acc_norm: per character ("ccc" has 3, so -2.4 / 3 = -0.8 beats -1.0 / 1)
        var m = HarnessEvaluator.MultipleChoiceMetrics([-1.0, -2.4, -5.0], ["a", "ccc", "dd"], target: 1);
        Assert.Equal((0.0, 1.0), (m["acc"], m["acc_norm"]));
        var tie = HarnessEvaluator.MultipleChoiceMetrics([-1.0, -1.0], ["x", "y"], target: 1);
        Assert.Equal(0.0, tie["acc"]);                                                   // numpy's argmax: the first of a tie
        Assert.Equal(2, HarnessEvaluator.PythonLength("é😀"));                          // code points, as Python's len
    }

    /// <summary>A hub-style Parquet row (MMLU's columns).</summary>
    public sealed class McRow
    {
#pragma warning disable IDE1006 // the column names as the hub writes them
        public string question { get; set; } = "";
        public List<string> choices { get; set; } = [];
        public long answer { get; set; }
#pragma warning restore IDE1006
    }
}
