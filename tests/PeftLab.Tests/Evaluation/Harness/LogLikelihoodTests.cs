using PeftLab.Evaluation.Harness;
using PeftLab.Models;
using PeftLab.Tests.Real;
using PeftLab.Tokenization;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>
/// Log-likelihood scoring against a direct computation (one unbatched forward, log-softmax, the continuation's
/// entries summed) on real pretrained weights (stories260K) and on the T5 fixture, and multiple choice end to end.
/// </summary>
public sealed class LogLikelihoodTests
{
    private static double Direct(CausalLM model, int[] context, int[] continuation)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int[] all = [.. context, .. continuation];
        var logits = model.Forward(tensor(all[..^1].Select(x => (long)x).ToArray(), [1, all.Length - 1])).to_type(ScalarType.Float32);   // [1, T-1, V]
        var logp = logits.log_softmax(-1)[0];
        double sum = 0;
        for (int j = 0; j < continuation.Length; j++) sum += logp[context.Length - 1 + j, continuation[j]].item<float>();
        return sum;
    }

    [Fact]
    public void DecoderScoresEqualADirectForwardInAnyBatching()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var pairs = new[] { ("Once upon a time", " there was a girl"), ("The dog ran", " to the park."), ("Lily saw a ", "big red ball"), ("Tom", " was sad") };
        var requests = pairs.Select(p => lm.Encode(tok, p.Item1, p.Item2)).ToArray();
        var model = ((DecoderOnlyModel)lm).Model;
        var expected = requests.Select(r => Direct(model, r.Context, r.Continuation)).ToArray();
        foreach (int batch in new[] { 1, 3, 4 })
        {
            var got = lm.ScoreContinuations(requests, batch);
            for (int i = 0; i < requests.Length; i++)
                Assert.True(Math.Abs(got[i].LogLikelihood - expected[i]) < 1e-4, $"batch {batch}, request {i}: {got[i].LogLikelihood} vs {expected[i]}");
        }
        Assert.All(expected, e => Assert.True(e < 0));
    }

    [Fact]
    public void TheHarnessEncodingMovesTrailingSpacesToTheContinuation()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var spaced = lm.Encode(tok, "Lily saw a ", "ball");
        var plain = lm.Encode(tok, "Lily saw a", " ball");
        Assert.Equal(plain.Context, spaced.Context);
        Assert.Equal(plain.Continuation, spaced.Continuation);
        Assert.Equal(tok.Encode("Lily saw a ball"), plain.Context.Concat(plain.Continuation).ToArray());
        var empty = lm.Encode(tok, "", "Once");
        Assert.Equal(new[] { tok.BosId!.Value }, empty.Context);
    }

    [Fact]
    public void TheGreedyContinuationIsMarkedGreedyAndOthersAreNot()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var prompt = tok.Encode("Once upon a time", addSpecialTokens: true);
        var greedy = lm.Generate([prompt], new SamplingConfig(MaxNewTokens: 8), [], 0)[0];
        var other = greedy.ToArray();
        other[^1] = (other[^1] + 7) % tok.VocabSize;
        var s = lm.ScoreContinuations([new ContinuationRequest(prompt, greedy), new ContinuationRequest(prompt, other)], 2);
        Assert.True(s[0].IsGreedy);
        Assert.False(s[1].IsGreedy);
        Assert.True(s[0].LogLikelihood > s[1].LogLikelihood);
    }

    [Fact]
    public void T5ScoresEqualADirectForward()
    {
        var dir = Path.Combine(TestPaths.T5Fixtures, "t5-v1_1-lm-adapt-tiny");
        var lm = (Seq2SeqModel)TrainableModels.Load(dir, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        var requests = new[] { new ContinuationRequest([5, 6, 7, 1], [8, 9, 1]), new ContinuationRequest([10, 1], [11, 12, 13, 14, 1]) };
        var got = lm.ScoreContinuations(requests, 2);
        for (int i = 0; i < requests.Length; i++)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var r = requests[i];
            long[] dec = [lm.Model.Config.DecoderStartTokenId, .. r.Continuation[..^1].Select(x => (long)x)];
            var logp = lm.Model.Forward(tensor(r.Context.Select(x => (long)x).ToArray(), [1, r.Context.Length]), tensor(dec, [1, dec.Length]))
                .to_type(ScalarType.Float32).log_softmax(-1)[0];
            double sum = r.Continuation.Select((t, j) => (double)logp[j, t].item<float>()).Sum();
            Assert.True(Math.Abs(got[i].LogLikelihood - sum) < 1e-4, $"request {i}: {got[i].LogLikelihood} vs {sum}");
        }
    }

    [Fact]
    public void ScoringLeavesTheLiveTensorCountFlat()
    {
        foreach (var dir in new[] { StoryTasks.Model, Path.Combine(TestPaths.T5Fixtures, "t5-v1_1-lm-adapt-tiny") })
        {
            var lm = TrainableModels.Load(dir, ScalarType.Float32, CPU);
            lm.Host.Module.eval();
            var requests = new[] { new ContinuationRequest([1, 5, 6], [7, 8]), new ContinuationRequest([1, 9], [10, 11, 12]) };
            lm.ScoreContinuations(requests, 1);
            long before = TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
            for (int i = 0; i < 10; i++) lm.ScoreContinuations(requests, 2);
            Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount);
        }
    }

    [Fact]
    public void EmptyOrOverlongRequestsAreRefused()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        Assert.Contains("the context is empty", Assert.Throws<ArgumentException>(() => lm.ScoreContinuations([new ContinuationRequest([], [3])], 1)).Message);
        Assert.Contains("the continuation is empty", Assert.Throws<ArgumentException>(() => lm.ScoreContinuations([new ContinuationRequest([1], [])], 1)).Message);
        Assert.Contains("more than the model's 512 positions",
            Assert.Throws<ArgumentException>(() => lm.ScoreContinuations([new ContinuationRequest([1], Enumerable.Repeat(5, 600).ToArray())], 1)).Message);
    }

    /// <summary>
    /// Real weights, a task whose answer the model knows: each question is a story opening, the right choice the model's
    /// own greedy continuation, the others the same words shuffled (same characters, so acc_norm divides alike). A
    /// scorer that shifted positions, dropped a token or mixed up rows would fall towards chance (1/3).
    /// </summary>
    [Fact]
    public void MultipleChoiceOnRealWeightsPicksTheFluentContinuation()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var openings = new[] { "Once upon a time", "One day, Tom", "Lily was happy because", "The little dog", "Mom said", "The sun was", "Ben and Sue", "In the park" };
        var rng = new Random(7);
        var lines = new List<string>();
        foreach (var o in openings)
        {
            var ids = tok.Encode(o, addSpecialTokens: true);
            var cont = tok.Decode(lm.Generate([ids], new SamplingConfig(MaxNewTokens: 12), tok.EosIds.ToArray(), 0)[0]).Trim();
            var words = cont.Split(' ');
            string Shuffled() => string.Join(' ', words.OrderBy(_ => rng.Next()));
            var choices = new[] { cont, Shuffled(), Shuffled() };
            lines.Add(System.Text.Json.JsonSerializer.Serialize(new { opening = o, choices, answer = 0 }));
        }
        var dir = TestPaths.NewTempDir("mc-real");
        File.WriteAllLines(Path.Combine(dir, "test.jsonl"), lines);
        File.WriteAllText(Path.Combine(dir, "task.yaml"),
            "task: story_mc\ndataset_path: .\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{opening}}\"\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: answer\n" +
            "metric_list:\n  - metric: acc\n  - metric: acc_norm\n");
        var result = HarnessEvaluator.Evaluate(HarnessTask.Load(Path.Combine(dir, "task.yaml")), lm, tok, batchSize: 4);
        var acc = result.Scores.Single(s => s.Metric == "acc");
        Assert.Equal(8, result.Samples.Count);
        Assert.True(acc.Value >= 7 / 8.0, $"acc {acc.Value} (chance 0.33)");
        Assert.True(acc.Lower <= acc.Value && acc.Value <= acc.Upper);
        Assert.All(result.Samples, s => Assert.Equal(3, s.LogLikelihoods.Count));
        Assert.Equal(result.Samples[0].LogLikelihoods[0],
            lm.ScoreContinuations([lm.Encode(tok, "Once upon a time", " " + result.Samples[0].Candidates[0])], 1)[0].LogLikelihood, 6);
    }

    [Fact]
    public void TheCliScoresATaskFileAndWritesResultsAndSamples()
    {
        var dir = TestPaths.NewTempDir("cli-harness");
        File.WriteAllLines(Path.Combine(dir, "test.jsonl"), [
            """{"text": "Once upon a time, there was a little girl named Lily."}""",
            """{"text": "She loved to play outside in the park."}""",
        ]);
        File.Copy(Path.Combine(TestPaths.RepoRoot, "evals", "lambada_openai.yaml"), Path.Combine(dir, "lambada.yaml"));
        var outDir = Path.Combine(dir, "out");
        var stdout = CliRunner.Ok("eval", "--model", StoryTasks.Model, "--task", Path.Combine(dir, "lambada.yaml"), "--dataset-path", dir, "--out", outDir);
        var json = System.Text.Json.Nodes.JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
        Assert.Equal(("lambada_openai", "loglikelihood", 2), ((string)json["task"]!, (string)json["output_type"]!, (int)json["documents"]!));
        double ppl = (double)json["scores"]!["perplexity"]!["value"]!;
        Assert.True(ppl > 1 && double.IsFinite(ppl), $"perplexity {ppl}");
        Assert.True(File.Exists(Path.Combine(outDir, "results.json")));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(outDir, "samples.jsonl")).Length);
        // peftlab score re-scores the saved samples without the model, to the same scores
        var rescored = System.Text.Json.Nodes.JsonNode.Parse(CliRunner.Ok("score", "--task", Path.Combine(dir, "lambada.yaml"), "--dataset-path", dir,
            "--samples", Path.Combine(outDir, "samples.jsonl")).Trim().Split('\n')[^1])!;
        Assert.Equal(json["scores"]!.ToJsonString(), rescored["scores"]!.ToJsonString());
        var half = CliRunner.Run("score", "--task", Path.Combine(dir, "lambada.yaml"));
        Assert.Contains("needs both --task FILE and --samples FILE", half.Stderr + half.Stdout);

        var gen = Path.Combine(dir, "gen.yaml");
        File.WriteAllText(gen, "dataset_path: .\ntest_split: test\noutput_type: generate_until\ndoc_to_text: \"{{text}}\"\ndoc_to_target: \"{{text}}\"\ngeneration_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 4\n");
        var generated = System.Text.Json.Nodes.JsonNode.Parse(CliRunner.Ok("eval", "--model", StoryTasks.Model, "--task", gen).Trim().Split('\n')[^1])!;
        Assert.Equal(0.0, (double)generated["scores"]!["exact_match,none"]!["value"]!);   // 4 new tokens never repeat the whole text
        var sampled = Path.Combine(dir, "sampled.yaml");
        File.WriteAllText(sampled, File.ReadAllText(gen) + "  do_sample: true\n");
        string Sampled(string seed, string name)
        {
            CliRunner.Ok("eval", "--model", StoryTasks.Model, "--task", sampled, "--seed", seed, "--out", Path.Combine(dir, name));
            return File.ReadAllText(Path.Combine(dir, name, "samples.jsonl"));
        }
        Assert.Equal(Sampled("3", "s1"), Sampled("3", "s2"));                     // sampling is seeded
        Assert.NotEqual(Sampled("3", "s1"), Sampled("4", "s3"));
        var both = CliRunner.Run("eval", "--model", StoryTasks.Model, "--task", gen, "--tasks", dir);
        Assert.Contains("give --tasks DIR (a SuperNI-layout folder) or --task FILE", both.Stderr + both.Stdout);
    }
}
