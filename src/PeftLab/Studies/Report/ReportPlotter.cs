using ScottPlot;

namespace PeftLab.Studies.Report;

/// <summary>
/// The one place that draws: turns a <see cref="PlotSpec"/> into PNG and SVG files with ScottPlot (headless, SkiaSharp).
/// A method keeps its colour in every plot; several series of one method differ by line pattern and marker. Points with
/// an interval get an error bar; reference lines (the untuned baseline) are dashed horizontal lines over a faint band
/// spanning their interval.
/// </summary>
public static class ReportPlotter
{
    /// <summary>Image width in pixels.</summary>
    public const int Width = 900;
    /// <summary>Image height in pixels.</summary>
    public const int Height = 540;

    private static readonly LinePattern[] Patterns = [LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed];
    private static readonly MarkerShape[] Markers =
        [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.OpenCircle, MarkerShape.OpenSquare];

    /// <summary>A sans-serif family that is really installed (ScottPlot's own detection may settle on a serif one), or null for its default.</summary>
    private static readonly Lazy<string?> SansFont = new(() =>
        new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica" }
            .FirstOrDefault(f => Fonts.GetTypeface(f, false, false)?.FamilyName == f));

    /// <summary>Writes <c>&lt;Name&gt;.png</c> and <c>&lt;Name&gt;.svg</c> into <paramref name="dir"/>.</summary>
    public static RenderedPlot Render(PlotSpec spec, string dir)
    {
        Directory.CreateDirectory(dir);
        var png = Path.Combine(dir, spec.Name + ".png");
        var svg = Path.Combine(dir, spec.Name + ".svg");
        Build(spec, dashes: true).SavePng(png, Width, Height);
        // Skia's SVG canvas cannot write dash patterns (it draws them solid and prints a warning), so the SVG gets solid lines.
        Build(spec, dashes: false).SaveSvg(svg, Width, Height);
        return new RenderedPlot(spec, png, svg);
    }

    /// <summary>
    /// The colour of a method (series group): the registered methods take Category20's saturated colours (Category10's)
    /// in canonical order, so up to ten never share one; further methods and other groups take its light shades, by
    /// position or by a stable hash of the name; the baseline is dark grey.
    /// </summary>
    public static Color ColorOf(string group)
    {
        if (group == StudyView.BaselineMethod) return Colors.DimGray;
        var palette = new ScottPlot.Palettes.Category20();
        int rank = StudyView.MethodRank(group);
        if (rank < StudyView.MethodOrder.Count && rank < 10) return palette.GetColor(2 * rank);
        int shade = rank < StudyView.MethodOrder.Count ? rank - 10 : group.Aggregate(0, (h, c) => unchecked(h * 31 + c) & int.MaxValue) % 10 /* stable across processes, unlike string hashes */;
        return palette.GetColor(2 * (shade % 10) + 1);
    }

    private static Plot Build(PlotSpec spec, bool dashes)
    {
        var plot = new Plot();
        if (SansFont.Value is { } font) plot.Font.Set(font);
        plot.Title(spec.Title);
        plot.XLabel(spec.XLabel);
        plot.YLabel(spec.YLabel);
        double X(double x) => spec.XScale == AxisScale.Log10 ? Math.Log10(x) : x;

        var variant = new Dictionary<string, int>(StringComparer.Ordinal);
        if (spec.Kind == PlotKind.Bars) AddBars(plot, spec);
        else
            foreach (var s in spec.Series)
            {
                int k = variant[s.Group] = variant.GetValueOrDefault(s.Group, -1) + 1;
                var points = Drawable(spec, s.Points).OrderBy(p => spec.Kind == PlotKind.Lines ? p.X : 0).ToArray();
                var sc = plot.Add.Scatter(points.Select(p => X(p.X)).ToArray(), points.Select(p => p.Y).ToArray(), ColorOf(s.Group));
                sc.LegendText = s.Name;
                sc.LineWidth = spec.Kind == PlotKind.Lines ? 2 : 0;
                sc.LinePattern = dashes ? Patterns[k % Patterns.Length] : LinePattern.Solid;
                sc.MarkerShape = Markers[k % Markers.Length];
                sc.MarkerSize = spec.Kind == PlotKind.Points ? 12 : 7;
                AddErrorBars(plot, points, X, ColorOf(s.Group));
            }
        foreach (var line in spec.Lines) AddReferenceLine(plot, line, dashes);

        var all = spec.Series.SelectMany(s => Drawable(spec, s.Points)).ToArray();
        if (spec.IdentityLine && all.Length > 0)
        {
            double lo = Math.Min(all.Min(p => p.X), all.Min(p => p.Y)), hi = Math.Max(all.Max(p => p.X), all.Max(p => p.Y));
            var diag = plot.Add.Scatter(new[] { lo, hi }, new[] { lo, hi }, Colors.Gray);
            diag.LinePattern = dashes ? LinePattern.Dashed : LinePattern.Solid;
            diag.MarkerSize = 0;
            diag.LegendText = "y = x";
        }
        SetXTicks(plot, spec, all);
        if (all.Length == 0 && spec.Lines.Count == 0) plot.Axes.SetLimits(0, 1, 0, 1);
        else FitY(plot, spec, all);
        if (spec.Series.Count + spec.Lines.Count > 0) plot.ShowLegend(Edge.Right);
        if (spec.Message is not null)
        {
            var note = plot.Add.Annotation(spec.Message, all.Length == 0 ? Alignment.MiddleCenter : Alignment.UpperCenter);
            note.LabelFontSize = 16;
        }
        return plot;
    }

    /// <summary>Vertical error bars at the points that have an interval.</summary>
    private static void AddErrorBars(Plot plot, IReadOnlyList<PlotPoint> points, Func<double, double> x, Color color)
    {
        var withCi = points.Where(p => p.Low is double lo && p.High is double hi && double.IsFinite(lo) && double.IsFinite(hi)).ToArray();
        if (withCi.Length == 0) return;
        var bars = new ScottPlot.Plottables.ErrorBar(
            withCi.Select(p => x(p.X)).ToArray(), withCi.Select(p => p.Y).ToArray(),
            xErrorsNegative: null, xErrorsPositive: null,
            yErrorsNegative: withCi.Select(p => p.Y - p.Low!.Value).ToArray(), yErrorsPositive: withCi.Select(p => p.High!.Value - p.Y).ToArray())
        { Color = color, LineWidth = 1.5f };
        plot.Add.Plottable(bars);
    }

    /// <summary>A dashed horizontal line at the reference score over a faint band of its interval.</summary>
    private static void AddReferenceLine(Plot plot, ReferenceLine line, bool dashes)
    {
        var color = ColorOf(line.Group);
        if (line.Low is double lo && line.High is double hi && hi > lo)
        {
            var band = plot.Add.VerticalSpan(lo, hi);
            band.FillStyle.Color = color.WithAlpha(0.12);
            band.LineStyle.Width = 0;
        }
        var h = plot.Add.HorizontalLine(line.Y, 2, color, dashes ? LinePattern.Dashed : LinePattern.Solid);
        h.LegendText = line.Name;
    }

    /// <summary>Y limits that show every point, error bar and reference band (axis lines do not take part in autoscaling).</summary>
    private static void FitY(Plot plot, PlotSpec spec, PlotPoint[] all)
    {
        var ys = all.SelectMany(p => new[] { p.Y, p.Low ?? p.Y, p.High ?? p.Y })
            .Concat(spec.Lines.SelectMany(l => new[] { l.Y, l.Low ?? l.Y, l.High ?? l.Y })).Where(double.IsFinite).ToArray();
        if (spec.Kind == PlotKind.Bars) ys = [.. ys, 0];
        if (ys.Length == 0) return;
        double lo = ys.Min(), hi = ys.Max(), pad = Math.Max((hi - lo) * 0.08, 0.5);
        plot.Axes.SetLimitsY(spec.Kind == PlotKind.Bars ? Math.Min(0, lo) : lo - pad, hi + pad);
    }

    /// <summary>Points that can be drawn: finite, and positive on a log axis.</summary>
    private static IEnumerable<PlotPoint> Drawable(PlotSpec spec, IEnumerable<PlotPoint> points) =>
        points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (spec.XScale != AxisScale.Log10 || p.X > 0));

    private static void AddBars(Plot plot, PlotSpec spec)
    {
        int n = Math.Max(1, spec.Series.Count);
        double width = 0.8 / n;
        for (int k = 0; k < spec.Series.Count; k++)
        {
            var s = spec.Series[k];
            var color = ColorOf(s.Group);
            var drawn = Drawable(spec, s.Points).ToArray();
            var bars = drawn.Select(p => new Bar { Position = p.X + (k - (n - 1) / 2.0) * width, Value = p.Y, Size = width * 0.95, FillColor = color, LineWidth = 0 }).ToList();
            var bp = plot.Add.Bars(bars);
            bp.LegendText = s.Name;
            AddErrorBars(plot, drawn.Select((p, i) => p with { X = bars[i].Position }).ToArray(), x => x, Colors.Black);
        }
    }

    /// <summary>Ordinal axes are labelled with their categories; log axes at the data values (or at decades when there are many).</summary>
    private static void SetXTicks(Plot plot, PlotSpec spec, PlotPoint[] all)
    {
        switch (spec.XScale)
        {
            case AxisScale.Ordinal:
                var labels = spec.XCategories;
                plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                    Enumerable.Range(0, labels.Count).Select(i => (double)i).ToArray(), labels.ToArray());
                if (labels.Count > 4 && labels.Any(l => l.Length > 6))
                {
                    plot.Axes.Bottom.TickLabelStyle.Rotation = 30;
                    plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
                }
                if (labels.Count > 0) plot.Axes.SetLimitsX(-0.6, labels.Count - 0.4);
                break;
            case AxisScale.Log10:
                var xs = all.Select(p => p.X).Where(x => x > 0).Distinct().OrderBy(x => x).ToArray();
                Func<double, string> label = xs.Length > 0 && xs.Max() < 1 ? x => Fmt.Lr(x) : x => Fmt.Count(x);
                // Label the data values themselves unless there are many or two would print on top of each other.
                double span = xs.Length > 1 ? Math.Log10(xs[^1] / xs[0]) : 1;
                bool apart = xs.Zip(xs.Skip(1)).All(p => Math.Log10(p.Second / p.First) >= 0.08 * span);
                if (xs.Length is > 0 and <= 10 && apart)
                    plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xs.Select(Math.Log10).ToArray(), xs.Select(label).ToArray());
                else
                    plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
                    {
                        IntegerTicksOnly = true,
                        LabelFormatter = e => label(Math.Pow(10, e)),
                        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                    };
                if (xs.Length == 1) plot.Axes.SetLimitsX(Math.Log10(xs[0]) - 0.5, Math.Log10(xs[0]) + 0.5);
                break;
        }
    }
}
