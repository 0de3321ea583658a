using System.Text.Json.Nodes;
using PeftLab.Configuration;
using PeftLab.Models;
using PeftLab.Peft.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft;

/// <summary>
/// The knobs LoHa and LoKr share (PEFT's <c>LycorisConfig</c>): rank, α, the two dropouts and per-module patterns.
/// Both scale their weight update by α/r.
/// </summary>
public abstract record LycorisConfig : PeftConfig
{
    /// <summary>Rank r of the factors.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int R { get; init; } = 8;
    /// <summary>Scale numerator α: the update is multiplied by α/r.</summary>
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double Alpha { get; init; } = 8;
    /// <summary>While training, each output row of the update is dropped with this probability (PEFT's rank_dropout).</summary>
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double RankDropout { get; init; }
    /// <summary>While training, the whole update of a layer is skipped for a step with this probability (PEFT's module_dropout).</summary>
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double ModuleDropout { get; init; }
    /// <summary>Modules to wrap (default: the model's, as in PEFT: LoRA's, q_proj and v_proj for Llama, q and v for T5).</summary>
    [ConfigKey("target_modules")]
    public TargetSelector Targets { get; init; } = TargetSelector.ModelDefaults;
    /// <summary>Per-module ranks overriding <see cref="R"/>, keys as LoRA's rank_pattern.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();
    /// <summary>Per-module α overriding <see cref="Alpha"/>, keys as LoRA's alpha_pattern.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>(r, α) of the module called <paramref name="module"/>.</summary>
    public (int R, double Alpha) ForModule(string module) =>
        (PatternKeys.ValueFor(RankPattern, module, R), PatternKeys.ValueFor(AlphaPattern, module, Alpha));
}

/// <summary>Reading, writing and computing what LoHa and LoKr share.</summary>
public static class Lycoris
{
    /// <summary>Reads the shared adapter_config.json fields into <paramref name="config"/>.</summary>
    public static T Read<T>(AdapterJson j, T config) where T : LycorisConfig
    {
        j.RequireNeutral("use_effective_conv2d", AdapterJson.IsEmpty, "only linear layers are adapted");
        j.RequireNeutral("init_weights", n => n is JsonValue v && v.TryGetValue<bool>(out var b) && b || n is null, "only PEFT's default initialisation (init_weights=true) is supported");
        j.Known("modules_to_save");
        if (j.StringList("modules_to_save") is { Count: > 0 })
            throw new PeftConfigException($"{j.Source}: modules_to_save is not supported for {j.String("peft_type")}");
        return config with
        {
            R = j.Int("r", 8),
            Alpha = j.Double("alpha", 8),
            RankDropout = j.Double("rank_dropout", 0),
            ModuleDropout = j.Double("module_dropout", 0),
            Targets = TargetSelector.ReadPeft(j),
            RankPattern = PatternKeys.ReadRanks(j),
            AlphaPattern = PatternKeys.ReadAlphas(j),
        };
    }

    /// <summary>The shared adapter_config.json fields of a resolved config.</summary>
    public static JsonObject Write(LycorisConfig c)
    {
        var json = new JsonObject
        {
            ["alpha"] = c.Alpha,
            ["alpha_pattern"] = PatternKeys.Write(c.AlphaPattern),
            ["init_weights"] = true,
            ["modules_to_save"] = null,
            ["module_dropout"] = c.ModuleDropout,
            ["r"] = c.R,
            ["rank_dropout"] = c.RankDropout,
            ["rank_pattern"] = PatternKeys.Write(c.RankPattern),
            ["use_effective_conv2d"] = false,
        };
        c.Targets.WritePeft(json);
        return json;
    }

    /// <summary>
    /// y = W x + b + ΔW x, with PEFT's dropouts while training: the layer's update is skipped with probability
    /// <paramref name="moduleDropout"/>; each output row of ΔW is kept with probability 1 − <paramref name="rankDropout"/>
    /// (the kept rows rescaled by 1 / their mean when <paramref name="rescaleRankDropout"/>).
    /// </summary>
    public static Tensor Forward(Linear baseLayer, Tensor x, Func<Tensor> deltaWeight, bool training, double rankDropout, double moduleDropout, bool rescaleRankDropout)
    {
        var result = baseLayer.forward(x);
        if (training && moduleDropout > 0 && rand(1, device: CPU).item<float>() <= moduleDropout) return result;   // a CPU draw: no device sync on GPU
        var delta = deltaWeight();
        if (training && rankDropout > 0)
        {
            var keep = (rand(delta.shape[0], device: delta.device) > rankDropout).to_type(delta.dtype);
            if (rescaleRankDropout) keep = keep / keep.mean().clamp_min(1e-12); // all rows dropped: ΔW = 0, not NaN
            delta = delta * keep.unsqueeze(1);
        }
        return result + nn.functional.linear(x, delta.to_type(x.dtype));
    }
}

/// <summary>
/// The descriptor and behaviour LoHa and LoKr share: reading and writing the LyCORIS fields, wrapping the target
/// linear layers (default targets: LoRA's, as PEFT copies LoRA's mapping), saving the wrappers' parameters under
/// their PEFT names and merging ΔW into the base weights. A subclass says what its wrapper is and which fields it adds.
/// </summary>
public abstract class LycorisMethod<TConfig> : IPeftMethod where TConfig : LycorisConfig, new()
{
    /// <inheritdoc/>
    public abstract PeftMethodKind Kind { get; }
    /// <inheritdoc/>
    public abstract string Name { get; }
    /// <inheritdoc/>
    public abstract string? PeftType { get; }
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new TConfig();
    /// <inheritdoc/>
    public abstract CapacityKnob? Capacity { get; }
    /// <inheritdoc/>
    public abstract IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; }
    /// <inheritdoc/>
    public bool CanMerge => true;

    /// <summary>The method's own adapter_config.json fields, read into the config holding the shared ones.</summary>
    protected abstract TConfig ReadOwn(AdapterJson j, TConfig shared);

    /// <summary>Adds the method's own fields to <paramref name="json"/>.</summary>
    protected abstract void WriteOwn(TConfig config, JsonObject json);

    /// <summary>Throws a <see cref="PeftConfigException"/> for values of the method's own knobs it cannot use.</summary>
    protected virtual void Validate(TConfig config) { }

    /// <summary>The wrapper of one linear layer with rank <paramref name="r"/> and scale numerator <paramref name="alpha"/>.</summary>
    protected abstract nn.Module Wrap(Linear baseLayer, TConfig config, int r, double alpha, Generator generator);

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson json) => ReadOwn(json, Lycoris.Read(json, new TConfig()));

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = Resolved(config, model);
        var json = Lycoris.Write(c);
        WriteOwn(c, json);
        return json;
    }

    private TConfig Resolved(PeftConfig config, IPeftHost model)
    {
        var c = (TConfig)config;
        return c with { Targets = c.Targets.Resolve(LoraMethod.DefaultTargets.For(model, Name)) };
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = Resolved(config, model);
        PatternKeys.Validate(Name, c.RankPattern, c.AlphaPattern);
        Validate(c);
        LinearWrappers.Attach(model, c.Targets, (name, lin) =>
        {
            var (r, alpha) = c.ForModule(name);
            return Wrap(lin, c, r, alpha, context.Generator);
        }, PeftType!);
    }

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) => LinearWrappers.Merge(model);
}
