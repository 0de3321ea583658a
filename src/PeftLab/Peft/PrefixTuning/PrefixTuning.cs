using PeftLab.Configuration;
using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.PrefixTuning;

/// <summary>
/// Prefix tuning: every layer attends to n learned key/value pairs before the real tokens,
/// attention(q, [P_k; K], [P_v; V]). With reparameterisation, P = MLP(E) (Linear-tanh-Linear) during training.
/// On encoder-decoder models every self-attention layer of the encoder and of the decoder gets its own prefix (the
/// prefixes take relative positions 0..n-1, the tokens follow); cross-attention gets none.
/// </summary>
public sealed record PrefixTuningConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.PrefixTuning;
    /// <summary>Number of virtual tokens n.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int NumVirtualTokens { get; init; } = 20;
    /// <summary>Reparameterise the prefixes through an MLP (PEFT's prefix_projection).</summary>
    public bool PrefixProjection { get; init; }
    /// <summary>Hidden width of the reparameterisation MLP (null = model width).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int? EncoderHiddenSize { get; init; }
    /// <summary>PEFT's <c>num_transformer_submodules</c> as read from a file (1 decoder-only, 2 encoder-decoder); null = the model's.</summary>
    [ConfigRange(1, 2)]
    public int? NumTransformerSubmodules { get; init; }
}

/// <summary>
/// Learned prefixes for every self-attention layer; the model's input adapter. Layers are numbered decoder-only
/// models' blocks, or for encoder-decoder models the encoder's blocks followed by the decoder's.
/// </summary>
public sealed class PrefixEncoder : nn.Module, IInputAdapter
{
    private readonly Embedding embedding;                 // [n, L·2·Hkv·hd], or [n, d] with projection
    private readonly Sequential? transform;               // d -> hidden -> L·2·Hkv·hd
    private readonly int layers, encoderLayers, kvHeads, headDim, n;

    /// <summary>Creates the prefixes for a model config.</summary>
    public PrefixEncoder(IPeftHost c, PrefixTuningConfig p, Device device, ScalarType dtype) : base(nameof(PrefixEncoder))
    {
        encoderLayers = c.NumLayers;
        layers = c.NumLayers + (c.NumDecoderLayers ?? 0);
        kvHeads = c.NumKeyValueHeads;
        headDim = c.HeadDim;
        n = p.NumVirtualTokens;
        long flat = (long)layers * 2 * kvHeads * headDim;
        if (p.PrefixProjection)
        {
            int hidden = p.EncoderHiddenSize ?? c.HiddenSize;
            embedding = nn.Embedding(n, c.HiddenSize, device: device, dtype: dtype);
            transform = nn.Sequential(nn.Linear(c.HiddenSize, hidden, device: device, dtype: dtype), nn.Tanh(), nn.Linear(hidden, flat, device: device, dtype: dtype));
        }
        else embedding = nn.Embedding(n, flat, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>The embedding table (trainable).</summary>
    public Parameter Weight => embedding.weight!;

    /// <summary>All prefixes [n, L·2·Hkv·hd] (the projected values when reparameterised) — what PEFT saves.</summary>
    public Tensor Flat() => transform is null ? embedding.weight! : transform.forward(embedding.weight!);

    /// <inheritdoc/>
    public int NumVirtualTokens => n;

    /// <inheritdoc/>
    public Tensor? VirtualEmbeddings(long batch, ScalarType dtype) => null;

    /// <inheritdoc/>
    public (Tensor Key, Tensor Value)? LayerPrefix(int layer, long batch, ScalarType dtype)
    {
        // PEFT layout: view(n, L·2, Hkv, hd); entry 2i holds layer i's keys and 2i+1 its values.
        var all = Flat().view(n, layers * 2, kvHeads, headDim);
        var k = all.select(1, 2 * layer).permute(1, 0, 2).unsqueeze(0).expand(batch, -1, -1, -1); // [B, Hkv, n, hd]
        var v = all.select(1, 2 * layer + 1).permute(1, 0, 2).unsqueeze(0).expand(batch, -1, -1, -1);
        return (k.to_type(dtype), v.to_type(dtype));
    }

    /// <inheritdoc/>
    public int VirtualTokens(ModelStack stack) => n;

    /// <inheritdoc/>
    public Tensor? VirtualEmbeddings(ModelStack stack, long batch, ScalarType dtype) => null;

    /// <inheritdoc/>
    public (Tensor Key, Tensor Value)? LayerPrefix(ModelStack stack, int layer, long batch, ScalarType dtype) =>
        LayerPrefix(stack == ModelStack.Encoder ? layer : encoderLayers + layer, batch, dtype);

    /// <summary>Replaces the prefixes with saved flat values (inference form: no projection afterwards).</summary>
    public void LoadFlat(Tensor flat)
    {
        if (transform is not null) throw new InvalidOperationException("load into an encoder built without projection");
        using var noGrad = no_grad();
        embedding.weight!.copy_(flat);
    }
}

/// <summary>
/// Prefix tuning in the Python PEFT library's PREFIX_TUNING format (<c>prompt_embeddings</c> [n, L·2·Hkv·hd]).
/// Encoder-decoder adapters (num_transformer_submodules 2) hold [n, (L_enc + L_dec)·2·H·d_kv], encoder layers first:
/// PeftLab's own layout, because the Python PEFT library feeds T5 prefixes to the decoder only (as past key values).
/// </summary>
public sealed class PrefixTuningMethod : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.PrefixTuning;
    /// <inheritdoc/>
    public string Name => "prefix_tuning";
    /// <inheritdoc/>
    public IReadOnlyList<string> Aliases => ["prefix"];
    /// <inheritdoc/>
    public string? PeftType => "PREFIX_TUNING";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new PrefixTuningConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity { get; } = new("prefix_tokens", "num_virtual_tokens", "virtual tokens");
    /// <inheritdoc/>
    public bool IsInputSide => true;

    /// <inheritdoc/>
    public bool InReferenceStudy => true;
    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 10, 20, 50, 100 }.Select(n => ($"num_virtual_tokens={n}", (PeftConfig)new PrefixTuningConfig { NumVirtualTokens = n })).ToArray();
    /// <inheritdoc/>
    public bool CanMerge => false;

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        int submodules = j.Int("num_transformer_submodules", 1);
        if (submodules is not (1 or 2))
            throw new PeftConfigException($"{j.Source}: num_transformer_submodules={submodules} is not valid (1 for decoder-only, 2 for encoder-decoder models)");
        j.Known("num_attention_heads", "num_layers", "token_dim", "modules_to_save", "prefix_projection");
        return new PrefixTuningConfig
        {
            NumVirtualTokens = j.Int("num_virtual_tokens", 20),
            // Saved adapters hold the projected prefixes, so they load without the MLP (as PEFT does in inference mode).
            PrefixProjection = false,
            EncoderHiddenSize = j.Node("encoder_hidden_size") is null ? null : j.Int("encoder_hidden_size", 0),
            NumTransformerSubmodules = submodules,
        };
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = (PrefixTuningConfig)config;
        return new JsonObject
        {
            ["encoder_hidden_size"] = c.EncoderHiddenSize ?? model.HiddenSize,
            ["num_attention_heads"] = model.NumKeyValueHeads,
            ["num_layers"] = model.NumLayers,
            ["num_transformer_submodules"] = Submodules(model),
            ["num_virtual_tokens"] = c.NumVirtualTokens,
            ["prefix_projection"] = c.PrefixProjection,
            ["token_dim"] = model.NumKeyValueHeads * model.HeadDim,
        };
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = (PrefixTuningConfig)config;
        if (c.NumVirtualTokens <= 0) throw new PeftConfigException($"num_virtual_tokens must be > 0 (got {c.NumVirtualTokens})");
        if (c.NumTransformerSubmodules is int s && s != Submodules(model))
            throw new PeftConfigException($"num_transformer_submodules={s} does not fit this {model.TaskType} model (expected {Submodules(model)})");
        var w = model.EmbeddingWeight;
        var encoder = new PrefixEncoder(model, c, w.device, w.dtype);
        using (no_grad())
            foreach (var (name, p) in encoder.named_parameters())
            {
                // embedding N(0,1) like nn.Embedding; MLP weights N(0, 0.02), biases 0
                if (name.EndsWith("bias", StringComparison.Ordinal)) p.zero_();
                else p.copy_(randn(p.shape, generator: context.Generator).mul_(name.StartsWith("embedding", StringComparison.Ordinal) ? 1.0 : 0.02).to_type(p.dtype));
            }
        model.SetInputAdapter(encoder);
        foreach (var p in encoder.parameters()) p.requires_grad = true;
    }

    // Encoder-decoder models prefix both stacks.
    private static int Submodules(IPeftHost model) => model.NumDecoderLayers is null ? 1 : 2;

    private static PrefixEncoder Encoder(IPeftHost model) =>
        model.InputAdapter as PrefixEncoder ?? throw new InvalidOperationException("prefix tuning is not attached to this model");

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, Tensor> AdapterState(IPeftHost model, PeftConfig config)
    {
        using var noGrad = no_grad();
        return new Dictionary<string, Tensor> { ["prompt_embeddings"] = Encoder(model).Flat().detach() };
    }

    /// <inheritdoc/>
    public void LoadAdapterState(IPeftHost model, PeftConfig config, ITensorSource source)
    {
        if (((PrefixTuningConfig)config).PrefixProjection)
            throw new PeftConfigException($"{source.Description}: prefix adapters load with prefix_projection=false (the file holds the projected prefixes)");
        var weight = Encoder(model).Weight;
        if (model.NumDecoderLayers is not null && source.Names.Contains("prompt_embeddings") && !source.Shape("prompt_embeddings").SequenceEqual(weight.shape))
            throw new CheckpointMismatchException(
                $"{source.Description}: prompt_embeddings has shape {StrictLoader.Fmt(source.Shape("prompt_embeddings"))}, but PeftLab's encoder-decoder prefixes are " +
                $"{StrictLoader.Fmt(weight.shape)} = [n, (L_enc + L_dec)·2·H·d_kv] (encoder and decoder self-attention); prefix adapters of the " +
                "Python PEFT library for T5 (decoder-only prefixes, [n, L·2·d_model]) are not supported");
        PeftState.LoadStrict(new Dictionary<string, Tensor> { ["prompt_embeddings"] = weight }, source);
    }

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) =>
        throw new NotSupportedException("prefix tuning cannot be merged into the base weights (it adds attention positions)");
}
