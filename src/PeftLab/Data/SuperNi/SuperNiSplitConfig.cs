namespace PeftLab.Data.SuperNi;

/// <summary>
/// How to cut a loaded SuperNI collection into training, seen-task held-out, validation and test data.
/// All random choices derive from <see cref="Seed"/>.
/// </summary>
public sealed record SuperNiSplitConfig
{
    /// <summary>Seed for every random choice (validation tasks, task order, instance shuffles).</summary>
    public long Seed { get; init; } = 42;

    /// <summary>
    /// Number of training-split tasks held out as validation tasks (drawn with the seed), as the reference study held
    /// out training tasks for model selection. Ignored when <see cref="ValidationTaskNames"/> is set. When both are
    /// unset (0 / null) and a <c>validation_tasks.txt</c> split was loaded, that split is used.
    /// </summary>
    public int ValidationTaskCount { get; init; }

    /// <summary>Explicit validation tasks (must be in the training split); mutually exclusive with a non-zero <see cref="ValidationTaskCount"/>.</summary>
    public IReadOnlyList<string>? ValidationTaskNames { get; init; }

    /// <summary>Training instances per training task (a seeded random sample, as Tk-Instruct's shuffle + first 100).</summary>
    public int TrainInstancesPerTask { get; init; } = 100;

    /// <summary>"Seen-task held-out" instances per training task, disjoint from its training instances (for memorisation checks).</summary>
    public int HeldOutInstancesPerTask { get; init; } = 100;

    /// <summary>Instances per validation task (seeded sample).</summary>
    public int ValidationInstancesPerTask { get; init; } = 100;

    /// <summary>Test instances per test task: the first ones in file order (upstream puts the official evaluation instances first).</summary>
    public int TestInstancesPerTask { get; init; } = 100;

    /// <summary>Number of training tasks to use (a prefix of the seeded task order); null = all.</summary>
    public int? TaskCount { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (TrainInstancesPerTask <= 0) throw new ArgumentException($"TrainInstancesPerTask must be positive, got {TrainInstancesPerTask}");
        if (HeldOutInstancesPerTask < 0) throw new ArgumentException($"HeldOutInstancesPerTask must be >= 0, got {HeldOutInstancesPerTask}");
        if (ValidationInstancesPerTask <= 0) throw new ArgumentException($"ValidationInstancesPerTask must be positive, got {ValidationInstancesPerTask}");
        if (TestInstancesPerTask <= 0) throw new ArgumentException($"TestInstancesPerTask must be positive, got {TestInstancesPerTask}");
        if (ValidationTaskCount < 0) throw new ArgumentException($"ValidationTaskCount must be >= 0, got {ValidationTaskCount}");
        if (ValidationTaskNames is not null && ValidationTaskCount != 0)
            throw new ArgumentException("set either ValidationTaskCount or ValidationTaskNames, not both");
        if (TaskCount is <= 0) throw new ArgumentException($"TaskCount must be positive (or null for all tasks), got {TaskCount}");
    }
}
