using PeftLab.Data;
using PeftLab.Data.SuperNi;

namespace PeftLab.Tests.Data;

public sealed class SuperNiSplitTests
{
    private static TaskCollection C => SuperNiLoaderTests.Subset.Value;

    private static IEnumerable<string> Ids(IEnumerable<TaskInstances> sets) => sets.SelectMany(s => s.Instances.Select(i => i.Id));

    [Fact]
    public void SplitMix64MatchesReferenceValues()
    {
        var rng = new DeterministicRng(0);
        Assert.Equal(0xE220A8397B1DCDAFUL, rng.NextUInt64());
        Assert.Equal(0x6E789E6AA1B965F4UL, rng.NextUInt64());
        Assert.Equal(0x06C45D188009454FUL, rng.NextUInt64());
        Assert.Equal(0xCBF29CE484222325UL, DeterministicRng.StableHash(""));
        Assert.Equal(0xAF63DC4C8601EC8CUL, DeterministicRng.StableHash("a"));
        var p = DeterministicRng.ForStream(7, "x").Permutation(50);
        Assert.Equal(Enumerable.Range(0, 50), p.Order());
        Assert.Equal(p, DeterministicRng.ForStream(7, "x").Permutation(50));
        Assert.NotEqual(p, DeterministicRng.ForStream(7, "y").Permutation(50));
    }

    [Fact]
    public void DefaultSplitIsDeterministicAndDisjoint()
    {
        var cfg = new SuperNiSplitConfig { Seed = 123, ValidationTaskCount = 5 };
        var a = SuperNiSplits.Build(C, cfg);
        var b = SuperNiSplits.Build(C, cfg);
        Assert.Equal(Ids(a.Train), Ids(b.Train));
        Assert.Equal(Ids(a.HeldOut), Ids(b.HeldOut));
        Assert.Equal(Ids(a.Validation), Ids(b.Validation));
        Assert.Equal(a.TrainTaskOrder.Select(t => t.Name), b.TrainTaskOrder.Select(t => t.Name));

        Assert.Equal(55, a.Train.Count);
        Assert.Equal(5, a.Validation.Count);
        Assert.Equal(14, a.Test.Count);
        var trainNames = a.Train.Select(t => t.Task.Name).ToHashSet();
        Assert.All(a.Validation, v => Assert.DoesNotContain(v.Task.Name, trainNames));
        Assert.All(a.Validation, v => Assert.Contains(C.GetSplit("train"), t => t.Name == v.Task.Name));
        Assert.All(a.Validation, v => Assert.Equal(100, v.Instances.Count));

        // Per task: 100 training instances, the remaining ones held out, disjoint and all from the task.
        foreach (var (tr, ho) in a.Train.Zip(a.HeldOut))
        {
            Assert.Same(tr.Task, ho.Task);
            Assert.Equal(Math.Min(100, tr.Task.Instances.Count), tr.Instances.Count);
            Assert.Equal(tr.Task.Instances.Count - tr.Instances.Count, ho.Instances.Count);
            Assert.Empty(tr.Instances.Select(i => i.Id).Intersect(ho.Instances.Select(i => i.Id)));
            Assert.Equal(tr.Instances.Count, tr.Instances.Select(i => i.Id).Distinct().Count());
            Assert.Subset(tr.Task.Instances.ToHashSet(), tr.Instances.Concat(ho.Instances).ToHashSet());
        }
        // A random sample, not the first 100.
        Assert.Contains(a.Train, tr => !tr.Instances.Select(i => i.Id).SequenceEqual(tr.Task.Instances.Take(100).Select(i => i.Id)));
        Assert.Contains(a.Warnings, w => w.Contains("held-out"));

        // Test: first 100 instances of each test task, in split-file order.
        Assert.Equal(C.GetSplit("test").Select(t => t.Name), a.Test.Select(t => t.Task.Name));
        Assert.All(a.Test, t => Assert.Equal(t.Task.Instances.Take(100), t.Instances));

        var other = SuperNiSplits.Build(C, cfg with { Seed = 124 });
        Assert.NotEqual(Ids(a.Train), Ids(other.Train));
    }

    [Fact]
    public void ASplitSeedPinsTheTasksAndHeldOutInstancesAcrossTrainingSeeds()
    {
        var data = new PeftLab.Training.DataSection { ValidationTasks = 5, TrainInstancesPerTask = 20, HeldOutInstancesPerTask = 8, TaskCount = 10 };
        Assert.Equal(42, data.SplitConfig(42).Seed);                       // unset: the training seed, as before
        var pinned = data with { SplitSeed = 7 };
        var (a, b) = (SuperNiSplits.Build(C, pinned.SplitConfig(42)), SuperNiSplits.Build(C, pinned.SplitConfig(43)));
        Assert.Equal(Ids(a.HeldOut), Ids(b.HeldOut));
        Assert.Equal(Ids(a.Train), Ids(b.Train));
        Assert.Equal(Ids(a.Validation), Ids(b.Validation));
        var unpinned = SuperNiSplits.Build(C, data.SplitConfig(43));       // the training seed picks other tasks and instances
        Assert.NotEqual(Ids(a.HeldOut), Ids(unpinned.HeldOut));
    }

    [Fact]
    public void NestedSubsetsArePrefixesAndKeepInstanceChoice()
    {
        var split = SuperNiSplits.Build(C, new SuperNiSplitConfig { Seed = 9, HeldOutInstancesPerTask = 10 });
        var subsets = split.NestedSubsets([8, 32, 16, 60]);
        Assert.Equal([8, 32, 16, 60], subsets.Select(s => s.TaskCount));
        var s8 = subsets[0].Train.Select(t => t.Task.Name).ToList();
        var s16 = subsets[2].Train.Select(t => t.Task.Name).ToList();
        var s32 = subsets[1].Train.Select(t => t.Task.Name).ToList();
        Assert.Equal(8, s8.Distinct().Count());
        Assert.Equal(s8, s16.Take(8));
        Assert.Equal(s16, s32.Take(16));
        Assert.Equal(split.TrainTaskOrder.Select(t => t.Name), subsets[3].Train.Select(t => t.Task.Name));
        Assert.Equal(60, split.Train.Count);
        // task1665 has exactly 100 instances upstream, so nothing is left to hold out.
        Assert.Equal("1 training task(s) have fewer than 10 instances left for the seen-task held-out set (count in brackets): task1665_trainglecopa_question_generation (0)",
            Assert.Single(split.Warnings));

        // A task's instances are the same in every subset and with a different TaskCount.
        var small = SuperNiSplits.Build(C, new SuperNiSplitConfig { Seed = 9, HeldOutInstancesPerTask = 10, TaskCount = 8 });
        Assert.Equal(s8, small.Train.Select(t => t.Task.Name));
        Assert.Equal(Ids(subsets[0].Train), Ids(small.Train));
        Assert.Equal(Ids(subsets[0].HeldOut), Ids(small.HeldOut));
        Assert.Equal(Ids(subsets[0].Train), Ids(subsets[1].Train.Take(8)));

        Assert.Throws<ArgumentOutOfRangeException>(() => split.NestedSubsets([61]));
        Assert.Throws<ArgumentOutOfRangeException>(() => split.NestedSubsets([0]));
    }

    [Fact]
    public void ExplicitValidationTasksAndBadConfigs()
    {
        var names = new[] { "task1146_country_capital", "task1147_country_currency" };
        var split = SuperNiSplits.Build(C, new SuperNiSplitConfig { ValidationTaskNames = names });
        Assert.Equal(names, split.Validation.Select(v => v.Task.Name));
        Assert.DoesNotContain(split.TrainTaskOrder, t => names.Contains(t.Name));
        Assert.Equal(58, split.TrainTaskOrder.Count);

        var e = Assert.Throws<ArgumentException>(() => SuperNiSplits.Build(C, new SuperNiSplitConfig { ValidationTaskNames = ["task1612_sick_label_classification"] }));
        Assert.Contains("'task1612_sick_label_classification' is not in the training split", e.Message);
        e = Assert.Throws<ArgumentException>(() => SuperNiSplits.Build(C, new SuperNiSplitConfig { ValidationTaskCount = 2, ValidationTaskNames = names }));
        Assert.Contains("not both", e.Message);
        e = Assert.Throws<ArgumentException>(() => SuperNiSplits.Build(C, new SuperNiSplitConfig { TaskCount = 61 }));
        Assert.Contains("TaskCount 61 exceeds the 60", e.Message);
        e = Assert.Throws<ArgumentException>(() => SuperNiSplits.Build(C, new SuperNiSplitConfig { TrainInstancesPerTask = 0 }));
        Assert.Contains("TrainInstancesPerTask", e.Message);
    }

    [Fact]
    public void ValidationSplitFileIsUsedWhenPresent()
    {
        var t = (string n) => new TaskFile
        {
            Name = n, Definition = ["d"], Categories = ["c"],
            Instances = Enumerable.Range(0, 5).Select(i => new Instance($"{n}-{i}", $"in{i}", [$"out{i}"])).ToList(),
        };
        var splits = new Dictionary<string, IReadOnlyList<string>>
        {
            ["train"] = ["a", "b", "c"], ["validation"] = ["v"], ["test"] = ["z"],
        };
        var coll = new TaskCollection(new[] { "a", "b", "c", "v", "z" }.Select(t), splits);
        var split = SuperNiSplits.Build(coll, new SuperNiSplitConfig { TrainInstancesPerTask = 3, HeldOutInstancesPerTask = 2, ValidationInstancesPerTask = 4, TestInstancesPerTask = 5 });
        Assert.Equal("v", Assert.Single(split.Validation).Task.Name);
        Assert.Equal(4, split.Validation[0].Instances.Count);
        Assert.Equal(3, split.Train.Count);
        Assert.Empty(split.Warnings);
        var e = Assert.Throws<ArgumentException>(() => SuperNiSplits.Build(coll, new SuperNiSplitConfig { ValidationTaskCount = 1 }));
        Assert.Contains("validation split file was also loaded", e.Message);

        var shortCfg = new SuperNiSplitConfig { TrainInstancesPerTask = 4, HeldOutInstancesPerTask = 2, ValidationInstancesPerTask = 4, TestInstancesPerTask = 6 };
        var shortSplit = SuperNiSplits.Build(coll, shortCfg);
        Assert.Contains(shortSplit.Warnings, w => w.StartsWith("3 training task(s) have fewer than 2 instances left"));
        Assert.Contains(shortSplit.Warnings, w => w.StartsWith("1 test task(s) have fewer than 6"));
    }
}
