using PeftLab.Configuration;
using System.ComponentModel;
using PeftLab.Synthetic;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab data synth</c>.</summary>
public sealed class SynthSettings : GlobalSettings
{
    /// <summary>Output folder.</summary>
    [CommandOption("--out <DIR>")]
    [Description("Folder to write the suite's task files to (SuperNI schema, with splits)")]
    public string? Out { get; init; }

    /// <summary>Seed.</summary>
    [CommandOption("--seed <N>")]
    [Description("Seed of the generated instances (the same seed gives the same files)")]
    [ConfigRange(0, ulong.MaxValue)]
    public ulong Seed { get; init; } = new SyntheticSuiteOptions().Seed;

    /// <summary>Instances per task.</summary>
    [CommandOption("--instances <N>")]
    [Description("Instances generated per task (default 200)")]
    [ConfigRange(1, int.MaxValue)]
    public int Instances { get; init; } = 200;

    /// <summary>The task families kept, comma-separated (null: all).</summary>
    [CommandOption("--categories <LIST>")]
    [Description("Keep only these task families, comma-separated (e.g. list_operations,extraction; default: all twelve); a test task is kept only where every primitive it composes is trained by a kept train task")]
    public string? Categories { get; init; }

    /// <summary>The parsed <see cref="Categories"/>, or null for all.</summary>
    public IReadOnlyList<SyntheticCategory>? CategoryList => Categories?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(c => ConfigEnums.Parse<SyntheticCategory>(c, "--categories")).ToArray();

    /// <summary>Also write the synthetic harness tasks.</summary>
    [CommandOption("--harness")]
    [Description("Also write offline stand-ins of the open-instruction benchmarks as harness task files under DIR/harness (multiple choice, GSM8K-style arithmetic, extractive QA, cloze, Python functions with tests, open prompts with references) for peftlab eval --task")]
    public bool Harness { get; init; }

    /// <summary>Training conversations per stand-in.</summary>
    [CommandOption("--mixture <N>")]
    [Description("With --harness: also write DIR/harness/mixture.jsonl, N chat conversations per stand-in (its prompt, its answer; none equal to a test document) to train on with data.kind chat")]
    [ConfigRange(0, 1_000_000)]
    public int Mixture { get; init; }

    /// <inheritdoc/>
    public override ValidationResult Validate()
    {
        if (Out is null) return ValidationResult.Error("--out DIR is required");
        if (Mixture > 0 && !Harness) return ValidationResult.Error("--mixture goes with --harness");
        try
        {
            if (!new SyntheticSuiteOptions { Categories = CategoryList }.KeepsTestTasks)
                return ValidationResult.Error($"--categories {Categories}: keeps no test task whose primitives all occur in the kept train tasks; add categories");
        }
        catch (ArgumentException e) { return ValidationResult.Error(e.Message); }
        return base.Validate();
    }
}

/// <summary><c>peftlab data synth</c>: writes the built-in synthetic instruction suite in the SuperNI schema.</summary>
public sealed class SynthCommand : Command<SynthSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, SynthSettings s, CancellationToken cancellationToken)
    {
        var tasks = SyntheticSuite.Write(s.Out!, new SyntheticSuiteOptions(s.Seed, s.Instances) { Categories = s.CategoryList });
        var table = new Table().AddColumns("category", "train tasks", "test tasks");
        foreach (var g in tasks.GroupBy(t => t.Category).OrderBy(g => g.Key))
            table.AddRow(g.Key.DisplayName(), g.Count(t => t.Split == TaskSplit.Train).ToString(), g.Count(t => t.Split == TaskSplit.Test).ToString());
        AnsiConsole.Write(table);
        Console.WriteLine($"wrote {tasks.Count} tasks ({tasks.Count(t => t.Split == TaskSplit.Train)} train, {tasks.Count(t => t.Split == TaskSplit.Test)} test) to {s.Out}");
        if (!s.Harness) return 0;
        var harness = HarnessSuite.Write(Path.Combine(s.Out!, "harness"), s.Seed, s.Instances, s.Mixture);
        foreach (var h in harness)
            Console.WriteLine($"harness task {Path.Combine(s.Out!, "harness", h.Name + ".yaml")}: {h.OutputType}, stands in for {h.Stands} ({h.Test} test, {h.Train} train documents)");
        if (s.Mixture > 0) Console.WriteLine($"training mixture {Path.Combine(s.Out!, "harness", HarnessSuite.MixtureFile)}: {s.Mixture} conversations per stand-in");
        return 0;
    }
}

/// <summary>Settings of <c>peftlab data corpus</c>.</summary>
public sealed class CorpusSettings : GlobalSettings
{
    /// <summary>Output file.</summary>
    [CommandOption("--out <FILE>")]
    [Description("Text file to write the pretraining corpus to, one document per line")]
    public string? Out { get; init; }

    /// <summary>Seed.</summary>
    [CommandOption("--seed <N>")]
    [Description("Seed of the generated documents")]
    [ConfigRange(0, ulong.MaxValue)]
    public ulong Seed { get; init; } = new CorpusOptions().Seed;

    /// <summary>Documents.</summary>
    [CommandOption("--documents <N>")]
    [Description("Number of documents in the corpus")]
    [ConfigRange(1, int.MaxValue)]
    public int Documents { get; init; } = new CorpusOptions().Documents;

    /// <inheritdoc/>
    public override ValidationResult Validate() => Out is null ? ValidationResult.Error("--out FILE is required") : base.Validate();
}

/// <summary><c>peftlab data corpus</c>: free-text pretraining corpus from the suite's primitives (disjoint from its tasks).</summary>
public sealed class CorpusCommand : Command<CorpusSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, CorpusSettings s, CancellationToken cancellationToken)
    {
        SyntheticCorpus.Write(s.Out!, new CorpusOptions(s.Seed, s.Documents));
        Console.WriteLine($"wrote {s.Documents} documents to {s.Out}");
        return 0;
    }
}
