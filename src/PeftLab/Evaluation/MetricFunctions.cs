namespace PeftLab.Evaluation;

/// <summary>Per-instance metrics over a list of references: the maximum over references, as the official script takes.</summary>
public static class MetricFunctions
{
    /// <summary>Best ROUGE-L F over <paramref name="references"/> (0–1).</summary>
    /// <exception cref="ArgumentException">The reference list is empty (Python's <c>max([])</c> would fail too).</exception>
    public static double BestRougeL(string prediction, IReadOnlyList<string> references)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        RequireReferences(references);
        var predictionTokens = RougeTokenizer.Tokenize(prediction);
        double best = double.NegativeInfinity;
        foreach (var reference in references)
            best = Math.Max(best, RougeL.ScoreTokens(predictionTokens, RougeTokenizer.Tokenize(reference)).F);
        return best;
    }

    /// <summary>True when the prediction exactly matches (after normalisation) at least one reference.</summary>
    /// <exception cref="ArgumentException">The reference list is empty.</exception>
    public static bool BestExactMatch(string prediction, IReadOnlyList<string> references)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        RequireReferences(references);
        string normalized = ExactMatch.Normalize(prediction);
        foreach (var reference in references)
            if (string.Equals(normalized, ExactMatch.Normalize(reference), StringComparison.Ordinal)) return true;
        return false;
    }

    private static void RequireReferences(IReadOnlyList<string> references)
    {
        ArgumentNullException.ThrowIfNull(references);
        if (references.Count == 0) throw new ArgumentException("the reference list is empty; at least one reference is needed", nameof(references));
        foreach (var r in references)
            if (r is null) throw new ArgumentException("the reference list contains null", nameof(references));
    }
}
