using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.IA3;

/// <summary>(IA)3: learned vectors l rescale activations. Attention targets: y = l ⊙ (W x + b); feed-forward targets: y = W (l ⊙ x) + b.</summary>
public sealed record IA3Config : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.IA3;
    /// <summary>Modules to rescale (default: the model's, as in PEFT: k_proj, v_proj, down_proj for Llama; k, v, wo for T5).</summary>
    [PeftLab.Configuration.ConfigKey("target_modules")]
    public TargetSelector Targets { get; init; } = TargetSelector.ModelDefaults;
    /// <summary>Targets whose input, not output, is scaled (null: the model's, as in PEFT: down_proj for Llama; wo for T5).</summary>
    public IReadOnlyList<string>? FeedForwardModules { get; init; }

    /// <summary>This config with the model's defaults (<see cref="IA3Method.DefaultTargets"/>) filled in.</summary>
    public IA3Config Resolve(IPeftHost model)
    {
        var defaults = IA3Method.DefaultTargets.For(model, PeftRegistry.NameOf(Kind));
        return this with
        {
            Targets = Targets.Resolve(defaults.Targets),
            FeedForwardModules = FeedForwardModules ?? defaults.FeedForward,
        };
    }

    /// <summary>Is a module (full name) a feed-forward target? Call on a resolved config.</summary>
    public bool IsFeedForward(string name) => TargetSelector.MatchesAny(name,
        FeedForwardModules ?? throw new InvalidOperationException("resolve the model's default feed-forward modules (IA3Config.Resolve) first"));
}

/// <summary>A linear layer rescaled by a learned vector <c>ia3_l</c> (ones at start: the model is unchanged).</summary>
public sealed class IA3Linear : nn.Module<Tensor, Tensor>
{
    private readonly Linear base_layer;
    private readonly Parameter ia3_l; // [out, 1], or [1, in] for feed-forward targets (PEFT's shapes)
    private readonly bool feedForward;

    /// <summary>Wraps a layer.</summary>
    public IA3Linear(Linear baseLayer, bool isFeedForward) : base(nameof(IA3Linear))
    {
        base_layer = baseLayer;
        feedForward = isFeedForward;
        var w = baseLayer.weight!;
        ia3_l = new Parameter(isFeedForward ? ones(1, w.shape[1], dtype: w.dtype, device: w.device) : ones(w.shape[0], 1, dtype: w.dtype, device: w.device));
        RegisterComponents();
    }

    /// <summary>The wrapped layer.</summary>
    public Linear BaseLayer => base_layer;

    /// <summary>x [..., in] -> [..., out].</summary>
    public override Tensor forward(Tensor x) => feedForward
        ? base_layer.forward(x * ia3_l.flatten())
        : base_layer.forward(x) * ia3_l.flatten();

    /// <summary>Folds l into W (and b for output scaling).</summary>
    public void MergeIntoBase()
    {
        using var noGrad = no_grad();
        base_layer.weight!.mul_(ia3_l);                                  // [out,in] ⊙ [1,in] or [out,1]
        if (!feedForward && base_layer.bias is not null) base_layer.bias.mul_(ia3_l.flatten());
    }
}

/// <summary>(IA)3 in the Python PEFT library's IA3 format.</summary>
public sealed class IA3Method : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.IA3;
    /// <inheritdoc/>
    public string Name => "ia3";
    /// <inheritdoc/>
    public string? PeftType => "IA3";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new IA3Config();
    /// <inheritdoc/>
    public CapacityKnob? Capacity => null;

    /// <inheritdoc/>
    public bool InReferenceStudy => true;
    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } = [("k,v,down", new IA3Config())];
    /// <inheritdoc/>
    public bool CanMerge => true;

    /// <summary>
    /// Modules (IA)3 rescales when the config names none, and which of them are feed-forward (input-scaled), as in PEFT:
    /// the key and value projections and the feed-forward output projection.
    /// </summary>
    public static IReadOnlyDictionary<ModelLayout, (IReadOnlyList<string> Targets, IReadOnlyList<string> FeedForward)> DefaultTargets { get; } =
        new Dictionary<ModelLayout, (IReadOnlyList<string>, IReadOnlyList<string>)>
        {
            [ModelLayout.Llama] = (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
            [ModelLayout.T5] = (["k", "v", "wo"], ["wo"]),
        };

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        j.RequireNeutral("fan_in_fan_out", AdapterJson.IsEmpty, "only nn.Linear layers (fan_in_fan_out=false) are used");
        j.RequireNeutral("init_ia3_weights", n => n is null || (n is JsonValue v && v.TryGetValue<bool>(out var b) && b), "only ones-initialised vectors are supported");
        j.Known("modules_to_save");
        if (j.StringList("modules_to_save") is { Count: > 0 })
            throw new PeftConfigException($"{j.Source}: modules_to_save is not supported for IA3");
        return new IA3Config
        {
            Targets = TargetSelector.ReadPeft(j),
            FeedForwardModules = j.StringList("feedforward_modules"),
        };
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = ((IA3Config)config).Resolve(model);
        var json = new JsonObject
        {
            ["fan_in_fan_out"] = false,
            ["feedforward_modules"] = new JsonArray(c.FeedForwardModules!.OrderBy(x => x, StringComparer.Ordinal).Select(x => (JsonNode)x).ToArray()),
            ["init_ia3_weights"] = true,
            ["modules_to_save"] = null,
        };
        c.Targets.WritePeft(json);
        return json;
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = ((IA3Config)config).Resolve(model);
        Injector.Replace(model.Module,
            slot => slot.Module is Linear lin && c.Targets.Matches(slot.Name, true) ? new IA3Linear(lin, c.IsFeedForward(slot.Name)) : null,
            $"IA3 target_modules {c.Targets}");
        foreach (var (name, p) in model.Module.named_parameters())
            if (name.EndsWith(".ia3_l", StringComparison.Ordinal)) p.requires_grad = true;
    }

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config)
    {
        foreach (var slot in Injector.Slots(model.Module).Where(s => s.Module is IA3Linear))
        {
            var ia3 = (IA3Linear)slot.Module;
            ia3.MergeIntoBase();
            slot.Owner.ReplaceChild(slot.ChildName, ia3.BaseLayer);
        }
    }
}
