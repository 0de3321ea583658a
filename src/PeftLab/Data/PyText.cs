namespace PeftLab.Data;

/// <summary>Python string semantics that reference data pipelines rely on.</summary>
internal static class PyText
{
    /// <summary>ASCII <c>string.punctuation</c>.</summary>
    public const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    /// <summary>Python <c>str.isspace</c> for one char: .NET whitespace plus the separators U+001C..U+001F.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || (c >= '\u001c' && c <= '\u001f');

    /// <summary>Python <c>str.strip()</c> (also Jinja's <c>trim</c> filter).</summary>
    public static string Strip(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && IsSpace(s[start])) start++;
        while (end > start && IsSpace(s[end - 1])) end--;
        return s[start..end];
    }

    /// <summary>Python <c>str.lstrip()</c>.</summary>
    public static string LStrip(string s)
    {
        int start = 0;
        while (start < s.Length && IsSpace(s[start])) start++;
        return s[start..];
    }

    /// <summary>Python <c>str.rstrip()</c>.</summary>
    public static string RStrip(string s)
    {
        int end = s.Length;
        while (end > 0 && IsSpace(s[end - 1])) end--;
        return s[..end];
    }

    public static bool IsPunctuation(char c) => Punctuation.Contains(c);
}
