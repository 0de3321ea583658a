using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.BitFit;

/// <summary>
/// BitFit: only biases train, y = W x + b with W frozen. Linear layers without a bias (Llama's) get a
/// zero-initialised one, so the model is unchanged at start — what the reference study did for bias-free models.
/// Optionally the norm gains train too (LN tuning).
/// </summary>
public sealed record BitFitConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.BitFit;
    /// <summary>Linear layers whose bias trains (default: the model's, every projection in the blocks).</summary>
    [PeftLab.Configuration.ConfigKey("target_modules")]
    public TargetSelector Targets { get; init; } = TargetSelector.ModelDefaults;
    /// <summary>Also train RMSNorm (T5LayerNorm) gains.</summary>
    public bool IncludeNorms { get; init; }
}

/// <summary>BitFit; files use PeftLab's own peft_type <c>PEFTLAB_BITFIT</c> (see docs/adapter-format.md).</summary>
public sealed class BitFitMethod : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.BitFit;
    /// <inheritdoc/>
    public string Name => "bitfit";
    /// <inheritdoc/>
    public string? PeftType => "PEFTLAB_BITFIT";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new BitFitConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity => null;

    /// <inheritdoc/>
    public bool InReferenceStudy => true;
    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        [("all projections", new BitFitConfig()), ("all projections + norms", new BitFitConfig { IncludeNorms = true })];
    /// <inheritdoc/>
    public bool CanMerge => false;

    /// <summary>Linear layers whose (possibly added) bias trains when the config names none: every projection in the blocks.</summary>
    public static IReadOnlyDictionary<ModelLayout, IReadOnlyList<string>> DefaultTargets { get; } = new Dictionary<ModelLayout, IReadOnlyList<string>>
    {
        [ModelLayout.Llama] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        [ModelLayout.T5] = ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"],
    };

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        var node = j.Node("target_modules");
        return new BitFitConfig
        {
            Targets = TargetSelector.FromPeft(j.StringList("target_modules"), node is JsonValue, null, j.Source),
            IncludeNorms = j.Bool("include_norms", false),
        };
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = (BitFitConfig)config;
        return new JsonObject { ["include_norms"] = c.IncludeNorms, ["target_modules"] = c.Targets.Resolve(DefaultTargets.For(model, Name)).ToPeftJson() };
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = (BitFitConfig)config;
        var selector = c.Targets.Resolve(DefaultTargets.For(model, Name));
        var targets = Injector.Slots(model.Module).Where(s => s.Module is Linear && selector.Matches(s.Name, true)).ToArray();
        if (targets.Length == 0) throw new PeftConfigException($"no module matched BitFit target_modules {selector}");
        foreach (var slot in targets)
        {
            var lin = (Linear)slot.Module;
            if (lin.bias is null)
            {
                var w = lin.weight!;
                lin.bias = new Parameter(zeros(w.shape[0], dtype: w.dtype, device: w.device));
            }
            lin.bias!.requires_grad = true;
        }
        if (c.IncludeNorms)
            foreach (var (_, gain) in Injector.NormGains(model.Module)) gain.requires_grad = true;
    }

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) =>
        throw new NotSupportedException("BitFit adds biases the Hugging Face config of this architecture cannot express; keep the adapter file");
}
