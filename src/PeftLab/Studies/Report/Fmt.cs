using System.Globalization;

namespace PeftLab.Studies.Report;

/// <summary>Invariant number formatting shared by tables, plots and finding texts.</summary>
public static class Fmt
{
    /// <summary>A score or other number with two decimals; "–" for null.</summary>
    public static string Num(double? x) => x is double d ? d.ToString("0.##", CultureInfo.InvariantCulture) : "–";

    /// <summary>A score with two fixed decimals.</summary>
    public static string Score(double? x) => x is double d ? d.ToString("0.00", CultureInfo.InvariantCulture) : "–";

    /// <summary>One decimal, the precision the intervals support; "–" for null.</summary>
    public static string One(double? x) => x is double d ? Math.Round(d, 1).ToString("0.0", CultureInfo.InvariantCulture).Replace("-", "−") : "–";

    /// <summary>One decimal with an explicit sign (+1.5, −1.5, 0.0).</summary>
    public static string Signed(double x) => Math.Round(x, 1) is var r && r == 0 ? "0.0" : (r > 0 ? "+" : "") + One(r);

    /// <summary>
    /// A mean with its 95 % interval, <c>41.2 [38.0, 44.1]</c> (the interval's estimate stands for the mean when there is
    /// one); the bare mean without an interval; "–" without either.
    /// </summary>
    public static string Ci(double? mean, Interval? ci) => ci is null ? One(mean) : $"{One(ci.Estimate)} [{One(ci.Lower)}, {One(ci.Upper)}]";

    /// <summary>A difference with its interval and signs, <c>−1.5 [−4.2, +1.1]</c>; "–" without one.</summary>
    public static string Diff(Interval? ci) => ci is null ? "–" : $"{Signed(ci.Estimate)} [{Signed(ci.Lower)}, {Signed(ci.Upper)}]";

    /// <summary>A learning rate in short scientific form (1e-4, 5e-5).</summary>
    public static string Lr(double? x) => x is double d ? d.ToString("0.##e+0", CultureInfo.InvariantCulture).Replace("e+", "e") : "–";

    /// <summary>A count with thousands separators, or k/M/B for large values.</summary>
    public static string Count(double? x) => x switch
    {
        null => "–",
        >= 1e9 => (x.Value / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "B",
        >= 1e6 => (x.Value / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1e4 => (x.Value / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "k",
        _ => x.Value.ToString("0.##", CultureInfo.InvariantCulture),
    };

    /// <summary>A share as a percentage.</summary>
    public static string Share(double? x) => x is double d ? (100 * d).ToString("0", CultureInfo.InvariantCulture) + "%" : "–";

    /// <summary>A part of a whole as a percentage with up to three decimals (trainable of all parameters); "–" when either is unknown.</summary>
    public static string Percent(double? part, double? whole) =>
        part is double p && whole is double w && w > 0 ? (100 * p / w).ToString("0.###", CultureInfo.InvariantCulture) + "%" : "–";

    /// <summary>Task count label: null means all training tasks.</summary>
    public static string Tasks(int? n) => n is int v ? v.ToString(CultureInfo.InvariantCulture) : "all";

    /// <summary>An integer or "–".</summary>
    public static string Int(long? n) => n is long v ? v.ToString(CultureInfo.InvariantCulture) : "–";
}
