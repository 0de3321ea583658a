using PeftLab.Studies.Report;

namespace PeftLab.Tests.Studies.Report;

public sealed class BootstrapTests
{
    /// <summary>One run: instance id → score, ids i000.. in order.</summary>
    private static IReadOnlyDictionary<string, double> Run(IEnumerable<double> scores) =>
        scores.Select((x, i) => (x, i)).ToDictionary(p => $"i{p.i:000}", p => p.x);

    /// <summary>n outcomes of 0/100 with exactly round(p·n) successes, spread evenly.</summary>
    private static double[] Bernoulli(int n, double p) =>
        Enumerable.Range(0, n).Select(i => Math.Floor((i + 1) * p) > Math.Floor(i * p) ? 100.0 : 0.0).ToArray();

    [Fact]
    public void MeanOfBernoulliOutcomes_MatchesTheNormalInterval()
    {
        const int n = 400;
        const double p = 0.3;
        var scores = Bernoulli(n, p);
        Assert.Equal(120, scores.Count(x => x == 100));
        var ci = Bootstrap.Mean([Run(scores)])!;
        double half = 100 * 1.96 * Math.Sqrt(p * (1 - p) / n); // 4.49 points
        Assert.Equal(30, ci.Estimate, 9);
        Assert.InRange(ci.Lower, 30 - half - 0.6, 30 - half + 0.6);
        Assert.InRange(ci.Upper, 30 + half - 0.6, 30 + half + 0.6);
    }

    [Fact]
    public void IdenticalSettings_DifferByExactlyZero()
    {
        var a = Run(Bernoulli(200, 0.4).Select((x, i) => x * 0.5 + i % 7));
        var d = Bootstrap.Difference([a], [a])!;
        Assert.Equal((0.0, 0.0, 0.0), (d.Estimate, d.Lower, d.Upper));
    }

    [Fact]
    public void ConstantShift_GivesExactlyTheShift()
    {
        var a = Bernoulli(300, 0.35).Select((x, i) => x * 0.6 + i % 11).ToArray();
        var d = Bootstrap.Difference([Run(a.Select(x => x + 10))], [Run(a)])!;
        Assert.Equal(10, d.Estimate, 9);
        Assert.Equal(10, d.Lower, 9);
        Assert.Equal(10, d.Upper, 9);
    }

    [Fact]
    public void IndependentBernoulliRuns_DifferenceHasTheTwoSampleWidth()
    {
        // Exactly independent outcomes: 36 both, 84 only A, 84 only B, 196 neither (p = 0.3 each, n = 400).
        var a = new List<double>();
        var b = new List<double>();
        foreach (var (count, x, y) in new[] { (36, 100.0, 100.0), (84, 100.0, 0.0), (84, 0.0, 100.0), (196, 0.0, 0.0) })
            for (int i = 0; i < count; i++) { a.Add(x); b.Add(y); }
        // Interleave so the order of ids carries no pattern.
        var order = Enumerable.Range(0, 400).OrderBy(i => (i * 7919) % 400).ToArray();
        var d = Bootstrap.Difference([Run(order.Select(i => a[i]))], [Run(order.Select(i => b[i]))])!;
        double half = 100 * 1.96 * Math.Sqrt(2 * 0.3 * 0.7 / 400); // 6.35 points
        Assert.Equal(0, d.Estimate, 9);
        Assert.InRange(d.HalfWidth, half - 0.6, half + 0.6);
        Assert.InRange(d.Lower, -half - 0.8, -half + 0.8);
        Assert.InRange(d.Upper, half - 0.8, half + 0.8);
    }

    [Fact]
    public void SeedsAreResampled()
    {
        // Two runs at constant 40 and 44: the replicate mean is 40, 42 or 44 with probability 1/4, 1/2, 1/4.
        var ci = Bootstrap.Mean([Run(Enumerable.Repeat(40.0, 50)), Run(Enumerable.Repeat(44.0, 50))])!;
        Assert.Equal((42.0, 40.0, 44.0), (ci.Estimate, ci.Lower, ci.Upper));
    }

    [Fact]
    public void Deterministic_ForASeed_AndIndependentOfDictionaryOrder()
    {
        var run = Run(Bernoulli(300, 0.45).Select((x, i) => 0.7 * x + (i * 13) % 17)); // not discrete: quantiles move with the draws
        var reversed = run.Reverse().ToDictionary(kv => kv.Key, kv => kv.Value);
        var first = Bootstrap.Mean([run]);
        Assert.Equal(first, Bootstrap.Mean([run]));
        Assert.Equal(first, Bootstrap.Mean([reversed]));
        var other = Bootstrap.Mean([run], new BootstrapOptions { Seed = 7 })!;
        Assert.NotEqual(first, other);
        Assert.Equal(first!.Estimate, other.Estimate);
        Assert.InRange(other.Lower - first.Lower, -0.8, 0.8); // slightly different, not another answer
    }

    [Fact]
    public void PairsOnlyTheCommonInstances_AndNeedsSome()
    {
        var a = Run([10, 20, 30, 40]);
        var b = new Dictionary<string, double> { ["i001"] = 20, ["i002"] = 30, ["x"] = 99 };
        var d = Bootstrap.Difference([a], [b])!;
        Assert.Equal((0.0, 0.0, 0.0), (d.Estimate, d.Lower, d.Upper));
        Assert.Null(Bootstrap.Difference([a], [new Dictionary<string, double> { ["x"] = 1 }]));
        Assert.Null(Bootstrap.Mean([]));
    }

    [Fact]
    public void ThresholdHelpers_ScaleAndShiftTheSecondSetting()
    {
        var a = Run(Enumerable.Repeat(38.0, 30));
        var b = Run(Enumerable.Repeat(40.0, 30));
        Assert.Equal(0, Bootstrap.Difference([a], [b], scaleB: 0.95)!.Lower, 9); // 38 − 0.95·40 = 0
        Assert.Equal(-1, Bootstrap.Difference([a], [b], shift: 1)!.Upper, 9);  // 38 − 40 + 1
    }

    [Fact]
    public void TaskLevelResampling_IsWiderWhenInstancesOfATaskAgree()
    {
        // 20 tasks × 20 instances; every instance of a task has the task's score, so the 400 instances carry only 20
        // independent values.
        var scores = new Dictionary<string, double>();
        var taskOf = new Dictionary<string, string>();
        for (int t = 0; t < 20; t++)
            for (int i = 0; i < 20; i++)
            {
                scores[$"t{t}-{i}"] = (t * 37) % 100;
                taskOf[$"t{t}-{i}"] = $"task{t}";
            }
        var byInstance = Bootstrap.Mean([scores], taskOf: taskOf)!;
        var byTask = Bootstrap.Mean([scores], new BootstrapOptions { Unit = BootstrapUnit.Task }, taskOf)!;
        Assert.Equal(byInstance.Estimate, byTask.Estimate, 9);
        Assert.True(byTask.HalfWidth > 3 * byInstance.HalfWidth, $"task ±{byTask.HalfWidth} vs instance ±{byInstance.HalfWidth}");
    }

    [Fact]
    public void Combine_PairsTheTermsOfAGroup_AndChecksTheirRunCounts()
    {
        // A setting's held-out minus test gap: the same two runs on two splits. Run 2 is 4 points better on both, so the
        // gap does not depend on which runs are drawn.
        IReadOnlyDictionary<string, double>[] test = [Run(Enumerable.Repeat(30.0, 20)), Run(Enumerable.Repeat(34.0, 20))];
        IReadOnlyDictionary<string, double>[] heldout = [Run(Enumerable.Repeat(40.0, 20)), Run(Enumerable.Repeat(44.0, 20))];
        var gap = Bootstrap.Combine([new BootstrapTerm(1, "s", "heldout", heldout), new BootstrapTerm(-1, "s", "test", test)])!;
        Assert.Equal((10.0, 10.0, 10.0), (gap.Estimate, gap.Lower, gap.Upper));
        Assert.Throws<ArgumentException>(() => Bootstrap.Combine([new BootstrapTerm(1, "s", "heldout", heldout), new BootstrapTerm(-1, "s", "test", test[..1])]));
    }

    [Fact]
    public void OverRuns_ResamplesEachGroup()
    {
        var d = Bootstrap.OverRuns([[250, 250], [100, 100]], g => g[0].Average() - g[1].Average())!;
        Assert.Equal((150.0, 150.0, 150.0), (d.Estimate, d.Lower, d.Upper));
        var spread = Bootstrap.OverRuns([[1, 2, 3, 4, 5, 6]], g => g[0].Average())!;
        Assert.Equal(3.5, spread.Estimate);
        Assert.True(spread.Lower < 3.5 && spread.Upper > 3.5);
        Assert.Null(Bootstrap.OverRuns([[1.0], []], g => 0));
    }
}
