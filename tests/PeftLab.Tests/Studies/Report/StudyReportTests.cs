using System.Text.RegularExpressions;
using PeftLab.Studies.Report;

namespace PeftLab.Tests.Studies.Report;

public sealed class StudyReportTests
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static void AssertValidPlot(RenderedPlot p)
    {
        var png = File.ReadAllBytes(p.PngPath);
        Assert.True(png.Length > 2000, $"{p.PngPath} is only {png.Length} bytes");
        Assert.Equal(PngSignature, png[..8]);
        Assert.Equal(ReportPlotter.Width, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16))); // IHDR width
        var svg = File.ReadAllText(p.SvgPath);
        Assert.Contains("<svg", svg);
        Assert.EndsWith("</svg>", svg.TrimEnd());
        Assert.Equal(Path.GetDirectoryName(p.PngPath), Path.GetDirectoryName(p.SvgPath));
    }

    private static void AssertSelfContained(string html)
    {
        foreach (Match m in Regex.Matches(html, "(?:src|href)\\s*=\\s*\"([^\"]*)\"", RegexOptions.IgnoreCase))
            Assert.StartsWith("data:", m.Groups[1].Value);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("<script", html);
    }

    [Fact]
    public void ReferenceLikeStudy_AllAnalysesPlotted_AllFindingsHold()
    {
        using var study = FakeStudy.Reference("name: reference-like\nfinding_thresholds:\n  close_to_full_points: 2.0\n");
        var output = StudyReport.Write(study.Dir);

        Assert.Equal(Path.Combine(study.Dir, "report"), output.Dir);
        Assert.Equal(Analyses.Ids, output.Analyses.Select(a => a.Id));
        Assert.All(output.Analyses, a => Assert.True(a.EnoughData, $"{a.Id}: {string.Join("; ", a.Notes)}"));
        Assert.Equal(output.Analyses.Sum(a => a.Plots.Count), output.Plots.Count);
        Assert.All(output.Plots, AssertValidPlot);
        Assert.All(output.Plots, p => Assert.True(p.Spec.Series.Count > 0, p.Spec.Name));
        Assert.Empty(output.Warnings);

        foreach (var f in output.Findings) Assert.True(f.Verdict == Verdict.Holds, $"({f.Id}) {f.VerdictText}: {f.Numbers}");
        // (f) is judged from the open-instruction groups read from each trial's eval/open_instruction/*/samples.jsonl
        Assert.Contains("hard capability groups (open-instruction benchmarks): reasoning (synth_arith), coding (synth_code)", output.Findings.Single(f => f.Id == "f").Numbers);
        var open = output.Analyses.Single(a => a.Id == "open_instruction");
        Assert.Equal(["reasoning (hard)", "coding (hard)", "knowledge"], open.Tables[0].Rows.Select(r => r[0]));          // CapabilityGroup order

        var lr = output.Analyses.Single(a => a.Id == "lr_sensitivity");
        var loraLine = lr.Plots[0].Series.Single(s => s.Name == "lora");
        Assert.Equal([1e-5, 1e-4, 1e-3], loraLine.Points.Select(p => p.X));
        Assert.Equal(44.5, loraLine.Points[1].Y, 6); // small model, 64 tasks, rank 64, mean of two seeds
        var stability = output.Analyses.Single(a => a.Id == "stability");
        Assert.Contains(stability.Tables[0].Rows, r => r[0] == "lora" && r[1] == "1e-3" && r[2] == "lora_r 64" && r[4] == "1");

        var md = File.ReadAllText(output.MarkdownPath);
        Assert.StartsWith("# reference-like", md);
        Assert.Contains("| finding | verdict | numbers |", md);
        Assert.Equal(6, Regex.Matches(md, @"^\| \([a-f]\) .* \| holds \| ", RegexOptions.Multiline).Count);
        Assert.Contains("| close_to_full_points | 2 |", md);
        foreach (var p in output.Plots) Assert.Contains($"(plots/{Path.GetFileName(p.PngPath)})", md);

        var html = File.ReadAllText(output.HtmlPath);
        AssertSelfContained(html);
        Assert.Equal(output.Plots.Count, Regex.Matches(html, "<img [^>]*src=\"data:image/png;base64,").Count);
        foreach (var a in output.Analyses) Assert.Contains($"<h2 id=\"{a.Id}\">", html);
        Assert.Contains("<td class=\"holds\">holds</td>", html);
    }

    [Fact]
    public void EveryRegisteredMethodHasItsOwnColour_OtherGroupsAStableLightOne()
    {
        var colours = StudyView.MethodOrder.Select(ReportPlotter.ColorOf).ToArray();
        Assert.Equal(Math.Min(colours.Length, 10), colours.Take(10).Distinct().Count());
        Assert.DoesNotContain(ReportPlotter.ColorOf(StudyView.BaselineMethod), colours);
        var other = ReportPlotter.ColorOf("my_method");
        Assert.Equal(other, ReportPlotter.ColorOf("my_method"));
        Assert.DoesNotContain(other, colours.Take(10));
    }

    [Fact]
    public void SingleTrialStudy_StillReports_SayingNotEnoughData()
    {
        using var study = new FakeStudy();
        study.Add(new Dictionary<string, object?> { ["method"] = "lora", ["lr"] = 1e-4, ["lora_r"] = 8, ["seed"] = 1 },
            new FakeOutcome { Test = 30, Curve = [(10, 5)] });
        study.Save();
        var outDir = Path.Combine(study.Dir, "elsewhere");
        var output = StudyReport.Write(study.Dir, outDir);

        Assert.Equal(outDir, output.Dir);
        Assert.Equal(Analyses.Ids, output.Analyses.Select(a => a.Id));
        Assert.All(output.Analyses, a =>
        {
            Assert.False(a.EnoughData, a.Id);
            Assert.Contains(a.Notes, n => n.Contains("not enough data"));
        });
        // Every plot exists, and one without enough data says so on the image itself.
        Assert.All(output.Plots, AssertValidPlot);
        Assert.All(output.Plots.Where(p => !output.Analyses.Single(a => a.Plots.Contains(p.Spec)).EnoughData),
            p => Assert.StartsWith("not enough data", p.Spec.Message));
        Assert.All(output.Findings, f => Assert.Equal(Verdict.NotEnoughData, f.Verdict));

        var md = File.ReadAllText(output.MarkdownPath);
        Assert.Contains("| finding | verdict | numbers |", md);
        Assert.Contains("**not enough data: needs at least two learning rates", md);
        AssertSelfContained(File.ReadAllText(output.HtmlPath));
    }

    [Fact]
    public void StudyYamlSelectsAnalyses_AndPendingOnlyStudyReports()
    {
        using var study = new FakeStudy();
        study.Add(new Dictionary<string, object?> { ["method"] = "full", ["lr"] = 1e-5 }, null);
        study.Save("name: picked\nanalyses: [stability, lr_sensitivity]\n");
        var output = StudyReport.Write(study.Dir);
        Assert.Equal(["stability", "lr_sensitivity"], output.Analyses.Select(a => a.Id));
        Assert.Equal(["stability_share", "stability_seed_std", "lr_sensitivity"], output.Plots.Select(p => Path.GetFileNameWithoutExtension(p.PngPath)));
        Assert.All(output.Plots, AssertValidPlot);
        Assert.Contains("| full | 1 | 0 | 0 | 0 | 1 |", File.ReadAllText(output.MarkdownPath));
    }

    [Fact]
    public void Cli_StudyReport_WritesTheReport_AndFailsClearlyOnAMissingFolder()
    {
        using var study = new FakeStudy();
        study.Add(new Dictionary<string, object?> { ["method"] = "full", ["lr"] = 1e-5 }, new FakeOutcome { Test = 30 });
        study.Add(new Dictionary<string, object?> { ["method"] = "lora", ["lr"] = 1e-4 }, null, state: "failed", error: "boom");
        study.Save();
        var outDir = Path.Combine(study.Dir, "out");
        var stdout = CliRunner.Ok("study", "report", study.Dir, "--out", outDir);
        Assert.Contains("finding (a): not enough data", stdout);
        Assert.Contains($"report: {Path.Combine(outDir, "report.html")}", stdout);
        Assert.True(File.Exists(Path.Combine(outDir, "summary.md")));
        Assert.Contains("boom", File.ReadAllText(Path.Combine(outDir, "summary.md"))); // failed trials are listed

        var missing = CliRunner.Run("study", "report", Path.Combine(study.Dir, "nope"));
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("study folder not found", missing.Stderr);
    }
}
