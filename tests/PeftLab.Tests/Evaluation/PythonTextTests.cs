using System.Text;
using System.Text.Json;
using PeftLab.Evaluation;

namespace PeftLab.Tests.Evaluation;

/// <summary>
/// Checks PythonText against CPython's own data (Data/python_unicode_case.tsv, made by gen_python_unicode_case.py
/// with CPython 3.11.7 / Unicode 14.0.0).
/// </summary>
public sealed class PythonTextTests
{
    private sealed record UnicodeData(
        Dictionary<int, string> Lower, HashSet<int> Assigned, HashSet<int> Cased, HashSet<int> Ignorable,
        HashSet<int> Whitespace, List<(string Input, string Output)> Samples);

    private static readonly Lazy<UnicodeData> Data = new(Load);

    private static UnicodeData Load()
    {
        var d = new UnicodeData(new(), new(), new(), new(), new(), new());
        foreach (var line in File.ReadAllLines(EvaluationFixtures.UnicodeCaseTsv))
        {
            var p = line.Split('\t');
            switch (p[0])
            {
                case "L":
                    d.Lower[Convert.ToInt32(p[1], 16)] = string.Concat(p[2].Split(' ').Select(h => char.ConvertFromUtf32(Convert.ToInt32(h, 16))));
                    break;
                case "A" or "C" or "I" or "W":
                    var set = p[0] switch { "A" => d.Assigned, "C" => d.Cased, "I" => d.Ignorable, _ => d.Whitespace };
                    for (int cp = Convert.ToInt32(p[1], 16); cp <= Convert.ToInt32(p[2], 16); cp++) set.Add(cp);
                    break;
                case "S":
                    d.Samples.Add((JsonSerializer.Deserialize<string>(p[1])!, JsonSerializer.Deserialize<string>(p[2])!));
                    break;
            }
        }
        Assert.True(d.Lower.Count > 1000 && d.Assigned.Count > 100000 && d.Samples.Count > 10, "unicode fixture looks truncated");
        return d;
    }

    private static IEnumerable<int> AllScalarValues()
    {
        for (int cp = 0; cp < 0x110000; cp++)
            if (cp is < 0xD800 or > 0xDFFF) yield return cp;
    }

    [Fact]
    public void LowerMatchesPythonForEveryCodePoint()
    {
        var data = Data.Value;
        var bad = new List<string>();
        foreach (int cp in AllScalarValues())
        {
            string s = char.ConvertFromUtf32(cp);
            string expected = data.Lower.TryGetValue(cp, out var l) ? l : s;
            string actual = PythonText.Lower(s);
            if (actual != expected) bad.Add($"U+{cp:X4}: got {Hex(actual)}, Python {Hex(expected)}");
        }
        Assert.True(bad.Count == 0, $"{bad.Count} mismatches: " + string.Join("; ", bad.Take(20)));
    }

    [Fact]
    public void LowerMatchesPythonOnWholeStringsIncludingFinalSigma()
    {
        foreach (var (input, output) in Data.Value.Samples)
            Assert.True(PythonText.Lower(input) == output, $"{Hex(input)} -> {Hex(PythonText.Lower(input))}, Python {Hex(output)}");
    }

    [Fact]
    public void CasedAndCaseIgnorableMatchPythonOnUnicode14Characters()
    {
        var data = Data.Value;
        var bad = new List<string>();
        foreach (int cp in data.Assigned)
        {
            if (PythonText.IsCased(cp) != data.Cased.Contains(cp)) bad.Add($"cased U+{cp:X4}");
            if (PythonText.IsCaseIgnorable(cp) != data.Ignorable.Contains(cp)) bad.Add($"ignorable U+{cp:X4}");
        }
        Assert.True(bad.Count == 0, $"{bad.Count} mismatches: " + string.Join("; ", bad.Take(20)));
    }

    [Fact]
    public void WhitespaceMatchesPythonIsSpace()
    {
        var ws = Data.Value.Whitespace;
        Assert.Contains(0x1C, ws);
        foreach (int cp in AllScalarValues())
            Assert.True(PythonText.IsWhitespace(cp) == ws.Contains(cp), $"U+{cp:X4}");
    }

    [Theory]
    [InlineData("\u0130stanbul", "i\u0307stanbul")]
    [InlineData("\u212A", "k")]
    [InlineData("Stra\u00DFe", "stra\u00DFe")]
    [InlineData("\u1E9E", "\u00DF")]
    [InlineData("CAF\u00C9", "caf\u00E9")]
    [InlineData("\uFF21\uFF11", "\uFF41\uFF11")]
    [InlineData("\u039F\u0394\u03A5\u03A3\u03A3\u0395\u03A5\u03A3", "\u03BF\u03B4\u03C5\u03C3\u03C3\u03B5\u03C5\u03C2")]
    [InlineData("MiXeD ascii 123", "mixed ascii 123")]
    [InlineData("", "")]
    public void LowerKnownCases(string input, string expected) => Assert.Equal(expected, PythonText.Lower(input));

    [Fact]
    public void LowerKeepsLoneSurrogatesAndDecodesPairs()
    {
        Assert.Equal("a\uD800b", PythonText.Lower("A\uD800B"));
        Assert.Equal("\U0001E922", PythonText.Lower("\U0001E900")); // Adlam capital -> small, outside the BMP
    }

    [Fact]
    public void SplitWhitespaceIsPythonSplit()
    {
        Assert.Equal(["a", "b", "c"], PythonText.SplitWhitespace(" a\u00A0b\u001Fc\u3000"));
        Assert.Equal(["a\u200Bb"], PythonText.SplitWhitespace("a\u200Bb")); // zero-width space is not whitespace
        Assert.Empty(PythonText.SplitWhitespace(" \t\r\n "));
    }

    [Theory]
    [InlineData(2.675, 2, 2.67)]
    [InlineData(0.125, 2, 0.12)]
    [InlineData(0.375, 2, 0.38)]
    [InlineData(33.333333333333336, 4, 33.3333)]
    [InlineData(66.66666666666667, 4, 66.6667)]
    [InlineData(1.00005, 4, 1.0001)]
    [InlineData(12.34565, 4, 12.3456)]
    [InlineData(0.5, 0, 0.0)]
    [InlineData(1.5, 0, 2.0)]
    [InlineData(2.5, 0, 2.0)]
    [InlineData(1e20, 4, 1e20)]
    [InlineData(5e-324, 4, 0.0)]
    [InlineData(83.33333333333334, 4, 83.3333)]
    public void RoundMatchesPython(double value, int digits, double python) =>
        Assert.Equal(python, PythonFloat.Round(value, digits)); // values from CPython 3.11 round()

    [Fact]
    public void RoundKeepsNegativeZeroLikePython() =>
        Assert.True(double.IsNegative(PythonFloat.Round(-0.00001, 4)) && PythonFloat.Round(-0.00001, 4) == 0);

    private static string Hex(string s)
    {
        var sb = new StringBuilder();
        foreach (int cp in PythonTextTestsHelpers.CodePoints(s)) sb.Append($"U+{cp:X4} ");
        return sb.ToString().TrimEnd();
    }
}

internal static class PythonTextTestsHelpers
{
    public static IEnumerable<int> CodePoints(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { yield return char.ConvertToUtf32(s[i], s[i + 1]); i++; }
            else yield return s[i];
        }
    }
}
