using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Configuration;
using PeftLab.Models;
using PeftLab.Peft.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.AdaLora;

/// <summary>
/// AdaLoRA (Zhang et al. 2023): LoRA in SVD form, ΔW = B (A ⊙ E) · α / init_r with E the "singular values", starting
/// with <see cref="InitR"/> ranks per matrix and pruning the least important (sensitivity × uncertainty of the
/// A/E/B triplet) on a cubic schedule down to an average of <see cref="TargetR"/>, with an orthogonality regulariser
/// keeping A and B near orthonormal. PEFT's ADALORA semantics and file format.
/// </summary>
public sealed record AdaLoraConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.AdaLora;
    /// <summary>Average rank per matrix at the end: the budget is target_r × the number of adapted matrices.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int TargetR { get; init; } = 8;
    /// <summary>Ranks per matrix at the start (null: ⌈1.5 · target_r⌉, PEFT's default ratio 12 : 8).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int? InitR { get; init; }
    /// <summary>Steps of warmup before any pruning.</summary>
    [ConfigRange(0, int.MaxValue)]
    public int Tinit { get; init; }
    /// <summary>Final steps trained with the budget fixed at the target (the last pruning happens before them).</summary>
    [ConfigRange(0, int.MaxValue)]
    public int Tfinal { get; init; }
    /// <summary>Prune every this many steps between tinit and total_step − tfinal (PEFT's deltaT).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int DeltaT { get; init; } = 1;
    /// <summary>Smoothing of the sensitivity |θ · ∂L/∂θ|.</summary>
    [ConfigRange(0, 1, MinExclusive = true, MaxExclusive = true)]
    public double Beta1 { get; init; } = 0.85;
    /// <summary>Smoothing of its uncertainty |sensitivity − smoothed sensitivity|.</summary>
    [ConfigRange(0, 1, MinExclusive = true, MaxExclusive = true)]
    public double Beta2 { get; init; } = 0.85;
    /// <summary>Weight of the regulariser mean(‖AAᵀ − I‖_F, ‖BᵀB − I‖_F) added to the loss.</summary>
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double OrthRegWeight { get; init; } = 0.5;
    /// <summary>Optimiser steps of the schedule (null: the run's own, which PEFT makes the user supply).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int? TotalStep { get; init; }
    /// <summary>Scale numerator α (PEFT's lora_alpha): ΔW is multiplied by α / init_r.</summary>
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double Alpha { get; init; } = 8;
    /// <summary>Dropout on the update's input.</summary>
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double Dropout { get; init; }
    /// <summary>Modules to wrap (default: PEFT's AdaLoRA mapping: q_proj, v_proj for Llama; q, k, v, o, wi, wo for T5).</summary>
    [ConfigKey("target_modules")]
    public TargetSelector Targets { get; init; } = TargetSelector.ModelDefaults;
    /// <summary>
    /// The ranks kept per module (PEFT's rank_pattern: <c>&lt;module&gt;.lora_E</c> → one flag per initial rank), as an
    /// adapter file records them; the trainer's allocator sets it, configs do not.
    /// </summary>
    [ConfigIgnore]
    public IReadOnlyDictionary<string, IReadOnlyList<bool>> RankPattern { get; init; } = new Dictionary<string, IReadOnlyList<bool>>();

    /// <summary>The initial rank per matrix.</summary>
    public int EffectiveInitR => InitR ?? (int)Math.Ceiling(1.5 * TargetR);
}

/// <summary>
/// A linear layer with AdaLoRA's SVD-form update: y = W x + b + (dropout(x) (A ⊙ E)ᵀ Bᵀ) · α / init_r. The layer
/// keeps all init_r ranks; pruned ranks have E = 0 and are flagged in <see cref="Kept"/>.
/// </summary>
public sealed class SvdLinear : nn.Module<Tensor, Tensor>, IWrappedLinear
{
    private readonly Linear base_layer;
    private readonly Parameter lora_A;    // [r, in]  right singular vectors
    private readonly Parameter lora_E;    // [r, 1]   singular values, zeros at start so ΔW = 0
    private readonly Parameter lora_B;    // [out, r] left singular vectors
    private readonly nn.Module<Tensor, Tensor> lora_dropout;
    private readonly double scaling;

    /// <summary>Wraps <paramref name="baseLayer"/> with <paramref name="r"/> ranks (PEFT's init: E = 0, A and B ~ N(0, 0.02)).</summary>
    public SvdLinear(Linear baseLayer, int r, double alpha, double dropout, Generator generator) : base(nameof(SvdLinear))
    {
        base_layer = baseLayer;
        var w = baseLayer.weight!;
        lora_A = LinearWrappers.NewFactor(w, r, w.shape[1]);
        lora_E = LinearWrappers.NewFactor(w, r, 1);
        lora_B = LinearWrappers.NewFactor(w, w.shape[0], r);
        using (no_grad())
        {
            lora_A.normal_(0, 0.02, generator: generator);
            lora_B.normal_(0, 0.02, generator: generator);
            lora_E.zero_();
        }
        lora_dropout = dropout > 0 ? nn.Dropout(dropout) : nn.Identity();
        scaling = alpha / (r + 1e-5);                      // PEFT: lora_alpha / (ranknum + 1e-5), ranknum = init_r for good
        Kept = Enumerable.Repeat(true, r).ToArray();
        RegisterComponents();
    }

    /// <inheritdoc/>
    public Linear BaseLayer => base_layer;

    /// <summary>Initial rank.</summary>
    public int Rank => (int)lora_E.shape[0];

    /// <summary>The length of the allocator's schedule when a run trains this layer (written as total_step when the config left it to the run).</summary>
    public int? ScheduleSteps { get; set; }

    /// <summary>Which ranks the allocator kept (all until it first prunes).</summary>
    public bool[] Kept { get; set; }

    /// <summary>(A, E, B).</summary>
    public (Parameter A, Parameter E, Parameter B) Factors => (lora_A, lora_E, lora_B);

    /// <summary>ΔW = B (A ⊙ E) · α / init_r, [out, in].</summary>
    public Tensor DeltaWeight() => lora_B.matmul(lora_A * lora_E).mul(scaling);

    /// <summary>x [..., in] → [..., out].</summary>
    public override Tensor forward(Tensor x) =>
        base_layer.forward(x) + nn.functional.linear(nn.functional.linear(lora_dropout.forward(x), lora_A * lora_E), lora_B) * scaling;

    /// <inheritdoc/>
    public Tensor MergedWeight() => LinearWrappers.MergedWeight(base_layer, DeltaWeight());

    /// <summary>Zeroes E where <see cref="Kept"/> is false.</summary>
    public void ApplyMask()
    {
        using var noGrad = no_grad();
        using var keep = tensor(Kept, device: lora_E.device).to_type(lora_E.dtype).unsqueeze(1);
        lora_E.mul_(keep);
    }
}

/// <summary>AdaLoRA in the Python PEFT library's ADALORA format (keys <c>&lt;layer&gt;.lora_A</c>, <c>.lora_E</c>, <c>.lora_B</c>).</summary>
public sealed class AdaLoraMethod : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.AdaLora;
    /// <inheritdoc/>
    public string Name => "adalora";
    /// <inheritdoc/>
    public string? PeftType => "ADALORA";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new AdaLoraConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity { get; } = new("adalora_r", "target_r", "AdaLoRA target rank");
    /// <inheritdoc/>
    public bool CanMerge => true;

    /// <summary>PEFT's AdaLoRA target mapping (TRANSFORMERS_MODELS_TO_ADALORA_TARGET_MODULES_MAPPING; gated T5's wi_0/wi_1 as mT5's).</summary>
    public static IReadOnlyDictionary<ModelLayout, IReadOnlyList<string>> DefaultTargets { get; } = new Dictionary<ModelLayout, IReadOnlyList<string>>
    {
        [ModelLayout.Llama] = ["q_proj", "v_proj"],
        [ModelLayout.T5] = ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"],
    };

    /// <inheritdoc/>
    /// <remarks>Counts are of the initial ranks (the allocator prunes E, not the tensors, during training).</remarks>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 4, 8, 16, 32 }.Select(r => ($"target_r={r} init_r={(int)Math.Ceiling(1.5 * r)} q,v", (PeftConfig)new AdaLoraConfig { TargetR = r })).ToArray();

    private const string E = ".lora_E", A = ".lora_A", B = ".lora_B";

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        j.RequireNeutral("fan_in_fan_out", AdapterJson.IsEmpty, "only nn.Linear layers (fan_in_fan_out=false) are used");
        j.RequireNeutral("use_dora", AdapterJson.IsEmpty, "AdaLoRA has no DoRA variant");
        j.RequireNeutral("use_rslora", AdapterJson.IsEmpty, "AdaLoRA scales by α / init_r");
        j.RequireNeutral("loftq_config", AdapterJson.IsEmpty, "LoftQ is not supported");
        j.RequireNeutral("layer_replication", AdapterJson.IsEmpty, "layer replication is not supported");
        j.RequireNeutral("modules_to_save", AdapterJson.IsEmpty, "modules_to_save is not supported for ADALORA");
        j.RequireNeutral("trainable_token_indices", AdapterJson.IsEmpty, "trainable tokens are not supported for ADALORA");
        j.RequireNeutral("alpha_pattern", AdapterJson.IsEmpty, "AdaLoRA allocates ranks itself; alpha_pattern is not supported");
        j.RequireNeutral("init_lora_weights", n => n is null || n is JsonValue v && v.TryGetValue<bool>(out var b) && b, "only PEFT's default initialisation is supported");
        j.RequireNeutral("bias", n => n is null || n is JsonValue v && v.TryGetValue<string>(out var s) && s == "none", "only bias \"none\" is supported for ADALORA");
        j.Known("r", "runtime_config", "megatron_config", "megatron_core", "use_qalora", "lora_bias", "target_parameters", "eva_config", "corda_config");  // r is unused by AdaLoRA, as in PEFT
        var pattern = new Dictionary<string, IReadOnlyList<bool>>();
        if (j.Node("rank_pattern") is JsonObject o)
            foreach (var (key, value) in o)
                pattern[key] = value is JsonArray arr && arr.All(x => x is JsonValue v && v.TryGetValue<bool>(out _))
                    ? arr.Select(x => x!.GetValue<bool>()).ToArray()
                    : throw new PeftConfigException($"{j.Source}: rank_pattern['{key}'] must be a list of booleans (one per initial rank), got {value?.ToJsonString()}");
        else if (j.Node("rank_pattern") is { } other && other is not JsonValue)
            throw new PeftConfigException($"{j.Source}: rank_pattern must be an object of module → list of booleans");
        var c = new AdaLoraConfig
        {
            TargetR = j.Int("target_r", 8), InitR = j.Int("init_r", 12), Tinit = j.Int("tinit", 0), Tfinal = j.Int("tfinal", 0),
            DeltaT = j.Int("deltaT", 1), Beta1 = j.Double("beta1", 0.85), Beta2 = j.Double("beta2", 0.85),
            OrthRegWeight = j.Double("orth_reg_weight", 0.5), TotalStep = j.Node("total_step") is null ? null : j.Int("total_step", 1),
            Alpha = j.Double("lora_alpha", 8), Dropout = j.Double("lora_dropout", 0), Targets = TargetSelector.ReadPeft(j), RankPattern = pattern,
        };
        foreach (var (key, flags) in pattern)
            if (!key.EndsWith(E, StringComparison.Ordinal) || flags.Count != c.EffectiveInitR)
                throw new PeftConfigException($"{j.Source}: rank_pattern['{key}'] must name a '<module>.lora_E' with {c.EffectiveInitR} flags (init_r), got {flags.Count}");
        return c;
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = Resolved(config, model);
        var layers = Layers(model);
        var json = new JsonObject
        {
            ["beta1"] = c.Beta1, ["beta2"] = c.Beta2, ["bias"] = "none", ["deltaT"] = c.DeltaT, ["fan_in_fan_out"] = false,
            ["init_lora_weights"] = true, ["init_r"] = c.EffectiveInitR, ["lora_alpha"] = c.Alpha, ["lora_dropout"] = c.Dropout,
            ["modules_to_save"] = null, ["orth_reg_weight"] = c.OrthRegWeight, ["r"] = 8, ["target_r"] = c.TargetR,
            ["tfinal"] = c.Tfinal, ["tinit"] = c.Tinit, ["total_step"] = c.TotalStep ?? layers.Select(l => l.Layer.ScheduleSteps).FirstOrDefault(),
            // PEFT writes the allocator's last pattern (null before the first pruning); the tensors are cut to it
            ["rank_pattern"] = layers.All(l => l.Layer.Kept.All(k => k)) ? null
                : new JsonObject(layers.Select(l => KeyValuePair.Create(l.Name + E, (JsonNode?)new JsonArray(l.Layer.Kept.Select(k => (JsonNode)k).ToArray())))),
        };
        c.Targets.WritePeft(json);
        return json;
    }

    private static AdaLoraConfig Resolved(PeftConfig config, IPeftHost model)
    {
        var c = (AdaLoraConfig)config;
        return c with { Targets = c.Targets.Resolve(DefaultTargets.For(model, "adalora")) };
    }

    /// <summary>The wrapped layers with their module names, in module order.</summary>
    public static IReadOnlyList<(string Name, SvdLinear Layer)> Layers(IPeftHost model) =>
        Injector.Slots(model.Module).Where(s => s.Module is SvdLinear).Select(s => (s.Name, (SvdLinear)s.Module)).ToArray();

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = Resolved(config, model);
        if (c.TargetR > c.EffectiveInitR)
            throw new PeftConfigException($"adalora: target_r ({c.TargetR}) must not exceed init_r ({c.EffectiveInitR})");
        LinearWrappers.Attach(model, c.Targets, (_, lin) => new SvdLinear(lin, c.EffectiveInitR, c.Alpha, c.Dropout, context.Generator), PeftType!);
    }

    /// <inheritdoc/>
    /// <remarks>As PEFT: with a rank pattern, each module's A, E rows and B columns are cut to its kept ranks.</remarks>
    public IReadOnlyDictionary<string, Tensor> AdapterState(IPeftHost model, PeftConfig config)
    {
        var state = new Dictionary<string, Tensor>();
        var layers = Layers(model);
        bool pruned = !layers.All(l => l.Layer.Kept.All(k => k));
        foreach (var (name, layer) in layers)
        {
            var (a, e, b) = layer.Factors;
            var key = PeftState.Prefix + name;
            if (!pruned) { state[key + A] = a; state[key + E] = e; state[key + B] = b; continue; }
            var keep = tensor(Enumerable.Range(0, layer.Rank).Where(i => layer.Kept[i]).Select(i => (long)i).ToArray(), device: a.device);
            state[key + A] = a.index_select(0, keep);
            state[key + E] = e.index_select(0, keep);
            state[key + B] = b.index_select(1, keep);
        }
        return state;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A file with a rank pattern holds only the kept ranks (PEFT's resize); they go to their places in the
    /// init_r-sized factors, the others are zero with E masked, which computes the same ΔW.
    /// </remarks>
    public void LoadAdapterState(IPeftHost model, PeftConfig config, ITensorSource source)
    {
        var c = (AdaLoraConfig)config;
        var layers = Layers(model);
        var problems = new List<string>();
        var expectedNames = new HashSet<string>();
        foreach (var (name, layer) in layers)
        {
            var key = PeftState.Prefix + name;
            var kept = c.RankPattern.TryGetValue(name + E, out var flags) ? flags.ToArray() : Enumerable.Repeat(true, layer.Rank).ToArray();
            int k = kept.Count(x => x);
            var (a, e, b) = layer.Factors;
            (string Name, Parameter Target, long[] Shape, int Dim)[] parts =
                [(key + A, a, [k, a.shape[1]], 0), (key + E, e, [k, 1], 0), (key + B, b, [b.shape[0], k], 1)];
            foreach (var (n, target, shape, dim) in parts)
            {
                expectedNames.Add(n);
                if (!source.Names.Contains(n)) { problems.Add($"missing '{n}' (shape [{string.Join(", ", shape)}])"); continue; }
                var stored = source.Shape(n);
                if (!stored.SequenceEqual(shape)) { problems.Add($"shape mismatch for '{n}': adapter file [{string.Join(", ", stored)}] vs model [{string.Join(", ", shape)}] (rank pattern keeps {k} of {layer.Rank})"); continue; }
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var value = source.Read(n, target.dtype, target.device);
                var idx = tensor(Enumerable.Range(0, layer.Rank).Where(i => kept[i]).Select(i => (long)i).ToArray(), device: target.device);
                target.zero_();
                target.index_copy_(dim, idx, value);
            }
            layer.Kept = kept;
        }
        problems.AddRange(source.Names.Where(n => !expectedNames.Contains(n)).Order(StringComparer.Ordinal).Select(n => $"unexpected '{n}'"));
        if (problems.Count > 0)
            throw new CheckpointMismatchException($"{source.Description} does not match the ADALORA config ({problems.Count} problems):\n  " + string.Join("\n  ", problems));
    }

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) => LinearWrappers.Merge(model);

    /// <inheritdoc/>
    public ITrainingHook? TrainingHook(IPeftHost model, PeftConfig config, int totalSteps)
    {
        var c = (AdaLoraConfig)config;
        int total = c.TotalStep ?? totalSteps;
        if (c.Tinit >= total - c.Tfinal)
            throw new PeftConfigException($"method.tinit ({c.Tinit}) must be below total_step − tfinal ({total} − {c.Tfinal}): no step would be left to allocate ranks" +
                (c.TotalStep is null ? " (total_step: the run's steps)" : ""));
        var layers = Layers(model);
        foreach (var (_, layer) in layers) layer.ScheduleSteps = total;
        return new RankAllocator(layers, c with { TotalStep = total });
    }
}
