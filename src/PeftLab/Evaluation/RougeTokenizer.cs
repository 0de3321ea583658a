namespace PeftLab.Evaluation;

/// <summary>
/// google-research <c>rouge_score</c> default tokenisation (<c>tokenize.tokenize</c>), as the official SuperNI
/// ROUGE-L runs it with <c>use_stemmer=True</c>.
/// </summary>
public static class RougeTokenizer
{
    /// <summary>
    /// Python-lowercases <paramref name="text"/>, treats every run of characters outside <c>[a-z0-9]</c> as a
    /// separator (so non-ASCII letters and digits split words), and, when <paramref name="stem"/> is set, Porter-stems
    /// (NLTK extensions) each token longer than three characters. No other normalisation is applied.
    /// </summary>
    public static IReadOnlyList<string> Tokenize(string text, bool stem = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        string lower = PythonText.Lower(text);
        var tokens = new List<string>();
        int start = -1;
        for (int i = 0; i <= lower.Length; i++)
        {
            bool keep = i < lower.Length && lower[i] is (>= 'a' and <= 'z') or (>= '0' and <= '9');
            if (keep)
            {
                if (start < 0) start = i;
                continue;
            }
            if (start < 0) continue;
            string token = lower[start..i];
            start = -1;
            if (stem && token.Length > 3) token = PorterStemmer.Stem(token);
            // rouge_score's final filter: keep only non-empty [a-z0-9]+ tokens (stemming cannot break this, but keep the check).
            if (IsValidToken(token)) tokens.Add(token);
        }
        return tokens;
    }

    private static bool IsValidToken(string token)
    {
        if (token.Length == 0) return false;
        foreach (char c in token)
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9'))) return false;
        return true;
    }
}
