using System.ComponentModel;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Runtime;
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
        var model = HfModel.Load(s.Model!, s.ComputeDType, TorchRuntime.Device);
        var peft = PeftModel.LoadAdapter(model, s.Adapter!);
        foreach (var w in peft.Warnings) Console.Error.WriteLine($"warning: {w}");
        peft.Merge();
        HfModel.Save(model, s.Out!);
        ModelFolder.CopyTokenizerFiles(s.Model!, s.Out!);
        AnsiConsole.MarkupLineInterpolated($"merged {peft.Method.Kind} from {s.Adapter} into {s.Out}");
        return 0;
    }
}
