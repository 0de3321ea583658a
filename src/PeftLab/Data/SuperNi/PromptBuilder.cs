using System.Text;

namespace PeftLab.Data.SuperNi;

/// <summary>Which instruction prompt to build.</summary>
public enum PromptFormat
{
    /// <summary>Definition + query only, no examples (the reference study's definition-only setting).</summary>
    DefinitionOnly,

    /// <summary>Tk-Instruct's <c>DataCollatorForNI</c> format: definition, positive/negative examples, query.</summary>
    TkInstruct,
}

/// <summary>Prompt settings; the defaults are Tk-Instruct's standard "def+pos(2)" setting.</summary>
public sealed record PromptConfig
{
    public PromptFormat Format { get; init; } = PromptFormat.TkInstruct;

    /// <summary>Positive examples to try to add (TkInstruct only).</summary>
    public int NumPositiveExamples { get; init; } = 2;

    /// <summary>Negative examples to try to add (TkInstruct only).</summary>
    public int NumNegativeExamples { get; init; }

    /// <summary>Add each example's explanation (TkInstruct only).</summary>
    public bool AddExplanation { get; init; }

    /// <summary>Prefix the source with "&lt;task name&gt;. ".</summary>
    public bool AddTaskName { get; init; }

    /// <summary>Token budget of the source; examples that do not fit are dropped and a longer source is truncated.</summary>
    public int MaxSourceTokens { get; init; } = 1024;

    /// <summary>Training targets are truncated to this many tokens (Tk-Instruct <c>max_target_length</c>); references are kept whole.</summary>
    public int MaxTargetTokens { get; init; } = 128;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Format)) throw new ArgumentException($"unknown prompt format {(int)Format}");
        if (NumPositiveExamples < 0) throw new ArgumentException($"NumPositiveExamples must be >= 0, got {NumPositiveExamples}");
        if (NumNegativeExamples < 0) throw new ArgumentException($"NumNegativeExamples must be >= 0, got {NumNegativeExamples}");
        if (MaxSourceTokens <= 0) throw new ArgumentException($"MaxSourceTokens must be positive, got {MaxSourceTokens}");
        if (MaxTargetTokens <= 0) throw new ArgumentException($"MaxTargetTokens must be positive, got {MaxTargetTokens}");
    }
}

/// <summary>
/// A prompted instance. <see cref="Target"/> is the training target (one reference); <see cref="References"/> are all
/// references, for scoring.
/// </summary>
public sealed record PromptedExample(string TaskName, string InstanceId, string Category, string Source, string Target,
    IReadOnlyList<string> References);

/// <summary>
/// Builds Tk-Instruct style sources, character-exact with <c>DataCollatorForNI</c>:
/// <code>
/// definition = p("Definition: " + Definition[0].strip()) + "\n\n"
/// example_i  = p(" Positive Example {i} -\nInput: " + input.strip()) + "\n" + p(... + " Output: " + output.strip()) + "\n"
///              [+ p(... + " Explanation: " + explanation.strip()) + "\n"] + "\n"
/// query      = p("Now complete the following example -\nInput: " + input.strip()) + "\nOutput: "
/// </code>
/// where p() appends "." when the text built so far does not end in ASCII punctuation.
/// </summary>
public static class PromptBuilder
{
    /// <summary>The source text for one instance.</summary>
    public static string Build(TaskFile task, Instance instance, PromptConfig config, ITokenCounter counter)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(counter);
        config.Validate();
        if (task.Definition.Count == 0)
            throw new ArgumentException($"task '{task.Name}' has no Definition; a SuperNI prompt starts with Definition[0]");
        int max = config.MaxSourceTokens;

        var q = new StringBuilder("Now complete the following example -\nInput: ").Append(PyText.Strip(Bound(instance.Input, max, counter)));
        P(q);
        var query = q.Append("\nOutput: ").ToString();

        var taskName = config.AddTaskName ? task.Name + ". " : "";
        var d = new StringBuilder("Definition: ").Append(PyText.Strip(Bound(task.Definition[0], max, counter)));
        P(d);
        var definition = d.Append("\n\n").ToString();

        var pos = new List<string>();
        var neg = new List<string>();
        if (config.Format == PromptFormat.TkInstruct)
        {
            // The budget checks replicate Tk-Instruct exactly, including its " ".join of the examples kept so far and
            // leaving the task-name prefix out of the count.
            foreach (var (ex, i) in task.PositiveExamples.Take(config.NumPositiveExamples).Select((e, i) => (e, i)))
            {
                var s = Example("Positive", i + 1, ex, config.AddExplanation, t => Bound(t, max, counter));
                if (counter.Count(definition + string.Join(" ", pos) + s + query) <= max) pos.Add(s);
                else break;
            }
            foreach (var (ex, i) in task.NegativeExamples.Take(config.NumNegativeExamples).Select((e, i) => (e, i)))
            {
                var s = Example("Negative", i + 1, ex, config.AddExplanation, t => Bound(t, max, counter));
                if (counter.Count(definition + string.Join(" ", pos) + string.Join(" ", neg) + s + query) <= max) neg.Add(s);
                else break;
            }
        }

        var source = taskName + definition + string.Concat(pos) + string.Concat(neg) + query;
        return counter.Count(source) <= max ? source : counter.TruncateToTokens(source, max);
    }

    /// <summary>
    /// The text cut to what <paramref name="maxTokens"/> tokens can cover (plus a margin), so a huge field costs no
    /// more than the budget it is truncated to: the first <paramref name="maxTokens"/> tokens, all that can survive the
    /// truncation, are those of the whole text.
    /// </summary>
    internal static string Bound(string text, int maxTokens, ITokenCounter counter)
    {
        // the bound below is at least maxTokens + 64 (a token stands for at least one character), so a field this
        // short is never cut, and the counter's bound (a real tokenizer computes it over its whole vocabulary) is not needed
        if (text.Length <= (long)maxTokens + 64) return text;
        long limit = (long)maxTokens * counter.MaxCharsPerToken + 64;
        return text.Length > limit ? text[..(int)limit] : text;
    }

    private static string Example(string kind, int number, TaskExample ex, bool addExplanation, Func<string, string> bound)
    {
        var sb = new StringBuilder($" {kind} Example {number} -\nInput: ").Append(PyText.Strip(bound(ex.Input)));
        P(sb);
        sb.Append("\n Output: ").Append(PyText.Strip(bound(ex.Output)));
        P(sb);
        sb.Append('\n');
        if (addExplanation && ex.Explanation is not null)
        {
            sb.Append(" Explanation: ").Append(PyText.Strip(bound(ex.Explanation)));
            P(sb);
            sb.Append('\n');
        }
        return sb.Append('\n').ToString();
    }

    // Tk-Instruct: `if not s[-1] in string.punctuation: s += "."` on the text accumulated so far.
    private static void P(StringBuilder sb)
    {
        if (sb.Length == 0 || !PyText.IsPunctuation(sb[^1])) sb.Append('.');
    }

    /// <summary>
    /// A training example: the target is one reference drawn with a generator seeded by <paramref name="seed"/> and the
    /// instance id (independent of order), truncated to <see cref="PromptConfig.MaxTargetTokens"/>.
    /// </summary>
    public static PromptedExample BuildTraining(TaskFile task, Instance instance, PromptConfig config, ITokenCounter counter, long seed)
    {
        var source = Build(task, instance, config, counter);
        var pick = instance.Outputs.Count == 1 ? 0 : DeterministicRng.ForStream(seed, "target/" + instance.Id).NextInt(instance.Outputs.Count);
        var target = Bound(instance.Outputs[pick], config.MaxTargetTokens, counter);
        if (counter.Count(target) > config.MaxTargetTokens) target = counter.TruncateToTokens(target, config.MaxTargetTokens);
        return new PromptedExample(task.Name, instance.Id, task.Category, source, target, instance.Outputs);
    }

    /// <summary>An evaluation example: the target is the first reference (for teacher-forced losses); scoring uses all references.</summary>
    public static PromptedExample BuildEvaluation(TaskFile task, Instance instance, PromptConfig config, ITokenCounter counter)
    {
        var source = Build(task, instance, config, counter);
        return new PromptedExample(task.Name, instance.Id, task.Category, source, instance.Outputs[0], instance.Outputs);
    }

    /// <summary><see cref="BuildTraining"/> for every instance, in order.</summary>
    public static IReadOnlyList<PromptedExample> BuildTrainingSet(IEnumerable<TaskInstances> data, PromptConfig config, ITokenCounter counter, long seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        return data.SelectMany(ti => ti.Instances.Select(i => BuildTraining(ti.Task, i, config, counter, seed))).ToList();
    }

    /// <summary><see cref="BuildEvaluation"/> for every instance, in order.</summary>
    public static IReadOnlyList<PromptedExample> BuildEvaluationSet(IEnumerable<TaskInstances> data, PromptConfig config, ITokenCounter counter)
    {
        ArgumentNullException.ThrowIfNull(data);
        return data.SelectMany(ti => ti.Instances.Select(i => BuildEvaluation(ti.Task, i, config, counter))).ToList();
    }
}
