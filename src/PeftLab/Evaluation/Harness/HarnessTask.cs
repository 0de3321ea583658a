using PeftLab.Configuration;

namespace PeftLab.Evaluation.Harness;

/// <summary>How a harness task asks the model (lm-evaluation-harness's <c>output_type</c>).</summary>
public enum HarnessOutputType
{
    /// <summary>Each choice's log-likelihood as a continuation of the prompt; the most likely is the answer (acc, acc_norm).</summary>
    MultipleChoice,
    /// <summary>The log-likelihood of the target as a continuation of the prompt (perplexity; acc = the target is the greedy continuation).</summary>
    Loglikelihood,
    /// <summary>Greedy generation up to a stop sequence, passed through each filter pipeline and compared with the target (exact_match, f1).</summary>
    GenerateUntil,
}

/// <summary>How few-shot examples are drawn (<c>fewshot_config.sampler</c>).</summary>
public enum FewshotSampler
{
    /// <summary>A seeded random draw from the few-shot split (seed 1234, as the harness; the draw itself is PeftLab's, not Python's).</summary>
    Default,
    /// <summary>The first <c>num_fewshot</c> documents of the few-shot split, in order (MMLU's dev examples).</summary>
    FirstN,
}

/// <summary><c>fewshot_config</c>: the sampler, or the examples themselves.</summary>
public sealed record FewshotSection
{
    /// <summary>Which documents become the few-shot examples.</summary>
    public FewshotSampler Sampler { get; init; } = FewshotSampler.Default;
    /// <summary>The few-shot documents written in the task file (a list of mappings), instead of a split (e.g. chain-of-thought exemplars).</summary>
    public ConfigSequence? Samples { get; init; }
}

/// <summary>What one filter step does to a generated answer (lm-evaluation-harness's filter functions).</summary>
public enum HarnessFilterFunction
{
    /// <summary>Python's <c>re.findall</c> of <c>regex_pattern</c>; the match at <c>group_select</c> (negative from the end; a match with several groups gives its first non-empty one), stripped; <c>fallback</c> when nothing matches.</summary>
    Regex,
    /// <summary>The first of the answers (PeftLab generates one answer per document, so it keeps it).</summary>
    TakeFirst,
    /// <summary>Lower case.</summary>
    Lowercase,
    /// <summary>Upper case.</summary>
    Uppercase,
    /// <summary>One leading space removed (the harness's remove_whitespace).</summary>
    RemoveWhitespace,
    /// <summary>
    /// HumanEval's <c>utils.build_predictions</c>: the document's prompt (the function's signature and docstring)
    /// followed by the completion, a leading <c>```python</c> line removed, so the program is the whole function.
    /// </summary>
    PrependPrompt,
    /// <summary>
    /// MBPP's <c>utils.build_predictions</c>: the first fenced code block of the answer (the answer as it is when it
    /// has none), after <c>from __future__ import annotations</c>.
    /// </summary>
    ExtractCode,
}

/// <summary>One step of a filter pipeline.</summary>
public sealed record HarnessFilterStep : IValidatable
{
    /// <summary>The filter function.</summary>
    public HarnessFilterFunction Function { get; init; } = HarnessFilterFunction.TakeFirst;
    /// <summary>The pattern of a regex filter (.NET syntax, which agrees with Python's for the harness's patterns).</summary>
    public string? RegexPattern { get; init; }
    /// <summary>Which match a regex filter keeps: 0 the first, -1 the last.</summary>
    public int GroupSelect { get; init; }
    /// <summary>What a regex filter gives when nothing matches.</summary>
    public string Fallback { get; init; } = "[invalid]";

    /// <inheritdoc/>
    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (Function == HarnessFilterFunction.Regex && RegexPattern is null) yield return ("regex_pattern", "is required for function regex");
        if (RegexPattern is { } p)
        {
            string? error = null;
            try { _ = new System.Text.RegularExpressions.Regex(p); }
            catch (ArgumentException e) { error = e.Message; }
            if (error is not null) yield return ("regex_pattern", $"'{p}' is not a valid pattern: {error}");
        }
    }
}

/// <summary>A named filter pipeline of a generate_until task; each pipeline's answers are scored separately.</summary>
public sealed record HarnessFilter
{
    /// <summary>The pipeline's name (scores are reported as <c>metric,name</c>).</summary>
    public string Name { get; init; } = "none";
    /// <summary>Its steps, in order.</summary>
    public List<HarnessFilterStep> Filter { get; init; } = [];
}

/// <summary>One entry of <c>metric_list</c>.</summary>
public sealed record HarnessMetric
{
    /// <summary>The metric's name: acc or acc_norm (multiple_choice); perplexity or acc (loglikelihood); exact_match, f1 or pass_at_k (generate_until).</summary>
    public string Metric { get; init; } = "";
    /// <summary>pass_at_k: the k values reported (an integer or a list; default 1); each must be at most <c>repeats</c>.</summary>
    public ConfigNode? K { get; init; }
    /// <summary>How per-document values combine: <c>mean</c>, or <c>perplexity</c> for the perplexity metric (exp of the mean negative log-likelihood, however it is spelled).</summary>
    public string? Aggregation { get; init; }
    /// <summary>Whether a higher value is better (informational, as in the harness).</summary>
    public bool? HigherIsBetter { get; init; }
    /// <summary>exact_match: compare without case.</summary>
    public bool IgnoreCase { get; init; }
    /// <summary>exact_match: compare without ASCII punctuation.</summary>
    public bool IgnorePunctuation { get; init; }
    /// <summary>exact_match: patterns removed from both sides before comparing (e.g. <c>","</c>, <c>"\\$"</c>).</summary>
    public List<string>? RegexesToIgnore { get; init; }
}

/// <summary><c>generation_kwargs</c> of a generate_until task.</summary>
public sealed record HarnessGenerationSection
{
    /// <summary>Stop sequences.</summary>
    public List<string>? Until { get; init; }
    /// <summary>Most generated tokens.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int? MaxGenToks { get; init; }
    /// <summary>Sample (temperature, top_p; seeded by <c>peftlab eval --seed</c>) instead of greedy decoding.</summary>
    public bool? DoSample { get; init; }
    /// <summary>Sampling temperature (with do_sample).</summary>
    [ConfigRange(0, 100)]
    public double? Temperature { get; init; }
    /// <summary>Nucleus sampling: the smallest set of tokens whose probability reaches top_p (with do_sample).</summary>
    [ConfigRange(0, 1)]
    public double? TopP { get; init; }
}

/// <summary>
/// An lm-evaluation-harness task file (YAML), the subset of its keys PeftLab evaluates. Any other key is an error naming
/// it and its line; an <c>include</c> is merged first (the including file's keys win), as the harness does.
/// </summary>
public sealed record HarnessTaskSpec : IValidatable
{
    /// <summary>The task's name (defaults to the file name).</summary>
    public string? Task { get; init; }
    /// <summary>Groups the task belongs to (informational).</summary>
    public ConfigNode? Tag { get; init; }
    /// <summary>Groups the task belongs to, older spelling (informational).</summary>
    public ConfigNode? Group { get; init; }
    /// <summary>
    /// A local folder or file holding the documents (relative to the task file), or a Hugging Face builder name
    /// (<c>json</c>, <c>csv</c>, <c>parquet</c>) with <c>data_files</c>. A hub name (<c>cais/mmlu</c>) works only once
    /// it is given a local path (<c>--dataset-path</c>): PeftLab never downloads.
    /// </summary>
    public string? DatasetPath { get; init; }
    /// <summary>The dataset's configuration: a subfolder of <see cref="DatasetPath"/> when it has one (MMLU's subjects).</summary>
    public string? DatasetName { get; init; }
    /// <summary>Files per split: a path or list (the <c>train</c> split, as the datasets library reads it), or a mapping split → path(s).</summary>
    public ConfigNode? DataFiles { get; init; }
    /// <summary>Arguments for the datasets library; only <c>data_files</c> is read.</summary>
    public ConfigMapping? DatasetKwargs { get; init; }
    /// <summary>The split scored.</summary>
    public string? TestSplit { get; init; }
    /// <summary>The split scored when there is no test split.</summary>
    public string? ValidationSplit { get; init; }
    /// <summary>Where few-shot examples come from (else the training, then the validation split).</summary>
    public string? FewshotSplit { get; init; }
    /// <summary>The training split (a few-shot source).</summary>
    public string? TrainingSplit { get; init; }
    /// <summary>How the model is asked.</summary>
    public HarnessOutputType OutputType { get; init; } = HarnessOutputType.GenerateUntil;
    /// <summary>The prompt: a template, or a field name.</summary>
    public string? DocToText { get; init; }
    /// <summary>The answer: a template or field name; for multiple choice an index into the choices or one of them.</summary>
    public string? DocToTarget { get; init; }
    /// <summary>The choices: a list of templates, a template giving a list, or a field name.</summary>
    public ConfigNode? DocToChoice { get; init; }
    /// <summary>Text between the prompt and an answer.</summary>
    public string TargetDelimiter { get; init; } = " ";
    /// <summary>Text between few-shot examples.</summary>
    public string FewshotDelimiter { get; init; } = "\n\n";
    /// <summary>Solved examples placed before each prompt.</summary>
    [ConfigRange(0, 10_000)]
    public int NumFewshot { get; init; }
    /// <summary>Text (a template) placed before the few-shot examples.</summary>
    public string? Description { get; init; }
    /// <summary>The few-shot sampler.</summary>
    public FewshotSection? FewshotConfig { get; init; }
    /// <summary>Generation settings (generate_until).</summary>
    public HarnessGenerationSection? GenerationKwargs { get; init; }
    /// <summary>Answer filter pipelines (generate_until); none: the generated text as it is.</summary>
    public List<HarnessFilter>? FilterList { get; init; }
    /// <summary>Metrics reported (default: acc and acc_norm for multiple_choice, perplexity and acc for loglikelihood, exact_match for generate_until).</summary>
    public List<HarnessMetric>? MetricList { get; init; }
    /// <summary>Generations per document (pass@k's n); more than one needs <c>do_sample: true</c> to differ. Metrics other than pass@k score the first.</summary>
    [ConfigRange(1, 10_000)]
    public int Repeats { get; init; } = 1;
    /// <summary>The task runs generated code (lm-evaluation-harness's flag); PeftLab runs it in its sandbox (see <c>peftlab eval --unsafe-execute</c>).</summary>
    public bool UnsafeCode { get; init; }
    /// <summary>
    /// win_rate: the judge's prompt, a file (relative to the task file) holding a template over <c>instruction</c>,
    /// <c>output_1</c> and <c>output_2</c> that ends where the judge names the better response (" 1" or " 2");
    /// default PeftLab's built-in prompt. <c>peftlab eval --judge-prompt</c> replaces it.
    /// </summary>
    public string? JudgePrompt { get; init; }
    /// <summary>Free-form metadata (the task's version).</summary>
    public ConfigNode? Metadata { get; init; }
    /// <summary>Decontamination flag (informational; PeftLab does not decontaminate).</summary>
    public bool? ShouldDecontaminate { get; init; }
    /// <summary>Decontamination query (informational).</summary>
    public string? DocToDecontaminationQuery { get; init; }

    /// <summary>Metrics each evaluated output type computes.</summary>
    public static IReadOnlyDictionary<HarnessOutputType, string[]> MetricsOf { get; } = new Dictionary<HarnessOutputType, string[]>
    {
        [HarnessOutputType.MultipleChoice] = ["acc", "acc_norm"],
        [HarnessOutputType.Loglikelihood] = ["perplexity", "acc"],
        [HarnessOutputType.GenerateUntil] = ["exact_match", "f1", PassAtKMetric, WinRateMetric],
    };

    /// <summary>The code-execution metric's name.</summary>
    public const string PassAtKMetric = "pass_at_k";
    /// <summary>The pairwise-judging metric's name: the judge's preference for the model's output over the target (a reference output).</summary>
    public const string WinRateMetric = "win_rate";

    /// <summary>The k values of a pass_at_k metric entry.</summary>
    public static int[] KsOf(HarnessMetric m) => m.K switch
    {
        null => [1],
        ConfigScalar s when int.TryParse(s.Value, System.Globalization.CultureInfo.InvariantCulture, out int k) => [k],
        ConfigSequence seq => seq.Items.Select(i => i is ConfigScalar s && int.TryParse(s.Value, System.Globalization.CultureInfo.InvariantCulture, out int k) ? k : 0).ToArray(),
        _ => [0],
    };

    /// <summary>Whether a judge model scores the task.</summary>
    public bool NeedsJudge => MetricList?.Any(m => m.Metric == WinRateMetric) == true;

    /// <summary>Whether the task executes generated code.</summary>
    public bool ExecutesCode => MetricList?.Any(m => m.Metric == PassAtKMetric) == true;

    /// <inheritdoc/>
    public IEnumerable<(string Key, string Message)> Validate()
    {
        for (int i = 0; i < (MetricList?.Count ?? 0); i++)
            if (MetricList![i].Metric == PassAtKMetric)
            {
                var ks = KsOf(MetricList[i]);
                if (ks.Any(k => k < 1)) yield return ($"metric_list.{i}.k", "give k as a positive integer or a list of them");
                else if (ks.Max() > Repeats) yield return ($"metric_list.{i}.k", $"k {ks.Max()} is more than the {Repeats} generation(s) per document (repeats)");
            }
            else if (MetricList[i].K is not null) yield return ($"metric_list.{i}.k", "k belongs to pass_at_k only");
        if (DocToText is null) yield return ("doc_to_text", "is required");
        if (DocToTarget is null) yield return ("doc_to_target", "is required");
        if (OutputType == HarnessOutputType.MultipleChoice && DocToChoice is null) yield return ("doc_to_choice", "is required for output_type multiple_choice");
        if (TestSplit is null && ValidationSplit is null) yield return ("test_split", "give test_split or validation_split (the split scored)");
        if (MetricsOf.TryGetValue(OutputType, out var known))
            for (int i = 0; i < (MetricList?.Count ?? 0); i++)
            {
                var m = MetricList![i];
                if (!known.Contains(m.Metric))
                    yield return ($"metric_list.{i}.metric", $"'{m.Metric}' is not computed for output_type {ConfigEnums.Name(OutputType)} (known: {string.Join(", ", known)})");
                if (m.Aggregation is { } a && a != "mean" && !(a == "perplexity" && m.Metric == "perplexity"))
                    yield return ($"metric_list.{i}.aggregation", $"'{a}' is not supported (mean; perplexity for the perplexity metric)");
            }
    }
}
