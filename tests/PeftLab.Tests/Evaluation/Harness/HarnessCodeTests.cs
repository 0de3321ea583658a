using PeftLab.Configuration;
using PeftLab.Data;
using PeftLab.Data.Batching;
using PeftLab.Evaluation.Code;
using PeftLab.Evaluation.Harness;
using PeftLab.Models;
using PeftLab.Tests.Real;
using PeftLab.Tokenization;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>
/// Code tasks (HumanEval / MBPP schema, pass@k): the shipped definitions, hand-written problems whose programs are
/// right or wrong by construction, run end to end through a model whose answers the test scripts, and generation on
/// real weights checked program by program.
/// </summary>
public sealed class HarnessCodeTests
{
    private static string Evals => Path.Combine(TestPaths.RepoRoot, "evals");
    private static readonly SandboxLimits Tight = new() { CpuSeconds = 2, WallSeconds = 6, MemoryBytes = 512L << 20 };

    /// <summary>Three HumanEval-format problems, written here: prompt (signature + docstring), canonical_solution, test with check(candidate), entry_point.</summary>
    private static readonly (string Id, string Prompt, string Solution, string Wrong, string Test, string Entry)[] Problems =
    [
        ("HumanEval/0", "def add(a: int, b: int) -> int:\n    \"\"\"Return the sum of a and b.\n    >>> add(2, 3)\n    5\n    \"\"\"\n",
            "    return a + b\n", "    return a * b\n",
            "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n    assert candidate(0, 0) == 0\n", "add"),
        ("HumanEval/1", "def is_palindrome(text: str) -> bool:\n    \"\"\"Whether text reads the same backwards.\n    >>> is_palindrome('aba')\n    True\n    \"\"\"\n",
            "    return text == text[::-1]\n", "    return text[0] == text[-1]\n",
            "\n\ndef check(candidate):\n    assert candidate('') is True if False else True\n    assert candidate('aba')\n    assert not candidate('abca')\n    assert candidate('zz')\n", "is_palindrome"),
        ("HumanEval/2", "from typing import List\n\n\ndef below_zero(operations: List[int]) -> bool:\n    \"\"\"Whether a running balance from 0 ever goes below zero.\n    \"\"\"\n",
            "    balance = 0\n    for op in operations:\n        balance += op\n        if balance < 0:\n            return True\n    return False\n",
            "    return sum(operations) < 0\n",
            "\n\ndef check(candidate):\n    assert candidate([]) == False\n    assert candidate([1, 2, -4, 5]) == True\n    assert candidate([1, -1, 2, -2]) == False\n", "below_zero"),
    ];

    private static string HumanEvalDir(string name)
    {
        var dir = TestPaths.NewTempDir(name);
        File.WriteAllLines(Path.Combine(dir, "test.jsonl"), Problems.Select(p => System.Text.Json.JsonSerializer.Serialize(new
        {
            task_id = p.Id, prompt = p.Prompt, canonical_solution = p.Solution, test = p.Test, entry_point = p.Entry,
        })));
        return dir;
    }

    [Fact]
    public void TheShippedHumanEvalDefinitionRunsCanonicalSolutionsAndCatchesWrongOnes()
    {
        var task = HarnessTask.Load(Path.Combine(Evals, "humaneval.yaml"), HumanEvalDir("humaneval"));
        Assert.True(task.Spec.ExecutesCode && task.Spec.UnsafeCode);
        var docs = HarnessData.Load(task, "test");
        var steps = task.Spec.FilterList!.Single().Filter;
        var sandbox = new PythonSandbox(Tight);
        for (int i = 0; i < Problems.Length; i++)
        {
            Assert.Equal(Problems[i].Prompt, HarnessEvaluator.Prompt(task, docs[i], []));
            Assert.Equal(Problems[i].Test + "\ncheck(" + Problems[i].Entry + ")", task.TargetText(docs[i]));
            string Program(string completion) => HarnessScoring.Filter(steps, completion, docs[i]) + "\n" + task.TargetText(docs[i]);
            Assert.Equal(Problems[i].Prompt + Problems[i].Solution + "\n" + task.TargetText(docs[i]), Program(Problems[i].Solution));
            var right = sandbox.Run(Program(Problems[i].Solution));
            Assert.True(right.Passed, right.Reason + "\n" + right.Output);
            var wrong = sandbox.Run(Program(Problems[i].Wrong));
            Assert.Equal(SandboxOutcome.Failed, wrong.Outcome);
            Assert.StartsWith("AssertionError", wrong.Reason);
        }
        // the fenced form a chat model writes is unwrapped as the harness's build_predictions does
        Assert.Equal(Problems[0].Prompt + Problems[0].Solution, HarnessScoring.Filter(steps, "```python\n" + Problems[0].Solution, docs[0]));
        var noPrompt = Assert.Throws<TemplateException>(() => HarnessScoring.Filter(steps, "x", new Dictionary<string, object?> { ["text"] = "t" }));
        Assert.Contains("'prompt'", noPrompt.Message);
    }

    [Fact]
    public void TheShippedMbppDefinitionBuildsTheHarnessPromptAndExtractsCode()
    {
        var dir = TestPaths.NewTempDir("mbpp");
        Directory.CreateDirectory(Path.Combine(dir, "full"));
        File.WriteAllText(Path.Combine(dir, "full", "test.jsonl"), System.Text.Json.JsonSerializer.Serialize(new
        {
            task_id = 11, text = "Write a python function to remove first and last occurrence of a given character from the string.",
            code = "def remove_Occ(s,ch): \r\n    return s", test_list = new[] { "assert remove_Occ(\"hello\",\"l\") == \"heo\"", "assert remove_Occ(\"abcda\",\"a\") == \"bcd\"", "assert remove_Occ(\"PHP\",\"P\") == \"H\"" },
            test_setup_code = "",
        }) + "\n");
        var task = HarnessTask.Load(Path.Combine(Evals, "mbpp.yaml"), dir);
        var doc = HarnessData.Load(task, "test")[0];
        var prompt = HarnessEvaluator.Prompt(task, doc, []);
        // the harness's prompt: three exemplars "<text> … [BEGIN]\n<code>\n[DONE]" joined by blank lines, then the document
        Assert.StartsWith("You are an expert Python programmer, and here is your task: Write a function to find the similar elements from the given two tuple lists.", prompt);
        Assert.Contains("  return (res) \n[DONE]\n\nYou are an expert Python programmer, and here is your task: Write a python function to identify non-prime numbers.", prompt);
        Assert.EndsWith("assert remove_Occ(\"PHP\",\"P\") == \"H\"\n[BEGIN]\n", prompt);
        Assert.Equal(4, prompt.Split("[BEGIN]").Length - 1);
        Assert.Equal(3, prompt.Split("[DONE]").Length - 1);
        var steps = task.Spec.FilterList!.Single().Filter;
        const string good = "def remove_Occ(s,ch):\n    for _ in range(2):\n        s = s.replace(ch, '', 1)[::-1]\n    return s\n";
        // the harness: re.findall(r"```(?:\w+)?\n?(.*?)\n?```", "```" + text, re.DOTALL)[0], after the annotations import
        Assert.Equal("from __future__ import annotations\n" + good, HarnessScoring.Filter(steps, good, doc));
        // values as Python's re.findall gives them, quirks included (the pattern takes a first word after the added fence as a language tag)
        Assert.Equal("from __future__ import annotations\ny = 3", HarnessScoring.ExtractCode("\ny = 3\n```"));
        Assert.Equal("from __future__ import annotations\n = 1", HarnessScoring.ExtractCode("x = 1\n```\nrest"));
        Assert.Equal("from __future__ import annotations\n:", HarnessScoring.ExtractCode("Here:\n```python\ny = 2\n```"));
        var sandbox = new PythonSandbox(Tight);
        Assert.True(sandbox.Run(HarnessScoring.Filter(steps, good, doc) + "\n" + task.TargetText(doc)).Passed);
        Assert.False(sandbox.Run(HarnessScoring.Filter(steps, "def remove_Occ(s,ch):\n    return s\n", doc) + "\n" + task.TargetText(doc)).Passed);
    }

    /// <summary>
    /// End to end with a model that answers as scripted: each problem gets 5 sampled answers, of which the test knows
    /// how many are right (2, 5 and 0), so pass@1 = c/n and pass@3 = 1 − C(n−c, 3)/C(n, 3) are worked out here by hand.
    /// </summary>
    [Fact]
    public void PassAtKOverScriptedAnswersEqualsTheHandCount()
    {
        var dir = HumanEvalDir("humaneval-scripted");
        File.WriteAllText(Path.Combine(dir, "task.yaml"),
            "include: " + Path.Combine(Evals, "humaneval.yaml") + "\ndataset_path: .\nrepeats: 5\nmetric_list:\n  - metric: pass_at_k\n    k: [1, 3]\n" +
            "generation_kwargs:\n  until: [\"\\nclass\", \"\\ndef\", \"\\n#\", \"\\nif\", \"\\nprint\"]\n  do_sample: true\n  temperature: 0.8\n");
        File.Copy(Path.Combine(Evals, "humaneval.yaml"), Path.Combine(dir, "humaneval.yaml"));
        File.WriteAllText(Path.Combine(dir, "task.yaml"), File.ReadAllText(Path.Combine(dir, "task.yaml")).Replace(Path.Combine(Evals, "humaneval.yaml"), "humaneval.yaml"));
        var task = HarnessTask.Load(Path.Combine(dir, "task.yaml"));
        using var tok = HfTokenizer.Load(Path.Combine(TestPaths.Shared, "tokenizers", "gpt2"));
        var p = Problems;
        var model = new ScriptedModel(tok, new()
        {
            [p[0].Prompt] = [p[0].Solution, p[0].Wrong, p[0].Solution, p[0].Wrong, p[0].Wrong],
            [p[1].Prompt] = [p[1].Solution, p[1].Solution, p[1].Solution + "\ndef unused():\n    pass\n", p[1].Solution, "```python\n" + p[1].Solution],
            [p[2].Prompt] = [p[2].Wrong, p[2].Wrong, "    while True:\n        pass\n", "    return (\n", p[2].Wrong],
        });
        var result = HarnessEvaluator.Evaluate(task, model, tok, batchSize: 4, sandbox: new PythonSandbox(Tight));
        double[] pass1 = [2 / 5.0, 1, 0], pass3 = [1 - 1 / 10.0, 1, 0];            // C(3,3)/C(5,3) = 1/10
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(pass1[i], result.Samples[i].Metrics["pass@1,create_test"], 12);
            Assert.Equal(pass3[i], result.Samples[i].Metrics["pass@3,create_test"], 12);
            Assert.Equal(5, result.Samples[i].Executions!["create_test"].Count);
        }
        Assert.Equal(pass1.Average(), result.Scores.Single(s => s.Metric == "pass@1,create_test").Value, 12);
        Assert.Equal(pass3.Average(), result.Scores.Single(s => s.Metric == "pass@3,create_test").Value, 12);
        // the sandbox's failures are recorded per sample with their reason, and the run went on
        var third = result.Samples[2].Executions!["create_test"];
        Assert.Contains(third, r => r.Outcome == SandboxOutcome.CpuLimit);
        Assert.Contains(third, r => r.Outcome == SandboxOutcome.Failed && r.Reason.StartsWith("SyntaxError", StringComparison.Ordinal));
        Assert.Contains(third, r => r.Outcome == SandboxOutcome.Failed && r.Reason.StartsWith("AssertionError", StringComparison.Ordinal));
        var line = result.SampleLines().Last();
        Assert.Contains("\"outcome\":\"cpu_limit\"", line);
        Assert.Contains("\"generations\":[", line);
        Assert.StartsWith("network, mount and PID namespaces", result.Sandbox ?? "");
        // re-scored from the saved samples (the programs run again), and under a changed task file
        var saved = Path.Combine(dir, "out");
        result.Write(saved);
        var again = HarnessEvaluator.Rescore(task, Path.Combine(saved, "samples.jsonl"), new PythonSandbox(Tight));
        Assert.Equal(result.Scores.Select(s => (s.Metric, s.Value)), again.Scores.Select(s => (s.Metric, s.Value)));
        File.WriteAllText(Path.Combine(dir, "task.yaml"), File.ReadAllText(Path.Combine(dir, "task.yaml")).Replace("k: [1, 3]", "k: [2]"));
        var k2 = HarnessEvaluator.Rescore(HarnessTask.Load(Path.Combine(dir, "task.yaml")), Path.Combine(saved, "samples.jsonl"), new PythonSandbox(Tight));
        Assert.Equal((1 - 3.0 / 10 + 1 + 0) / 3, k2.Scores.Single().Value, 12);                // pass@2: 1 − C(3,2)/C(5,2) = 0.7 for 2 of 5
    }

    [Fact]
    public void CodeTaskErrorsNameTheKey()
    {
        var dir = HumanEvalDir("humaneval-bad");
        string Load(string extra)
        {
            File.WriteAllText(Path.Combine(dir, "task.yaml"), "dataset_path: .\ntest_split: test\noutput_type: generate_until\ndoc_to_text: prompt\ndoc_to_target: test\n" + extra);
            return Assert.Throws<ConfigException>(() => HarnessTask.Load(Path.Combine(dir, "task.yaml"))).Message;
        }
        Assert.Contains("k 10 is more than the 1 generation(s) per document (repeats)", Load("metric_list:\n  - metric: pass_at_k\n    k: [1, 10]\n"));
        Assert.Contains("metric_list.0.k", Load("metric_list:\n  - metric: exact_match\n    k: 1\n"));
        var fn = Load("metric_list:\n  - metric: !function utils.pass_at_k\n    k: [1]\n");
        Assert.Contains("task.yaml:7", fn);
        Assert.Contains("metric: pass_at_k", fn);
        Assert.Contains("function: prepend_prompt", Load("filter_list:\n  - name: x\n    filter:\n      - function: custom\n        filter_fn: !function utils.build_predictions\n"));
    }

    /// <summary>
    /// Real weights, greedy: each document's program is its prompt (the opening of a Python string), the model's
    /// continuation up to the newline, then a test that the string equals the continuation the generator gives
    /// directly here — written right for three documents, deliberately wrong for three, so pass@1 must be exactly 0.5
    /// and each document's outcome as written; a batch row given to the wrong document would break it.
    /// </summary>
    [Fact]
    public void GreedyProgramsOnRealWeightsPassExactlyWhereTheirTestSaysSo()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var model = ((DecoderOnlyModel)lm).Model;
        var openings = new[] { "Once upon a time", "One day, Tom went to the", "Lily", "The little dog was very happy because", "Mom said", "Ben and Sue wanted to" };
        var dir = TestPaths.NewTempDir("code-real");
        var lines = openings.Select((o, i) =>
        {
            var cont = tok.Decode(TextGenerator.Generate(model, [lm.EncodeContext(tok, "s = '''" + o)], new SamplingConfig(MaxNewTokens: 8), tok.EosIds.ToArray(), 0)[0], skipSpecialTokens: true);
            cont = HarnessScoring.CutAtStop(cont, ["\n"]);
            Assert.DoesNotContain("'''", cont);
            var expected = o + cont + (i % 2 == 0 ? "" : " (not what it wrote)");
            return System.Text.Json.JsonSerializer.Serialize(new { prompt = "s = '''" + o, test = "'''\nassert s == " + PythonLiteral(expected + "\n") + ", repr(s)" });
        });
        File.WriteAllLines(Path.Combine(dir, "test.jsonl"), lines);
        File.WriteAllText(Path.Combine(dir, "task.yaml"),
            "dataset_path: .\ntest_split: test\noutput_type: generate_until\ndoc_to_text: prompt\ndoc_to_target: test\nunsafe_code: true\n" +
            "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 8\nmetric_list:\n  - metric: pass_at_k\nfilter_list:\n  - name: program\n    filter:\n      - function: prepend_prompt\n");
        var result = HarnessEvaluator.Evaluate(HarnessTask.Load(Path.Combine(dir, "task.yaml")), lm, tok, batchSize: 4, sandbox: new PythonSandbox(Tight));
        Assert.Equal(0.5, result.Scores.Single().Value, 12);
        for (int i = 0; i < openings.Length; i++)
            Assert.True(result.Samples[i].Metrics["pass@1,program"] == (i % 2 == 0 ? 1 : 0), $"doc {i}: {result.Samples[i].Executions!["program"][0].Reason}");
    }

    /// <summary>Sampled repeats on real weights: seeded (the same seed gives the same generations), varied, and pass@k of each document equals the closed form over the programs' own outcomes.</summary>
    [Fact]
    public void SampledRepeatsAreSeededVariedAndScoredByTheEstimator()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var dir = TestPaths.NewTempDir("code-sampled");
        File.WriteAllLines(Path.Combine(dir, "test.jsonl"), new[] { "Once upon a time", "Lily" }.Select(o =>
            System.Text.Json.JsonSerializer.Serialize(new { prompt = "s = '''" + o, test = "'''\nassert ' the ' in s" })));
        File.WriteAllText(Path.Combine(dir, "task.yaml"),
            "dataset_path: .\ntest_split: test\noutput_type: generate_until\ndoc_to_text: prompt\ndoc_to_target: test\nrepeats: 6\n" +
            "generation_kwargs:\n  until: [\"'''\"]\n  max_gen_toks: 12\n  do_sample: true\n  temperature: 1.0\nmetric_list:\n  - metric: pass_at_k\n    k: [1, 4]\n" +
            "filter_list:\n  - name: program\n    filter:\n      - function: prepend_prompt\n");
        var task = HarnessTask.Load(Path.Combine(dir, "task.yaml"));
        var sandbox = new PythonSandbox(Tight);
        var a = HarnessEvaluator.Evaluate(task, lm, tok, batchSize: 4, seed: 7, sandbox: sandbox);
        var b = HarnessEvaluator.Evaluate(task, lm, tok, batchSize: 4, seed: 7, sandbox: sandbox);
        var c = HarnessEvaluator.Evaluate(task, lm, tok, batchSize: 4, seed: 8, sandbox: sandbox);
        Assert.Equal(a.Samples.SelectMany(s => s.Generations!), b.Samples.SelectMany(s => s.Generations!));
        Assert.NotEqual(a.Samples.SelectMany(s => s.Generations!), c.Samples.SelectMany(s => s.Generations!));
        Assert.All(a.Samples, s => Assert.True(s.Generations!.Distinct().Count() > 1, "six samples of one prompt should differ"));
        foreach (var s in a.Samples)
        {
            var doc = (string)HarnessData.Load(task, "test")[s.Index]["prompt"]!;
            int right = s.Generations!.Count(g => (doc + g + "\n").Contains(" the ", StringComparison.Ordinal));   // what the assert checks, counted here
            Assert.Equal(right, s.Executions!["program"].Count(r => r.Passed));
            Assert.Equal(right / 6.0, s.Metrics["pass@1,program"], 12);
            double fail4 = Enumerable.Range(0, 4).Aggregate(1.0, (acc, j) => acc * Math.Max(0, 6 - right - j) / (6.0 - j));   // C(6−c,4)/C(6,4)
            Assert.Equal(1 - fail4, s.Metrics["pass@4,program"], 12);
        }
    }

    private static string PythonLiteral(string s) =>
        "'" + s.Replace("\\", "\\\\").Replace("'", "\\'").Replace("\n", "\\n") + "'";
}
