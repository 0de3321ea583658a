namespace PeftLab.Data.SuperNi;

/// <summary>What loading found: counts and every non-fatal problem (nothing is skipped without a warning here).</summary>
public sealed record LoadReport(int TaskCount, int InstanceCount, int SkippedInstanceCount, IReadOnlyList<string> Warnings);

/// <summary>Loaded tasks plus the named splits (task name lists) that came with them.</summary>
public sealed class TaskCollection
{
    /// <summary>Split names PeftLab reads from <c>splits/&lt;name&gt;_tasks.txt</c>.</summary>
    public static IReadOnlyList<string> KnownSplits { get; } = ["train", "validation", "test"];

    private readonly Dictionary<string, TaskFile> _tasks;

    /// <summary>Where the tasks came from (for messages); null for in-memory collections.</summary>
    public string? Directory { get; }

    /// <summary>All tasks, ordered by name (ordinal).</summary>
    public IReadOnlyList<TaskFile> Tasks { get; }

    /// <summary>Split name to task names, in split-file order.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Splits { get; }

    public LoadReport Report { get; }

    /// <summary>
    /// Builds a collection; every task named in a split must be present, a task may appear in only one split,
    /// and split names must be known.
    /// </summary>
    public TaskCollection(IEnumerable<TaskFile> tasks, IReadOnlyDictionary<string, IReadOnlyList<string>> splits,
        LoadReport? report = null, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        ArgumentNullException.ThrowIfNull(splits);
        Directory = directory;
        _tasks = new Dictionary<string, TaskFile>(StringComparer.Ordinal);
        foreach (var t in tasks)
            if (!_tasks.TryAdd(t.Name, t)) throw new ArgumentException($"task '{t.Name}' appears twice");
        Tasks = _tasks.Values.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();

        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (split, names) in splits)
        {
            if (!KnownSplits.Contains(split))
                throw new ArgumentException($"unknown split '{split}'; known splits: {string.Join(", ", KnownSplits)}");
            foreach (var n in names)
            {
                if (!_tasks.ContainsKey(n)) throw new ArgumentException($"split '{split}' names task '{n}', which is not loaded");
                if (owner.TryGetValue(n, out var other))
                    throw new ArgumentException($"task '{n}' is in both split '{other}' and split '{split}'");
                owner[n] = split;
            }
        }
        Splits = splits;
        Report = report ?? new LoadReport(Tasks.Count, Tasks.Sum(t => t.Instances.Count), 0, []);
    }

    /// <summary>True when the collection has a split of that name.</summary>
    public bool HasSplit(string name) => Splits.ContainsKey(name);

    /// <summary>The tasks of a split, in split-file order.</summary>
    /// <exception cref="ArgumentException">The split is unknown or was not loaded.</exception>
    public IReadOnlyList<TaskFile> GetSplit(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!Splits.TryGetValue(name, out var names))
        {
            var where = Directory is null ? "" : $" in {Directory}";
            var have = Splits.Count == 0 ? "none" : string.Join(", ", Splits.Keys);
            var hint = KnownSplits.Contains(name)
                ? $"split file splits/{name}_tasks.txt was not found{where}"
                : $"unknown split name; PeftLab knows {string.Join(", ", KnownSplits)}";
            throw new ArgumentException($"split '{name}' is not available ({hint}); loaded splits: {have}");
        }
        return names.Select(n => _tasks[n]).ToList();
    }

    /// <summary>A task by name.</summary>
    public TaskFile GetTask(string name) =>
        _tasks.TryGetValue(name, out var t) ? t
            : throw new KeyNotFoundException($"task '{name}' is not loaded{(Directory is null ? "" : " from " + Directory)}");

    /// <summary>True when a task of that name is loaded.</summary>
    public bool Contains(string name) => _tasks.ContainsKey(name);
}
