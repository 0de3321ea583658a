using System.ComponentModel;
using System.Globalization;
using PeftLab.Configuration;
using PeftLab.Peft;
using PeftLab.Peft.Lora;
using PeftLab.Runtime;
using PeftLab.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab merge</c>.</summary>
public sealed class MergeSettings : CommonSettings
{
    /// <summary>The base model folder.</summary>
    [CommandOption("--model <DIR>")]
    [Description("Hugging Face model folder the adapters were trained on")]
    public string? Model { get; init; }

    /// <summary>Adapter folders, each optionally with a weight (DIR=WEIGHT).</summary>
    [CommandOption("--adapter <ADAPTER>")]
    [Description("PEFT adapter folder; repeat as DIR=WEIGHT to combine LoRA adapters (weight default 1)")]
    public string[] Adapters { get; init; } = [];

    /// <summary>Combination rule.</summary>
    [CommandOption("--combination <RULE>")]
    [Description("Combine the LoRA adapters by this rule of PEFT's add_weighted_adapter, e.g. svd (the default with several adapters), cat, linear, ties, dare_ties (an unknown name lists them all)")]
    public string? Combination { get; init; }

    /// <summary>Fraction kept by the pruning rules.</summary>
    [CommandOption("--density <F>")]
    [Description("Fraction of entries the pruning rules (ties, dare_*, magnitude_prune) keep, from 0 to 1")]
    [ConfigRange(0, 1)]
    public double? Density { get; init; }

    /// <summary>Sign election of ties / dare_ties.</summary>
    [CommandOption("--majority-sign <METHOD>")]
    [Description("Sign election of ties and dare_ties: total (default) or frequency")]
    public string MajoritySign { get; init; } = "total";

    /// <summary>Rank of an _svd result.</summary>
    [CommandOption("--svd-rank <R>")]
    [Description("Rank of an _svd combination (default: the largest rank of the adapters)")]
    [ConfigRange(1, int.MaxValue)]
    public int? SvdRank { get; init; }

    /// <summary>Quantile clamp of the SVD factors.</summary>
    [CommandOption("--svd-clamp <Q>")]
    [Description("Clamp the SVD factors at this quantile of their entries, above 0 and at most 1")]
    [ConfigRange(0, 1, MinExclusive = true)]
    public double? SvdClamp { get; init; }

    /// <summary>Seed of DARE's random drops.</summary>
    [CommandOption("--seed <N>")]
    [Description("Seed of the dare_* rules' random drops (default 0)")]
    [ConfigRange(0, long.MaxValue)]
    public long Seed { get; init; }

    /// <summary>Merge the combined adapter into the base.</summary>
    [CommandOption("--into-base")]
    [Description("Write the base model with the combined adapter merged in, instead of the combined adapter")]
    public bool IntoBase { get; init; }

    /// <summary>Compute dtype.</summary>
    [CommandOption("--dtype <DTYPE>")]
    [Description("Compute dtype: float32 (default) or bfloat16")]
    public string DType { get; init; } = "float32";

    /// <summary>Output folder.</summary>
    [CommandOption("--out <DIR>")]
    [Description("Folder for the merged Hugging Face checkpoint, or for the combined adapter")]
    public string? Out { get; init; }

    /// <summary>Replace a non-empty output folder.</summary>
    [CommandOption("--force")]
    [Description("Replace the output folder if it is not empty (never the model or adapter folder)")]
    public bool Force { get; init; }

    /// <summary>Whether the adapters are combined (several, a weight, or a rule given) rather than one merged as it is.</summary>
    public bool Combines => Adapters.Length > 1 || Combination is not null || Adapters.Any(a => ParseAdapter(a).Weight is not null);

    /// <inheritdoc/>
    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(Model)) return ValidationResult.Error("--model DIR is required");
        if (Adapters.Length == 0) return ValidationResult.Error("--adapter DIR is required");
        if (Out is null) return ValidationResult.Error("--out DIR is required");
        if (!Combines && (Density is not null || SvdRank is not null || SvdClamp is not null || IntoBase))
            return ValidationResult.Error("--density, --svd-rank, --svd-clamp and --into-base apply to combinations: give --combination or several --adapter DIR=WEIGHT");
        return base.Validate();
    }

    /// <summary>DIR or DIR=WEIGHT (the last '=' followed by a number splits; a folder name may hold '=').</summary>
    public static (string Dir, double? Weight) ParseAdapter(string text)
    {
        int eq = text.LastIndexOf('=');
        if (eq > 0 && double.TryParse(text[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var w))
            return (text[..eq], w);
        return (text, null);
    }

    /// <summary>The combination options given.</summary>
    public LoraCombinationOptions Options() => new()
    {
        Type = Combination is null ? LoraCombinationType.Svd : LoraCombination.Parse(Combination),
        Density = Density,
        MajoritySign = MajoritySign.ToLowerInvariant() switch
        {
            "total" => MajoritySignMethod.Total,
            "frequency" => MajoritySignMethod.Frequency,
            _ => throw new ArgumentException($"--majority-sign: unknown method '{MajoritySign}'; known: total, frequency"),
        },
        SvdRank = SvdRank, SvdClamp = SvdClamp, Seed = Seed,
    };
}

/// <summary>
/// <c>peftlab merge</c>: fold an adapter into the base weights and write a complete checkpoint folder, or combine LoRA
/// adapters into a new adapter (or into the base) as PEFT's <c>add_weighted_adapter</c>.
/// </summary>
public sealed class MergeCommand : Command<MergeSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, MergeSettings s, CancellationToken cancellationToken)
    {
        s.ApplyRuntime();
        var dtype = ModelSettings.ParseDType(s.DType);
        if (!s.Combines)
        {
            var (method, warnings) = AdapterMerge.ToFolder(s.Model!, s.Adapters[0], s.Out!, s.Force, dtype, TorchRuntime.Device);
            foreach (var w in warnings) Console.Error.WriteLine($"warning: {w}");
            AnsiConsole.MarkupLineInterpolated($"merged {method} from {s.Adapters[0]} into {s.Out}");
            return 0;
        }
        var adapters = s.Adapters.Select(MergeSettings.ParseAdapter).Select(a => new WeightedAdapterFolder(a.Dir, a.Weight ?? 1)).ToArray();
        var options = s.Options();
        var config = AdapterMerge.Combine(s.Model!, adapters, options, s.Out!, s.Force, s.IntoBase, dtype, TorchRuntime.Device);
        var rule = LoraCombination.NameOf(adapters.Length == 1 ? LoraCombinationType.Linear : options.Type);
        var what = s.IntoBase ? "merged into the base model" : $"LoRA adapter, r={config.R}, {config.Targets.Names.Count} modules";
        AnsiConsole.MarkupLineInterpolated($"combined {string.Join(" + ", adapters.Select(a => $"{a.Weight}·{a.Dir}"))} by {rule} into {s.Out} ({what})");
        return 0;
    }
}
