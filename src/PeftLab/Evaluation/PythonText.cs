using System.Globalization;
using System.Text;

namespace PeftLab.Evaluation;

/// <summary>
/// Python 3 string semantics that the official SuperNI metric depends on: <c>str.lower()</c> and
/// <c>str.split()</c> on arbitrary Unicode.
/// </summary>
/// <remarks>
/// The reference is CPython 3.11 (Unicode 14.0), whose data are checked code point by code point in the tests
/// (<c>tests/PeftLab.Tests/Evaluation/Data/python_unicode_case.tsv</c>). The per-character mapping comes from
/// .NET's simple lowercase mapping, which differs from Python's full mapping only where listed here.
/// Only the Final_Sigma context classification (<see cref="IsCased"/>, <see cref="IsCaseIgnorable"/>) of characters
/// assigned after Unicode 14 follows .NET's newer data rather than Python 3.11's.
/// </remarks>
public static class PythonText
{
    private const int CapitalSigma = 0x03A3;
    private const int SmallSigma = 0x03C3;
    private const int FinalSigma = 0x03C2;

    /// <summary>Python <c>s.lower()</c>: full lowercase mapping, including U+0130 and the Final_Sigma rule.</summary>
    public static string Lower(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (IsAscii(s)) return AsciiLower(s);

        var cps = ToCodePoints(s);
        var sb = new StringBuilder(s.Length + 8);
        for (int i = 0; i < cps.Length; i++)
        {
            int cp = cps[i];
            if (cp == CapitalSigma)
                Append(sb, IsFinalSigma(cps, i) ? FinalSigma : SmallSigma);
            else if (cp == 0x0130)
                sb.Append("i\u0307"); // SpecialCasing.txt: the only unconditional one-to-many lowercase mapping
            else
                Append(sb, LowerCodePoint(cp));
        }
        return sb.ToString();
    }

    /// <summary>Python's single-code-point simple lowercase (what <c>chr(cp).lower()</c> gives, except U+0130).</summary>
    private static int LowerCodePoint(int cp)
    {
        if (cp < 0x80) return cp is >= 'A' and <= 'Z' ? cp + 32 : cp;
        if (!Rune.IsValid(cp)) return cp; // lone surrogate: Python keeps it
        if (IsUnicode16CasePair(cp)) return cp;
        return Rune.ToLowerInvariant(new Rune(cp)).Value;
    }

    // Case pairs new in Unicode 16.0, which .NET 10 knows but Python 3.11-3.13 do not.
    private static bool IsUnicode16CasePair(int cp) =>
        cp is 0x1C89 or 0xA7CB or 0xA7CC or 0xA7DA or 0xA7DC or (>= 0x10D50 and <= 0x10D65);

    // CPython's handle_capital_sigma: \p{cased}\p{case-ignorable}* SIGMA !(\p{case-ignorable}* \p{cased}).
    private static bool IsFinalSigma(int[] cps, int i)
    {
        int j = i - 1;
        while (j >= 0 && IsCaseIgnorable(cps[j])) j--;
        if (j < 0 || !IsCased(cps[j])) return false;
        j = i + 1;
        while (j < cps.Length && IsCaseIgnorable(cps[j])) j++;
        return j == cps.Length || !IsCased(cps[j]);
    }

    /// <summary>Unicode <c>Cased</c> property: Lowercase, Uppercase or Titlecase_Letter.</summary>
    public static bool IsCased(int codePoint)
    {
        if (!Rune.IsValid(codePoint)) return false;
        var cat = Rune.GetUnicodeCategory(new Rune(codePoint));
        if (cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter)
            return true;
        return InRanges(codePoint, OtherLowerOrUpper);
    }

    /// <summary>Unicode <c>Case_Ignorable</c> property: Mn, Me, Cf, Lm, Sk, or Word_Break MidLetter/MidNumLet/Single_Quote.</summary>
    public static bool IsCaseIgnorable(int codePoint)
    {
        if (!Rune.IsValid(codePoint)) return false;
        var cat = Rune.GetUnicodeCategory(new Rune(codePoint));
        if (cat is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol)
            return true;
        return codePoint is 0x0027 or 0x002E or 0x003A or 0x00B7 or 0x0387 or 0x055F or 0x05F4 or 0x2018 or 0x2019
            or 0x2024 or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A
            or 0x1171E; // Mn in Unicode 14 (Python 3.11), Mc in .NET's newer data
    }

    // Other_Lowercase and Other_Uppercase (PropList.txt, Unicode 14): cased although not Lu/Ll/Lt.
    private static readonly (int First, int Last)[] OtherLowerOrUpper =
    [
        (0x00AA, 0x00AA), (0x00BA, 0x00BA), (0x02B0, 0x02B8), (0x02C0, 0x02C1), (0x02E0, 0x02E4), (0x0345, 0x0345),
        (0x037A, 0x037A), (0x1D2C, 0x1D6A), (0x1D78, 0x1D78), (0x1D9B, 0x1DBF), (0x2071, 0x2071), (0x207F, 0x207F),
        (0x2090, 0x209C), (0x2160, 0x217F), (0x24B6, 0x24E9), (0x2C7C, 0x2C7D), (0xA69C, 0xA69D), (0xA770, 0xA770),
        (0xA7F8, 0xA7F9), (0xAB5C, 0xAB5F), (0x10780, 0x10780), (0x10783, 0x10785), (0x10787, 0x107B0),
        (0x107B2, 0x107BA), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189),
    ];

    /// <summary>Python <c>str.isspace()</c> for one code point (the separators of <c>str.split()</c>).</summary>
    public static bool IsWhitespace(int codePoint) => codePoint switch
    {
        >= 0x09 and <= 0x0D => true,
        >= 0x1C and <= 0x20 => true, // Python counts the ASCII information separators; .NET does not
        0x85 or 0xA0 or 0x1680 => true,
        >= 0x2000 and <= 0x200A => true,
        0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    /// <summary>Python <c>s.split()</c> with no arguments: split on whitespace runs, drop empty pieces.</summary>
    public static string[] SplitWhitespace(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var parts = new List<string>();
        int start = -1;
        for (int i = 0; i < s.Length; i++)
        {
            if (IsWhitespace(s[i])) // every Python whitespace character is in the BMP
            {
                if (start >= 0) { parts.Add(s[start..i]); start = -1; }
            }
            else if (start < 0) start = i;
        }
        if (start >= 0) parts.Add(s[start..]);
        return parts.ToArray();
    }

    /// <summary>The string as Python sees it: one entry per code point; lone surrogates are kept as themselves.</summary>
    internal static int[] ToCodePoints(string s)
    {
        var cps = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                cps.Add(char.ConvertToUtf32(c, s[i + 1]));
                i++;
            }
            else cps.Add(c);
        }
        return cps.ToArray();
    }

    /// <summary>Inverse of <see cref="ToCodePoints"/>.</summary>
    internal static string FromCodePoints(ReadOnlySpan<int> cps)
    {
        var sb = new StringBuilder(cps.Length);
        foreach (int cp in cps) Append(sb, cp);
        return sb.ToString();
    }

    private static void Append(StringBuilder sb, int cp)
    {
        if (cp < 0x10000) sb.Append((char)cp);
        else sb.Append(char.ConvertFromUtf32(cp));
    }

    private static bool InRanges(int cp, (int First, int Last)[] ranges)
    {
        foreach (var (first, last) in ranges)
        {
            if (cp < first) return false;
            if (cp <= last) return true;
        }
        return false;
    }

    private static bool IsAscii(string s)
    {
        foreach (char c in s)
            if (c >= 0x80) return false;
        return true;
    }

    private static string AsciiLower(string s)
    {
        int k = 0;
        while (k < s.Length && s[k] is not (>= 'A' and <= 'Z')) k++;
        if (k == s.Length) return s;
        return string.Create(s.Length, s, static (span, src) =>
        {
            for (int i = 0; i < src.Length; i++)
            {
                char c = src[i];
                span[i] = c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;
            }
        });
    }
}
