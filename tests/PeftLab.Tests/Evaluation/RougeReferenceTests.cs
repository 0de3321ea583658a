using System.Text.Json;
using PeftLab.Evaluation;

namespace PeftLab.Tests.Evaluation;

/// <summary>Every row of rouge_reference.tsv (official metric test vectors).</summary>
public sealed class RougeReferenceTests
{
    private sealed record Vector(
        string Prediction, string[] References, double RougeLF, bool ExactMatch, string[] PredictionTokens,
        string[] BestReferenceTokens, int LcsLen, int BestReferenceIndex, double[] PerReference);

    private static readonly Lazy<Dictionary<string, Vector>> Vectors = new(() =>
        EvaluationFixtures.ReadTsv(EvaluationFixtures.RougeTsv).ToDictionary(r => r["id"], r => new Vector(
            J<string>(r["prediction_json"]), J<string[]>(r["references_json"]),
            double.Parse(r["rougeL_f"], System.Globalization.CultureInfo.InvariantCulture),
            r["exact_match"] switch { "1" => true, "0" => false, var v => throw new FormatException($"exact_match {v}") },
            J<string[]>(r["prediction_tokens_json"]), J<string[]>(r["best_reference_tokens_json"]),
            int.Parse(r["lcs_len"]), int.Parse(r["best_reference_index"]), J<double[]>(r["per_reference_rougeL_f_json"]))));

    private static T J<T>(string json) => JsonSerializer.Deserialize<T>(json)!;

    public static TheoryData<string> Ids()
    {
        var data = new TheoryData<string>();
        foreach (var id in Vectors.Value.Keys) data.Add(id);
        return data;
    }

    [Fact]
    public void ReferenceFileHasAllRows() => Assert.Equal(47, Vectors.Value.Count);

    [Theory]
    [MemberData(nameof(Ids))]
    public void MatchesVector(string id)
    {
        var v = Vectors.Value[id];
        Assert.Equal(v.PredictionTokens, RougeTokenizer.Tokenize(v.Prediction));

        // Per reference: F to the 12 decimals the file keeps; the first maximum is the best reference.
        var perRef = v.References.Select(r => RougeL.Score(v.Prediction, r)).ToArray();
        Assert.Equal(v.PerReference.Length, perRef.Length);
        for (int i = 0; i < perRef.Length; i++) Assert.Equal(v.PerReference[i], perRef[i].F, 1e-12);
        double best = perRef.Max(s => s.F);
        int bestIndex = Array.FindIndex(perRef, s => s.F == best);
        Assert.Equal(v.BestReferenceIndex, bestIndex);
        Assert.Equal(v.BestReferenceTokens, RougeTokenizer.Tokenize(v.References[bestIndex]));
        Assert.Equal(v.LcsLen, RougeL.LcsLength(RougeTokenizer.Tokenize(v.References[bestIndex]), v.PredictionTokens));

        Assert.Equal(v.RougeLF, MetricFunctions.BestRougeL(v.Prediction, v.References), 1e-12);
        Assert.Equal(best, MetricFunctions.BestRougeL(v.Prediction, v.References));
        Assert.Equal(v.ExactMatch, MetricFunctions.BestExactMatch(v.Prediction, v.References));
        Assert.Equal(v.ExactMatch, v.References.Any(r => ExactMatch.Score(v.Prediction, r)));
    }

    [Fact]
    public void PrecisionAndRecallAreLcsOverLengths()
    {
        var s = RougeL.Score("the cat is on the mat", "The cat sat on the mat.");
        Assert.Equal(5.0 / 6, s.Precision);
        Assert.Equal(5.0 / 6, s.Recall);
        var t = RougeL.Score("Yes, definitely", "Yes");
        Assert.Equal(0.5, t.Precision);
        Assert.Equal(1.0, t.Recall);
        Assert.Equal(2 * 0.5 * 1.0 / 1.5, t.F);
        Assert.Equal(RougeLScore.Zero, RougeL.Score("", "x"));
    }

    [Fact]
    public void TokenizeWithoutStemmingKeepsWords() =>
        Assert.Equal(["running", "dogs", "3", "14"], RougeTokenizer.Tokenize("Running DOGS: 3.14", stem: false));

    [Theory]
    [InlineData("  Hello,   WORLD!! ", "hello world")]
    [InlineData("“Quoted”", "“quoted”")]   // only ASCII punctuation is deleted
    [InlineData("3.14", "314")]
    [InlineData("a\u00A0b", "a b")]
    [InlineData("", "")]
    public void ExactMatchNormalize(string input, string expected) => Assert.Equal(expected, ExactMatch.Normalize(input));

    [Fact]
    public void EmptyReferenceListIsAnError()
    {
        Assert.Throws<ArgumentException>(() => MetricFunctions.BestRougeL("x", []));
        Assert.Throws<ArgumentException>(() => MetricFunctions.BestExactMatch("x", []));
    }
}
