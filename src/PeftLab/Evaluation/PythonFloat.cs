using System.Globalization;
using System.Numerics;

namespace PeftLab.Evaluation;

/// <summary>Python float semantics the official metric's output depends on.</summary>
public static class PythonFloat
{
    /// <summary>
    /// Python <c>round(value, ndigits)</c> for a float: rounds the exact binary value half-to-even at
    /// <paramref name="ndigits"/> decimals, then returns the double nearest to that decimal.
    /// (<see cref="Math.Round(double, int)"/> scales by a power of ten first and can differ, e.g. on 2.675.)
    /// </summary>
    public static double Round(double value, int ndigits)
    {
        if (!double.IsFinite(value) || value == 0) return value;
        if (ndigits is < -400 or > 400)
            throw new ArgumentOutOfRangeException(nameof(ndigits), ndigits, "supported range is -400..400");

        long bits = BitConverter.DoubleToInt64Bits(value);
        bool negative = bits < 0;
        int biasedExp = (int)((bits >> 52) & 0x7FF);
        long fraction = bits & 0xF_FFFF_FFFF_FFFFL;
        long mantissa = biasedExp == 0 ? fraction : fraction | (1L << 52);
        int exp = biasedExp == 0 ? -1074 : biasedExp - 1075;

        // |value| * 10^ndigits = num / den exactly.
        BigInteger num = mantissa, den = BigInteger.One;
        if (exp >= 0) num <<= exp; else den <<= -exp;
        if (ndigits >= 0) num *= BigInteger.Pow(10, ndigits); else den *= BigInteger.Pow(10, -ndigits);

        var q = BigInteger.DivRem(num, den, out var rem);
        var twice = rem * 2;
        if (twice > den || (twice == den && !q.IsEven)) q += 1;

        string text = (negative ? "-" : "") + q.ToString(CultureInfo.InvariantCulture) + "E" +
                      (-ndigits).ToString(CultureInfo.InvariantCulture);
        return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}
