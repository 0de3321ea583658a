using PeftLab.Evaluation.Harness;
using PeftLab.Models;
using PeftLab.Tests.Real;
using PeftLab.Tokenization;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>generate_until tasks: the shipped definitions' prompts, written few-shot samples, and generation scored end to end on real weights.</summary>
public sealed class HarnessGenerationTests
{
    private static string Evals => Path.Combine(TestPaths.RepoRoot, "evals");

    [Fact]
    public void TheShippedGsm8kDefinitionBuildsItsPromptAndScoresAWorkedAnswer()
    {
        var dir = TestPaths.NewTempDir("gsm8k");
        Directory.CreateDirectory(Path.Combine(dir, "main"));
        string Doc(string q, string a) => System.Text.Json.JsonSerializer.Serialize(new { question = q, answer = a });
        File.WriteAllLines(Path.Combine(dir, "main", "test.jsonl"), [Doc("Tom has 3 apples and buys 4. How many?", "3 + 4 = 7\n#### 7")]);
        File.WriteAllLines(Path.Combine(dir, "main", "train.jsonl"), Enumerable.Range(1, 9).Select(i => Doc($"What is {i} + {i}?", $"{i} + {i} = {2 * i}\n#### {2 * i}")));
        var task = HarnessTask.Load(Path.Combine(Evals, "gsm8k.yaml"), dir);
        Assert.Equal((HarnessOutputType.GenerateUntil, 8, 2), (task.Spec.OutputType, task.Spec.NumFewshot, task.Spec.FilterList!.Count));
        var doc = HarnessData.Load(task, "test")[0];
        var pool = HarnessData.Load(task, "train");
        var examples = HarnessEvaluator.Examples(task, pool, 2, -1, 0);
        var prompt = HarnessEvaluator.Prompt(task, doc, examples);
        Assert.EndsWith("\n\nQuestion: Tom has 3 apples and buys 4. How many?\nAnswer:", prompt);
        Assert.StartsWith("Question: What is ", prompt);
        Assert.Contains("\nAnswer: " + examples[0]["answer"] + "\n\n", prompt);
        // a worked answer as a model would write it, through both pipelines against the reference
        var strict = task.Spec.FilterList.Single(f => f.Name == "strict-match");
        var flexible = task.Spec.FilterList.Single(f => f.Name == "flexible-extract");
        var em = task.Spec.MetricList!.Single();
        const string generated = " Tom starts with 3 and buys 4 more, 3 + 4 = 7.\n#### 7";
        Assert.Equal(1, HarnessScoring.ExactMatch(HarnessScoring.Filter(strict.Filter, generated), task.TargetText(doc), em));
        Assert.Equal(1, HarnessScoring.ExactMatch(HarnessScoring.Filter(flexible.Filter, " so the total is 7 apples"), task.TargetText(doc), em));
        Assert.Equal(0, HarnessScoring.ExactMatch(HarnessScoring.Filter(strict.Filter, " so the total is 7 apples"), task.TargetText(doc), em));
    }

    [Fact]
    public void TheShippedBbhAndTydiqaDefinitionsLoad()
    {
        var bbhDir = TestPaths.NewTempDir("bbh");
        Directory.CreateDirectory(Path.Combine(bbhDir, "boolean_expressions"));
        File.WriteAllText(Path.Combine(bbhDir, "boolean_expressions", "test.json"), """{"examples": [{"input": "not ( True ) and ( True ) is", "target": "False"}]}""");
        var bbh = HarnessTask.Load(Path.Combine(Evals, "bbh_cot_zeroshot.yaml"), bbhDir);
        var b = HarnessData.Load(bbh, "test")[0];
        Assert.Equal("Q: not ( True ) and ( True ) is\nA: Let's think step by step.", HarnessEvaluator.Prompt(bbh, b, []));
        Assert.Equal("False", HarnessScoring.Filter(bbh.Spec.FilterList![0].Filter, " Not True is False, so the answer is False."));

        var tyDir = TestPaths.NewTempDir("tydiqa");
        Directory.CreateDirectory(Path.Combine(tyDir, "secondary_task"));
        string Doc(string c, string q, string a) => System.Text.Json.JsonSerializer.Serialize(new { context = c, question = q, answers = new { text = new[] { a }, answer_start = new[] { 0 } } });
        File.WriteAllLines(Path.Combine(tyDir, "secondary_task", "validation.jsonl"), [Doc("Oslo is the capital of Norway.", "What is the capital of Norway?", "Oslo")]);
        File.WriteAllLines(Path.Combine(tyDir, "secondary_task", "train.jsonl"), [Doc("Bern is in Switzerland.", "Where is Bern?", "Switzerland")]);
        var ty = HarnessTask.Load(Path.Combine(Evals, "tydiqa_goldp.yaml"), tyDir);
        var t = HarnessData.Load(ty, "validation")[0];
        var prompt = HarnessEvaluator.Prompt(ty, t, HarnessEvaluator.Examples(ty, HarnessData.Load(ty, "train"), 1, -1, 0));
        Assert.Equal("Answer the following question based on the information in the given passage.\n\nPassage: Bern is in Switzerland.\nQuestion: Where is Bern?\nAnswer: Switzerland\n\n" +
                     "Answer the following question based on the information in the given passage.\n\nPassage: Oslo is the capital of Norway.\nQuestion: What is the capital of Norway?\nAnswer:", prompt);
        Assert.Equal(("Oslo", "f1"), (ty.TargetText(t), ty.Spec.MetricList![0].Metric));
    }

    [Fact]
    public void WrittenFewshotSamplesServeAsExamples()
    {
        var dir = TestPaths.NewTempDir("samples");
        File.WriteAllText(Path.Combine(dir, "test.jsonl"), "{\"q\": \"3 * 3\", \"a\": 9}\n");
        File.WriteAllText(Path.Combine(dir, "task.yaml"),
            "dataset_path: .\ntest_split: test\noutput_type: generate_until\ndoc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: \"{{a}}\"\nnum_fewshot: 2\n" +
            "fewshot_config:\n  sampler: first_n\n  samples:\n    - {q: \"1 + 1\", a: 2}\n    - {q: \"2 * 5\", a: \"10\"}\n    - {q: unused, a: 0}\n");
        var task = HarnessTask.Load(Path.Combine(dir, "task.yaml"));
        var doc = HarnessData.Load(task, "test")[0];
        var pool = task.Spec.FewshotConfig!.Samples!;
        Assert.Equal(3, pool.Items.Count);
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var result = HarnessEvaluator.Evaluate(task, lm, tok, batchSize: 1);
        Assert.Equal("Q: 1 + 1\nA: 2\n\nQ: 2 * 5\nA: 10\n\nQ: 3 * 3\nA:", result.Samples[0].Prompt);
    }

    /// <summary>
    /// Real weights: documents whose target is the model's own greedy continuation of a story opening (made here
    /// directly with the generator). Scored through the task path — prompts of different lengths reordered into
    /// batches, decoded, cut at the stop sequence, filtered — every document must match; a misassigned batch row, a
    /// lost token or a wrong cut would not.
    /// </summary>
    [Fact]
    public void GenerationOnRealWeightsReproducesTheGreedyContinuations()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var openings = new[] { "Once upon a time", "One day, Tom went to the", "Lily", "The little dog was very happy because", "Mom said", "Ben and Sue wanted to" };
        var model = ((DecoderOnlyModel)lm).Model;
        var lines = openings.Select(o =>
        {
            var cont = tok.Decode(TextGenerator.Generate(model, [tok.Encode(o)], new SamplingConfig(MaxNewTokens: 6), tok.EosIds.ToArray(), 0)[0]);
            return System.Text.Json.JsonSerializer.Serialize(new { opening = o, target = cont, first = cont.Trim().Split(' ')[0] });
        });
        var dir = TestPaths.NewTempDir("gen-real");
        File.WriteAllLines(Path.Combine(dir, "test.jsonl"), lines);
        File.WriteAllText(Path.Combine(dir, "task.yaml"),
            "task: story_gen\ndataset_path: .\ntest_split: test\noutput_type: generate_until\ndoc_to_text: \"{{opening}}\"\ndoc_to_target: \"{{target}}\"\n" +
            "generation_kwargs:\n  until: [\"\\n\\n\"]\n  max_gen_toks: 6\nmetric_list:\n  - metric: exact_match\n  - metric: f1\n" +
            "filter_list:\n  - name: whole\n    filter:\n      - function: take_first\n  - name: first-word\n    filter:\n      - function: regex\n        regex_pattern: \"^\\\\W*(\\\\w+)\"\n");
        var result = HarnessEvaluator.Evaluate(HarnessTask.Load(Path.Combine(dir, "task.yaml")), lm, tok, batchSize: 4);
        double Score(string name) => result.Scores.Single(s => s.Metric == name).Value;
        Assert.Equal(1.0, Score("exact_match,whole"));
        Assert.Equal(1.0, Score("f1,whole"));
        Assert.True(Score("f1,first-word") is > 0 and < 1, $"first word vs whole continuation: f1 {Score("f1,first-word")}");
        Assert.Equal(0.0, Score("exact_match,first-word"));
        Assert.All(result.Samples, s => Assert.Equal(s.Candidates[0], s.Generated));
    }
}
