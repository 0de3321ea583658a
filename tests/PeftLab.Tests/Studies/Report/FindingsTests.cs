using PeftLab.Studies;
using PeftLab.Studies.Report;

namespace PeftLab.Tests.Studies.Report;

public sealed class FindingsTests
{
    private static int _next;

    /// <summary>
    /// A finished trial row built in memory (findings are pure functions of rows). Unless <paramref name="instances"/> is
    /// given, its per-instance test scores are 20 instances all at <paramref name="test"/> (10 per category at the
    /// category's score when <paramref name="cats"/> is given), and its held-out ones 20 at <paramref name="heldout"/>:
    /// no instance noise, so an interval only reflects the spread across seeds.
    /// </summary>
    internal static TrialRow Row(string method, double lr = 1e-4, int? cap = null, int? tasks = 64, int seed = 1, double? test = 40,
        double? heldout = null, bool diverged = false, int spikes = 0, int? steps80 = null, IReadOnlyDictionary<string, double>? cats = null, string? model = null,
        double? val = null, IReadOnlyDictionary<string, InstanceScore>? instances = null) => new()
    {
        Id = (_next++).ToString("x12"),
        Method = method,
        Lr = method == StudyView.BaselineMethod ? null : lr,
        Capacity = cap,
        CapacityAxis = ReportData.CapacityKnobs.TryGetValue(method, out var k) ? k.Axis : null,
        Model = model,
        TaskCount = tasks,
        Seed = seed,
        State = diverged ? TrialState.Diverged : TrialState.Done,
        HasResult = true,
        Diverged = diverged,
        TestRougeL = diverged ? null : test,
        HeldoutRougeL = diverged ? null : heldout,
        BestScore = diverged ? null : val,
        TestInstances = diverged || test is null ? null : instances ?? (cats is null ? Constant("i", test.Value) : ByCategory(cats)),
        HeldoutInstances = diverged || heldout is null ? null : Constant("h", heldout.Value),
        SpikeCount = spikes,
        StepsTo80 = steps80,
        TestCategories = (cats ?? new Dictionary<string, double>()).ToDictionary(kv => kv.Key, kv => new CategoryScore(kv.Value, null, kv.Value, 10)),
    };

    private static Dictionary<string, InstanceScore> Constant(string prefix, double score) =>
        Enumerable.Range(0, 20).ToDictionary(i => $"{prefix}{i}", i => new InstanceScore($"task{i % 4}", "Arithmetic", score, 0));

    private static Dictionary<string, InstanceScore> ByCategory(IReadOnlyDictionary<string, double> cats) =>
        cats.OrderBy(c => c.Key, StringComparer.Ordinal).SelectMany(c => Enumerable.Range(0, 10).Select(i => (Id: $"{c.Key}{i}", Score: new InstanceScore($"{c.Key}-task", c.Key, c.Value, 0))))
            .ToDictionary(x => x.Id, x => x.Score);

    /// <summary>
    /// Per-instance scores: <paramref name="n"/> instances (ids i0..), <paramref name="mean"/> plus a pseudo-random
    /// pattern of ±<paramref name="noise"/> fixed by <paramref name="pattern"/> (the same pattern pairs perfectly).
    /// </summary>
    internal static Dictionary<string, InstanceScore> Noisy(double mean, double noise, int pattern, int n = 200)
    {
        var rng = new Random(pattern);
        var signs = Enumerable.Range(0, n).Select(i => i < n / 2 ? 1.0 : -1.0).OrderBy(_ => rng.Next()).ToArray();
        return Enumerable.Range(0, n).ToDictionary(i => $"i{i}", i => new InstanceScore($"task{i % 10}", "Arithmetic", mean + noise * signs[i], 0));
    }

    [Fact]
    public void FourValuedLogic()
    {
        Assert.Equal(Verdict.Holds, Findings.And([Verdict.Holds, Verdict.Holds]));
        Assert.Equal(Verdict.DoesNotHold, Findings.And([Verdict.NotEnoughData, Verdict.Inconclusive, Verdict.DoesNotHold]));
        Assert.Equal(Verdict.Inconclusive, Findings.And([Verdict.Holds, Verdict.NotEnoughData, Verdict.Inconclusive]));
        Assert.Equal(Verdict.NotEnoughData, Findings.And([Verdict.Holds, Verdict.NotEnoughData]));
        Assert.Equal(Verdict.Holds, Findings.Or([Verdict.NotEnoughData, Verdict.Inconclusive, Verdict.Holds]));
        Assert.Equal(Verdict.Inconclusive, Findings.Or([Verdict.DoesNotHold, Verdict.NotEnoughData, Verdict.Inconclusive]));
        Assert.Equal(Verdict.NotEnoughData, Findings.Or([Verdict.DoesNotHold, Verdict.NotEnoughData]));
        Assert.Equal(Verdict.DoesNotHold, Findings.Or([Verdict.DoesNotHold]));
        Assert.Equal(Verdict.DoesNotHold, Findings.Not(Verdict.Holds));
        Assert.Equal(Verdict.Inconclusive, Findings.Not(Verdict.Inconclusive));
        Assert.Equal("inconclusive", Findings.Text(Verdict.Inconclusive));
    }

    [Fact]
    public void Decide_ByWhereTheIntervalLies()
    {
        Assert.Equal(Verdict.Holds, Findings.Decide(new Interval(1, 0, 2)));
        Assert.Equal(Verdict.Inconclusive, Findings.Decide(new Interval(1, 0, 2), strict: true));
        Assert.Equal(Verdict.DoesNotHold, Findings.Decide(new Interval(-1, -2, -0.1)));
        Assert.Equal(Verdict.DoesNotHold, Findings.Decide(new Interval(-1, -2, 0), strict: true));
        Assert.Equal(Verdict.Inconclusive, Findings.Decide(new Interval(0.5, -1, 2)));
        Assert.Equal(Verdict.NotEnoughData, Findings.Decide(null));
    }

    // --- (a) close to full finetuning ---

    private static TrialRow[] Bests(double full, double lora, double adapter, double prefix) =>
        [Row("full", 1e-5, test: full), Row("lora", cap: 8, test: lora), Row("adapter", cap: 8, test: adapter), Row("prefix_tuning", test: prefix),
         Row("lora", lr: 1e-3, cap: 8, test: lora - 10)];

    [Fact]
    public void CloseToFull_Holds()
    {
        var f = Findings.CloseToFull(Bests(40, 39, 38.5, 20));
        Assert.Equal(Verdict.Holds, f.Verdict);
        Assert.Contains("lora 39.0 [39.0, 39.0] vs full 40.0 [40.0, 40.0]; lora − full + 2 = +1.0 [+1.0, +1.0] → close", f.Numbers);
        Assert.Contains("prefix_tuning 20.0 [20.0, 20.0]; prefix_tuning − full + 2 = −18.0 [−18.0, −18.0] → not close", f.Numbers);
    }

    [Fact]
    public void CloseToFull_DoesNotHold_WhenLoraFallsShort_OrAnotherMethodIsClose()
    {
        Assert.Equal(Verdict.DoesNotHold, Findings.CloseToFull(Bests(40, 30, 38.5, 20)).Verdict);
        Assert.Equal(Verdict.DoesNotHold, Findings.CloseToFull(Bests(40, 39, 38.5, 39.5)).Verdict);
    }

    [Fact]
    public void CloseToFull_NotEnoughData_WithoutFullOrWithoutContrast()
    {
        Assert.Equal(Verdict.NotEnoughData, Findings.CloseToFull(Bests(40, 39, 38.5, 20).Where(r => r.Method != "full").ToArray()).Verdict);
        var noOthers = Findings.CloseToFull(Bests(40, 39, 38.5, 20).Where(r => r.Method != "prefix_tuning").ToArray());
        Assert.Equal(Verdict.NotEnoughData, noOthers.Verdict);
        Assert.Contains("no other method", noOthers.Numbers);
    }

    [Fact]
    public void CloseToFull_ThresholdsDecide()
    {
        var rows = Bests(40, 37, 37.5, 20);
        Assert.Equal(Verdict.DoesNotHold, Findings.CloseToFull(rows).Verdict); // 3 points > default 2.0
        Assert.Equal(Verdict.Holds, Findings.CloseToFull(rows, new FindingThresholds { CloseToFullPoints = 3.5 }).Verdict);
        Assert.Equal(Verdict.Holds, Findings.CloseToFull(rows, new FindingThresholds { CloseToFullRatio = 0.9 }).Verdict); // 37 >= 36
    }

    // --- (b) best setting: learning rate, largest size, more tasks ---

    private static List<TrialRow> SettingGrid(double smallCapBonus = 0, double fewTaskBonus = 0, bool oneLr = false)
    {
        var rows = new List<TrialRow>();
        foreach (var m in new[] { "lora", "adapter" })
        {
            foreach (var lr in oneLr ? [1e-4] : new[] { 1e-5, 1e-4, 1e-3 })
                foreach (var cap in new[] { 8, 64 })
                    rows.Add(Row(m, lr, cap, test: 40 - (lr == 1e-4 ? 0 : 6) - (cap == 8 ? 2 - smallCapBonus : 0)));
            rows.Add(Row(m, 1e-4, 64, tasks: 8, test: 34 + fewTaskBonus));
        }
        return rows;
    }

    [Fact]
    public void BestSetting_Holds()
    {
        var f = Findings.BestSetting(SettingGrid());
        Assert.Equal(Verdict.Holds, f.Verdict);
        Assert.Contains("lora by lr: 1e-5 34.0 [34.0, 34.0], 1e-4 40.0 [40.0, 40.0], 1e-3 34.0 [34.0, 34.0]; lr 1e-4 − lr 1e-5 − 2 = +4.0 [+4.0, +4.0] → holds", f.Numbers);
        Assert.Contains("lora largest size 64: 40.0 [40.0, 40.0]", f.Numbers);
        Assert.Contains("lora 8 → 64 tasks: 34.0 [34.0, 34.0] → 40.0 [40.0, 40.0]; 64 tasks − 8 tasks − 1 = +5.0 [+5.0, +5.0] → holds", f.Numbers);
    }

    [Fact]
    public void BestSetting_DoesNotHold_WhenSmallerRankWinsOrFewerTasksWin()
    {
        Assert.Equal(Verdict.DoesNotHold, Findings.BestSetting(SettingGrid(smallCapBonus: 4)).Verdict);
        Assert.Equal(Verdict.DoesNotHold, Findings.BestSetting(SettingGrid(fewTaskBonus: 10)).Verdict);
    }

    [Fact]
    public void BestSetting_NotEnoughData_WithOneLearningRate()
    {
        var f = Findings.BestSetting(SettingGrid(oneLr: true));
        Assert.Equal(Verdict.NotEnoughData, f.Verdict);
        Assert.Contains("lora: one learning rate", f.Numbers);
    }

    // --- (c) instability away from the best setting ---

    private static List<TrialRow> StabilityGrid(bool unstable)
    {
        var rows = new List<TrialRow>();
        foreach (var m in new[] { "lora", "adapter" })
            foreach (var seed in new[] { 1, 2 })
            {
                rows.Add(Row(m, 1e-4, 64, seed: seed, test: 40 + (seed == 1 ? 0.1 : -0.1)));
                rows.Add(Row(m, 1e-3, 64, seed: seed, test: 30 + (seed == 1 ? 0.1 : -0.1), diverged: unstable && seed == 1, spikes: unstable ? 2 : 0));
            }
        return rows;
    }

    [Fact]
    public void Instability_Holds_WhenOffBestRunsDivergeOrSpike()
    {
        var f = Findings.Instability(StabilityGrid(unstable: true));
        Assert.Equal(Verdict.Holds, f.Verdict);
        Assert.Contains("lora: unstable share off-best 100% (2/2) vs best 0%", f.Numbers);
    }

    /// <summary>Every setting with <paramref name="seeds"/> seeds; off-best lr 1e-5 alternates 35 / 29 across seeds.</summary>
    private static List<TrialRow> SpreadGrid(int seeds)
    {
        var rows = new List<TrialRow>();
        foreach (var m in new[] { "lora", "adapter" })
            for (int seed = 1; seed <= seeds; seed++)
            {
                double jitter = seed % 2 == 1 ? 0.1 : -0.1;
                rows.AddRange([Row(m, 1e-4, 64, seed: seed, test: 40 + jitter), Row(m, 1e-3, 64, seed: seed, test: 30 + jitter),
                               Row(m, 1e-5, 64, seed: seed, test: seed % 2 == 1 ? 35 : 29)]);
            }
        return rows;
    }

    [Fact]
    public void Instability_OnSeedSpreadAlone_HoldsWithEightSeeds_InconclusiveWithTwo()
    {
        // Old rule (point stds): two seeds of 35 / 29 were enough. Bootstrapping two seeds redraws both equal half the
        // time, so a spread from two seeds cannot be told from none.
        var two = Findings.Instability(SpreadGrid(2));
        Assert.Equal(Verdict.Inconclusive, two.Verdict);
        Assert.Contains("(bootstrap over seeds) → inconclusive", two.Numbers);
        Assert.Equal(Verdict.Holds, Findings.Instability(SpreadGrid(8)).Verdict);
    }

    [Fact]
    public void Instability_DoesNotHold_WhenStableEverywhere()
    {
        var f = Findings.Instability(StabilityGrid(unstable: false));
        Assert.Equal(Verdict.DoesNotHold, f.Verdict);
    }

    [Fact]
    public void Instability_NotEnoughData_WithOneSettingOrOneSeed()
    {
        Assert.Equal(Verdict.NotEnoughData, Findings.Instability([Row("lora", cap: 8), Row("adapter", cap: 8)]).Verdict);
        // One seed: no spread, and the share rule alone does not refute the finding.
        var oneSeed = StabilityGrid(unstable: false).Where(r => r.Seed == 1).ToArray();
        Assert.Equal(Verdict.NotEnoughData, Findings.Instability(oneSeed).Verdict);
    }

    // --- (d) LoRA needs more tasks and learns more slowly ---

    /// <summary>Two seeds per setting: steps to 80% need a spread over seeds for an interval.</summary>
    private static TrialRow[] TaskRows(double loraFew, int loraSteps, int seeds = 2) =>
        Enumerable.Range(1, seeds).SelectMany(seed => new[]
        {
            Row("full", tasks: 8, seed: seed, test: 38, steps80: 100), Row("full", tasks: 64, seed: seed, test: 40, steps80: 100),
            Row("lora", tasks: 8, seed: seed, test: loraFew, steps80: loraSteps), Row("lora", tasks: 64, seed: seed, test: 39, steps80: loraSteps),
        }).ToArray();

    [Fact]
    public void TasksAndSpeed_Holds()
    {
        var f = Findings.TasksAndSpeed(TaskRows(loraFew: 33, loraSteps: 250));
        Assert.Equal(Verdict.Holds, f.Verdict);
        Assert.Contains("lora gains 6.00 (33.0 [33.0, 33.0] → 39.0 [39.0, 39.0]), full gains 2.00 (38.0 [38.0, 38.0] → 40.0 [40.0, 40.0]); lora gain − full gain = +4.0 [+4.0, +4.0] → holds", f.Numbers);
        Assert.Contains("steps to 80%: lora 250, full 100; lora − full = +150.0 [+150.0, +150.0] steps", f.Numbers);
    }

    [Fact]
    public void TasksAndSpeed_StepsNeedTwoSeeds()
    {
        var f = Findings.TasksAndSpeed(TaskRows(loraFew: 33, loraSteps: 250, seeds: 1));
        Assert.Equal(Verdict.NotEnoughData, f.Verdict);
        Assert.Contains("needs ≥ 2 seeds each", f.Numbers);
    }

    [Fact]
    public void TasksAndSpeed_DoesNotHold_WhenLoraLearnsFaster()
    {
        Assert.Equal(Verdict.DoesNotHold, Findings.TasksAndSpeed(TaskRows(loraFew: 33, loraSteps: 50)).Verdict);
        Assert.Equal(Verdict.DoesNotHold, Findings.TasksAndSpeed(TaskRows(loraFew: 38.5, loraSteps: 250)).Verdict);
    }

    [Fact]
    public void TasksAndSpeed_NotEnoughData_WithOneTaskCount()
    {
        var rows = TaskRows(33, 250).Where(r => r.TaskCount == 64).ToArray();
        var f = Findings.TasksAndSpeed(rows);
        Assert.Equal(Verdict.NotEnoughData, f.Verdict);
        Assert.Contains("fewer than two training-task counts", f.Numbers);
    }

    // --- (e) memorization ---

    [Fact]
    public void Memorization_HoldsDoesNotHoldNotEnoughData()
    {
        var holds = Findings.Memorization([Row("full", test: 40, heldout: 55), Row("lora", test: 39, heldout: 44)]);
        Assert.Equal(Verdict.Holds, holds.Verdict);
        Assert.Contains("lora held-out 44.0 [44.0, 44.0] − test 39.0 [39.0, 39.0] = +5.0 [+5.0, +5.0]", holds.Numbers);
        Assert.Equal(Verdict.DoesNotHold, Findings.Memorization([Row("full", test: 40, heldout: 45), Row("lora", test: 39, heldout: 50)]).Verdict);
        Assert.Equal(Verdict.NotEnoughData, Findings.Memorization([Row("full", test: 40), Row("lora", test: 39)]).Verdict);
    }

    // --- (f) hard categories ---

    private static TrialRow[] CategoryRows(double loraHard, double adapterHard, string hardName = "Multi-step Reasoning") =>
    [
        Row("full", test: 40, cats: new Dictionary<string, double> { ["Arithmetic"] = 50, [hardName] = 30 }),
        Row("lora", test: 39, cats: new Dictionary<string, double> { ["Arithmetic"] = 50, [hardName] = loraHard }),
        Row("adapter", test: 38, cats: new Dictionary<string, double> { ["Arithmetic"] = 50, [hardName] = adapterHard }),
    ];

    [Fact]
    public void HardCategories_Holds()
    {
        var f = Findings.HardCategories(CategoryRows(25, 22));
        Assert.Equal(Verdict.Holds, f.Verdict);
        Assert.Contains("hard categories: Multi-step Reasoning; full 30.0 [30.0, 30.0]", f.Numbers);
        Assert.Contains("lora − adapter = +3.0 [+3.0, +3.0] → holds", f.Numbers);
    }

    [Fact]
    public void HardCategories_DoesNotHold_WhenAdapterBeatsLoraOrMatchesFull()
    {
        Assert.Equal(Verdict.DoesNotHold, Findings.HardCategories(CategoryRows(22, 25)).Verdict);
        Assert.Equal(Verdict.DoesNotHold, Findings.HardCategories(CategoryRows(30, 22, "Long-form Generation")).Verdict);
    }

    [Fact]
    public void HardCategories_NotEnoughData_WithoutHardCategories()
    {
        var f = Findings.HardCategories(CategoryRows(25, 22, "Counting"));
        Assert.Equal(Verdict.NotEnoughData, f.Verdict);
        Assert.Contains("no hard category", f.Numbers);
    }

    [Fact]
    public void AllFindings_NotEnoughData_OnNoRows()
    {
        var all = Findings.CheckAll([]);
        Assert.Equal(["a", "b", "c", "d", "e", "f"], all.Select(f => f.Id));
        Assert.All(all, f => Assert.Equal(Verdict.NotEnoughData, f.Verdict));
    }
}
