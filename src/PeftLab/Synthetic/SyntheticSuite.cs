using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PeftLab.Synthetic;

/// <summary>
/// A built-in, code-generated suite of small instruction tasks in the SuperNI file layout
/// (<c>tasks/&lt;name&gt;.json</c>, <c>splits/train_tasks.txt</c>, <c>splits/test_tasks.txt</c>), so one loader reads
/// both. Tasks are compositions of shared primitives; test tasks are compositions never seen as a whole in training.
/// Output is byte-identical for the same options.
/// </summary>
public static class SyntheticSuite
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>The task list (name, category, primitives, split, definition) without generating data.</summary>
    public static IReadOnlyList<SyntheticTaskInfo> Describe(SyntheticSuiteOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return TaskCatalog.Select(options.Categories).Select(Info).ToArray();
    }

    /// <summary>Generates every task in memory.</summary>
    public static IReadOnlyList<SyntheticTask> Generate(SyntheticSuiteOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return TaskCatalog.Select(options.Categories).Select(s => TaskGenerator.Generate(s, options, Info(s))).ToArray();
    }

    /// <summary>
    /// Writes the suite under <paramref name="outDir"/>: tasks/*.json, splits/train_tasks.txt, splits/test_tasks.txt,
    /// splits/categories.tsv and README.md. Existing files of the same names are overwritten; other files are left alone.
    /// </summary>
    /// <returns>The task list, as <see cref="Describe"/> gives it.</returns>
    public static IReadOnlyList<SyntheticTaskInfo> Write(string outDir, SyntheticSuiteOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outDir);
        var tasks = Generate(options);
        var tasksDir = Path.Combine(outDir, "tasks");
        var splitsDir = Path.Combine(outDir, "splits");
        Directory.CreateDirectory(tasksDir);
        Directory.CreateDirectory(splitsDir);

        foreach (var task in tasks)
            File.WriteAllBytes(Path.Combine(tasksDir, task.Info.Name + ".json"), TaskJson(task));

        WriteText(Path.Combine(splitsDir, "train_tasks.txt"),
            string.Concat(tasks.Where(t => t.Info.Split == TaskSplit.Train).Select(t => t.Info.Name + "\n")));
        WriteText(Path.Combine(splitsDir, "test_tasks.txt"),
            string.Concat(tasks.Where(t => t.Info.Split == TaskSplit.Test).Select(t => t.Info.Name + "\n")));
        WriteText(Path.Combine(splitsDir, "categories.tsv"),
            "task\tcategory\tprimitives\tsplit\n" + string.Concat(tasks.Select(t =>
                $"{t.Info.Name}\t{t.Info.CategoryName}\t{string.Join(",", t.Info.Primitives)}\t{t.Info.Split.ToString().ToLowerInvariant()}\n")));
        WriteText(Path.Combine(outDir, "README.md"), Readme(tasks, options));
        return tasks.Select(t => t.Info).ToArray();
    }

    private static SyntheticTaskInfo Info(TaskSpec s) => new(s.Name, s.Category, s.Primitives, s.Split, s.Definition);

    private static void WriteText(string path, string text) => File.WriteAllText(path, text, Utf8NoBom);

    /// <summary>SuperNI key order and formatting: 4-space indent, "\n" newlines, UTF-8, no trailing newline.</summary>
    internal static byte[] TaskJson(SyntheticTask task)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions
        {
            Indented = true,
            IndentCharacter = ' ',
            IndentSize = 4,
            NewLine = "\n",
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            var info = task.Info;
            w.WriteStartObject();
            StringArray(w, "Contributors", "PeftLab synthetic task generator");
            StringArray(w, "Source", "peftlab_synthetic");
            StringArray(w, "URL", "generated:peftlab/synthetic/" + info.Name);
            StringArray(w, "Categories", info.CategoryName);
            StringArray(w, "Reasoning", Reasoning(info.Category));
            StringArray(w, "Definition", info.Definition);
            StringArray(w, "Input_language", "English");
            StringArray(w, "Output_language", "English");
            StringArray(w, "Instruction_language", "English");
            StringArray(w, "Domains", "Synthetic");
            Examples(w, "Positive Examples", task.PositiveExamples);
            Examples(w, "Negative Examples", task.NegativeExamples);
            w.WriteStartArray("Instances");
            foreach (var inst in task.Instances)
            {
                w.WriteStartObject();
                w.WriteString("id", inst.Id);
                w.WriteString("input", inst.Input);
                StringArray(w, "output", [.. inst.Outputs]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            StringArray(w, "Instance License", "CC0 1.0 (generated by PeftLab)");
            StringArray(w, "Primitives", [.. info.Primitives]);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static string[] Reasoning(SyntheticCategory c) => c switch
    {
        SyntheticCategory.Arithmetic or SyntheticCategory.Counting => ["Numerical Reasoning"],
        SyntheticCategory.RuleClassification => ["Logical Reasoning"],
        SyntheticCategory.PatternCompletion => ["Inductive Reasoning"],
        SyntheticCategory.MultiStepReasoning => ["Multihop Reasoning"],
        _ => [],
    };

    private static void StringArray(Utf8JsonWriter w, string key, params string[] values)
    {
        w.WriteStartArray(key);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    private static void Examples(Utf8JsonWriter w, string key, IReadOnlyList<SyntheticExample> examples)
    {
        w.WriteStartArray(key);
        foreach (var e in examples)
        {
            w.WriteStartObject();
            w.WriteString("input", e.Input);
            w.WriteString("output", e.Output);
            w.WriteString("explanation", e.Explanation);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static string Readme(IReadOnlyList<SyntheticTask> tasks, SyntheticSuiteOptions o)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        var train = tasks.Count(t => t.Info.Split == TaskSplit.Train);
        var test = tasks.Count - train;
        sb.Append("# PeftLab synthetic instruction suite\n\n");
        sb.Append("Small instruction tasks generated by code (no downloaded text), for tiny models and tests. The files use the\n");
        sb.Append("Super-NaturalInstructions layout and schema, so the SuperNI loader reads them unchanged:\n\n");
        sb.Append("* `tasks/<name>.json` - one task: Contributors, Source, URL, Categories, Reasoning, Definition, Input_language,\n");
        sb.Append("  Output_language, Instruction_language, Domains, Positive Examples, Negative Examples, Instances\n");
        sb.Append("  (`{\"id\", \"input\", \"output\": [references]}`), Instance License, plus an extra key `Primitives`\n");
        sb.Append("  (the primitive operations the task composes, in pipeline order; SuperNI readers ignore it).\n");
        sb.Append("* `splits/train_tasks.txt`, `splits/test_tasks.txt` - one task name per line.\n");
        sb.Append("* `splits/categories.tsv` - task, category, primitives (comma-separated), split.\n\n");
        sb.Append(inv, $"Generated with seed {o.Seed}, {o.InstancesPerTask} instances per task, {o.PositiveExamplesPerTask} positive examples per task");
        sb.Append(o.NegativeExamples ? ", one negative example where a plausible wrong answer exists.\n" : ", no negative examples.\n");
        if (o.Categories is { Count: > 0 } kept)
            sb.Append("Categories kept: ").Append(string.Join(", ", kept.Distinct().Order().Select(c => c.DisplayName())))
              .Append(" (test tasks only where every primitive they compose occurs in a kept train task).\n");
        sb.Append(inv, $"Tasks: {tasks.Count} ({train} train, {test} test); instances: {tasks.Sum(t => t.Instances.Count)}.\n\n");

        sb.Append("## Design\n\n");
        sb.Append("Every task is a pipeline of primitives (reverse the letters, sort, sum, keep the even numbers, map through a table...)\n");
        sb.Append("applied to a generated input. Test tasks are compositions whose set of primitives is not contained in any train task's\n");
        sb.Append("set, while every primitive they use occurs in some train task; unseen-task generalisation is therefore measurable\n");
        sb.Append("at small scale. Inputs are mostly under 80 characters and outputs under 40; the Long-form Generation tasks have\n");
        sb.Append("outputs of about 50-150 characters and the Multi-step Reasoning tasks chain three steps. Text is ASCII only.\n");
        sb.Append("Classification tasks are label-balanced. Inputs are unique within a task where the input space allows (tasks over\n");
        sb.Append("a few possible inputs, such as month numbers, repeat inputs). Instance ids are `synthNNN-<32 hex>`, derived from\n");
        sb.Append("the seed and the task number. Where several answers are correct (ties, spelling variants) all are listed.\n\n");

        sb.Append("## Categories\n\n| category | train | test |\n|---|---|---|\n");
        foreach (var g in tasks.GroupBy(t => t.Info.Category).OrderBy(g => g.Key))
            sb.Append(inv, $"| {g.Key.DisplayName()} | {g.Count(t => t.Info.Split == TaskSplit.Train)} | {g.Count(t => t.Info.Split == TaskSplit.Test)} |\n");

        sb.Append("\n## Tasks\n\n| task | split | category | primitives | example input | example output |\n|---|---|---|---|---|---|\n");
        foreach (var t in tasks)
        {
            var ex = t.PositiveExamples[0];
            sb.Append(inv, $"| {t.Info.Name} | {t.Info.Split.ToString().ToLowerInvariant()} | {t.Info.CategoryName} | {string.Join(", ", t.Info.Primitives)} | `{ex.Input}` | `{ex.Output}` |\n");
        }
        sb.Append("\nInstance License: CC0 1.0 (the data are generated by PeftLab).\n");
        return sb.ToString();
    }
}
