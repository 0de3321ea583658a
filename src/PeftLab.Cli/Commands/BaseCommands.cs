using PeftLab.Configuration;
using System.ComponentModel;
using PeftLab.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab base build</c>.</summary>
public sealed class BaseBuildSettings : CommonSettings
{
    /// <summary>The preset to pretrain.</summary>
    [CommandArgument(0, "<PRESET>")]
    [Description("Built-in preset to pretrain by its recipe (e.g. mini-bytes)")]
    public string Preset { get; init; } = "";

    /// <summary>Pretraining steps.</summary>
    [CommandOption("--steps <N>")]
    [Description("Pretraining steps (default 500)")]
    [ConfigRange(1, int.MaxValue)]
    public int? Steps { get; init; }

    /// <summary>Output folder.</summary>
    [CommandOption("--out <DIR>")]
    [Description("Folder to write the base into (default: bases/<name> under the current folder); replaced atomically")]
    public string? Out { get; init; }
}

/// <summary>
/// <c>peftlab base build</c>: pretrains a built-in base by its recipe (<see cref="PretrainRecipe"/>) into a folder and
/// prints its held-out corpus loss and its weights' SHA-256, so a build can be compared bit for bit with another.
/// </summary>
public sealed class BaseBuildCommand : Command<BaseBuildSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, BaseBuildSettings s, CancellationToken cancellationToken)
    {
        int steps = s.Steps ?? 500;
        var name = BaseModels.FolderName(s.Preset, steps, seed: 0);   // unknown presets fail here, naming the known ones
        var dir = Path.GetFullPath(s.Out ?? Path.Combine("bases", name));
        Console.WriteLine($"pretraining {s.Preset} for {steps} steps by its recipe into {dir}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        BaseModels.Build(s.Preset, steps, seed: 0, dir, p =>
        {
            if (p.Step % 100 == 0) Console.WriteLine($"  step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}");
        });
        var result = RunResult.Read(Path.Combine(dir, BaseModels.PretrainResultFile));
        var heldOut = -(result.BestScore ?? double.NaN);   // best_score is the negated validation loss
        var elapsed = clock.Elapsed;
        Console.WriteLine($"built in {(int)elapsed.TotalHours}:{elapsed:mm\\:ss}: held-out corpus loss {heldOut:F4} (perplexity {Math.Exp(heldOut):F3} per token)");
        var sha = BaseModels.WeightsSha256(dir);
        Console.WriteLine($"model.safetensors SHA-256 {sha}");
        if (BaseModels.ShippedBuild(s.Preset, steps, seed: 0) is { } shipped)
            Console.WriteLine(sha == shipped.WeightsSha256
                ? "identical to the shipped copy (same SHA-256)"
                : $"differs from the shipped copy, whose SHA-256 is {shipped.WeightsSha256} (other CPU kernels or thread count change the bits)");
        return 0;
    }
}
