using System.Collections.ObjectModel;
using System.Text;
using System.Text.Json;
using PeftLab.Runtime;

namespace PeftLab.Evaluation;

/// <summary>One evaluation instance: what the official reference file stores for it.</summary>
/// <param name="Id">Instance id, e.g. <c>task1612-…</c>; predictions are looked up by it.</param>
/// <param name="Task">Task name, e.g. <c>task1612_sick_label_classification</c>.</param>
/// <param name="Category">The task's <c>Categories[0]</c>, as written (e.g. <c>Textual Entailment</c>).</param>
/// <param name="References">The instance's <c>output</c> list; scored by the best match.</param>
public sealed record EvalItem(string Id, string Task, string Category, IReadOnlyList<string> References);

/// <summary>Which of the two metrics a category is reported by (Tk-Instruct's per-category convention).</summary>
public enum PrimaryMetric
{
    /// <summary>Exact match (classification-like categories).</summary>
    ExactMatch,
    /// <summary>ROUGE-L (generation categories).</summary>
    RougeL,
}

/// <summary>Scores of one task: means over its instances, ×100, rounded to 4 decimals.</summary>
public sealed record TaskScore(double ExactMatch, double RougeL, int Count);

/// <summary>Scores of one category (all instances of its tasks pooled), with its primary metric.</summary>
public sealed record CategoryScore(double ExactMatch, double RougeL, int Count, PrimaryMetric PrimaryMetric)
{
    /// <summary>The score of <see cref="PrimaryMetric"/>.</summary>
    public double Primary => PrimaryMetric == PrimaryMetric.ExactMatch ? ExactMatch : RougeL;
}

/// <summary>
/// Result of <see cref="SuperNiScorer.Score"/>, with the official script's numbers: overall and grouped means ×100,
/// rounded with Python's <c>round(x, 4)</c>.
/// </summary>
/// <param name="ExactMatch">Overall exact match (<c>exact_match_default_track</c>).</param>
/// <param name="RougeL">Overall ROUGE-L (<c>rougeL_default_track</c>), the number Tk-Instruct's tables report.</param>
/// <param name="PerTask">Per task name, in first-appearance order.</param>
/// <param name="PerCategory">Per category key (<see cref="SuperNiScorer.CategoryKey"/>), in first-appearance order.</param>
/// <param name="Missing">Instances with no prediction; they were scored as the empty string (0).</param>
/// <param name="Count">Number of instances scored.</param>
public sealed record ScoreReport(
    double ExactMatch,
    double RougeL,
    IReadOnlyDictionary<string, TaskScore> PerTask,
    IReadOnlyDictionary<string, CategoryScore> PerCategory,
    int Missing,
    int Count)
{
    // the JSON keys of ToJson and FromJson; a primary metric's name is the key of its score
    private const string ExactMatchKey = "exact_match", RougeLKey = "rougeL", PerCategoryKey = "per_category",
        PrimaryMetricKey = "primary_metric", PrimaryKey = "primary", CountKey = "count", MissingKey = "missing";

    /// <summary>The key of the per-task scores.</summary>
    internal const string PerTaskKey = "per_task";

    /// <summary>JSON name of a primary metric: <c>exact_match</c> or <c>rougeL</c>.</summary>
    public static string MetricName(PrimaryMetric metric) => metric == PrimaryMetric.ExactMatch ? ExactMatchKey : RougeLKey;

    /// <summary>
    /// Indented JSON: <c>exact_match</c>, <c>rougeL</c>, <c>per_task</c> {task: {exact_match, rougeL, count}},
    /// <c>per_category</c> {category: {exact_match, rougeL, primary_metric, primary, count}}, <c>missing</c>, <c>count</c>.
    /// </summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber(ExactMatchKey, ExactMatch);
            w.WriteNumber(RougeLKey, RougeL);
            w.WriteStartObject(PerTaskKey);
            foreach (var (task, s) in PerTask)
            {
                w.WriteStartObject(task);
                w.WriteNumber(ExactMatchKey, s.ExactMatch);
                w.WriteNumber(RougeLKey, s.RougeL);
                w.WriteNumber(CountKey, s.Count);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteStartObject(PerCategoryKey);
            foreach (var (category, s) in PerCategory)
            {
                w.WriteStartObject(category);
                w.WriteNumber(ExactMatchKey, s.ExactMatch);
                w.WriteNumber(RougeLKey, s.RougeL);
                w.WriteString(PrimaryMetricKey, MetricName(s.PrimaryMetric));
                w.WriteNumber(PrimaryKey, s.Primary);
                w.WriteNumber(CountKey, s.Count);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteNumber(MissingKey, Missing);
            w.WriteNumber(CountKey, Count);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>
    /// Reads what <see cref="ToJson"/> writes (the object <paramref name="r"/> reads from, e.g. result.json's <c>test</c>).
    /// Every field is required; a category's <c>primary</c> must be the score its <c>primary_metric</c> names.
    /// </summary>
    /// <exception cref="InvalidDataException">A field is missing or of the wrong kind; the message names the file and the field.</exception>
    internal static ScoreReport FromJson(JsonFieldReader r)
    {
        var tasks = new OrderedDictionary<string, TaskScore>(StringComparer.Ordinal);
        foreach (var (task, t) in (r.Object(PerTaskKey) ?? throw r.Missing(PerTaskKey)).Objects())
            tasks.Add(task, new TaskScore(t.Double(ExactMatchKey) ?? throw t.Missing(ExactMatchKey), t.Double(RougeLKey) ?? throw t.Missing(RougeLKey),
                t.Int32(CountKey) ?? throw t.Missing(CountKey)));
        var categories = new OrderedDictionary<string, CategoryScore>(StringComparer.Ordinal);
        foreach (var (category, c) in (r.Object(PerCategoryKey) ?? throw r.Missing(PerCategoryKey)).Objects())
        {
            var metricName = c.String(PrimaryMetricKey) ?? throw c.Missing(PrimaryMetricKey);
            var metric = Enum.GetValues<PrimaryMetric>().Where(m => MetricName(m) == metricName).Cast<PrimaryMetric?>().FirstOrDefault()
                ?? throw c.Error(PrimaryMetricKey, $"must be {MetricName(PrimaryMetric.ExactMatch)} or {MetricName(PrimaryMetric.RougeL)}, not '{metricName}'");
            var score = new CategoryScore(c.Double(ExactMatchKey) ?? throw c.Missing(ExactMatchKey), c.Double(RougeLKey) ?? throw c.Missing(RougeLKey),
                c.Int32(CountKey) ?? throw c.Missing(CountKey), metric);
            var primary = c.Double(PrimaryKey) ?? throw c.Missing(PrimaryKey);
            if (primary != score.Primary) throw c.Error(PrimaryKey, $"is {primary}, but its {metricName} score is {score.Primary}");
            categories.Add(category, score);
        }
        return new ScoreReport(r.Double(ExactMatchKey) ?? throw r.Missing(ExactMatchKey), r.Double(RougeLKey) ?? throw r.Missing(RougeLKey),
            new ReadOnlyDictionary<string, TaskScore>(tasks), new ReadOnlyDictionary<string, CategoryScore>(categories),
            r.Int32(MissingKey) ?? throw r.Missing(MissingKey), r.Int32(CountKey) ?? throw r.Missing(CountKey));
    }
}

/// <summary>
/// The official SuperNI evaluation (<c>eval/automatic/evaluation.py</c>, default track) over a fixed set of instances:
/// per instance the best ROUGE-L F and exact match over its references, then <c>round(100 * mean, 4)</c> overall,
/// per task and per category.
/// </summary>
public sealed class SuperNiScorer
{
    // Tk-Instruct's compute_metrics.py reports these categories by exact match, all others by ROUGE-L.
    private static readonly HashSet<string> ExactMatchCategories = new(StringComparer.Ordinal)
    {
        "textual_entailment", "cause_effect_classification", "coreference_resolution",
        "dialogue_act_recognition", "answerability_classification", "word_analogy",
    };

    private readonly IReadOnlyList<EvalItem> _items;

    /// <summary>Validates the instances: non-empty, unique non-empty ids, task, category and at least one reference each.</summary>
    /// <exception cref="ArgumentException">An instance is invalid; the message names its id.</exception>
    public SuperNiScorer(IReadOnlyList<EvalItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0) throw new ArgumentException("no evaluation instances given", nameof(items));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < items.Count; i++)
        {
            var item = items[i] ?? throw new ArgumentException($"evaluation instance #{i} is null", nameof(items));
            if (string.IsNullOrEmpty(item.Id))
                throw new ArgumentException($"evaluation instance #{i} (task '{item.Task}') has an empty id", nameof(items));
            if (!seen.Add(item.Id))
                throw new ArgumentException($"duplicate evaluation instance id '{item.Id}' (task '{item.Task}')", nameof(items));
            if (string.IsNullOrEmpty(item.Task))
                throw new ArgumentException($"evaluation instance '{item.Id}' has an empty task name", nameof(items));
            if (item.Category is null || PythonText.SplitWhitespace(item.Category).Length == 0)
                throw new ArgumentException($"evaluation instance '{item.Id}' (task '{item.Task}') has an empty category", nameof(items));
            if (item.References is null || item.References.Count == 0)
                throw new ArgumentException($"evaluation instance '{item.Id}' (task '{item.Task}') has no references", nameof(items));
            if (item.References.Any(r => r is null))
                throw new ArgumentException($"evaluation instance '{item.Id}' (task '{item.Task}') has a null reference", nameof(items));
        }
        _items = items.ToArray();
    }

    /// <summary>The instances this scorer evaluates, in order.</summary>
    public IReadOnlyList<EvalItem> Items => _items;

    /// <summary>The official category key: <c>"_".join(category.lower().split())</c>, e.g. <c>textual_entailment</c>.</summary>
    public static string CategoryKey(string category)
    {
        ArgumentNullException.ThrowIfNull(category);
        return string.Join('_', PythonText.SplitWhitespace(PythonText.Lower(category)));
    }

    /// <summary>The metric a category is reported by; accepts a raw category or its key.</summary>
    public static PrimaryMetric PrimaryMetricFor(string category) =>
        ExactMatchCategories.Contains(CategoryKey(category)) ? PrimaryMetric.ExactMatch : PrimaryMetric.RougeL;

    /// <summary>
    /// Scores <paramref name="predictions"/> (instance id → generated text). An instance without a prediction scores
    /// as the empty string and is counted in <see cref="ScoreReport.Missing"/>; predictions for unknown ids are ignored,
    /// as in the official script.
    /// </summary>
    public ScoreReport Score(IReadOnlyDictionary<string, string> predictions)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        var total = new Accumulator();
        var perTask = new OrderedDictionary<string, Accumulator>(StringComparer.Ordinal);
        var perCategory = new OrderedDictionary<string, Accumulator>(StringComparer.Ordinal);
        int missing = 0;

        foreach (var item in _items)
        {
            if (!predictions.TryGetValue(item.Id, out var prediction))
            {
                prediction = "";
                missing++;
            }
            else if (prediction is null)
                throw new ArgumentException($"the prediction for '{item.Id}' is null", nameof(predictions));

            bool em = MetricFunctions.BestExactMatch(prediction, item.References);
            double rouge = MetricFunctions.BestRougeL(prediction, item.References);
            // Sums run in instance order within every group, as the official script adds them.
            total.Add(em, rouge);
            GetOrAdd(perTask, item.Task).Add(em, rouge);
            GetOrAdd(perCategory, CategoryKey(item.Category)).Add(em, rouge);
        }

        var tasks = new OrderedDictionary<string, TaskScore>(StringComparer.Ordinal);
        foreach (var (task, acc) in perTask) tasks.Add(task, new TaskScore(acc.ExactMatch, acc.RougeL, acc.Count));
        var categories = new OrderedDictionary<string, CategoryScore>(StringComparer.Ordinal);
        foreach (var (key, acc) in perCategory)
            categories.Add(key, new CategoryScore(acc.ExactMatch, acc.RougeL, acc.Count, PrimaryMetricFor(key)));

        return new ScoreReport(total.ExactMatch, total.RougeL,
            new ReadOnlyDictionary<string, TaskScore>(tasks), new ReadOnlyDictionary<string, CategoryScore>(categories),
            missing, total.Count);
    }

    private static Accumulator GetOrAdd(OrderedDictionary<string, Accumulator> groups, string key)
    {
        if (!groups.TryGetValue(key, out var acc)) groups.Add(key, acc = new Accumulator());
        return acc;
    }

    /// <summary>compute_metrics: integer EM count and float ROUGE-L sum, then round(100.0 * sum / n, 4).</summary>
    private sealed class Accumulator
    {
        private long _exactMatches;
        private double _rougeSum;

        public int Count { get; private set; }

        public void Add(bool exactMatch, double rougeL)
        {
            if (exactMatch) _exactMatches++;
            _rougeSum += rougeL;
            Count++;
        }

        public double ExactMatch => PythonFloat.Round(100.0 * _exactMatches / Count, 4);
        public double RougeL => PythonFloat.Round(100.0 * _rougeSum / Count, 4);
    }
}
