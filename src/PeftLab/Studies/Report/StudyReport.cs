using System.Net;
using System.Text;
using PeftLab.Runtime;

namespace PeftLab.Studies.Report;

/// <summary>What <see cref="StudyReport.Write"/> produced.</summary>
/// <param name="Dir">The report folder.</param>
/// <param name="HtmlPath">report.html (self-contained: plots embedded as base64 PNG).</param>
/// <param name="MarkdownPath">summary.md (tables and findings; plots linked from plots/).</param>
/// <param name="Plots">Rendered plots (PNG and SVG under plots/).</param>
/// <param name="Analyses">The analyses shown.</param>
/// <param name="Findings">The finding checks.</param>
/// <param name="Answer">The report's opening: recommendation, baseline and resolution.</param>
/// <param name="Warnings">Problems met while reading the study.</param>
public sealed record ReportOutput(string Dir, string HtmlPath, string MarkdownPath, IReadOnlyList<RenderedPlot> Plots,
    IReadOnlyList<AnalysisResult> Analyses, IReadOnlyList<FindingResult> Findings, ReportAnswer Answer, IReadOnlyList<string> Warnings);

/// <summary>
/// <c>peftlab study report</c>: reads a study folder, runs the analyses and finding checks, and writes
/// <c>report.html</c>, <c>summary.md</c> and <c>plots/*.png|svg</c>. Both documents open with the answer (recommended
/// method, untuned baseline, resolution), then the findings with their verdicts, then the analyses.
/// </summary>
public static class StudyReport
{
    /// <summary>
    /// Writes the report of <paramref name="studyDir"/> into <paramref name="outDir"/> (default: <c>STUDY_DIR/report</c>);
    /// <paramref name="bootstrap"/> sets every interval's bootstrap (default: 2000 replicates, 95 %, instance level).
    /// </summary>
    /// <exception cref="InvalidDataException">plan.json is missing or malformed.</exception>
    /// <exception cref="Configuration.ConfigException">study.yaml is invalid.</exception>
    public static ReportOutput Write(string studyDir, string? outDir = null, BootstrapOptions? bootstrap = null)
    {
        var spec = StudyReportSpec.Load(Path.Combine(studyDir, "study.yaml"));
        var data = ReportData.Load(studyDir);
        var view = new StudyView(data.Rows, spec.Thresholds, bootstrap);
        var ids = spec.Analyses.Count > 0 ? spec.Analyses.Distinct().ToArray() : Analyses.Ids;
        var analyses = ids.Select(id => Analyses.Run(id, view)).ToArray();
        var findings = Findings.CheckAll(view);
        var answer = Answer.Of(view);

        var dir = Path.GetFullPath(outDir ?? Path.Combine(studyDir, "report"));
        var plots = analyses.SelectMany(a => a.Plots).Select(p => ReportPlotter.Render(p, Path.Combine(dir, "plots"))).ToArray();
        var doc = new Document(spec.Name ?? data.StudyName, view, data, spec, analyses, findings, answer, plots);
        var html = Path.Combine(dir, "report.html");
        var md = Path.Combine(dir, "summary.md");
        AtomicFile.WriteAllText(html, Html(doc));
        AtomicFile.WriteAllText(md, Markdown(doc));
        return new ReportOutput(dir, html, md, plots, analyses, findings, answer, data.Warnings);
    }

    private sealed record Document(string Name, StudyView View, ReportData Data, StudyReportSpec Spec,
        IReadOnlyList<AnalysisResult> Analyses, IReadOnlyList<FindingResult> Findings, ReportAnswer Answer, IReadOnlyList<RenderedPlot> Plots);

    /// <summary>Trials per method and state.</summary>
    private static ReportTable Overview(Document d)
    {
        var methods = d.Data.Rows.Select(r => r.Method).Distinct().OrderBy(StudyView.MethodRank).ThenBy(m => m, StringComparer.Ordinal);
        var rows = methods.Select(m =>
        {
            var rs = d.Data.Rows.Where(r => r.Method == m).ToArray();
            return (IReadOnlyList<string>)[m, Fmt.Int(rs.Length), Fmt.Int(rs.Count(r => r.Scored)), Fmt.Int(rs.Count(r => r.Diverged)),
                Fmt.Int(rs.Count(r => r.State == TrialState.Failed)), Fmt.Int(rs.Count(r => !r.Finished && r.State != TrialState.Failed))];
        }).ToArray();
        return new ReportTable("Trials", ["method", "trials", "scored", "diverged", "failed", "not finished"], rows);
    }

    private static ReportTable FindingTable(Document d) =>
        new("Findings of the reference study", ["finding", "verdict", "numbers"],
            d.Findings.Select(f => (IReadOnlyList<string>)[$"({f.Id}) {f.Statement}", f.VerdictText, f.Numbers]).ToArray());

    private static ReportTable ThresholdTable(Document d) =>
        new("Finding thresholds (study.yaml finding_thresholds)", ["key", "value", "meaning"],
            d.Spec.Thresholds.Describe().Select(x => (IReadOnlyList<string>)[x.Key, x.Value, x.Meaning]).ToArray());

    private static ReportTable? FailedTable(Document d)
    {
        var failed = d.Data.Rows.Where(r => r.State == TrialState.Failed).ToArray();
        return failed.Length == 0 ? null : new ReportTable("Failed trials", ["trial", "axes", "error"],
            failed.Select(r => (IReadOnlyList<string>)[r.Id, string.Join(", ", r.Axes.Select(kv => $"{kv.Key}={kv.Value ?? "null"}")), r.Error ?? "–"]).ToArray());
    }

    private static string Intro(Document d) =>
        $"{d.Data.Rows.Count} planned trials, {d.Data.Rows.Count(r => r.Finished)} finished. Scores are ROUGE-L in percent; " +
        $"comparisons across methods use the comparison context ({d.View.MainContextLabel}) and each method's best setting there " +
        "(the setting with the most completed seeds, then the highest mean validation score). Brackets are 95% paired-bootstrap " +
        $"intervals ({d.View.Bootstrap.Replicates} replicates, resampling {(d.View.Bootstrap.Unit == BootstrapUnit.Task ? "tasks" : "instances")} and seeds); " +
        "a finding holds or fails only when its interval lies entirely on one side of its threshold, else it is inconclusive.";

    /// <summary>The answer's sentences in order: recommendation (emphasised by the writers), rule, baseline, resolution.</summary>
    private static IEnumerable<string> AnswerLines(Document d) => [d.Answer.Rule, d.Answer.Baseline, d.Answer.ResolutionText];

    // --- HTML -------------------------------------------------------------------------------------

    private static string Html(Document d)
    {
        var sb = new StringBuilder();
        string E(string s) => WebUtility.HtmlEncode(s);
        void Table(ReportTable t, string? cls = null)
        {
            sb.Append($"<h3>{E(t.Title)}</h3>\n<table{(cls is null ? "" : $" class=\"{cls}\"")}><thead><tr>");
            foreach (var c in t.Columns) sb.Append($"<th>{E(c)}</th>");
            sb.Append("</tr></thead><tbody>\n");
            if (t.Rows.Count == 0) sb.Append($"<tr><td colspan=\"{t.Columns.Count}\"><em>no rows</em></td></tr>\n");
            foreach (var row in t.Rows)
            {
                sb.Append("<tr>");
                foreach (var cell in row) sb.Append($"<td class=\"{VerdictClass(cell)}\">{E(cell)}</td>");
                sb.Append("</tr>\n");
            }
            sb.Append("</tbody></table>\n");
        }
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        sb.Append($"<title>{E(d.Name)} – study report</title>\n<style>\n");
        sb.Append("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\n");
        sb.Append("table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\n");
        sb.Append("th{background:#f0f0f0}td.holds{background:#dff5df}td.nothold{background:#fadddd}td.inc{background:#fdf3d0}td.ned{background:#f3f3f3;color:#666}\n");
        sb.Append(".note{color:#a05000}img{max-width:100%;border:1px solid #eee}\n</style></head><body>\n");
        sb.Append($"<h1>{E(d.Name)}</h1>\n<h2 id=\"answer\">Answer</h2>\n<p class=\"answer\"><strong>{E(d.Answer.Recommendation)}</strong></p>\n");
        foreach (var line in AnswerLines(d)) sb.Append($"<p>{E(line)}</p>\n");
        Table(d.Answer.BestSettings);
        sb.Append("<h2>Findings</h2>\n");
        Table(FindingTable(d), "findings");
        Table(ThresholdTable(d));
        sb.Append($"<h2>Study</h2>\n<p>{E(Intro(d))}</p>\n");
        if (d.Data.Warnings.Count > 0)
        {
            sb.Append("<h3>Warnings</h3><ul>\n");
            foreach (var w in d.Data.Warnings) sb.Append($"<li class=\"note\">{E(w)}</li>\n");
            sb.Append("</ul>\n");
        }
        Table(Overview(d));
        if (FailedTable(d) is { } failed) Table(failed);
        foreach (var a in d.Analyses)
        {
            sb.Append($"<h2 id=\"{a.Id}\">{E(a.Title)}</h2>\n<p>{E(a.Description)}</p>\n");
            foreach (var n in a.Notes) sb.Append($"<p class=\"note\"><strong>{E(n)}</strong></p>\n");
            foreach (var p in PlotsOf(d, a))
                sb.Append($"<p><img alt=\"{E(p.Spec.Title)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(p.PngPath))}\"></p>\n");
            foreach (var t in a.Tables) Table(t);
        }
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    private static IEnumerable<RenderedPlot> PlotsOf(Document d, AnalysisResult a) => d.Plots.Where(p => a.Plots.Any(s => ReferenceEquals(s, p.Spec)));

    private static string VerdictClass(string cell) => cell switch
    {
        "holds" => "holds",
        "does not hold" => "nothold",
        "inconclusive" => "inc",
        "not enough data" => "ned",
        _ => "",
    };

    // --- Markdown ---------------------------------------------------------------------------------

    private static string Markdown(Document d)
    {
        var sb = new StringBuilder();
        static string Cell(string s) => s.Replace("|", "\\|").Replace("\r", "").Replace("\n", " ");
        void Table(ReportTable t)
        {
            sb.Append($"### {t.Title}\n\n");
            sb.Append("| ").Append(string.Join(" | ", t.Columns.Select(Cell))).Append(" |\n");
            sb.Append('|').Append(string.Concat(t.Columns.Select(_ => " --- |"))).Append('\n');
            foreach (var row in t.Rows) sb.Append("| ").Append(string.Join(" | ", row.Select(Cell))).Append(" |\n");
            if (t.Rows.Count == 0) sb.Append("\n_no rows_\n");
            sb.Append('\n');
        }
        sb.Append($"# {d.Name}\n\n## Answer\n\n**{d.Answer.Recommendation}**\n\n");
        foreach (var line in AnswerLines(d)) sb.Append($"{line}\n\n");
        Table(d.Answer.BestSettings);
        sb.Append("## Findings\n\n");
        Table(FindingTable(d));
        Table(ThresholdTable(d));
        sb.Append($"## Study\n\n{Intro(d)}\n\n");
        foreach (var w in d.Data.Warnings) sb.Append($"- warning: {w}\n");
        if (d.Data.Warnings.Count > 0) sb.Append('\n');
        Table(Overview(d));
        if (FailedTable(d) is { } failed) Table(failed);
        foreach (var a in d.Analyses)
        {
            sb.Append($"## {a.Title}\n\n{a.Description}\n\n");
            foreach (var n in a.Notes) sb.Append($"**{n}**\n\n");
            foreach (var p in PlotsOf(d, a))
                sb.Append($"![{p.Spec.Title}](plots/{Path.GetFileName(p.PngPath)}) ([SVG](plots/{Path.GetFileName(p.SvgPath)}))\n\n");
            foreach (var t in a.Tables) Table(t);
        }
        return sb.ToString();
    }
}
