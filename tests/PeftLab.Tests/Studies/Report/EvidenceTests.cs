using System.Text.RegularExpressions;
using PeftLab.Studies.Report;
using static PeftLab.Tests.Studies.Report.FindingsTests;

namespace PeftLab.Tests.Studies.Report;

/// <summary>Verdicts from intervals, the baseline everywhere, the answer and the best-setting rule, on studies written to disk.</summary>
public sealed class EvidenceTests
{
    /// <summary>
    /// Noisy per-instance scores of one run: a per-instance difficulty shared by every run (so runs pair), the method's
    /// offset, and run-specific noise of standard deviation <paramref name="noise"/> drawn from <paramref name="runSeed"/>.
    /// </summary>
    private static IReadOnlyList<FakeInstance> Noisy(double mean, double noise, int runSeed, int n = 300)
    {
        var shared = new Random(12345);
        var difficulty = Enumerable.Range(0, n).Select(_ => (shared.NextDouble() - 0.5) * 40).ToArray();
        var centre = difficulty.Average();
        var own = new Random(runSeed);
        var values = difficulty.Select(d => mean + d - centre + noise * Gaussian(own)).ToArray();
        var shift = mean - values.Average(); // make the run's mean exactly `mean`, as result.json reports it
        return values.Select((x, i) => new FakeInstance($"i{i:000}", $"task{i % 30}", i % 2 == 0 ? "Arithmetic" : "Multi-step Reasoning", x + shift)).ToArray();
    }

    private static double Gaussian(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    private static int _runSeed = 1;

    /// <summary>
    /// A study of full, lora, adapter, prefix tuning (3 seeds each) and the untuned baseline, with noisy instances; each
    /// run's held-out (seen-task) score is its test score + 5, plus <paramref name="heldoutGain"/> for the tuned methods.
    /// </summary>
    private static FakeStudy Study(double full, double lora, double adapter, double prefix, double noise, double untuned = 12, double heldoutGain = 0)
    {
        var study = new FakeStudy();
        void Add(string method, double score, int seeds, long trainable, object? cap = null)
        {
            for (int seed = 1; seed <= seeds; seed++)
            {
                var axes = new Dictionary<string, object?> { ["method"] = method, ["seed"] = seed };
                if (method != StudyViewBaseline) axes["lr"] = 1e-4;
                if (cap is int c) axes[method == "lora" ? "lora_r" : "adapter_size"] = c;
                var test = Noisy(score, noise, _runSeed++);
                var heldout = score + 5 + (method == StudyViewBaseline ? 0 : heldoutGain);
                study.Add(axes, new FakeOutcome
                {
                    Test = score, Validation = score, Heldout = heldout, Trainable = trainable, Total = 1_000_000,
                    TestInstances = test, HeldoutInstances = Noisy(heldout, noise, _runSeed++),
                    Categories = test.GroupBy(i => i.Category).ToDictionary(g => g.Key, g => g.Average(i => i.RougeL)),
                });
            }
        }
        Add(StudyViewBaseline, untuned, 1, 1_000_000);
        Add("full", full, 3, 1_000_000);
        Add("lora", lora, 3, 8000, 8);
        Add("adapter", adapter, 3, 9600, 8);
        Add("prefix_tuning", prefix, 3, 5000);
        return study.Save();
    }

    private const string StudyViewBaseline = StudyView.BaselineMethod;

    private static StudyView Load(FakeStudy study) => new(ReportData.Load(study.Dir).Rows);

    [Fact]
    public void BigRealGaps_AreDecided()
    {
        using (var close = Study(full: 40, lora: 39.8, adapter: 39.9, prefix: 20, noise: 6))
        {
            var f = Findings.CheckAll(Load(close))[0];
            Assert.True(f.Verdict == Verdict.Holds, f.Numbers);
            Assert.Matches(@"lora 39\.8 \[\d+\.\d, \d+\.\d\] vs full 40\.0 \[\d+\.\d, \d+\.\d\]; lora − full \+ 2 = \+1\.8 \[\+\d+\.\d, \+\d+\.\d\] → close", f.Numbers);
        }
        using (var far = Study(full: 40, lora: 30, adapter: 39.9, prefix: 20, noise: 6))
        {
            var f = Findings.CheckAll(Load(far))[0];
            Assert.True(f.Verdict == Verdict.DoesNotHold, f.Numbers);
            Assert.Contains("lora − full + 2 = −8.0 [", f.Numbers);
            Assert.Contains("→ not close", f.Numbers);
        }
    }

    [Fact]
    public void TinyGapWithNoisyInstances_IsInconclusive()
    {
        // lora − full + 2 = −0.2: the old raw-difference rule said "not close" (does not hold); the interval straddles 0.
        using var study = Study(full: 40, lora: 37.8, adapter: 39.9, prefix: 20, noise: 12);
        var f = Findings.CheckAll(Load(study))[0];
        Assert.True(f.Verdict == Verdict.Inconclusive, f.Numbers);
        Assert.Matches(@"lora − full \+ 2 = −0\.2 \[−\d+\.\d, \+\d+\.\d\] → inconclusive", f.Numbers);
        Assert.Equal("inconclusive", f.VerdictText);
    }

    [Fact]
    public void TheAnswerSaysFromTheIntervalsWhetherTuningBeatsTheUntunedBase()
    {
        using (var helps = Study(full: 40, lora: 39.5, adapter: 12, prefix: 11.9, noise: 6))
            Has("Tuning helps: 2 of 4 method(s) beat the untuned base with 95% confidence (full +28.0 [", Answer.Of(Load(helps)).Baseline);
        using (var hurts = Study(full: 2, lora: 3, adapter: 2.5, prefix: 1, noise: 2, untuned: 12))
            Has("Tuning does not help here: every method's best setting scores below the untuned base, each interval entirely below 0 (full −10.0 [", Answer.Of(Load(hurts)).Baseline);
        using (var unclear = Study(full: 12.2, lora: 11.9, adapter: 12.1, prefix: 5, noise: 12, untuned: 12))
            Has("Inconclusive whether tuning helps: no method beats the untuned base with 95% confidence", Answer.Of(Load(unclear)).Baseline);
        // why, from the seen tasks' held-out instances: nothing learned at all, or learned without transfer
        using (var unlearned = Study(full: 12.2, lora: 11.9, adapter: 12.1, prefix: 5, noise: 12, untuned: 12))
            Has("Why: tuning does not raise even the training tasks' held-out instances over the untuned base with 95% confidence (full +0.2 [", Answer.Of(Load(unlearned)).Baseline);
        using (var untransferred = Study(full: 12.2, lora: 11.9, adapter: 12.1, prefix: 5, noise: 12, untuned: 12, heldoutGain: 30))
        {
            var text = Answer.Of(Load(untransferred)).Baseline;
            Has("Why: tuning does raise the training tasks' held-out instances over the untuned base (full +30.2 [", text);
            Has("what it learns does not carry over to the unseen ones", text);
        }
        using (var helping = Study(full: 40, lora: 39.5, adapter: 12, prefix: 11.9, noise: 6))
            Assert.DoesNotContain("Why:", Answer.Of(Load(helping)).Baseline);
        static void Has(string expected, string text) => Assert.True(text.Contains(expected, StringComparison.Ordinal), text);
    }

    [Fact]
    public void Report_OpensWithTheAnswer_AndShowsTheBaselineEverywhere()
    {
        using var study = Study(full: 40, lora: 39.5, adapter: 39.8, prefix: 20, noise: 6);
        var output = StudyReport.Write(study.Dir);
        var md = File.ReadAllText(output.MarkdownPath);
        var html = File.ReadAllText(output.HtmlPath);

        // (iv) The answer comes first: recommendation, rule, baseline, resolution, then the findings, then the trial counts.
        Assert.True(md.IndexOf("## Answer", StringComparison.Ordinal) < md.IndexOf("## Findings", StringComparison.Ordinal));
        Assert.True(md.IndexOf("## Findings", StringComparison.Ordinal) < md.IndexOf("### Trials", StringComparison.Ordinal));
        // lora and adapter are within 2 points of the top (full); lora has the fewest trainable parameters per point.
        Assert.Matches(@"\*\*Recommended: lora \(lr 1e-4, lora_r 8\) — test ROUGE-L 39\.5 \[\d+\.\d, \d+\.\d\] over 3 seed\(s\), 8000 trainable parameters \(0\.8% of all\), \+27\.5 \[\+\d+\.\d, \+\d+\.\d\] over the untuned base model\.\*\*", md);
        Assert.Contains("within 2 ROUGE-L points of the top-scoring method (full, 40.0 [", md);
        Assert.Contains("Candidates: full, lora, adapter.", md);
        Assert.Matches(@"Untuned baseline \(the base model with zero training steps, same prompts and decoding\): 12\.0 \[\d+\.\d, \d+\.\d\] test ROUGE-L\.", md);
        Assert.Matches(@"Resolution: ±\d+\.\d ROUGE-L points — differences smaller than ±\d+\.\d points cannot be told apart by this study", md);
        Assert.NotNull(output.Answer.Resolution);
        Assert.InRange(output.Answer.Resolution!.Value, 0.1, 3);
        Assert.Equal("lora", output.Answer.Recommended?.Method);
        Assert.Contains("<h2 id=\"answer\">Answer</h2>", html);
        Assert.Contains("<strong>Recommended: lora (lr 1e-4, lora_r 8)", html);
        Assert.Contains("cannot be told apart by this study", html);

        // (iii) The baseline row: best-setting table, analyses' tables, trial counts; in both documents.
        Assert.Matches(@"\| untuned \| no training \| 1 \| 12\.00 \| 12\.0 \[\d+\.\d, \d+\.\d\] \| \(baseline\) \| −28\.0 \[", md);
        foreach (var id in new[] { "lr_sensitivity", "capacity", "cost", "task_scaling", "memorization", "learning_speed", "stability" })
            Assert.Contains(output.Analyses.Single(a => a.Id == id).Tables[0].Rows, r => r[0] == "untuned");
        Assert.Contains("untuned", output.Analyses.Single(a => a.Id == "categories").Tables[0].Columns);
        Assert.True(Regex.Matches(md, @"^\| untuned \|", RegexOptions.Multiline).Count >= 8);
        Assert.True(Regex.Matches(html, "<tr><td class=\"\">untuned</td>").Count >= 8);
        Assert.Contains("| gain over untuned [95% CI] |", md);
        // Plots: the baseline as a line, intervals as error bars.
        var lr = output.Analyses.Single(a => a.Id == "lr_sensitivity").Plots[0];
        Assert.StartsWith("untuned 12.0 [", Assert.Single(lr.Lines).Name);
        Assert.All(lr.Series.SelectMany(s => s.Points), p => Assert.True(p.Low < p.Y && p.Y < p.High));
        var categories = output.Analyses.Single(a => a.Id == "categories").Plots[0];
        Assert.Contains(categories.Series, s => s.Name == "untuned");
    }

    [Fact]
    public void BestSetting_PrefersMostSeeds_ThenValidation_ThenTest_NeverTheBaseline()
    {
        var rows = new List<TrialRow>
        {
            // One seed with the top validation and test score: a search-stage setting that was not confirmed.
            Row("lora", 1e-3, 8, seed: 1, test: 45, val: 50),
            Row(StudyView.BaselineMethod, test: 60, val: 60),
        };
        // Three seeds each: 1e-4 has the better validation score, 3e-4 the better test score.
        foreach (var seed in new[] { 1, 2, 3 })
            rows.AddRange([Row("lora", 1e-4, 8, seed: seed, test: 38, val: 42), Row("lora", 3e-4, 8, seed: seed, test: 41, val: 40)]);
        var v = new StudyView(rows);
        var best = v.Best("lora")!;
        Assert.Equal((1e-4, 3), (best.Lr, best.SeedCount));
        Assert.Equal(["lora"], v.Methods);
        Assert.Equal([StudyView.BaselineMethod, "lora"], v.TableMethods);
        Assert.Equal(StudyView.BaselineMethod, v.Baseline()!.Method);
        Assert.DoesNotContain(v.Settings.Where(s => s.IsBaseline), s => ReferenceEquals(StudyView.BestOf(v.Settings), s));

        // Without validation scores the tier of most seeds is decided by the test score.
        var noVal = rows.Select(r => r with { BestScore = null }).ToArray();
        Assert.Equal(3e-4, new StudyView(noVal).Best("lora")!.Lr);
    }
}
