using PeftLab.Configuration;
using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.Adapter;

/// <summary>Nonlinearity inside the bottleneck.</summary>
public enum AdapterActivation
{
    /// <summary>SiLU (default; the Llama MLP's own).</summary>
    Silu,
    /// <summary>ReLU.</summary>
    Relu,
    /// <summary>GELU (Houlsby's original and the peer benchmark's).</summary>
    Gelu,
}

/// <summary>Where the adapter sits relative to its sublayer.</summary>
public enum AdapterPlacement
{
    /// <summary>Houlsby serial: h = f(x); h + up(act(down(h))).</summary>
    Serial,
    /// <summary>Parallel (He et al.): f(x) + up(act(down(x))), x the sublayer input.</summary>
    Parallel,
}

/// <summary>Bottleneck adapters after the attention and/or MLP sublayer of every block.</summary>
public sealed record AdapterConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.Adapter;
    /// <summary>Bottleneck width m.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int Size { get; init; } = 64;
    /// <summary>Nonlinearity.</summary>
    public AdapterActivation Activation { get; init; } = AdapterActivation.Silu;
    /// <summary>Serial (Houlsby) or parallel.</summary>
    public AdapterPlacement Placement { get; init; } = AdapterPlacement.Serial;
    /// <summary>Adapter after the attention sublayer.</summary>
    public bool AfterAttention { get; init; } = true;
    /// <summary>Adapter after the MLP (feed-forward) sublayer.</summary>
    public bool AfterMlp { get; init; } = true;
    /// <summary>Encoder-decoder models: also an adapter after each decoder cross-attention sublayer.</summary>
    public bool AfterCrossAttention { get; init; }
    /// <summary>Std of the down-projection's truncated-normal init; the up-projection starts at zero (identity at start).</summary>
    [ConfigRange(0, double.MaxValue)]
    public double InitStd { get; init; } = 1e-3;
}

/// <summary>
/// The modules of one model layout that bottleneck adapters wrap: serial adapters wrap each sublayer's last projection,
/// parallel ones the sublayer module itself. Entries are names or dotted name suffixes of full module names.
/// </summary>
public sealed record AdapterSites
{
    /// <summary>Serial adapters: the last projection of each self-attention sublayer.</summary>
    public required IReadOnlyList<string> AttentionOutputs { get; init; }
    /// <summary>Serial adapters: the last projection of each cross-attention sublayer (none for decoder-only models).</summary>
    public IReadOnlyList<string> CrossAttentionOutputs { get; init; } = [];
    /// <summary>Serial adapters: the last projection of each feed-forward sublayer.</summary>
    public required IReadOnlyList<string> MlpOutputs { get; init; }
    /// <summary>Parallel adapters: the self-attention modules.</summary>
    public required IReadOnlyList<string> AttentionSublayers { get; init; }
    /// <summary>Parallel adapters: the cross-attention modules (none for decoder-only models).</summary>
    public IReadOnlyList<string> CrossAttentionSublayers { get; init; } = [];
    /// <summary>Parallel adapters: the feed-forward modules.</summary>
    public required IReadOnlyList<string> MlpSublayers { get; init; }
}

/// <summary>The bottleneck: a(h) = up(act(down(h))), down [m, d] + bias, up [d, m] + bias.</summary>
public sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    private readonly Linear adapter_down, adapter_up;
    private readonly AdapterActivation activation;

    /// <summary>Creates a d → m → d bottleneck.</summary>
    public Bottleneck(long dim, AdapterConfig c, Generator generator, Device device, ScalarType dtype) : base(nameof(Bottleneck))
    {
        adapter_down = nn.Linear(dim, c.Size, hasBias: true, device: device, dtype: dtype);
        adapter_up = nn.Linear(c.Size, dim, hasBias: true, device: device, dtype: dtype);
        activation = c.Activation;
        using (no_grad())
        {
            // trunc_normal(std) on [-2std, 2std], as the peer benchmark does
            var w = randn(adapter_down.weight!.shape, generator: generator).mul_(c.InitStd).clamp_(-2 * c.InitStd, 2 * c.InitStd);
            adapter_down.weight!.copy_(w);
            adapter_down.bias!.zero_();
            adapter_up.weight!.zero_();
            adapter_up.bias!.zero_();
        }
        RegisterComponents();
    }

    /// <summary>h [..., d] -> [..., d].</summary>
    public override Tensor forward(Tensor h)
    {
        var z = adapter_down.forward(h);
        z = activation switch
        {
            AdapterActivation.Relu => nn.functional.relu(z),
            AdapterActivation.Gelu => nn.functional.gelu(z),
            _ => nn.functional.silu(z),
        };
        return adapter_up.forward(z);
    }
}

/// <summary>Serial adapter around a projection: y = f(x); y + a(y).</summary>
public sealed class SerialAdapter : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> base_layer;
    private readonly Bottleneck adapter;

    /// <summary>Wraps the sublayer's last projection.</summary>
    public SerialAdapter(nn.Module<Tensor, Tensor> baseLayer, Bottleneck bottleneck) : base(nameof(SerialAdapter))
    {
        base_layer = baseLayer;
        adapter = bottleneck;
        RegisterComponents();
    }

    /// <summary>x [..., in] -> [..., d].</summary>
    public override Tensor forward(Tensor x)
    {
        var y = base_layer.forward(x);
        return y + adapter.forward(y);
    }
}

/// <summary>Parallel adapter around an MLP sublayer: f(x) + a(x).</summary>
public sealed class ParallelMlpAdapter : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> base_layer;
    private readonly Bottleneck adapter;

    /// <summary>Wraps the MLP.</summary>
    public ParallelMlpAdapter(nn.Module<Tensor, Tensor> baseLayer, Bottleneck bottleneck) : base(nameof(ParallelMlpAdapter))
    {
        base_layer = baseLayer;
        adapter = bottleneck;
        RegisterComponents();
    }

    /// <summary>x [B, T, d] -> [B, T, d].</summary>
    public override Tensor forward(Tensor x) => base_layer.forward(x) + adapter.forward(x);
}

/// <summary>Parallel adapter around an attention sublayer: attn(x, ctx) + a(x), for any attention context type.</summary>
public sealed class ParallelAttentionAdapter<TContext> : nn.Module<Tensor, TContext, Tensor>
{
    private readonly nn.Module<Tensor, TContext, Tensor> base_layer;
    private readonly Bottleneck adapter;

    /// <summary>Wraps the attention.</summary>
    public ParallelAttentionAdapter(nn.Module<Tensor, TContext, Tensor> baseLayer, Bottleneck bottleneck) : base("ParallelAttentionAdapter")
    {
        base_layer = baseLayer;
        adapter = bottleneck;
        RegisterComponents();
    }

    /// <summary>x [B, T, d] -> [B, T, d].</summary>
    public override Tensor forward(Tensor x, TContext ctx) => base_layer.forward(x, ctx) + adapter.forward(x);
}

/// <summary>Bottleneck adapters; files use PeftLab's own peft_type <c>PEFTLAB_BOTTLENECK</c> (see docs/adapter-format.md).</summary>
public sealed class AdapterMethod : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.Adapter;
    /// <inheritdoc/>
    public string Name => "adapter";
    /// <inheritdoc/>
    public IReadOnlyList<string> Aliases => ["adapters", "bottleneck"];
    /// <inheritdoc/>
    public string? PeftType => "PEFTLAB_BOTTLENECK";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new AdapterConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity { get; } = new("adapter_size", "size", "adapter bottleneck");

    /// <inheritdoc/>
    public bool InReferenceStudy => true;
    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 8, 32, 64, 128, 256, 512 }.Select(m => ($"size={m}", (PeftConfig)new AdapterConfig { Size = m })).ToArray();
    /// <inheritdoc/>
    public bool CanMerge => false;

    /// <summary>Where adapters go in each model layout (PEFT has no bottleneck adapters; these follow the sublayers' names).</summary>
    public static IReadOnlyDictionary<ModelLayout, AdapterSites> DefaultSites { get; } = new Dictionary<ModelLayout, AdapterSites>
    {
        [ModelLayout.Llama] = new()
        {
            AttentionOutputs = ["self_attn.o_proj"],
            MlpOutputs = ["mlp.down_proj"],
            AttentionSublayers = ["self_attn"],
            MlpSublayers = ["mlp"],
        },
        [ModelLayout.T5] = new()
        {
            AttentionOutputs = ["SelfAttention.o"],
            CrossAttentionOutputs = ["EncDecAttention.o"],
            MlpOutputs = ["DenseReluDense.wo"],
            AttentionSublayers = ["SelfAttention"],
            CrossAttentionSublayers = ["EncDecAttention"],
            MlpSublayers = ["DenseReluDense"],
        },
    };

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j) => new AdapterConfig
    {
        Size = j.Int("adapter_size", 64),
        Activation = Enum.TryParse<AdapterActivation>(j.String("activation", "silu"), ignoreCase: true, out var a) ? a
            : throw new PeftConfigException($"{j.Source}: activation '{j.String("activation")}' is not supported; supported: silu, relu, gelu"),
        Placement = Enum.TryParse<AdapterPlacement>(j.String("placement", "serial"), ignoreCase: true, out var p) ? p
            : throw new PeftConfigException($"{j.Source}: placement '{j.String("placement")}' is not supported; supported: serial, parallel"),
        AfterAttention = j.Bool("after_attention", true),
        AfterMlp = j.Bool("after_mlp", true),
        AfterCrossAttention = j.Bool("after_cross_attention", false),
        InitStd = j.Double("init_std", 1e-3),
    };

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = (AdapterConfig)config;
        return new JsonObject
        {
            ["activation"] = c.Activation.ToString().ToLowerInvariant(),
            ["adapter_size"] = c.Size,
            ["after_attention"] = c.AfterAttention,
            ["after_cross_attention"] = c.AfterCrossAttention,
            ["after_mlp"] = c.AfterMlp,
            ["init_std"] = c.InitStd,
            ["placement"] = c.Placement.ToString().ToLowerInvariant(),
        };
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = (AdapterConfig)config;
        if (c.Size <= 0) throw new PeftConfigException($"adapter size must be > 0 (got {c.Size})");
        if (!c.AfterAttention && !c.AfterMlp && !c.AfterCrossAttention)
            throw new PeftConfigException("adapter: at least one of after_attention, after_cross_attention, after_mlp must be true");
        var d = DefaultSites.For(model, Name);
        if (c.AfterCrossAttention && d.CrossAttentionOutputs.Count == 0)
            throw new PeftConfigException("adapter: after_cross_attention needs an encoder-decoder model (this model has no cross-attention)");
        var w = model.EmbeddingWeight;
        Bottleneck New() => new(model.HiddenSize, c, context.Generator, w.device, w.dtype);
        bool Is(ModuleSlot slot, IReadOnlyList<string> names) => TargetSelector.MatchesAny(slot.Name, names);
        bool AttentionSlot(ModuleSlot slot, IReadOnlyList<string> self, IReadOnlyList<string> cross) =>
            (c.AfterAttention && Is(slot, self)) || (c.AfterCrossAttention && Is(slot, cross));
        // Serial: wrap each sublayer's last projection (the model names them: o_proj, down_proj; T5's o, wo);
        // parallel: wrap the sublayer module itself (self_attn, mlp; T5's SelfAttention, EncDecAttention, DenseReluDense).
        Injector.Replace(model.Module, slot => (c.Placement, slot.Module) switch
        {
            (AdapterPlacement.Serial, nn.Module<Tensor, Tensor> m) when AttentionSlot(slot, d.AttentionOutputs, d.CrossAttentionOutputs)
                || (c.AfterMlp && Is(slot, d.MlpOutputs)) => new SerialAdapter(m, New()),
            (AdapterPlacement.Parallel, var m) when AttentionSlot(slot, d.AttentionSublayers, d.CrossAttentionSublayers)
                && ContextOf(m) is { } contextType => ParallelAttention(m, contextType, New()),
            (AdapterPlacement.Parallel, nn.Module<Tensor, Tensor> m) when c.AfterMlp && Is(slot, d.MlpSublayers) => new ParallelMlpAdapter(m, New()),
            _ => null,
        }, "adapter placements");
        foreach (var (name, p) in model.Module.named_parameters())
            if (name.Contains(".adapter.adapter_", StringComparison.Ordinal)) p.requires_grad = true;
    }

    /// <summary>
    /// The attention-context type of an attention sublayer (a module from hidden states and its family's context to
    /// hidden states), whatever the family; null for any other module.
    /// </summary>
    private static Type? ContextOf(nn.Module m)
    {
        for (var t = m.GetType(); t is not null; t = t.BaseType)
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(nn.Module<,,>) && t.GenericTypeArguments is [var input, var context, var output]
                && input == typeof(Tensor) && output == typeof(Tensor))
                return context;
        return null;
    }

    /// <summary>A parallel adapter around an attention sublayer whose context type is <paramref name="contextType"/>.</summary>
    private static nn.Module ParallelAttention(nn.Module sublayer, Type contextType, Bottleneck bottleneck) =>
        (nn.Module)Activator.CreateInstance(typeof(ParallelAttentionAdapter<>).MakeGenericType(contextType), sublayer, bottleneck)!;

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) =>
        throw new NotSupportedException("bottleneck adapters are nonlinear and cannot be merged into the base weights");
}
