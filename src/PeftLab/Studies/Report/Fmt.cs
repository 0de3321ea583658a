using System.Globalization;

namespace PeftLab.Studies.Report;

/// <summary>Invariant number formatting shared by tables, plots and finding texts.</summary>
public static class Fmt
{
    /// <summary>A score or other number with two decimals; "–" for null.</summary>
    public static string Num(double? x) => x is double d ? d.ToString("0.##", CultureInfo.InvariantCulture) : "–";

    /// <summary>A score with two fixed decimals.</summary>
    public static string Score(double? x) => x is double d ? d.ToString("0.00", CultureInfo.InvariantCulture) : "–";

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

    /// <summary>Task count label: null means all training tasks.</summary>
    public static string Tasks(int? n) => n is int v ? v.ToString(CultureInfo.InvariantCulture) : "all";

    /// <summary>An integer or "–".</summary>
    public static string Int(long? n) => n is long v ? v.ToString(CultureInfo.InvariantCulture) : "–";
}
