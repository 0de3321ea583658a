using PeftLab.Evaluation.Harness;
using PeftLab.Models;
using PeftLab.Tests.Real;
using PeftLab.Tokenization;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>Pairwise judging: verdicts in both orders against values worked out by hand, the shipped definition, and a real-weights judge.</summary>
public sealed class PairwiseJudgeTests
{
    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    private static string AlpacaDir(string name, params (string Instruction, string Output)[] docs)
    {
        var dir = TestPaths.NewTempDir(name);
        File.WriteAllLines(Path.Combine(dir, "eval.jsonl"), docs.Select(d => System.Text.Json.JsonSerializer.Serialize(new
        {
            instruction = d.Instruction, output = d.Output, generator = "reference_model", dataset = "helpful_base",
        })));
        return dir;
    }

    /// <summary>
    /// A scripted judge that likes responses saying "thanks" (log-likelihood 0 for the number of such a response, −2
    /// otherwise) and leans to "1" by +1 nat. With the model's answer polite and the reference curt: model first,
    /// P(1) = σ(0 + 1 − (−2)) = σ(3); model second, P(2) = 1 − σ(−2 + 1 − 0) = σ(1). Preference (σ(3) + σ(1)) / 2; the
    /// position bias shows as judge_first_position = (σ(3) + σ(−1)) / 2 &gt; 0.5 and cancels out of the preference.
    /// </summary>
    [Fact]
    public void VerdictsInBothOrdersEqualTheHandComputedPreference()
    {
        var dir = AlpacaDir("alpaca", ("Reply to a gift.", "ok"), ("Reply to a favour.", "thanks a lot"), ("Reply to a greeting.", "hello"));
        var task = HarnessTask.Load(Path.Combine(TestPaths.RepoRoot, "evals", "alpaca_eval.yaml"), dir);
        Assert.True(task.Spec.NeedsJudge);
        using var tok = HfTokenizer.Load(Path.Combine(TestPaths.Shared, "tokenizers", "gpt2"));
        var model = new ScriptedModel(tok, new()
        {
            ["Reply to a gift."] = [" thanks, I love it"], ["Reply to a favour."] = [" thanks a lot"], ["Reply to a greeting."] = [" hello"],
        });
        double Judge(string prompt, string answer)
        {
            var r1 = prompt[prompt.IndexOf("Response 1:", StringComparison.Ordinal)..prompt.IndexOf("Response 2:", StringComparison.Ordinal)];
            var r2 = prompt[prompt.IndexOf("Response 2:", StringComparison.Ordinal)..];
            var chosen = answer == " 1" ? r1 : r2;
            return (chosen.Contains("thanks", StringComparison.Ordinal) ? 0 : -2) + (answer == " 1" ? 1 : 0);
        }
        var judge = new PairwiseJudge(new ScriptedModel(tok, score: Judge), tok, null, "scripted");
        var result = HarnessEvaluator.Evaluate(task, model, tok, batchSize: 3, judge: judge);
        var v0 = result.Samples[0].Verdicts!["answer"];
        Assert.Equal(Sigmoid(3), v0.ModelFirst, 12);
        Assert.Equal(Sigmoid(1), v0.ModelSecond, 12);
        Assert.Equal((Sigmoid(3) + Sigmoid(1)) / 2, result.Samples[0].Metrics["win_rate,answer"], 12);
        Assert.Equal((Sigmoid(3) + Sigmoid(-1)) / 2, result.Samples[0].Metrics["judge_first_position,answer"], 12);
        // equal answers (both polite, both plain): the bias alone decides each order, and cancels: exactly 0.5
        Assert.Equal(0.5, result.Samples[1].Metrics["win_rate,answer"], 12);
        Assert.Equal(0.5, result.Samples[2].Metrics["win_rate,answer"], 12);
        Assert.Equal(Sigmoid(1), result.Samples[2].Metrics["judge_first_position,answer"], 12);
        Assert.Equal(new[] { 1, 0.5, 0.5 }, result.Samples.Select(s => s.Metrics["win_rate_discrete,answer"]));
        Assert.Equal(((Sigmoid(3) + Sigmoid(1)) / 2 + 1) / 3, result.Scores.Single(s => s.Metric == "win_rate,answer").Value, 12);
        Assert.Contains("\"preference\":", result.SampleLines().First());
        // the judge saw the instruction and the two responses, the model's own first
        var prompt = judge.Render("Reply to a gift.", "thanks, I love it", "ok");
        Assert.Contains("Instruction:\nReply to a gift.\n\nResponse 1:\nthanks, I love it\n\nResponse 2:\nok\n\nThe better response is Response", prompt);
    }

    [Fact]
    public void AReplacedJudgePromptIsUsed_AndABadOneIsRefused()
    {
        using var tok = HfTokenizer.Load(Path.Combine(TestPaths.Shared, "tokenizers", "gpt2"));
        var dir = TestPaths.NewTempDir("judge-prompt");
        var file = Path.Combine(dir, "judge.txt");
        File.WriteAllText(file, "Q: {{instruction}}\nA1: {{output_1}}\nA2: {{output_2}}\nBetter:");
        var judge = new PairwiseJudge(new ScriptedModel(tok, score: (_, _) => 0), tok, file, "scripted");
        Assert.Equal("Q: i\nA1: a\nA2: b\nBetter:", judge.Render("i", "a", "b"));
        File.WriteAllText(file, "{{question}} {{output_1}} {{output_2}}");
        var e = Assert.Throws<TemplateException>(() => new PairwiseJudge(new ScriptedModel(tok, score: (_, _) => 0), tok, file, "scripted"));
        Assert.Contains("question", e.Message);
        var noJudge = Assert.Throws<ArgumentException>(() => HarnessEvaluator.Evaluate(
            HarnessTask.Load(Path.Combine(TestPaths.RepoRoot, "evals", "alpaca_eval.yaml"), AlpacaDir("nojudge", ("x", "y"))), new ScriptedModel(tok), tok));
        Assert.Contains("--judge", noJudge.Message);
    }

    /// <summary>
    /// Real weights as the judge: each verdict equals the judge's own unbatched scores of " 1" and " 2" after the
    /// rendered prompt, normalised; and where the model's answer equals the reference the two orders are one prompt,
    /// so the preference is 0.5 (to float32 rounding across batch rows) and judge_first_position is the judge's raw P(1).
    /// </summary>
    [Fact]
    public void ARealWeightsJudgeMatchesItsDirectScoresAndIsExactlyEvenOnEqualAnswers()
    {
        var lm = TrainableModels.Load(StoryTasks.Model, ScalarType.Float32, CPU);
        lm.Host.Module.eval();
        using var tok = HfTokenizer.Load(StoryTasks.Model);
        var judge = new PairwiseJudge(lm, tok, null, "stories260K");
        var items = new[] { ("Tell a story about a cat.", "The cat was happy.", "Once upon a time there was a big dog."), ("Say hi.", "Hi!", "Hi!") };
        var verdicts = judge.Judge(items, batchSize: 3);
        double P1(string a, string b)
        {
            var p = judge.Render("Tell a story about a cat.", a, b);
            var s = lm.ScoreContinuations([lm.Encode(tok, p, " 1")], 1)[0].LogLikelihood;
            var t = lm.ScoreContinuations([lm.Encode(tok, p, " 2")], 1)[0].LogLikelihood;
            return PairwiseJudge.Softmax2(s, t);
        }
        // float32 forwards of different batch shapes agree to about 1e-7 in probability
        Assert.Equal(P1(items[0].Item2, items[0].Item3), verdicts[0].ModelFirst, 1e-5);
        Assert.Equal(1 - P1(items[0].Item3, items[0].Item2), verdicts[0].ModelSecond, 1e-5);
        Assert.Equal(0.5, verdicts[1].Preference, 1e-5);                                  // one prompt in two batch rows: equal up to float32 rounding
        Assert.NotEqual(0.5, verdicts[1].FirstPositionRate);
    }
}
