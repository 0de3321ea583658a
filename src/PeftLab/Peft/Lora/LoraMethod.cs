using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.Lora;

/// <summary>LoRA / rsLoRA / DoRA / PiSSA, saved and loaded in the Python PEFT library's LORA format.</summary>
public sealed class LoraMethod : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.Lora;
    /// <inheritdoc/>
    public string Name => "lora";
    /// <inheritdoc/>
    public string? PeftType => "LORA";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new LoraConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity { get; } = new("lora_r", "r", "LoRA rank");

    /// <inheritdoc/>
    public bool InReferenceStudy => true;
    /// <inheritdoc/>
    public bool CanMerge => true;

    /// <summary>Modules LoRA wraps when the config names none (PEFT's defaults: the query and value projections).</summary>
    public static IReadOnlyDictionary<ModelLayout, IReadOnlyList<string>> DefaultTargets { get; } = new Dictionary<ModelLayout, IReadOnlyList<string>>
    {
        [ModelLayout.Llama] = ["q_proj", "v_proj"],
        [ModelLayout.T5] = ["q", "v"],
    };

    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 8, 32, 64, 128, 256, 512 }.SelectMany(r => new (string, PeftConfig)[]
        {
            ($"r={r} q,v", new LoraConfig { R = r }),
            ($"r={r} all-linear", new LoraConfig { R = r, Targets = new TargetSelector { AllLinear = true } }),
        }).ToArray();

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        var init = j.Node("init_lora_weights") switch
        {
            null => LoraInit.Default,
            JsonValue v when v.TryGetValue<bool>(out var b) => b ? LoraInit.Default
                : throw new PeftConfigException($"{j.Source}: init_lora_weights=false (random B) is not supported; use true, \"gaussian\", \"pissa\" or \"olora\""),
            JsonValue v when v.TryGetValue<string>(out var s) => s switch
            {
                "gaussian" => LoraInit.Gaussian,
                "pissa" => LoraInit.Pissa,
                "olora" => LoraInit.Olora,
                _ => throw new PeftConfigException($"{j.Source}: init_lora_weights '{s}' is not supported; supported: true, gaussian, pissa, olora"),
            },
            var n => throw new PeftConfigException($"{j.Source}: init_lora_weights must be a boolean or string (got {n.ToJsonString()})"),
        };
        j.RequireNeutral("fan_in_fan_out", AdapterJson.IsEmpty, "only nn.Linear layers (fan_in_fan_out=false) are used");
        j.RequireNeutral("use_qalora", AdapterJson.IsEmpty, "QA-LoRA is not supported");
        j.RequireNeutral("lora_bias", AdapterJson.IsEmpty, "lora_bias is not supported");
        j.RequireNeutral("loftq_config", AdapterJson.IsEmpty, "LoftQ is not supported");
        j.RequireNeutral("megatron_config", AdapterJson.IsEmpty, "Megatron layers are not supported");
        j.RequireNeutral("layer_replication", AdapterJson.IsEmpty, "layer replication is not supported");
        j.RequireNeutral("target_parameters", AdapterJson.IsEmpty, "target_parameters is not supported");
        j.RequireNeutral("eva_config", AdapterJson.IsEmpty, "EVA init is not supported");
        j.RequireNeutral("corda_config", AdapterJson.IsEmpty, "CorDA init is not supported");
        j.Known("runtime_config", "megatron_core", "use_dora");
        var bias = j.String("bias", "none") switch
        {
            "none" => LoraBias.None,
            "all" => LoraBias.All,
            "lora_only" => LoraBias.LoraOnly,
            var b => throw new PeftConfigException($"{j.Source}: bias '{b}' is not supported; supported: none, all, lora_only"),
        };
        var (tokenIds, tokenModule) = ReadTrainableTokens(j);
        return new LoraConfig
        {
            TrainableTokenIndices = tokenIds,
            TrainableTokensModule = tokenModule,
            R = j.Int("r", 8),
            Alpha = j.Double("lora_alpha", 8),
            Dropout = j.Double("lora_dropout", 0),
            Targets = TargetSelector.ReadPeft(j),
            RankPattern = PatternKeys.ReadRanks(j),
            AlphaPattern = PatternKeys.ReadAlphas(j),
            UseRslora = j.Bool("use_rslora", false),
            UseDora = j.Bool("use_dora", false),
            Init = init,
            Bias = bias,
            ModulesToSave = j.StringList("modules_to_save") ?? [],
        };
    }

    /// <summary>PEFT's <c>trainable_token_indices</c>: null, a list of ids (the input embedding) or {module: ids} with one module.</summary>
    private static (IReadOnlyList<int> Ids, string? Module) ReadTrainableTokens(AdapterJson j)
    {
        var node = j.Node("trainable_token_indices");
        if (node is JsonObject o)
        {
            if (o.Count == 0) return ([], null);
            if (o.Count > 1)
                throw new PeftConfigException($"{j.Source}: trainable_token_indices names {o.Count} modules ({string.Join(", ", o.Select(kv => kv.Key))}); only the input embedding is supported");
            var (module, ids) = o.First();
            var list = new AdapterJson(new JsonObject { ["trainable_token_indices"] = ids?.DeepClone() }, j.Source).IntList("trainable_token_indices") ?? [];
            return (list, module);
        }
        return (j.IntList("trainable_token_indices") ?? [], null);
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = (LoraConfig)config;
        c = c with { Targets = c.Targets.Resolve(DefaultTargets.For(model, Name)) };
        double AlphaOfDoubledRank(double alpha) => c.UseRslora ? alpha * Math.Sqrt(2) : 2 * alpha;
        if (c.Init.ModifiesBase())  // saved converted to plain LoRA of rank 2r (see AdapterState)
            c = c with
            {
                R = 2 * c.R, Alpha = AlphaOfDoubledRank(c.Alpha), Init = LoraInit.Default,
                RankPattern = c.RankPattern.ToDictionary(kv => kv.Key, kv => 2 * kv.Value),
                // a module with its own rank but the global α: its α doubles with its rank, so it needs an entry
                AlphaPattern = c.RankPattern.Keys.Concat(c.AlphaPattern.Keys).Distinct()
                    .ToDictionary(k => k, k => AlphaOfDoubledRank(c.AlphaPattern.TryGetValue(k, out var a) ? a : c.Alpha)),
            };
        return ConfigJson(c);
    }

    /// <summary>The adapter_config.json fields of a config whose targets are resolved (without peft_type/task_type).</summary>
    public static JsonObject ConfigJson(LoraConfig c)
    {
        var json = new JsonObject
        {
            ["alpha_pattern"] = PatternKeys.Write(c.AlphaPattern),
            ["bias"] = c.Bias switch { LoraBias.All => "all", LoraBias.LoraOnly => "lora_only", _ => "none" },
            ["fan_in_fan_out"] = false,
            ["init_lora_weights"] = c.Init switch { LoraInit.Gaussian => "gaussian", LoraInit.Pissa => "pissa", LoraInit.Olora => "olora", _ => true },
            ["lora_alpha"] = c.Alpha,
            ["lora_dropout"] = c.Dropout,
            ["modules_to_save"] = c.ModulesToSave.Count == 0 ? null : new JsonArray(c.ModulesToSave.Select(x => (JsonNode)x).ToArray()),
            ["r"] = c.R,
            ["rank_pattern"] = PatternKeys.Write(c.RankPattern),
            ["use_dora"] = c.UseDora,
            ["use_rslora"] = c.UseRslora,
            ["trainable_token_indices"] = c.TrainableTokenIndices.Count == 0 ? null
                : c.TrainableTokensModule is null ? new JsonArray(c.TrainableTokenIndices.Select(i => (JsonNode)i).ToArray())
                : new JsonObject { [c.TrainableTokensModule] = new JsonArray(c.TrainableTokenIndices.Select(i => (JsonNode)i).ToArray()) },
        };
        c.Targets.WritePeft(json);
        return json;
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = (LoraConfig)config;
        if (c.R <= 0) throw new PeftConfigException($"lora r must be > 0 (got {c.R})");
        PatternKeys.Validate(Name, c.RankPattern, c.AlphaPattern);
        c = c with { Targets = c.Targets.Resolve(DefaultTargets.For(model, Name)) };
        var wrapped = Injector.Replace(model.Module,
            slot => slot.Module is Linear lin && c.Targets.Matches(slot.Name, true) ? new LoraLinear(lin, c.ForModule(slot.Name), context.Generator) : null,
            $"LoRA target_modules {c.Targets}");
        foreach (var (name, p) in model.Module.named_parameters())
        {
            bool isLora = name.Contains(".lora_A.") || name.Contains(".lora_B.") || name.EndsWith(".lora_magnitude_vector", StringComparison.Ordinal);
            bool isBias = name.EndsWith(".bias", StringComparison.Ordinal);
            bool loraBias = isBias && wrapped.Any(w => name == w + ".base_layer.bias");
            bool toSave = c.ModulesToSave.Any(m => name.StartsWith(m + ".", StringComparison.Ordinal) || name.Contains("." + m + ".", StringComparison.Ordinal));
            if (isLora || toSave || (isBias && c.Bias == LoraBias.All) || (loraBias && c.Bias == LoraBias.LoraOnly))
                p.requires_grad = true;
        }
        TrainableTokensLayer.Attach(model, c.TrainableTokenIndices, c.TrainableTokensModule);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A PiSSA or OLoRA adapter is only meaningful on the residual base weights. To save a file that applies to the
    /// original base (as PEFT's conversion does), ΔW = s·(BA − B₀A₀) is written as a rank-2r LoRA
    /// A' = [A; A₀], B' = [B, −B₀] with α scaled so that s stays the same.
    /// </remarks>
    public IReadOnlyDictionary<string, Tensor> AdapterState(IPeftHost model, PeftConfig config)
    {
        var state = new Dictionary<string, Tensor>(PeftState.TrainableState(model.Module));
        var c = (LoraConfig)config;
        if (!c.Init.ModifiesBase()) return state;
        foreach (var slot in Injector.Slots(model.Module).Where(s => s.Module is LoraLinear))
        {
            var lora = (LoraLinear)slot.Module;
            var (a, b) = lora.Factors;
            var (a0, b0) = lora.InitialFactors ?? throw new InvalidOperationException($"{slot.Name}: initial factors of {c.Init} missing");
            state[PeftState.Prefix + slot.Name + ".lora_A.weight"] = cat([a, a0], 0);
            state[PeftState.Prefix + slot.Name + ".lora_B.weight"] = cat([b, -b0], 1);
        }
        return state;
    }

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config)
    {
        using var noGrad = no_grad();
        foreach (var slot in Injector.Slots(model.Module).Where(s => s.Module is LoraLinear))
        {
            var lora = (LoraLinear)slot.Module;
            var merged = lora.MergedWeight();
            lora.BaseLayer.weight!.copy_(merged);
            slot.Owner.ReplaceChild(slot.ChildName, lora.BaseLayer);
        }
        TrainableTokensLayer.Merge(model);
    }
}
