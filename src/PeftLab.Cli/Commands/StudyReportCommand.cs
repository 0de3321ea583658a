using System.ComponentModel;
using PeftLab.Studies.Report;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab study report</c>.</summary>
public sealed class StudyReportSettings : GlobalSettings
{
    /// <summary>The study folder (holding plan.json and trials/).</summary>
    [CommandArgument(0, "<STUDY_DIR>")]
    [Description("Study folder (plan.json, trials/, study.yaml)")]
    public string StudyDir { get; init; } = "";

    /// <summary>Report folder; default STUDY_DIR/report.</summary>
    [CommandOption("--out <DIR>")]
    [Description("Report folder (default: STUDY_DIR/report)")]
    public string? Out { get; init; }
}

/// <summary><c>peftlab study report</c>: analyses, finding checks, report.html, summary.md and plots of a study's results.</summary>
public sealed class StudyReportCommand : Command<StudyReportSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, StudyReportSettings s, CancellationToken cancellationToken)
    {
        var output = StudyReport.Write(s.StudyDir, s.Out);
        foreach (var w in output.Warnings) Console.Error.WriteLine($"warning: {w}");
        foreach (var a in output.Analyses.Where(a => !a.EnoughData))
            Console.WriteLine($"{a.Id}: {string.Join("; ", a.Notes)}");
        foreach (var f in output.Findings)
            Console.WriteLine($"finding ({f.Id}): {f.VerdictText}");
        Console.WriteLine($"report: {output.HtmlPath}");
        Console.WriteLine($"summary: {output.MarkdownPath}");
        return 0;
    }
}
