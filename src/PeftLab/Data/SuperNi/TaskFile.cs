namespace PeftLab.Data.SuperNi;

/// <summary>A worked example from a task's "Positive Examples" or "Negative Examples"; <see cref="Explanation"/> is null when the file has none.</summary>
public sealed record TaskExample(string Input, string Output, string? Explanation);

/// <summary>One task instance; <see cref="Outputs"/> holds every reference answer (scored by taking the maximum).</summary>
public sealed record Instance(string Id, string Input, IReadOnlyList<string> Outputs);

/// <summary>
/// A Super-NaturalInstructions task file (upstream schema). List-valued metadata keep the upstream lists;
/// Tk-Instruct uses <c>Definition[0]</c> and <c>Categories[0]</c>.
/// </summary>
public sealed record TaskFile
{
    /// <summary>Task name: the file name without ".json", e.g. "task1146_country_capital".</summary>
    public required string Name { get; init; }

    /// <summary>The file the task was read from (null when built in memory).</summary>
    public string? SourcePath { get; init; }

    /// <summary>The task instructions; never empty after loading.</summary>
    public required IReadOnlyList<string> Definition { get; init; }

    /// <summary>Task categories; the first is the one used for per-category scores.</summary>
    public IReadOnlyList<string> Categories { get; init; } = [];

    public IReadOnlyList<TaskExample> PositiveExamples { get; init; } = [];
    public IReadOnlyList<TaskExample> NegativeExamples { get; init; } = [];

    /// <summary>Usable instances (each with at least one reference), in file order.</summary>
    public required IReadOnlyList<Instance> Instances { get; init; }

    public IReadOnlyList<string> Contributors { get; init; } = [];
    /// <summary>Upstream "Source" (dataset names).</summary>
    public IReadOnlyList<string> Source { get; init; } = [];
    public IReadOnlyList<string> Url { get; init; } = [];
    public IReadOnlyList<string> Reasoning { get; init; } = [];
    public IReadOnlyList<string> InputLanguage { get; init; } = [];
    public IReadOnlyList<string> OutputLanguage { get; init; } = [];
    public IReadOnlyList<string> InstructionLanguage { get; init; } = [];
    public IReadOnlyList<string> Domains { get; init; } = [];
    public IReadOnlyList<string> InstanceLicense { get; init; } = [];

    /// <summary><c>Categories[0]</c>, or "" when the task has no category.</summary>
    public string Category => Categories.Count > 0 ? Categories[0] : "";
}
