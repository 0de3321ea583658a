namespace PeftLab.Synthetic;

/// <summary>Task categories of the synthetic suite; <see cref="SyntheticCategories.DisplayName"/> gives the SuperNI-style name.</summary>
public enum SyntheticCategory
{
    /// <summary>Letter-level rewrites of one word (reverse, uppercase, remove vowels...).</summary>
    StringTransformation,
    /// <summary>Rewrites of lists of numbers or words (reverse, de-duplicate, filter, map...).</summary>
    ListOperations,
    /// <summary>Integer arithmetic on one number, a pair or a list.</summary>
    Arithmetic,
    /// <summary>Counting letters, vowels, items or items passing a rule.</summary>
    Counting,
    /// <summary>Classification by a rule stated in the definition (yes/no, even/odd).</summary>
    RuleClassification,
    /// <summary>Pulling fields, numbers or names out of a record or a mixed text.</summary>
    Extraction,
    /// <summary>Continuing arithmetic, geometric, Fibonacci, cyclic or letter sequences.</summary>
    PatternCompletion,
    /// <summary>Changing the surface form: commas, brackets, snake/camel case, numbering.</summary>
    Formatting,
    /// <summary>Sorting and picking extremes.</summary>
    ComparisonSorting,
    /// <summary>Mapping through a small table (digit names, Roman numerals, opposites...).</summary>
    LookupMapping,
    /// <summary>Chains of three or more primitives.</summary>
    MultiStepReasoning,
    /// <summary>Outputs of roughly 50-150 characters.</summary>
    LongFormGeneration,
}

/// <summary>Names of <see cref="SyntheticCategory"/> values as written into task files.</summary>
public static class SyntheticCategories
{
    /// <summary>The category name used in the "Categories" field and in splits/categories.tsv.</summary>
    public static string DisplayName(this SyntheticCategory category) => category switch
    {
        SyntheticCategory.StringTransformation => "String Transformation",
        SyntheticCategory.ListOperations => "List Operations",
        SyntheticCategory.Arithmetic => "Arithmetic",
        SyntheticCategory.Counting => "Counting",
        SyntheticCategory.RuleClassification => "Rule-based Classification",
        SyntheticCategory.Extraction => "Extraction",
        SyntheticCategory.PatternCompletion => "Pattern Completion",
        SyntheticCategory.Formatting => "Formatting",
        SyntheticCategory.ComparisonSorting => "Comparison and Sorting",
        SyntheticCategory.LookupMapping => "Lookup and Mapping",
        SyntheticCategory.MultiStepReasoning => "Multi-step Reasoning",
        SyntheticCategory.LongFormGeneration => "Long-form Generation",
        _ => throw new ArgumentOutOfRangeException(nameof(category), category, "unknown synthetic category"),
    };
}

/// <summary>Which split a task belongs to.</summary>
public enum TaskSplit
{
    /// <summary>Listed in splits/train_tasks.txt.</summary>
    Train,
    /// <summary>Listed in splits/test_tasks.txt: a composition of primitives never seen together in training.</summary>
    Test,
}

/// <summary>Options for <see cref="SyntheticSuite"/>. The task list and split do not depend on them; the data does.</summary>
/// <param name="Seed">Seed of every random stream; the same seed and options give byte-identical files.</param>
/// <param name="InstancesPerTask">Instances written per task (1..100000).</param>
/// <param name="PositiveExamplesPerTask">Positive examples per task (2 or 3, like SuperNI).</param>
/// <param name="NegativeExamples">Whether to add one negative example per task where a plausible wrong answer exists.</param>
public sealed record SyntheticSuiteOptions(
    ulong Seed = 20240501,
    int InstancesPerTask = 200,
    int PositiveExamplesPerTask = 2,
    bool NegativeExamples = true)
{
    /// <summary>
    /// The task categories the suite keeps (null or empty: all). A test task is kept only when it is in a kept
    /// category and every primitive it composes occurs in a kept train task, so the compositional split still holds.
    /// A base too small for letter-level rewrites or arithmetic can thus be studied on the families it can learn.
    /// </summary>
    public IReadOnlyList<SyntheticCategory>? Categories { get; init; }

    /// <summary>Whether <see cref="Categories"/> keeps at least one test task (always, when it keeps all).</summary>
    public bool KeepsTestTasks => TaskCatalog.Select(Categories).Any(t => t.Split == TaskSplit.Test);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the offending option.</summary>
    public void Validate()
    {
        if (!KeepsTestTasks)
            throw new ArgumentOutOfRangeException(nameof(Categories), string.Join(", ", Categories ?? []),
                "SyntheticSuiteOptions.Categories keeps no test task whose primitives all occur in the kept train tasks; add categories");
        if (InstancesPerTask is < 1 or > 100_000)
            throw new ArgumentOutOfRangeException(nameof(InstancesPerTask), InstancesPerTask, "SyntheticSuiteOptions.InstancesPerTask must be between 1 and 100000");
        if (PositiveExamplesPerTask is < 2 or > 3)
            throw new ArgumentOutOfRangeException(nameof(PositiveExamplesPerTask), PositiveExamplesPerTask, "SyntheticSuiteOptions.PositiveExamplesPerTask must be 2 or 3");
    }
}

/// <summary>One task of the suite as listed by <see cref="SyntheticSuite.Describe"/>.</summary>
/// <param name="Name">File stem, e.g. "synth001_reverse_letters"; instance ids start with the part before the underscore.</param>
/// <param name="Category">Primary category.</param>
/// <param name="Primitives">Primitive ids in pipeline order (composite steps expanded, repeats removed).</param>
/// <param name="Split">Train or test.</param>
/// <param name="Definition">The natural-language task definition.</param>
public sealed record SyntheticTaskInfo(string Name, SyntheticCategory Category, IReadOnlyList<string> Primitives, TaskSplit Split, string Definition)
{
    /// <summary>The category as written into the task file.</summary>
    public string CategoryName => Category.DisplayName();
}

/// <summary>A demonstration example (input, output and why).</summary>
public sealed record SyntheticExample(string Input, string Output, string Explanation);

/// <summary>One instance: SuperNI-style id, input and one or more correct outputs (the first is canonical).</summary>
public sealed record SyntheticInstance(string Id, string Input, IReadOnlyList<string> Outputs);

/// <summary>A fully generated task.</summary>
public sealed record SyntheticTask(
    SyntheticTaskInfo Info,
    IReadOnlyList<SyntheticExample> PositiveExamples,
    IReadOnlyList<SyntheticExample> NegativeExamples,
    IReadOnlyList<SyntheticInstance> Instances);
