namespace PeftLab.Evaluation;

/// <summary>ROUGE-L precision, recall and F1 on a 0–1 scale.</summary>
/// <param name="Precision">LCS length / prediction token count.</param>
/// <param name="Recall">LCS length / reference token count.</param>
/// <param name="F">2PR/(P+R) (beta = 1); 0 when P + R = 0.</param>
public sealed record RougeLScore(double Precision, double Recall, double F)
{
    /// <summary>All zero: what an empty prediction or reference scores.</summary>
    public static RougeLScore Zero { get; } = new(0, 0, 0);
}

/// <summary>Sentence-level ROUGE-L as <c>rouge_score.RougeScorer(['rougeL'], use_stemmer=True)</c> computes it.</summary>
public static class RougeL
{
    /// <summary>Scores <paramref name="prediction"/> against one <paramref name="reference"/> (tokenised with <see cref="RougeTokenizer"/>).</summary>
    public static RougeLScore Score(string prediction, string reference) =>
        ScoreTokens(RougeTokenizer.Tokenize(prediction), RougeTokenizer.Tokenize(reference));

    /// <summary>Scores already tokenised sequences; 0 when either is empty.</summary>
    public static RougeLScore ScoreTokens(IReadOnlyList<string> predictionTokens, IReadOnlyList<string> referenceTokens)
    {
        ArgumentNullException.ThrowIfNull(predictionTokens);
        ArgumentNullException.ThrowIfNull(referenceTokens);
        if (predictionTokens.Count == 0 || referenceTokens.Count == 0) return RougeLScore.Zero;
        int lcs = LcsLength(referenceTokens, predictionTokens);
        double precision = (double)lcs / predictionTokens.Count;
        double recall = (double)lcs / referenceTokens.Count;
        // Same operation order as rouge_score.scoring.fmeasure, so results are bit-identical.
        double f = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
        return new RougeLScore(precision, recall, f);
    }

    /// <summary>Length of the longest common subsequence of two token sequences (ordinal comparison).</summary>
    public static int LcsLength(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count == 0 || b.Count == 0) return 0;
        // Two rows of the standard DP table suffice for the length.
        var previous = new int[b.Count + 1];
        var current = new int[b.Count + 1];
        for (int i = 1; i <= a.Count; i++)
        {
            string ai = a[i - 1];
            for (int j = 1; j <= b.Count; j++)
                current[j] = string.Equals(ai, b[j - 1], StringComparison.Ordinal)
                    ? previous[j - 1] + 1
                    : Math.Max(previous[j], current[j - 1]);
            (previous, current) = (current, previous);
        }
        return previous[b.Count];
    }
}
