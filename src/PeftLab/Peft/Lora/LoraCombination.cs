using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Peft.Lora;

/// <summary>
/// How <see cref="LoraCombination"/> combines LoRA adapters into one, as PEFT's <c>add_weighted_adapter</c>
/// <c>combination_type</c>. The factor rules (linear, ties, dare_*, magnitude_prune) combine the A's and the B's
/// separately with weights √(wᵢ sᵢ) — so the result has cross terms between adapters and is not Σ wᵢ ΔWᵢ; cat stacks
/// the factors (exactly Σ wᵢ ΔWᵢ, rank Σ rᵢ); the _svd rules combine the ΔWᵢ themselves with weights wᵢ sᵢ and
/// truncate the result to a rank by SVD.
/// </summary>
public enum LoraCombinationType
{
    /// <summary>A' = Σ √(wᵢsᵢ) Aᵢ, B' = Σ √(wᵢsᵢ) Bᵢ; all adapters must have the same rank.</summary>
    Linear,
    /// <summary>A' = [w₁s₁A₁; w₂s₂A₂; …], B' = [B₁, B₂, …]: B'A' = Σ wᵢ sᵢ BᵢAᵢ exactly, rank Σ rᵢ.</summary>
    Cat,
    /// <summary>ΔW = Σ wᵢ sᵢ BᵢAᵢ, truncated to <see cref="LoraCombinationOptions.SvdRank"/> (default: the largest rank) by SVD.</summary>
    Svd,
    /// <summary>TIES on the A's and on the B's.</summary>
    Ties,
    /// <summary>TIES on the ΔWᵢ, then SVD.</summary>
    TiesSvd,
    /// <summary>DARE (random drop, rescale) with a linear merge on the A's and on the B's.</summary>
    DareLinear,
    /// <summary>DARE linear on the ΔWᵢ, then SVD.</summary>
    DareLinearSvd,
    /// <summary>DARE with TIES' sign election on the A's and on the B's.</summary>
    DareTies,
    /// <summary>DARE-TIES on the ΔWᵢ, then SVD.</summary>
    DareTiesSvd,
    /// <summary>Magnitude pruning with a linear merge on the A's and on the B's.</summary>
    MagnitudePrune,
    /// <summary>Magnitude pruning on the ΔWᵢ, then SVD.</summary>
    MagnitudePruneSvd,
}

/// <summary>Options of a combination (PEFT's <c>add_weighted_adapter</c> arguments).</summary>
public sealed record LoraCombinationOptions
{
    /// <summary>The rule (PEFT's default: svd).</summary>
    public LoraCombinationType Type { get; init; } = LoraCombinationType.Svd;
    /// <summary>Fraction of entries kept by the pruning rules (ties, dare_*, magnitude_prune), in [0, 1]; required by them.</summary>
    public double? Density { get; init; }
    /// <summary>Sign election of ties and dare_ties.</summary>
    public MajoritySignMethod MajoritySign { get; init; } = MajoritySignMethod.Total;
    /// <summary>Rank of an _svd result (default: the largest rank among the adapters).</summary>
    public int? SvdRank { get; init; }
    /// <summary>Optional quantile in (0, 1] at which the SVD factors are clamped (PEFT's svd_clamp).</summary>
    public double? SvdClamp { get; init; }
    /// <summary>Seed of DARE's random drops.</summary>
    public long Seed { get; init; }
}

/// <summary>One adapter of a combination: its folder and its weight.</summary>
public sealed record WeightedAdapterFolder(string Dir, double Weight);

/// <summary>
/// Combines LoRA adapter folders into one new LoRA adapter, as PEFT's <c>LoraModel.add_weighted_adapter</c>: per
/// module, the adapters that wrap it are combined by the chosen rule; the result has r = α = its rank (scaling 1) and
/// targets exactly the modules of the inputs.
/// </summary>
public static class LoraCombination
{
    /// <summary>The name of a rule in PEFT and on the command line (e.g. dare_ties_svd).</summary>
    public static string NameOf(LoraCombinationType type) => PeftLab.Configuration.ConfigSchema.SnakeCase(type.ToString());

    /// <summary>The rule called <paramref name="name"/> (PEFT's names).</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static LoraCombinationType Parse(string name) =>
        Enum.GetValues<LoraCombinationType>().Cast<LoraCombinationType?>().FirstOrDefault(t => NameOf(t!.Value) == name.Trim().ToLowerInvariant())
        ?? throw new ArgumentException($"unknown combination '{name}'; known: {string.Join(", ", Enum.GetValues<LoraCombinationType>().Select(NameOf))}");

    private static bool IsSvd(LoraCombinationType t) => NameOf(t).EndsWith("svd", StringComparison.Ordinal);
    private static bool Prunes(LoraCombinationType t) => t is not (LoraCombinationType.Linear or LoraCombinationType.Cat or LoraCombinationType.Svd);

    private sealed record Input(string Dir, double Weight, LoraConfig Config, string? TaskType, string? Base, Dictionary<string, (Tensor A, Tensor B)> Modules);

    /// <summary>
    /// Reads the adapters, combines them and writes the new adapter to <paramref name="outDir"/> (PEFT layout).
    /// Returns the combined config.
    /// </summary>
    /// <exception cref="PeftConfigException">An adapter is not a plain LoRA, the adapters belong to different bases or
    /// task types, a module's shapes disagree, ranks differ where the rule needs one rank, or an option is out of range.</exception>
    public static LoraConfig CombineToFolder(IReadOnlyList<WeightedAdapterFolder> adapters, LoraCombinationOptions options, string outDir)
    {
        using var scope = NewDisposeScope();
        var (config, tensors, taskType) = Combine(adapters, options);
        PeftModel.WriteAdapterFolder(outDir, LoraMethod.ConfigJson(config), "LORA", taskType, tensors);
        return config;
    }

    /// <summary>The combined config and tensors (keys as in adapter files, float32) and the adapters' task type.</summary>
    public static (LoraConfig Config, IReadOnlyDictionary<string, Tensor> Tensors, string TaskType) Combine(IReadOnlyList<WeightedAdapterFolder> adapters, LoraCombinationOptions options)
    {
        using var scope = NewDisposeScope();   // the inputs' tensors; the results move out to the caller's scope
        if (adapters.Count == 0) throw new PeftConfigException("combine: give at least one adapter");
        var type = adapters.Count == 1 ? LoraCombinationType.Linear : options.Type;       // PEFT: one adapter can only be scaled
        if (Prunes(type) && options.Density is not (>= 0 and <= 1))
            throw new PeftConfigException($"combination {NameOf(type)}: density must be given, in [0, 1] (got {options.Density?.ToString() ?? "none"})");
        if (options.SvdClamp is { } clamp && !(clamp > 0 && clamp <= 1))
            throw new PeftConfigException($"svd_clamp must be in (0, 1] (got {clamp})");
        var inputs = adapters.Select(Read).ToArray();
        CheckCompatible(inputs);

        var moduleNames = inputs.SelectMany(i => i.Modules.Keys).Distinct().OrderBy(n => n, StringComparer.Ordinal).ToArray();
        var generator = new Generator((ulong)options.Seed, CPU);
        var result = new Dictionary<string, Tensor>();
        var ranks = new Dictionary<string, int>();
        foreach (var module in moduleNames)
        {
            var present = inputs.Where(i => i.Modules.ContainsKey(module)).ToArray();
            var parts = present.Select(i => (i.Modules[module].A, i.Modules[module].B, Scaled: i.Weight * i.Config.ForModule(module).Scaling)).ToArray();
            var (a, b) = CombineModule(module, type, parts, options, generator, inputs.Max(i => i.Config.ForModule(module).R));
            result[PeftState.Prefix + module + ".lora_A.weight"] = a.MoveToOuterDisposeScope();
            result[PeftState.Prefix + module + ".lora_B.weight"] = b.MoveToOuterDisposeScope();
            ranks[module] = (int)a.shape[0];
        }
        // r = α = the rank, so scaling is 1 and the factors carry the weights (as PEFT); modules whose rank differs
        // from the most common one get their own r and α
        int r = ranks.Values.GroupBy(x => x).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        var own = ranks.Where(kv => kv.Value != r).ToDictionary(kv => kv.Key, kv => kv.Value);
        var config = new LoraConfig
        {
            R = r, Alpha = r, Dropout = inputs[0].Config.Dropout,
            Targets = new TargetSelector { Names = moduleNames },
            RankPattern = own, AlphaPattern = own.ToDictionary(kv => kv.Key, kv => (double)kv.Value),
        };
        return (config, result, inputs[0].TaskType ?? "CAUSAL_LM");
    }

    /// <summary>One module's combined (A' [r', in], B' [out, r']) from (Aᵢ, Bᵢ, wᵢsᵢ).</summary>
    private static (Tensor A, Tensor B) CombineModule(string module, LoraCombinationType type, (Tensor A, Tensor B, double Scaled)[] parts,
        LoraCombinationOptions options, Generator generator, int largestRank)
    {
        double density = options.Density ?? 1;
        if (type == LoraCombinationType.Cat)
            return (cat(parts.Select(p => p.A * p.Scaled).ToArray(), 0), cat(parts.Select(p => p.B).ToArray(), 1));
        if (IsSvd(type))
        {
            var deltas = parts.Select(p => p.B.matmul(p.A)).ToArray();
            var weights = parts.Select(p => p.Scaled).ToArray();
            var delta = type switch
            {
                LoraCombinationType.Svd => MergeRules.TaskArithmetic(deltas, weights),
                LoraCombinationType.TiesSvd => MergeRules.Ties(deltas, weights, density, options.MajoritySign),
                LoraCombinationType.DareLinearSvd => MergeRules.DareLinear(deltas, weights, density, generator),
                LoraCombinationType.DareTiesSvd => MergeRules.DareTies(deltas, weights, density, options.MajoritySign, generator),
                _ => MergeRules.MagnitudePrune(deltas, weights, density),
            };
            int rank = options.SvdRank ?? largestRank;
            long most = Math.Min(delta.shape[0], delta.shape[1]);
            if (rank < 1 || rank > most)
                throw new PeftConfigException($"combination {NameOf(type)}: svd rank {rank} does not fit module {module} (ΔW is {delta.shape[0]}×{delta.shape[1]}: 1 to {most})");
            var (u, s, vh) = linalg.svd(delta, fullMatrices: false);
            var bNew = u.narrow(1, 0, rank) * s.narrow(0, 0, rank).unsqueeze(0);   // U diag(S)
            var aNew = vh.narrow(0, 0, rank);
            if (options.SvdClamp is { } q)
            {
                var high = cat([bNew.flatten(), aNew.flatten()]).quantile(tensor(q, dtype: bNew.dtype)).item<float>();
                bNew = bNew.clamp(-high, high);
                aNew = aNew.clamp(-high, high);
            }
            return (aNew.contiguous(), bNew.contiguous());
        }
        if (parts.Select(p => p.A.shape[0]).Distinct().Count() > 1)
            throw new PeftConfigException($"combination {NameOf(type)}: module {module} has ranks {string.Join(", ", parts.Select(p => p.A.shape[0]))}; " +
                "this rule needs equal ranks (use cat or an _svd rule to combine different ranks)");
        if (parts.Any(p => p.Scaled < 0))
            throw new PeftConfigException($"combination {NameOf(type)}: weights must be ≥ 0 (the factors are scaled by √(weight · scaling)); use cat or an _svd rule for negative weights");
        var roots = parts.Select(p => Math.Sqrt(p.Scaled)).ToArray();
        Tensor Rule(Tensor[] factors) => type switch
        {
            LoraCombinationType.Linear => MergeRules.TaskArithmetic(factors, roots),
            LoraCombinationType.Ties => MergeRules.Ties(factors, roots, density, options.MajoritySign),
            LoraCombinationType.DareLinear => MergeRules.DareLinear(factors, roots, density, generator),
            LoraCombinationType.DareTies => MergeRules.DareTies(factors, roots, density, options.MajoritySign, generator),
            _ => MergeRules.MagnitudePrune(factors, roots, density),
        };
        return (Rule(parts.Select(p => p.A).ToArray()), Rule(parts.Select(p => p.B).ToArray()));
    }

    private static Input Read(WeightedAdapterFolder folder)
    {
        var (method, config, _) = PeftModel.ReadAdapterConfig(folder.Dir, expectedTaskType: null);
        var path = Path.Combine(folder.Dir, PeftModel.ConfigFile);
        if (config is not LoraConfig lora)
            throw new PeftConfigException($"{path}: peft_type {method.PeftType} cannot be combined; combinations are of LoRA adapters (peft_type LORA), as in PEFT");
        if (lora.UseDora) throw new PeftConfigException($"{path}: use_dora=true cannot be combined (the magnitude vectors have no combination rule)");
        if (lora.ModulesToSave.Count > 0 || lora.Bias != LoraBias.None)
            throw new PeftConfigException($"{path}: an adapter with modules_to_save or trained biases cannot be combined (only lora_A/lora_B have a rule)");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        string? Str(string key) => json[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        var file = Path.Combine(folder.Dir, PeftModel.WeightsFile);
        if (!File.Exists(file)) throw new PeftConfigException($"{folder.Dir}: no {PeftModel.WeightsFile}");
        using var source = CheckpointSource.OpenFile(file);
        var modules = new Dictionary<string, (Tensor A, Tensor B)>();
        foreach (var name in source.Names.Order(StringComparer.Ordinal))
        {
            const string aSuffix = ".lora_A.weight", bSuffix = ".lora_B.weight";
            if (!name.StartsWith(PeftState.Prefix, StringComparison.Ordinal) || !(name.EndsWith(aSuffix, StringComparison.Ordinal) || name.EndsWith(bSuffix, StringComparison.Ordinal)))
                throw new PeftConfigException($"{file}: tensor '{name}' is not a lora_A/lora_B weight and has no combination rule");
            if (!name.EndsWith(aSuffix, StringComparison.Ordinal)) continue;
            var module = name[PeftState.Prefix.Length..^aSuffix.Length];
            var bName = PeftState.Prefix + module + bSuffix;
            if (!source.Names.Contains(bName)) throw new PeftConfigException($"{file}: '{name}' has no '{bName}'");
            var a = source.Read(name, ScalarType.Float32, CPU);
            var b = source.Read(bName, ScalarType.Float32, CPU);
            if (a.dim() != 2 || b.dim() != 2 || a.shape[0] != b.shape[1])
                throw new PeftConfigException($"{file}: '{name}' {Shape(a)} and '{bName}' {Shape(b)} are not the factors [r, in] and [out, r] of one update");
            modules[module] = (a, b);
        }
        foreach (var name in source.Names.Where(n => n.EndsWith(".lora_B.weight", StringComparison.Ordinal)))
            if (!modules.ContainsKey(name[PeftState.Prefix.Length..^".lora_B.weight".Length]))
                throw new PeftConfigException($"{file}: '{name}' has no lora_A partner");
        if (modules.Count == 0) throw new PeftConfigException($"{file}: no LoRA tensors");
        return new Input(folder.Dir, folder.Weight, lora, Str("task_type"), Str("base_model_name_or_path"), modules);
    }

    private static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    /// <summary>Same task type, same base where the files name one, and the same in/out sizes of every shared module.</summary>
    private static void CheckCompatible(Input[] inputs)
    {
        var first = inputs[0];
        foreach (var other in inputs.Skip(1))
        {
            if (first.TaskType is not null && other.TaskType is not null && first.TaskType != other.TaskType)
                throw new PeftConfigException($"cannot combine adapters of different task types: {first.Dir} is {first.TaskType}, {other.Dir} is {other.TaskType}");
            if (!string.IsNullOrEmpty(first.Base) && !string.IsNullOrEmpty(other.Base) && first.Base != other.Base)
                throw new PeftConfigException($"cannot combine adapters of different base models: {first.Dir} was trained on '{first.Base}', {other.Dir} on '{other.Base}' (base_model_name_or_path)");
        }
        foreach (var module in inputs.SelectMany(i => i.Modules.Keys).Distinct())
        {
            var sized = inputs.Where(i => i.Modules.ContainsKey(module)).Select(i => (i.Dir, Out: i.Modules[module].B.shape[0], In: i.Modules[module].A.shape[1])).ToArray();
            if (sized.Select(s => (s.Out, s.In)).Distinct().Count() > 1)
                throw new PeftConfigException($"cannot combine adapters of different base models: module {module} is " +
                    string.Join(" but ", sized.Select(s => $"{s.Out}×{s.In} in {s.Dir}")));
        }
    }
}
