using System.Text.Json;
using System.Text.RegularExpressions;
using PeftLab.Evaluation;

namespace PeftLab.Tests.Evaluation;

public sealed class SuperNiScorerTests
{
    private static readonly Lazy<List<EvalItem>> TestSet = new(EvaluationFixtures.TestSetItems);

    private static Dictionary<string, string> FirstReferences(IEnumerable<EvalItem> items) =>
        items.ToDictionary(i => i.Id, i => i.References[0]);

    [Fact]
    public void FirstReferenceAsPredictionScoresExactly100Everywhere()
    {
        var items = TestSet.Value;
        Assert.Equal(1400, items.Count);
        var report = new SuperNiScorer(items).Score(FirstReferences(items));

        Assert.Equal(100.0, report.ExactMatch);
        Assert.Equal(100.0, report.RougeL);
        Assert.Equal(1400, report.Count);
        Assert.Equal(0, report.Missing);
        Assert.Equal(14, report.PerTask.Count);
        Assert.All(report.PerTask.Values, t => Assert.Equal(new TaskScore(100.0, 100.0, 100), t));
        Assert.Equal(10, report.PerCategory.Count);
        Assert.All(report.PerCategory.Values, c => { Assert.Equal(100.0, c.ExactMatch); Assert.Equal(100.0, c.RougeL); Assert.Equal(100.0, c.Primary); });
        Assert.Equal(300, report.PerCategory["question_rewriting"].Count);
        Assert.Equal(PrimaryMetric.ExactMatch, report.PerCategory["textual_entailment"].PrimaryMetric);
        Assert.Equal(PrimaryMetric.ExactMatch, report.PerCategory["answerability_classification"].PrimaryMetric);
        Assert.Equal(PrimaryMetric.ExactMatch, report.PerCategory["cause_effect_classification"].PrimaryMetric);
        Assert.Equal(PrimaryMetric.ExactMatch, report.PerCategory["coreference_resolution"].PrimaryMetric);
        Assert.Equal(PrimaryMetric.RougeL, report.PerCategory["grammar_error_correction"].PrimaryMetric);
        Assert.Equal(PrimaryMetric.RougeL, report.PerCategory["title_generation"].PrimaryMetric);
        Assert.Equal(PrimaryMetric.RougeL, report.PerCategory["data_to_text"].PrimaryMetric);
        // Grouping keeps the order of first appearance (the order of splits/test_tasks.txt).
        Assert.Equal("task1612_sick_label_classification", report.PerTask.Keys.First());
    }

    /// <summary>
    /// Fixed perturbation: every prediction is its first reference plus the word " zzyzx" (one extra token, stem
    /// "zzyzx"). Expected values come from a plain LCS table written here, not from the scorer's code.
    /// </summary>
    [Fact]
    public void AppendedWordMatchesIndependentComputation()
    {
        const string Extra = " zzyzx";
        var items = TestSet.Value;
        var predictions = items.ToDictionary(i => i.Id, i => i.References[0] + Extra);
        var report = new SuperNiScorer(items).Score(predictions);

        var perItem = new List<(EvalItem Item, double Rouge, int Em)>();
        foreach (var item in items)
        {
            var predTokens = RougeTokenizer.Tokenize(predictions[item.Id]);
            double best = 0;
            foreach (var reference in item.References)
            {
                var refTokens = RougeTokenizer.Tokenize(reference);
                if (predTokens.Count == 0 || refTokens.Count == 0) continue;
                int lcs = PlainLcs(predTokens, refTokens);
                double p = (double)lcs / predTokens.Count, r = (double)lcs / refTokens.Count;
                best = Math.Max(best, p + r == 0 ? 0 : 2 * p * r / (p + r));
            }
            int em = item.References.Any(r => SimpleNormalize(r) == SimpleNormalize(predictions[item.Id])) ? 1 : 0;
            perItem.Add((item, best, em));

            // Single reference with n tokens: the LCS is the whole reference, so F = 2n / (2n + 1).
            if (item.References.Count == 1)
            {
                int n = RougeTokenizer.Tokenize(item.References[0]).Count;
                Assert.Equal(2.0 * n / (2 * n + 1), MetricFunctions.BestRougeL(predictions[item.Id], item.References), 1e-12);
            }
        }

        void Check(IEnumerable<(EvalItem Item, double Rouge, int Em)> group, double rouge, double em, string what)
        {
            var g = group.ToList();
            double expectedRouge = Math.Round(100.0 * g.Sum(x => x.Rouge) / g.Count, 4);
            double expectedEm = Math.Round(100.0 * g.Sum(x => x.Em) / g.Count, 4);
            Assert.True(Math.Abs(expectedRouge - rouge) < 1e-9, $"{what}: rougeL {rouge}, expected {expectedRouge}");
            Assert.True(Math.Abs(expectedEm - em) < 1e-9, $"{what}: exact_match {em}, expected {expectedEm}");
        }

        Check(perItem, report.RougeL, report.ExactMatch, "overall");
        foreach (var (task, score) in report.PerTask)
            Check(perItem.Where(x => x.Item.Task == task), score.RougeL, score.ExactMatch, task);
        foreach (var (category, score) in report.PerCategory)
            Check(perItem.Where(x => string.Join('_', x.Item.Category.ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries)) == category),
                score.RougeL, score.ExactMatch, category);
        Assert.InRange(report.RougeL, 50, 99.9);
        Assert.Equal(0, report.Missing);
    }

    private static int PlainLcs(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        var t = new int[a.Count + 1, b.Count + 1];
        for (int i = a.Count - 1; i >= 0; i--)
            for (int j = b.Count - 1; j >= 0; j--)
                t[i, j] = a[i] == b[j] ? t[i + 1, j + 1] + 1 : Math.Max(t[i + 1, j], t[i, j + 1]);
        return t[0, 0];
    }

    private static string SimpleNormalize(string s) =>
        string.Join(' ', Regex.Replace(s.ToLowerInvariant(), @"[!-/:-@\[-`{-~]", "").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    [Fact]
    public void MissingPredictionsCountAndScoreZero()
    {
        var items = TestSet.Value;
        var predictions = new Dictionary<string, string>();
        for (int i = 0; i < items.Count; i++)
            if (i % 4 != 0) predictions[items[i].Id] = items[i].References[0];
        predictions["not-an-eval-id"] = "ignored";

        var report = new SuperNiScorer(items).Score(predictions);
        Assert.Equal(350, report.Missing);
        Assert.Equal(1400, report.Count);
        Assert.Equal(75.0, report.ExactMatch);
        Assert.Equal(75.0, report.RougeL);
        Assert.All(report.PerTask.Values, t => Assert.Equal(new TaskScore(75.0, 75.0, 100), t));

        var none = new SuperNiScorer(items).Score(new Dictionary<string, string>());
        Assert.Equal(1400, none.Missing);
        Assert.Equal(0.0, none.ExactMatch);
        Assert.Equal(0.0, none.RougeL);
    }

    [Fact]
    public void SmallReportRoundsGroupsAndSerialises()
    {
        var items = new List<EvalItem>
        {
            new("a1", "taskA", "Textual  Entailment", ["Yes"]),
            new("a2", "taskA", "Textual  Entailment", ["No"]),
            new("a3", "taskA", "Textual  Entailment", ["No"]),
            new("b1", "taskB", "Title Generation", ["The cat sat on the mat.", "cat"]),
        };
        var predictions = new Dictionary<string, string> { ["a1"] = "yes.", ["a2"] = "Yes", ["b1"] = "the cat is on the mat" };
        var report = new SuperNiScorer(items).Score(predictions);

        Assert.Equal(1, report.Missing);
        Assert.Equal(4, report.Count);
        Assert.Equal(new TaskScore(33.3333, 33.3333, 3), report.PerTask["taskA"]);
        Assert.Equal(new TaskScore(0.0, 83.3333, 1), report.PerTask["taskB"]);
        Assert.Equal(25.0, report.ExactMatch);
        Assert.Equal(PythonFloat.Round(100.0 * (1.0 + 5.0 / 6) / 4, 4), report.RougeL);
        var te = report.PerCategory["textual_entailment"];
        Assert.Equal((PrimaryMetric.ExactMatch, 33.3333, 3), (te.PrimaryMetric, te.Primary, te.Count));
        var tg = report.PerCategory["title_generation"];
        Assert.Equal((PrimaryMetric.RougeL, 83.3333), (tg.PrimaryMetric, tg.Primary));

        using var doc = JsonDocument.Parse(report.ToJson());
        var root = doc.RootElement;
        Assert.Equal(["exact_match", "rougeL", "per_task", "per_category", "missing", "count"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(25.0, root.GetProperty("exact_match").GetDouble());
        Assert.Equal(1, root.GetProperty("missing").GetInt32());
        Assert.Equal(4, root.GetProperty("count").GetInt32());
        Assert.Equal(83.3333, root.GetProperty("per_task").GetProperty("taskB").GetProperty("rougeL").GetDouble());
        Assert.Equal(3, root.GetProperty("per_task").GetProperty("taskA").GetProperty("count").GetInt32());
        var cat = root.GetProperty("per_category").GetProperty("textual_entailment");
        Assert.Equal("exact_match", cat.GetProperty("primary_metric").GetString());
        Assert.Equal(33.3333, cat.GetProperty("primary").GetDouble());
        Assert.Equal("rougeL", root.GetProperty("per_category").GetProperty("title_generation").GetProperty("primary_metric").GetString());
    }

    [Theory]
    [InlineData("Textual Entailment", "textual_entailment", PrimaryMetric.ExactMatch)]
    [InlineData(" Word\tAnalogy ", "word_analogy", PrimaryMetric.ExactMatch)]
    [InlineData("Dialogue Act Recognition", "dialogue_act_recognition", PrimaryMetric.ExactMatch)]
    [InlineData("Overlap Extraction", "overlap_extraction", PrimaryMetric.RougeL)]
    [InlineData("Keyword Tagging", "keyword_tagging", PrimaryMetric.RougeL)]
    [InlineData("keyword_tagging", "keyword_tagging", PrimaryMetric.RougeL)]
    public void CategoryKeyAndPrimaryMetric(string category, string key, PrimaryMetric metric)
    {
        Assert.Equal(key, SuperNiScorer.CategoryKey(category));
        Assert.Equal(metric, SuperNiScorer.PrimaryMetricFor(category));
    }

    [Fact]
    public void InvalidItemsAreRejectedByName()
    {
        var dup = Assert.Throws<ArgumentException>(() => new SuperNiScorer([new("x1", "t", "c", ["a"]), new("x1", "t", "c", ["b"])]));
        Assert.Contains("duplicate evaluation instance id 'x1'", dup.Message);
        var noRefs = Assert.Throws<ArgumentException>(() => new SuperNiScorer([new("x2", "t", "c", [])]));
        Assert.Contains("'x2'", noRefs.Message);
        Assert.Contains("no references", noRefs.Message);
        Assert.Throws<ArgumentException>(() => new SuperNiScorer([]));
    }
}
