namespace PeftLab.Data.SuperNi;

/// <summary>A task with the instances chosen for one purpose.</summary>
public sealed record TaskInstances(TaskFile Task, IReadOnlyList<Instance> Instances);

/// <summary>The first <see cref="TaskCount"/> training tasks of the seeded order, with their training and held-out instances.</summary>
public sealed record TaskSubset(int TaskCount, IReadOnlyList<TaskInstances> Train, IReadOnlyList<TaskInstances> HeldOut);

/// <summary>
/// The result of <see cref="SuperNiSplits.Build"/>. A task's instance choice depends only on the seed and the task
/// name, so a task has the same training and held-out instances in every subset it belongs to.
/// </summary>
public sealed class SuperNiSplit
{
    private readonly Dictionary<string, (IReadOnlyList<Instance> Train, IReadOnlyList<Instance> HeldOut)> _perTask;

    public SuperNiSplitConfig Config { get; }

    /// <summary>All training tasks (validation tasks removed) in the seeded order; subsets are prefixes of it.</summary>
    public IReadOnlyList<TaskFile> TrainTaskOrder { get; }

    /// <summary>Training instances of the selected tasks (<see cref="SuperNiSplitConfig.TaskCount"/> prefix), in task order.</summary>
    public IReadOnlyList<TaskInstances> Train { get; }

    /// <summary>Seen-task held-out instances of the same tasks as <see cref="Train"/>, disjoint from them.</summary>
    public IReadOnlyList<TaskInstances> HeldOut { get; }

    /// <summary>Validation tasks and their instances (empty when no validation tasks were asked for).</summary>
    public IReadOnlyList<TaskInstances> Validation { get; }

    /// <summary>Test tasks in split-file order with their first instances.</summary>
    public IReadOnlyList<TaskInstances> Test { get; }

    /// <summary>Shortfalls (tasks with fewer instances than asked for) and where validation tasks came from.</summary>
    public IReadOnlyList<string> Warnings { get; }

    internal SuperNiSplit(SuperNiSplitConfig config, IReadOnlyList<TaskFile> order,
        Dictionary<string, (IReadOnlyList<Instance>, IReadOnlyList<Instance>)> perTask,
        IReadOnlyList<TaskInstances> validation, IReadOnlyList<TaskInstances> test, IReadOnlyList<string> warnings)
    {
        Config = config;
        TrainTaskOrder = order;
        _perTask = perTask;
        Validation = validation;
        Test = test;
        Warnings = warnings;
        var selected = Subset(config.TaskCount ?? order.Count);
        Train = selected.Train;
        HeldOut = selected.HeldOut;
    }

    /// <summary>The first <paramref name="taskCount"/> tasks of <see cref="TrainTaskOrder"/>.</summary>
    public TaskSubset Subset(int taskCount)
    {
        if (taskCount <= 0 || taskCount > TrainTaskOrder.Count)
            throw new ArgumentOutOfRangeException(nameof(taskCount), taskCount,
                $"task count must be between 1 and the {TrainTaskOrder.Count} available training tasks");
        var tasks = TrainTaskOrder.Take(taskCount).ToList();
        return new TaskSubset(taskCount,
            tasks.Select(t => new TaskInstances(t, _perTask[t.Name].Train)).ToList(),
            tasks.Select(t => new TaskInstances(t, _perTask[t.Name].HeldOut)).ToList());
    }

    /// <summary>
    /// Nested task-count subsets: for counts a &lt; b the subset for a is contained in the subset for b (both are
    /// prefixes of one seeded permutation). Results are returned in the order of <paramref name="counts"/>.
    /// </summary>
    public IReadOnlyList<TaskSubset> NestedSubsets(IReadOnlyList<int> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (counts.Count == 0) throw new ArgumentException("give at least one task count", nameof(counts));
        return counts.Select(Subset).ToList();
    }
}

/// <summary>Builds deterministic SuperNI splits.</summary>
public static class SuperNiSplits
{
    /// <summary>
    /// Cuts <paramref name="collection"/> (which needs "train" and "test" splits) as <paramref name="config"/> says:
    /// validation tasks are drawn from the training split (or named, or read from a validation split file), the rest
    /// are ordered by one seeded permutation; per training task a seeded shuffle gives the first N instances for
    /// training and the next M as held-out; each test task contributes its first instances.
    /// </summary>
    public static SuperNiSplit Build(TaskCollection collection, SuperNiSplitConfig config)
    {
        ArgumentNullException.ThrowIfNull(collection);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var warnings = new List<string>();
        var train = collection.GetSplit("train").ToList();
        var test = collection.GetSplit("test");

        // Validation tasks.
        List<TaskFile> validationTasks;
        if (config.ValidationTaskNames is { } names)
        {
            if (collection.HasSplit("validation"))
                throw new ArgumentException("ValidationTaskNames is set but a validation split file was also loaded; use one or the other");
            var trainNames = train.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            validationTasks = [];
            foreach (var n in names)
            {
                if (!trainNames.Contains(n))
                    throw new ArgumentException($"validation task '{n}' is not in the training split");
                if (validationTasks.Any(t => t.Name == n)) throw new ArgumentException($"validation task '{n}' is listed twice");
                validationTasks.Add(collection.GetTask(n));
            }
        }
        else if (config.ValidationTaskCount > 0)
        {
            if (collection.HasSplit("validation"))
                throw new ArgumentException("ValidationTaskCount is set but a validation split file was also loaded; use one or the other");
            if (config.ValidationTaskCount >= train.Count)
                throw new ArgumentException($"ValidationTaskCount {config.ValidationTaskCount} leaves no training tasks (the training split has {train.Count})");
            var perm = DeterministicRng.ForStream(config.Seed, "validation-tasks").Permutation(train.Count);
            validationTasks = perm.Take(config.ValidationTaskCount).Select(i => train[i]).ToList();
        }
        else
        {
            validationTasks = collection.HasSplit("validation") ? collection.GetSplit("validation").ToList() : [];
        }
        var validationNames = validationTasks.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var pool = train.Where(t => !validationNames.Contains(t.Name)).ToList();
        if (config.TaskCount is { } tc && tc > pool.Count)
            throw new ArgumentException($"TaskCount {tc} exceeds the {pool.Count} available training tasks");

        // One permutation of the training pool; every subset is a prefix of it, hence nested.
        var orderIdx = DeterministicRng.ForStream(config.Seed, "task-order").Permutation(pool.Count);
        var order = orderIdx.Select(i => pool[i]).ToList();

        var perTask = new Dictionary<string, (IReadOnlyList<Instance>, IReadOnlyList<Instance>)>(StringComparer.Ordinal);
        var shortTrain = new List<string>();
        var shortHeld = new List<string>();
        foreach (var t in order)
        {
            var shuffled = Shuffled(t, config.Seed);
            var tr = shuffled.Take(config.TrainInstancesPerTask).ToList();
            var ho = shuffled.Skip(tr.Count).Take(config.HeldOutInstancesPerTask).ToList();
            if (tr.Count < config.TrainInstancesPerTask) shortTrain.Add($"{t.Name} ({tr.Count})");
            if (ho.Count < config.HeldOutInstancesPerTask) shortHeld.Add($"{t.Name} ({ho.Count})");
            perTask[t.Name] = (tr, ho);
        }
        if (shortTrain.Count > 0)
            warnings.Add($"{shortTrain.Count} training task(s) have fewer than {config.TrainInstancesPerTask} instances; all of theirs are used for training and none is held out: {string.Join(", ", shortTrain)}");
        if (shortHeld.Count > 0)
            warnings.Add($"{shortHeld.Count} training task(s) have fewer than {config.HeldOutInstancesPerTask} instances left for the seen-task held-out set (count in brackets): {string.Join(", ", shortHeld)}");

        var validation = new List<TaskInstances>();
        var shortVal = new List<string>();
        foreach (var t in validationTasks)
        {
            var v = Shuffled(t, config.Seed).Take(config.ValidationInstancesPerTask).ToList();
            if (v.Count < config.ValidationInstancesPerTask) shortVal.Add($"{t.Name} ({v.Count})");
            validation.Add(new TaskInstances(t, v));
        }
        if (shortVal.Count > 0)
            warnings.Add($"{shortVal.Count} validation task(s) have fewer than {config.ValidationInstancesPerTask} instances: {string.Join(", ", shortVal)}");

        var testSets = new List<TaskInstances>();
        var shortTest = new List<string>();
        foreach (var t in test)
        {
            var v = t.Instances.Take(config.TestInstancesPerTask).ToList();
            if (v.Count < config.TestInstancesPerTask) shortTest.Add($"{t.Name} ({v.Count})");
            testSets.Add(new TaskInstances(t, v));
        }
        if (shortTest.Count > 0)
            warnings.Add($"{shortTest.Count} test task(s) have fewer than {config.TestInstancesPerTask} instances: {string.Join(", ", shortTest)}");

        return new SuperNiSplit(config, order, perTask, validation, testSets, warnings);
    }

    // The per-task stream depends only on seed and task name, so adding or removing other tasks changes nothing here.
    private static List<Instance> Shuffled(TaskFile task, long seed)
    {
        var list = task.Instances.ToList();
        DeterministicRng.ForStream(seed, "instances/" + task.Name).Shuffle(list);
        return list;
    }
}
