using System.Text;

namespace PeftLab.Evaluation;

/// <summary>
/// The official SuperNI exact match: SQuAD's <c>normalize_answer</c> without article removal, then string equality.
/// </summary>
public static class ExactMatch
{
    /// <summary>Python's <c>string.punctuation</c> (ASCII only; curly quotes and other Unicode punctuation are kept).</summary>
    public const string AsciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    /// <summary>Python-lowercases, deletes ASCII punctuation and collapses whitespace (<c>' '.join(s.split())</c>).</summary>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string lower = PythonText.Lower(text);
        var sb = new StringBuilder(lower.Length);
        foreach (char c in lower)
            if (AsciiPunctuation.IndexOf(c) < 0) sb.Append(c);
        return string.Join(' ', PythonText.SplitWhitespace(sb.ToString()));
    }

    /// <summary>True when both strings normalise to the same text (so two empty strings match).</summary>
    public static bool Score(string prediction, string reference) =>
        string.Equals(Normalize(prediction), Normalize(reference), StringComparison.Ordinal);
}
