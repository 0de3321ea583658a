namespace PeftLab.Studies.Report;

/// <summary>A table of text cells (already formatted).</summary>
public sealed record ReportTable(string Title, IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string>> Rows);

/// <summary>How a plot's x axis maps values.</summary>
public enum AxisScale
{
    /// <summary>Linear.</summary>
    Linear,
    /// <summary>Logarithmic (base 10); points hold the raw values.</summary>
    Log10,
    /// <summary>Categories at 0, 1, 2, ...; <see cref="PlotSpec.XCategories"/> names them.</summary>
    Ordinal,
}

/// <summary>What a plot draws.</summary>
public enum PlotKind
{
    /// <summary>Points joined by lines.</summary>
    Lines,
    /// <summary>Points only.</summary>
    Points,
    /// <summary>Grouped bars: x is the category index, one bar per series.</summary>
    Bars,
}

/// <summary>One (x, y) point, with the 95 % interval of y when known (drawn as an error bar).</summary>
public readonly record struct PlotPoint(double X, double Y, double? Low = null, double? High = null)
{
    /// <summary>A point at a mean score, with the interval's bounds when there is one.</summary>
    public static PlotPoint At(double x, double y, Interval? ci) => new(x, y, ci?.Lower, ci?.Upper);
}

/// <summary>
/// A horizontal line across the plot at a reference score (the untuned baseline), with its interval drawn as a band
/// when known; <paramref name="Group"/> picks the colour as for a series.
/// </summary>
public sealed record ReferenceLine(string Name, string Group, double Y, double? Low = null, double? High = null);

/// <summary>A named series; <paramref name="Group"/> (usually the method) picks the colour, so a method looks the same in every plot.</summary>
public sealed record PlotSeries(string Name, string Group, IReadOnlyList<PlotPoint> Points);

/// <summary>A plot to render, independent of the plotting library.</summary>
public sealed record PlotSpec
{
    /// <summary>File name stem (letters, digits, '_').</summary>
    public required string Name { get; init; }
    /// <summary>Title above the plot.</summary>
    public required string Title { get; init; }
    /// <summary>X axis label.</summary>
    public required string XLabel { get; init; }
    /// <summary>Y axis label.</summary>
    public required string YLabel { get; init; }
    /// <summary>Drawing kind.</summary>
    public PlotKind Kind { get; init; } = PlotKind.Lines;
    /// <summary>X axis scale.</summary>
    public AxisScale XScale { get; init; } = AxisScale.Linear;
    /// <summary>Names of the ordinal x positions.</summary>
    public IReadOnlyList<string> XCategories { get; init; } = [];
    /// <summary>The data.</summary>
    public IReadOnlyList<PlotSeries> Series { get; init; } = [];
    /// <summary>Horizontal reference lines (the untuned baseline where it has no x of its own).</summary>
    public IReadOnlyList<ReferenceLine> Lines { get; init; } = [];
    /// <summary>Draw the y = x diagonal.</summary>
    public bool IdentityLine { get; init; }
    /// <summary>Shown across the plot when the data cannot support it ("not enough data: ...").</summary>
    public string? Message { get; init; }
}

/// <summary>A rendered plot: its spec and the files written.</summary>
public sealed record RenderedPlot(PlotSpec Spec, string PngPath, string SvgPath);

/// <summary>The outcome of one analysis: tables, plots and notes; <see cref="EnoughData"/> false means it says so instead of concluding.</summary>
public sealed record AnalysisResult
{
    /// <summary>Analysis id (see <see cref="Analyses.Ids"/>).</summary>
    public required string Id { get; init; }
    /// <summary>Section title.</summary>
    public required string Title { get; init; }
    /// <summary>What is measured and how.</summary>
    public required string Description { get; init; }
    /// <summary>Whether the data support the analysis.</summary>
    public bool EnoughData { get; init; } = true;
    /// <summary>Remarks, e.g. "not enough data: only one learning rate".</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
    /// <summary>Tables.</summary>
    public IReadOnlyList<ReportTable> Tables { get; init; } = [];
    /// <summary>Plots.</summary>
    public IReadOnlyList<PlotSpec> Plots { get; init; } = [];
}
