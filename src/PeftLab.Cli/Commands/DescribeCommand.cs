using System.ComponentModel;
using PeftLab.Configuration;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using static TorchSharp.torch;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab describe</c>.</summary>
public sealed class DescribeSettings : CommonSettings
{
    /// <summary>Model folder.</summary>
    [CommandOption("--model <DIR>")]
    [Description("Hugging Face model folder; only config.json is read (no weights are loaded)")]
    public string? Model { get; init; }

    /// <summary>Or a preset (no weights needed).</summary>
    [CommandOption("--preset <NAME>")]
    [Description("A built-in preset instead of a folder (decoder-only or T5)")]
    public string? Preset { get; init; }

    /// <summary>Method name.</summary>
    [CommandOption("--method <NAME>")]
    [Description("A registered method name or alias, e.g. lora (an unknown name lists them all)")]
    public string? Method { get; init; }

    /// <summary>Table over every method and the knob values the reference study sweeps.</summary>
    [CommandOption("--sweep")]
    [Description("One row per method and each knob value the reference study sweeps")]
    public bool Sweep { get; init; }

    /// <summary>Machine-readable output.</summary>
    [CommandOption("--json")]
    [Description("One JSON object per line instead of a table")]
    public bool Json { get; init; }

    /// <summary>Method knobs.</summary>
    [CommandArgument(0, "[knobs]")]
    [Description("Method knobs as key=value, e.g. r=16 target_modules=all-linear")]
    public string[] Knobs { get; init; } = [];

    /// <inheritdoc/>
    public override ValidationResult Validate() =>
        (Model is null) == (Preset is null) ? ValidationResult.Error("give exactly one of --model DIR or --preset NAME")
        : Method is null && !Sweep ? ValidationResult.Error("give --method NAME (with optional knobs) or --sweep")
        : base.Validate();
}

/// <summary><c>peftlab describe</c>: trainable and total parameters of a method on a model.</summary>
public sealed class DescribeCommand : Command<DescribeSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, DescribeSettings s, CancellationToken cancellationToken)
    {
        s.ApplyRuntime();
        var family = TrainableModels.FamilyOf(s.Model, s.Preset);   // decoder-only or T5
        var table = new Table().AddColumns("method", "knobs", "trainable", "total", "trainable %");
        var cases = s.Sweep ? SweepCases() : [(Describe(s.Method!, s.Knobs), ParseMethod(s.Method!, s.Knobs))];
        foreach (var (knobs, methodConfig) in cases)
        {
            using var scope = NewDisposeScope();
            // weights are irrelevant to counting: build from the config on the CPU without loading the checkpoint
            var model = family.Build(s.Model, s.Preset, ScalarType.Float32, CPU);
            var peft = PeftModel.Apply(model.Host, methodConfig);
            if (s.Json)
                Console.WriteLine(new System.Text.Json.Nodes.JsonObject
                {
                    ["method"] = PeftRegistry.NameOf(methodConfig.Kind), ["knobs"] = knobs,
                    ["trainable"] = peft.TrainableParameters, ["total"] = peft.TotalParameters,
                }.ToJsonString());
            else
                table.AddRow(PeftRegistry.NameOf(methodConfig.Kind), Markup.Escape(knobs), $"{peft.TrainableParameters:N0}", $"{peft.TotalParameters:N0}",
                    $"{100.0 * peft.TrainableParameters / peft.TotalParameters:F4}");
        }
        if (!s.Json) AnsiConsole.Write(table);
        return 0;
    }

    private static string Describe(string method, string[] knobs) => knobs.Length == 0 ? "defaults" : string.Join(" ", knobs);

    /// <summary>Binds a method and its knobs with the same rules as <c>method:</c> in a training config.</summary>
    public static PeftConfig ParseMethod(string method, IEnumerable<string> knobs)
    {
        var bad = knobs.FirstOrDefault(k => !k.Contains('='));
        if (bad is not null) throw new ArgumentException($"'{bad}' is not a key=value knob");
        return TrainConfigLoader.BindMethod(method, knobs);
    }

    /// <summary>Every registered method's reference configurations, in registry order.</summary>
    private static IEnumerable<(string, PeftConfig)> SweepCases() => PeftRegistry.All.SelectMany(m => m.ReferenceSweep);
}
