using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.LnTuning;

/// <summary>
/// LN tuning (Zhao et al. 2023, "Tuning LayerNorm in Attention"): only the gains of the selected normalisation layers
/// train; everything else stays frozen. y = g' ⊙ x / rms(x), with g' starting at the pretrained g, so the model is
/// unchanged at start.
/// </summary>
public sealed record LnTuningConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.LnTuning;
    /// <summary>
    /// Normalisation layers whose gain trains (default: the model's, as in PEFT: every norm of the blocks and the final
    /// norm — input_layernorm, post_attention_layernorm, norm for Llama; layer_norm, final_layer_norm for T5).
    /// </summary>
    [PeftLab.Configuration.ConfigKey("target_modules")]
    public TargetSelector Targets { get; init; } = TargetSelector.ModelDefaults;
}

/// <summary>
/// LN tuning in the Python PEFT library's LN_TUNING format. PEFT trains a copy of each selected norm kept under
/// <c>ln_tuning_layers</c>; PeftLab trains the norm's gain in place (the same function) and writes and reads the
/// file's <c>&lt;norm&gt;.ln_tuning_layers.weight</c> keys.
/// </summary>
public sealed class LnTuningMethod : IPeftMethod
{
    private const string FileInfix = ".ln_tuning_layers";

    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.LnTuning;
    /// <inheritdoc/>
    public string Name => "ln_tuning";
    /// <inheritdoc/>
    public IReadOnlyList<string> Aliases => ["layernorm_tuning"];
    /// <inheritdoc/>
    public string? PeftType => "LN_TUNING";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new LnTuningConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity => null;

    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } = [("all norms", new LnTuningConfig())];
    /// <inheritdoc/>
    public bool CanMerge => true;

    /// <summary>Norms LN tuning trains when the config names none (PEFT's per-model_type mapping).</summary>
    public static IReadOnlyDictionary<ModelLayout, IReadOnlyList<string>> DefaultTargets { get; } = new Dictionary<ModelLayout, IReadOnlyList<string>>
    {
        [ModelLayout.Llama] = ["input_layernorm", "post_attention_layernorm", "norm"],
        [ModelLayout.T5] = ["layer_norm", "final_layer_norm"],
    };

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        j.Known("modules_to_save");
        if (j.StringList("modules_to_save") is { Count: > 0 })
            throw new PeftConfigException($"{j.Source}: modules_to_save is not supported for LN_TUNING");
        return new LnTuningConfig { Targets = TargetSelector.ReadPeft(j) };
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var json = new JsonObject { ["modules_to_save"] = null };
        Resolve(config, model).WritePeft(json);
        return json;
    }

    private TargetSelector Resolve(PeftConfig config, IPeftHost model) => ((LnTuningConfig)config).Targets.Resolve(DefaultTargets.For(model, Name));

    /// <summary>The selected norms' gains, by module name.</summary>
    private IReadOnlyList<(string Module, Parameter Weight)> Gains(IPeftHost model, PeftConfig config)
    {
        var targets = Resolve(config, model);
        var all = Injector.NormGains(model.Module);
        var gains = all.Where(m => targets.Matches(m.Name, false)).ToArray();
        if (gains.Length == 0)
        {
            var norms = all.Select(m => m.Name.Split('.').Last()).Distinct().Order(StringComparer.Ordinal);
            throw new PeftConfigException($"no normalisation layer matched LN_TUNING target_modules {targets}; norm names in this model: {string.Join(", ", norms)}");
        }
        return gains;
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        foreach (var (_, weight) in Gains(model, config)) weight.requires_grad = true;
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, Tensor> AdapterState(IPeftHost model, PeftConfig config) =>
        Gains(model, config).ToDictionary(g => PeftState.Prefix + g.Module + FileInfix + ".weight", g => (Tensor)g.Weight);

    /// <inheritdoc/>
    public void LoadAdapterState(IPeftHost model, PeftConfig config, ITensorSource source) =>
        PeftState.LoadStrict(AdapterState(model, config), source);

    /// <inheritdoc/>
    /// <remarks>The tuned gains already sit in the model's norms: merging only freezes them.</remarks>
    public void Merge(IPeftHost model, PeftConfig config)
    {
        foreach (var (_, weight) in Gains(model, config)) weight.requires_grad = false;
    }
}
