using System.Text.Json.Nodes;
using PeftLab.Configuration;
using PeftLab.Models;
using PeftLab.Peft.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.Vera;

/// <summary>Which biases train along with VeRA (PEFT's <c>bias</c>).</summary>
public enum VeraBias
{
    /// <summary>No bias trains.</summary>
    None,
    /// <summary>Every bias of the model trains.</summary>
    All,
    /// <summary>The biases of the VeRA-wrapped layers train.</summary>
    VeraOnly,
}

/// <summary>
/// VeRA (Kopiczko et al. 2024, "Vector-based Random Matrix Adaptation"): one pair of frozen random projections
/// A [r, max_in] and B [max_out, r] is shared by every adapted layer, and each layer learns only two scaling vectors:
/// ΔW = Λ_b B[:out] Λ_d A[:, :in], i.e. ΔW x = λ_b ⊙ (B_slice (λ_d ⊙ (A_slice x))). A layer trains r + out numbers, so r
/// is set far higher than a LoRA rank (PEFT's default 256). Field names are PEFT's <c>VeraConfig</c>'s.
/// </summary>
public sealed record VeraConfig : PeftConfig, IValidatable
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.Vera;
    /// <summary>Rank r of the shared projections: λ_d has r entries per layer.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int R { get; init; } = 256;
    /// <summary>
    /// Modules to wrap (default: the model's, as in PEFT: LoRA's, q_proj and v_proj for Llama, q and v for T5). PEFT's
    /// VeRA has no <c>exclude_modules</c>, so an exclusion is refused rather than written where PEFT would not read it.
    /// </summary>
    [ConfigKey("target_modules")]
    public TargetSelector Targets { get; init; } = TargetSelector.ModelDefaults;
    /// <summary>
    /// Seed of the CPU generator that draws A and then B (Kaiming-uniform, gain √2: U(±√(6/fan_in))), as PEFT's
    /// <c>torch.Generator().manual_seed(projection_prng_key)</c>; PeftLab's libtorch draws the same values.
    /// Any int: a negative key wraps modulo 2⁶⁴ as torch's <c>manual_seed</c> does.
    /// </summary>
    [ConfigRange(int.MinValue, int.MaxValue)]
    public int ProjectionPrngKey { get; init; }
    /// <summary>
    /// Save A and B in the adapter file (as <c>base_model.vera_A</c> / <c>base_model.vera_B</c>); when false the file holds
    /// only the vectors and a load redraws the projections from <see cref="ProjectionPrngKey"/>, as PEFT does.
    /// </summary>
    public bool SaveProjection { get; init; } = true;
    /// <summary>Dropout on the VeRA branch's input while training.</summary>
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double VeraDropout { get; init; }
    /// <summary>Starting value of every λ_d entry (λ_b starts at 0, so the model is unchanged at start); small values (≤ 0.1) train best (paper, Table 6c).</summary>
    [ConfigRange(double.MinValue, double.MaxValue)]
    public double DInitial { get; init; } = 0.1;
    /// <summary>Which biases train along with the vectors.</summary>
    public VeraBias Bias { get; init; } = VeraBias.None;
    /// <summary>
    /// PEFT's default start (true: λ_b = 0, λ_d = <see cref="DInitial"/>); false keeps PEFT's unreset values, λ_b = 1 and
    /// λ_d ~ N(0, 1), so the model changes at start.
    /// </summary>
    public bool InitWeights { get; init; } = true;

    /// <inheritdoc/>
    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (Targets.Exclude.Count > 0 || Targets.ExcludeRegex is not null)
            yield return ("target_modules", "VeRA cannot exclude modules: PEFT's VeraConfig has no exclude_modules, so an adapter file could not say which modules were left out (name the targets instead)");
    }
}

/// <summary>
/// The frozen random projections every VeRA layer of a model shares, sized for the largest adapted layer: A [r, max_in]
/// and B [max_out, r]; a layer uses A[:, :in] and B[:out, :].
/// </summary>
/// <param name="A">vera_A [r, max_in].</param>
/// <param name="B">vera_B [max_out, r].</param>
public sealed record VeraProjections(Tensor A, Tensor B)
{
    /// <summary>
    /// Draws A then B from one CPU generator seeded with <paramref name="key"/>, in float32 as PEFT's
    /// <c>_init_vera_A_vera_B</c> does (the same libtorch generator and uniform kernel, so the same values), then casts
    /// them to <paramref name="like"/>'s dtype and device.
    /// </summary>
    public static VeraProjections Generate(int r, long maxIn, long maxOut, int key, Tensor like)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(unchecked((ulong)(long)key), CPU);   // negative keys wrap mod 2^64, as torch's manual_seed
        var a = KaimingUniform(r, maxIn, generator);
        var b = KaimingUniform(maxOut, r, generator);
        return new VeraProjections(
            a.to(like.dtype, like.device).detach().MoveToOuterDisposeScope(),
            b.to(like.dtype, like.device).detach().MoveToOuterDisposeScope());
    }

    /// <summary>
    /// PEFT's <c>_kaiming_init</c>: U(−bound, bound) with bound = √3 · √2 / √fan_in, fan_in = the second dimension,
    /// computed in the same order so the float32 bound is PEFT's (not <see cref="LinearWrappers.KaimingUniform"/>'s a = √5).
    /// </summary>
    private static Tensor KaimingUniform(long rows, long cols, Generator generator)
    {
        double std = Math.Sqrt(2) / Math.Sqrt(cols);
        double bound = Math.Sqrt(3.0) * std;
        using var noGrad = no_grad();
        return empty([rows, cols], dtype: ScalarType.Float32).uniform_(-bound, bound, generator: generator);
    }
}

/// <summary>
/// A linear layer with a VeRA update: y = W x + b + λ_b ⊙ (B_slice (λ_d ⊙ (A_slice dropout(x)))), as PEFT's
/// <c>vera.Linear</c>; the shared projections are non-persistent buffers of every layer (PEFT keeps references to the
/// model's as well), saved once by <see cref="VeraMethod"/>.
/// </summary>
public sealed class VeraLinear : nn.Module<Tensor, Tensor>, IWrappedLinear
{
    private readonly Linear base_layer;
    private readonly nn.Module<Tensor, Tensor> vera_dropout;
    private readonly Parameter vera_lambda_b;   // [out], zeros at start so ΔW = 0
    private readonly Parameter vera_lambda_d;   // [r], d_initial at start
    private readonly Tensor vera_A;             // [r, max_in], shared, frozen
    private readonly Tensor vera_B;             // [max_out, r], shared, frozen
    private readonly long inFeatures, outFeatures;

    /// <summary>Wraps <paramref name="baseLayer"/> with vectors initialised per <paramref name="config"/> (λ_d ~ N(0, 1) from <paramref name="generator"/> without init_weights).</summary>
    /// <exception cref="PeftConfigException">The projections are too small for this layer.</exception>
    public VeraLinear(Linear baseLayer, VeraProjections projections, VeraConfig config, Generator generator) : base(nameof(VeraLinear))
    {
        base_layer = baseLayer;
        var w = baseLayer.weight!;
        outFeatures = w.shape[0];
        inFeatures = w.shape[1];
        long r = projections.A.shape[0];
        if (projections.A.shape[1] < inFeatures || projections.B.shape[0] < outFeatures || projections.B.shape[1] != r)
            throw new PeftConfigException($"VeRA projections vera_A {StrictLoader.Fmt(projections.A.shape)} / vera_B {StrictLoader.Fmt(projections.B.shape)} do not cover a [{outFeatures}, {inFeatures}] layer");
        vera_dropout = config.VeraDropout > 0 ? nn.Dropout(config.VeraDropout) : nn.Identity();
        using (no_grad())
        {
            vera_lambda_b = new Parameter(config.InitWeights ? zeros(outFeatures, dtype: w.dtype, device: w.device) : ones(outFeatures, dtype: w.dtype, device: w.device));
            vera_lambda_d = new Parameter(config.InitWeights
                ? full(r, config.DInitial, dtype: w.dtype, device: w.device)
                : randn([r], generator: generator).to(w.dtype, w.device));
        }
        vera_A = projections.A;
        vera_B = projections.B;
        register_buffer(nameof(vera_A), vera_A, persistent: false);
        register_buffer(nameof(vera_B), vera_B, persistent: false);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public Linear BaseLayer => base_layer;

    /// <summary>The shared projections this layer reads (the same tensors in every layer of a model).</summary>
    public VeraProjections Projections => new(vera_A, vera_B);

    /// <summary>x [..., in] → [..., out].</summary>
    public override Tensor forward(Tensor x)
    {
        var a = vera_A.narrow(1, 0, inFeatures);    // [r, in]
        var b = vera_B.narrow(0, 0, outFeatures);   // [out, r]
        var hidden = nn.functional.linear(vera_dropout.forward(x), a) * vera_lambda_d;
        return base_layer.forward(x) + vera_lambda_b * nn.functional.linear(hidden, b);
    }

    /// <summary>ΔW = (λ_b ⊙ B_slice) (λ_d ⊙ A_slice) [out, in], in float32.</summary>
    public Tensor DeltaWeight()
    {
        var a = vera_A.narrow(1, 0, inFeatures).to_type(ScalarType.Float32);
        var b = vera_B.narrow(0, 0, outFeatures).to_type(ScalarType.Float32);
        return (vera_lambda_b.to_type(ScalarType.Float32).unsqueeze(1) * b).mm(vera_lambda_d.to_type(ScalarType.Float32).unsqueeze(1) * a);
    }

    /// <inheritdoc/>
    public Tensor MergedWeight() => LinearWrappers.MergedWeight(base_layer, DeltaWeight());
}

/// <summary>
/// VeRA in the Python PEFT library's VERA format: <c>&lt;layer&gt;.vera_lambda_b</c> [out] and <c>.vera_lambda_d</c> [r]
/// per layer, and with <c>save_projection</c> the shared <c>base_model.vera_A</c> [r, max_in] and
/// <c>base_model.vera_B</c> [max_out, r] once (PEFT's <c>VeraModel._get_adapter_state_dict</c>).
/// </summary>
public sealed class VeraMethod : IPeftMethod
{
    /// <summary>Adapter-file key of the shared A (PEFT's <c>base_model.vera_A.&lt;adapter&gt;</c> with the adapter name removed).</summary>
    public const string ProjectionAKey = "base_model.vera_A";
    /// <summary>Adapter-file key of the shared B.</summary>
    public const string ProjectionBKey = "base_model.vera_B";

    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.Vera;
    /// <inheritdoc/>
    public string Name => "vera";
    /// <inheritdoc/>
    public string? PeftType => "VERA";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new VeraConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity { get; } = new("vera_r", "r", "VeRA rank");
    /// <inheritdoc/>
    public bool CanMerge => true;

    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 64, 256, 1024 }.Select(r => ($"r={r} q,v", (PeftConfig)new VeraConfig { R = r })).ToArray();

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        j.RequireNeutral("fan_in_fan_out", AdapterJson.IsEmpty, "only nn.Linear layers (fan_in_fan_out=false) are used");
        j.RequireNeutral("modules_to_save", AdapterJson.IsEmpty, "VeRA trains only its vectors and biases");
        j.RequireNeutral("exclude_modules", AdapterJson.IsEmpty, "PEFT's VeraConfig has no exclude_modules");
        return new VeraConfig
        {
            R = j.Int("r", 256),
            Targets = TargetSelector.ReadPeft(j),
            ProjectionPrngKey = j.Int("projection_prng_key", 0),
            SaveProjection = j.Bool("save_projection", true),
            VeraDropout = j.Double("vera_dropout", 0),
            DInitial = j.Double("d_initial", 0.1),
            Bias = j.Choice("bias", VeraBias.None),
            InitWeights = j.Bool("init_weights", true),
        };
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = Resolved(config, model);
        var json = new JsonObject
        {
            ["bias"] = ConfigEnums.Name(c.Bias),
            ["d_initial"] = c.DInitial,
            ["fan_in_fan_out"] = false,
            ["init_weights"] = c.InitWeights,
            ["modules_to_save"] = null,
            ["projection_prng_key"] = c.ProjectionPrngKey,
            ["r"] = c.R,
            ["save_projection"] = c.SaveProjection,
            ["vera_dropout"] = c.VeraDropout,
        };
        c.Targets.WritePeft(json);
        json.Remove("exclude_modules");   // not a VeraConfig field (Validate refuses exclusions)
        return json;
    }

    private VeraConfig Resolved(PeftConfig config, IPeftHost model)
    {
        var c = (VeraConfig)config;
        return c with { Targets = c.Targets.Resolve(LoraMethod.DefaultTargets.For(model, Name)) };
    }

    /// <inheritdoc/>
    /// <remarks>
    /// As PEFT's <c>VeraModel._find_dim</c>: the projections are sized for the largest input and output among the
    /// targeted layers, drawn from <see cref="VeraConfig.ProjectionPrngKey"/> before any layer is wrapped.
    /// </remarks>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = Resolved(config, model);
        if (ConfigBinder.Problems(c) is { Count: > 0 } problems)
            throw new PeftConfigException($"vera: {string.Join("; ", problems)}");
        var targets = Injector.Slots(model.Module).Where(s => s.Module is Linear && c.Targets.Matches(s.Name, true)).Select(s => ((Linear)s.Module).weight!).ToArray();
        // no target: LinearWrappers.Attach reports it (naming the model's modules) before any projection is needed
        var projections = targets.Length == 0 ? null
            : VeraProjections.Generate(c.R, targets.Max(w => w.shape[1]), targets.Max(w => w.shape[0]), c.ProjectionPrngKey, targets[0]);
        LinearWrappers.Attach(model, c.Targets, (_, lin) => new VeraLinear(lin, projections!, c, context.Generator), PeftType!);
        LinearWrappers.TrainBiases(model, c.Bias == VeraBias.All, c.Bias == VeraBias.VeraOnly);
    }

    /// <summary>The VeRA layers of an attached model.</summary>
    private static IReadOnlyList<VeraLinear> Layers(IPeftHost model) =>
        Injector.Slots(model.Module).Select(s => s.Module).OfType<VeraLinear>().ToArray();

    /// <inheritdoc/>
    /// <remarks>The trainable vectors (and biases) under their module paths, plus the shared projections once when <see cref="VeraConfig.SaveProjection"/>.</remarks>
    public IReadOnlyDictionary<string, Tensor> AdapterState(IPeftHost model, PeftConfig config)
    {
        var state = new Dictionary<string, Tensor>(PeftState.TrainableState(model.Module));
        if (((VeraConfig)config).SaveProjection)
        {
            var shared = Layers(model)[0].Projections;
            state[ProjectionAKey] = shared.A;
            state[ProjectionBKey] = shared.B;
        }
        return state;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// With <see cref="VeraConfig.SaveProjection"/> the file's projections replace the drawn ones (in every layer); without,
    /// the file must hold no projections and the ones <see cref="Attach"/> drew from the key stay, as PEFT's load does.
    /// </remarks>
    public void LoadAdapterState(IPeftHost model, PeftConfig config, ITensorSource source)
    {
        PeftState.LoadStrict(AdapterState(model, config), source);
        var layers = Layers(model);
        var first = layers[0].Projections;
        using var noGrad = no_grad();
        foreach (var other in layers.Skip(1).Select(l => l.Projections).Where(p => p.A.Handle != first.A.Handle || p.B.Handle != first.B.Handle))
        {
            other.A.copy_(first.A);   // only when a layer holds its own copy (the layers share one pair as attached)
            other.B.copy_(first.B);
        }
    }

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) => LinearWrappers.Merge(model);
}
