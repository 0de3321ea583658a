using System.Globalization;
using PeftLab.Configuration;

namespace PeftLab.Evaluation.Harness;

/// <summary>
/// A loaded harness task: its spec, where it came from, and its templates compiled. What a document's prompt, target
/// and choices are follows the harness: a field name stands for the field, anything else is a template.
/// </summary>
public sealed class HarnessTask
{
    /// <summary>The file's keys, as bound.</summary>
    public HarnessTaskSpec Spec { get; }
    /// <summary>The task file.</summary>
    public string File { get; }
    /// <summary>The task's name: <c>task</c>, or the file's name.</summary>
    public string Name { get; }
    /// <summary>The folder relative paths are read from (the task file's).</summary>
    public string Folder { get; }
    /// <summary>The local dataset folder or file (<c>dataset_path</c>, or the override it was loaded with).</summary>
    public string? DatasetPath { get; }

    private readonly DocTemplate text, target;
    private readonly DocTemplate? description;
    private readonly IReadOnlyList<DocTemplate>? choiceList;
    private readonly DocTemplate? choiceTemplate;

    private HarnessTask(HarnessTaskSpec spec, string file, string? datasetPath)
    {
        Spec = spec;
        File = file;
        Folder = Path.GetDirectoryName(Path.GetFullPath(file))!;
        Name = spec.Task ?? Path.GetFileNameWithoutExtension(file);
        DatasetPath = datasetPath;
        text = Compile("doc_to_text", spec.DocToText!);
        target = Compile("doc_to_target", spec.DocToTarget!);
        if (spec.Description is { } d) description = Compile("description", d);
        switch (spec.DocToChoice)
        {
            case ConfigSequence s:
                choiceList = s.Items.Select((n, i) => n is ConfigScalar { Value: { } v } ? Compile($"doc_to_choice.{i}", v)
                    : throw Error($"doc_to_choice.{i}: expected text, got {n.Describe()}", n.Position)).ToArray();
                break;
            case ConfigScalar { Value: { } v }: choiceTemplate = Compile("doc_to_choice", v); break;
            case null: break;
            case var other: throw Error($"doc_to_choice: expected a list or a template, got {other.Describe()}", other.Position);
        }
        DocTemplate Compile(string key, string source)
        {
            try { return DocTemplate.Parse(source); }
            catch (TemplateException e) { throw new ConfigException([new ConfigError(key, e.Message, new SourcePosition(file, 0, 0))]); }
        }
    }

    private static ConfigException Error(string message, SourcePosition at) => new([new ConfigError("", message, at)]);

    /// <summary>
    /// Reads a task file. <paramref name="datasetPath"/>, when given, replaces the file's <c>dataset_path</c> (the
    /// user's local copy of a hub dataset).
    /// </summary>
    /// <exception cref="ConfigException">An unknown key (with its line), a Python function (<c>!function</c>), a missing required key, a bad template.</exception>
    public static HarnessTask Load(string file, string? datasetPath = null)
    {
        if (!System.IO.File.Exists(file)) throw new FileNotFoundException($"task file '{file}' does not exist", file);
        var root = LoadWithIncludes(Path.GetFullPath(file), []);
        ConfigBinder.RegisterRawNodes();
        var spec = ConfigBinder.Bind<HarnessTaskSpec>(root);
        var dataset = datasetPath ?? spec.DatasetPath;
        return new HarnessTask(spec, file, dataset);
    }

    /// <summary>What replaces the harness's own code tasks' Python functions in PeftLab's subset.</summary>
    private static string FunctionAdvice(string line) =>
        line.Contains("pass_at_", StringComparison.Ordinal) ? "write 'metric: pass_at_k' with 'k: [1, 10]' (PeftLab runs the tests in its sandbox)"
        : line.Contains("build_predictions", StringComparison.Ordinal) ? "write the filter step as 'function: prepend_prompt' (HumanEval) or 'function: extract_code' (MBPP)"
        : line.Contains("list_fewshot_samples", StringComparison.Ordinal) ? "write the examples under fewshot_config.samples as a YAML list"
        : "write the field as a template ({{ field }})";

    private static ConfigNode LoadWithIncludes(string file, HashSet<string> seen)
    {
        if (!seen.Add(file)) throw Error($"include: '{file}' includes itself", new SourcePosition(file, 0, 0));
        var lines = System.IO.File.ReadAllLines(file);
        for (int i = 0; i < lines.Length; i++)
            if (lines[i].Contains("!function", StringComparison.Ordinal) && !lines[i].TrimStart().StartsWith('#'))
                throw Error($"'{lines[i].Trim()}': a Python function (!function) cannot run in PeftLab; {FunctionAdvice(lines[i])}",
                    new SourcePosition(file, i + 1, lines[i].IndexOf('!') + 1));
        var node = ConfigNode.Load(file);
        if (node is ConfigScalar { IsNull: true }) node = new ConfigMapping([], node.Position);
        if (node is not ConfigMapping m) throw Error($"a task file is a mapping of keys, got {node.Describe()}", node.Position);
        if (m.Find("include") is not { } inc) return m;
        if (inc.Value is not ConfigScalar { Value: { } name }) throw Error("include: expected a file name", inc.KeyPosition);
        var included = Path.Combine(Path.GetDirectoryName(file)!, name);
        if (!System.IO.File.Exists(included)) throw Error($"include: '{name}' does not exist beside the task file ({included})", inc.KeyPosition);
        var merged = (ConfigMapping)LoadWithIncludes(included, seen);
        foreach (var e in m.Entries.Where(e => e.Key != "include")) merged = merged.With(e.Key, e.Value, e.KeyPosition);
        return merged;
    }

    // --- what a document asks ---------------------------------------------------------------------------------------

    /// <summary>The prompt of <paramref name="doc"/>.</summary>
    public string Text(IReadOnlyDictionary<string, object?> doc) => DocTemplate.Str(FieldOrTemplate(text, doc));

    /// <summary>The description placed before the few-shot examples ("" when none).</summary>
    public string Description(IReadOnlyDictionary<string, object?> doc) => description is null ? "" : description.Render(doc);

    /// <summary>The choices of <paramref name="doc"/> (multiple choice).</summary>
    /// <exception cref="TemplateException">The template does not give a list of texts.</exception>
    public IReadOnlyList<string> Choices(IReadOnlyDictionary<string, object?> doc)
    {
        if (choiceList is not null) return choiceList.Select(t => DocTemplate.Str(FieldOrTemplate(t, doc))).ToArray();
        var value = FieldOrTemplate(choiceTemplate ?? throw new InvalidOperationException("no doc_to_choice"), doc);
        return value is IReadOnlyList<object?> list ? list.Select(DocTemplate.Str).ToArray()
            : throw new TemplateException($"doc_to_choice \"{choiceTemplate.Source}\" gave {DocTemplate.Repr(value)}, not a list of choices");
    }

    /// <summary>The target as text (loglikelihood; few-shot answers of generation tasks).</summary>
    public string TargetText(IReadOnlyDictionary<string, object?> doc) => DocTemplate.Str(FieldOrTemplate(target, doc));

    /// <summary>
    /// The index of the right choice: an integer target (or a text of digits) indexes <paramref name="choices"/>, any
    /// other text must be one of them.
    /// </summary>
    /// <exception cref="TemplateException">The target is out of range or not among the choices.</exception>
    public int TargetIndex(IReadOnlyDictionary<string, object?> doc, IReadOnlyList<string> choices)
    {
        var value = FieldOrTemplate(target, doc);
        long? index = value switch
        {
            long n => n,
            string s when s.Trim().Length > 0 && s.Trim().All(char.IsAsciiDigit) => long.Parse(s.Trim(), CultureInfo.InvariantCulture),
            _ => null,
        };
        if (index is { } k)
            return k >= 0 && k < choices.Count ? (int)k
                : throw new TemplateException($"doc_to_target \"{target.Source}\" gave index {k}, but there are {choices.Count} choices");
        var textValue = DocTemplate.Str(value);
        int at = choices.ToList().IndexOf(textValue);
        return at >= 0 ? at : throw new TemplateException($"doc_to_target \"{target.Source}\" gave {DocTemplate.Repr(textValue)}, which is not one of the choices {DocTemplate.Str(choices.Cast<object?>().ToList())}");
    }

    /// <summary>The harness's rule: a template that is exactly a field's name stands for that field.</summary>
    private static object? FieldOrTemplate(DocTemplate t, IReadOnlyDictionary<string, object?> doc) =>
        doc.TryGetValue(t.Source, out var field) ? field : t.Evaluate(doc);

    /// <summary>The judge prompt file of a win_rate task (<c>judge_prompt</c>, relative to the task file), or null for the built-in prompt.</summary>
    public string? JudgePromptFile => Spec.JudgePrompt is { } p ? Path.Combine(Folder, p) : null;

    /// <summary>The split scored: <c>test_split</c>, else <c>validation_split</c>.</summary>
    public string ScoredSplit => Spec.TestSplit ?? Spec.ValidationSplit!;

    /// <summary>Where few-shot examples come from: <c>fewshot_split</c>, else the training, else the validation split.</summary>
    public string? FewshotSplit => Spec.FewshotSplit ?? Spec.TrainingSplit ?? (Spec.TestSplit is not null ? Spec.ValidationSplit : null);
}
