using System.ComponentModel;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Runtime;
using PeftLab.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab merge</c>.</summary>
public sealed class MergeSettings : ModelSettings
{
    /// <summary>Output folder.</summary>
    [CommandOption("--out <DIR>")]
    [Description("Folder for the merged Hugging Face checkpoint")]
    public string? Out { get; init; }

    /// <summary>Replace a non-empty output folder.</summary>
    [CommandOption("--force")]
    [Description("Replace the output folder if it is not empty (never the model or adapter folder)")]
    public bool Force { get; init; }

    /// <inheritdoc/>
    public override ValidationResult Validate() =>
        Adapter is null ? ValidationResult.Error("--adapter DIR is required")
        : Out is null ? ValidationResult.Error("--out DIR is required")
        : base.Validate();
}

/// <summary><c>peftlab merge</c>: fold LoRA / DoRA / (IA)3 into the base weights and write a complete checkpoint folder.</summary>
public sealed class MergeCommand : Command<MergeSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, MergeSettings s, CancellationToken cancellationToken)
    {
        s.ApplyRuntime();
        var (method, warnings) = AdapterMerge.ToFolder(s.Model!, s.Adapter!, s.Out!, s.Force, s.ComputeDType, TorchRuntime.Device);
        foreach (var w in warnings) Console.Error.WriteLine($"warning: {w}");
        AnsiConsole.MarkupLineInterpolated($"merged {method} from {s.Adapter} into {s.Out}");
        return 0;
    }
}
