using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Models;

// T5 encoder-decoder LM (T5 v1.1 / LM-adapt with gated-GELU and an untied head, original T5 with ReLU and a tied,
// d_model^-0.5-scaled head), following transformers' modeling_t5 (T5ForConditionalGeneration).
// Field names equal checkpoint keys: shared, {encoder,decoder}.block.{i}.layer.0.SelfAttention.{q,k,v,o},
// {encoder,decoder}.block.0.layer.0.SelfAttention.relative_attention_bias, decoder.block.{i}.layer.1.EncDecAttention.{q,k,v,o},
// {encoder,decoder}.block.{i}.layer.{1|2}.DenseReluDense.{wi | wi_0, wi_1}, .wo, ....layer.{j}.layer_norm,
// {encoder,decoder}.final_layer_norm, lm_head. The tied copies encoder/decoder.embed_tokens are not modules here:
// the loader accepts them when they equal shared.weight.
// Shapes: B batch, S encoder positions, T decoder positions (new), K keys (past + new), d d_model, H heads,
// dk d_kv, ff d_ff, V vocab, n virtual (prompt/prefix) tokens.

/// <summary>Per-forward state of one kind of attention (self or cross) in one stack, shared by every block.</summary>
public sealed class T5AttentionContext
{
    /// <summary>
    /// Additive scores bias [B or 1, H or 1, T, K]: the relative position bias plus the mask (self-attention), or the
    /// encoder padding mask (cross-attention; null when nothing is padded). T5 adds it unscaled to q·kᵀ.
    /// </summary>
    public Tensor? Bias { get; init; }
    /// <summary>Cross-attention: the encoder output [B, S, d] keys and values are computed from; null for self-attention.</summary>
    public Tensor? EncoderStates { get; init; }
    /// <summary>Decoder cache (self-attention keys/values appended, cross-attention keys/values computed once), or null.</summary>
    public T5DecoderCache? Cache { get; init; }
    /// <summary>Input-side adapter supplying self-attention key/value prefixes when there is no cache.</summary>
    public IInputAdapter? Prefix { get; init; }
    /// <summary>The stack this attention belongs to (selects the prefixes).</summary>
    public ModelStack Stack { get; init; }
}

/// <summary>
/// T5 attention: scores q·kᵀ with no 1/√dk scaling, plus the context's bias, softmax in float32. Block 0's
/// self-attention owns the relative position bias table of its stack. Projections are swappable modules.
/// </summary>
public sealed class T5Attention : nn.Module<Tensor, T5AttentionContext, Tensor>, IModuleContainer
{
    private nn.Module<Tensor, Tensor> q, k, v, o;
    private readonly Embedding? relative_attention_bias;   // [buckets, H], block 0 self-attention only
    private readonly int layer, heads, headDim, numBuckets, maxDistance;
    private readonly bool isCross, bidirectional;
    private readonly double dropout;

    /// <summary>Creates the attention of block <paramref name="layer"/>.</summary>
    public T5Attention(T5Config c, int layer, bool isCross, bool hasRelativeBias, bool bidirectional, Device? device, ScalarType dtype) : base(nameof(T5Attention))
    {
        this.layer = layer;
        this.isCross = isCross;
        this.bidirectional = bidirectional;
        heads = c.NumHeads;
        headDim = c.HeadDim;
        numBuckets = c.RelativeAttentionNumBuckets;
        maxDistance = c.RelativeAttentionMaxDistance;
        dropout = c.DropoutRate;
        long inner = (long)heads * headDim;
        q = nn.Linear(c.HiddenSize, inner, hasBias: false, device, dtype);
        k = nn.Linear(c.HiddenSize, inner, hasBias: false, device, dtype);
        v = nn.Linear(c.HiddenSize, inner, hasBias: false, device, dtype);
        o = nn.Linear(inner, c.HiddenSize, hasBias: false, device, dtype);
        if (hasRelativeBias) relative_attention_bias = nn.Embedding(numBuckets, heads, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>x [B, T, d] -> [B, T, d]; keys/values from x (self) or the encoder states (cross).</summary>
    public override Tensor forward(Tensor x, T5AttentionContext ctx)
    {
        long b = x.shape[0], t = x.shape[1];
        var query = Heads(q.forward(x), b);                                       // [B, H, T, dk]
        Tensor key, value;
        if (isCross)
        {
            if (ctx.Cache?.Cross(layer) is var (ck, cv)) (key, value) = (ck, cv);    // [B, H, S, dk], computed once per sequence
            else
            {
                var states = ctx.EncoderStates ?? throw new InvalidOperationException("cross-attention needs the encoder states");
                key = Heads(k.forward(states), b);                                 // [B, H, S, dk]
                value = Heads(v.forward(states), b);
                ctx.Cache?.SetCross(layer, key, value);
            }
        }
        else
        {
            key = Heads(k.forward(x), b);                                         // [B, H, T, dk]
            value = Heads(v.forward(x), b);
            if (ctx.Cache is not null)
                (key, value) = ctx.Cache.Self.Append(layer, key, value);           // [B, H, K, dk]
            else if (ctx.Prefix?.LayerPrefix(ctx.Stack, layer, b, key.dtype) is var (pk, pv))
            {
                key = cat([pk, key], 2);                                          // [B, H, n + T, dk]
                value = cat([pv, value], 2);
            }
        }
        var scores = query.matmul(key.transpose(-1, -2));                           // [B, H, T, K], unscaled
        if (ctx.Bias is not null) scores = scores + ctx.Bias;
        var weights = scores.to_type(ScalarType.Float32).softmax(-1).to_type(scores.dtype);
        weights = nn.functional.dropout(weights, dropout, training);
        var y = weights.matmul(value).transpose(1, 2).reshape(b, t, (long)heads * headDim); // [B, T, H*dk]
        return o.forward(y);
    }

    private Tensor Heads(Tensor x, long b) => x.view(b, -1, heads, headDim).transpose(1, 2);

    /// <summary>
    /// Relative position bias [1, H, T, K] for queries at positions <paramref name="queryStart"/>.. and keys at 0..K-1
    /// (transformers' compute_bias with cache positions). Only block 0's self-attention has the table.
    /// </summary>
    public Tensor PositionBias(long queryStart, long queryLength, long keyLength, Device device)
    {
        var table = relative_attention_bias ?? throw new InvalidOperationException("only block 0's self-attention holds relative_attention_bias");
        using var scope = NewDisposeScope();
        var context = arange(queryStart, queryStart + queryLength, dtype: ScalarType.Int64, device: device).view(-1, 1); // [T, 1]
        var memory = arange(0, keyLength, dtype: ScalarType.Int64, device: device).view(1, -1);                            // [1, K]
        var buckets = RelativePositionBucket(memory - context, bidirectional, numBuckets, maxDistance);                   // [T, K]
        return table.forward(buckets).permute(2, 0, 1).unsqueeze(0).MoveToOuterDisposeScope();                           // [1, H, T, K]
    }

    /// <summary>
    /// T5's bucketing of relative positions (key − query): exact buckets for small distances, logarithmic ones up to
    /// max_distance, one shared bucket beyond. Bidirectional (encoder) gives half the buckets to positive distances;
    /// causal (decoder) only buckets keys at or before the query. Computed with the same float32 ops as transformers,
    /// so the truncation at bucket boundaries agrees.
    /// </summary>
    public static Tensor RelativePositionBucket(Tensor relativePosition, bool bidirectional, int numBuckets, int maxDistance)
    {
        using var scope = NewDisposeScope();
        var buckets = zeros_like(relativePosition);
        Tensor distance;
        if (bidirectional)
        {
            numBuckets /= 2;
            buckets = buckets + relativePosition.gt(0).to_type(ScalarType.Int64) * numBuckets;
            distance = relativePosition.abs();
        }
        else distance = -relativePosition.clamp_max(0);                               // keys after the query fall into bucket 0
        int maxExact = numBuckets / 2;
        var isSmall = distance.lt(maxExact);
        var large = (log(distance.to_type(ScalarType.Float32) / maxExact) / Math.Log(maxDistance / (double)maxExact) * (numBuckets - maxExact))
            .to_type(ScalarType.Int64) + maxExact;
        large = large.clamp_max(numBuckets - 1);
        return (buckets + where(isSmall, distance, large)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren { get; } = ["q", "k", "v", "o"];
}

/// <summary>T5's feed-forward: wo(act(wi x)), or gated wo(act(wi_0 x) ⊙ wi_1 x); dropout before wo.</summary>
public sealed class T5DenseReluDense : nn.Module<Tensor, Tensor>, IModuleContainer
{
    private nn.Module<Tensor, Tensor>? wi, wi_0, wi_1;   // wi (plain) or wi_0, wi_1 (gated)
    private nn.Module<Tensor, Tensor> wo;
    private readonly T5Activation activation;
    private readonly double dropout;

    /// <summary>Creates the feed-forward block for a config.</summary>
    public T5DenseReluDense(T5Config c, Device? device, ScalarType dtype) : base(nameof(T5DenseReluDense))
    {
        activation = c.Activation;
        dropout = c.DropoutRate;
        if (c.IsGated)
        {
            wi_0 = nn.Linear(c.HiddenSize, c.FeedForwardSize, hasBias: false, device, dtype);
            wi_1 = nn.Linear(c.HiddenSize, c.FeedForwardSize, hasBias: false, device, dtype);
        }
        else wi = nn.Linear(c.HiddenSize, c.FeedForwardSize, hasBias: false, device, dtype);
        wo = nn.Linear(c.FeedForwardSize, c.HiddenSize, hasBias: false, device, dtype);
        ReplaceableChildren = wi is null ? ["wi_0", "wi_1", "wo"] : ["wi", "wo"];
        RegisterComponents();
    }

    /// <summary>x [B, T, d] -> [B, T, d] through [B, T, ff].</summary>
    public override Tensor forward(Tensor x)
    {
        var h = wi is not null ? Activate(wi.forward(x), activation) : Activate(wi_0!.forward(x), activation) * wi_1!.forward(x);
        return wo.forward(nn.functional.dropout(h, dropout, training));
    }

    /// <summary>The activation as transformers computes it (gelu_new spelled out in its tanh form).</summary>
    public static Tensor Activate(Tensor x, T5Activation activation) => activation switch
    {
        T5Activation.Relu => nn.functional.relu(x),
        T5Activation.Gelu => nn.functional.gelu(x),
        T5Activation.GeluNew => 0.5 * x * (1.0 + tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3.0)))),
        _ => nn.functional.silu(x),
    };

    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren { get; }
}

/// <summary>
/// Pre-norm attention sublayer: h + dropout(attention(layer_norm(h))). The self-attention sublayer (<c>layer.0</c>)
/// names its attention <c>SelfAttention</c>; a decoder block's cross-attention sublayer (<c>layer.1</c>) names it
/// <c>EncDecAttention</c> and attends to the encoder states its context carries.
/// </summary>
public sealed class T5LayerAttention : nn.Module<Tensor, T5AttentionContext, Tensor>, IModuleContainer
{
    private readonly RmsNorm layer_norm;
    private readonly double dropout;
    private readonly string childName;

    /// <summary>Wraps an attention module; <paramref name="cross"/> makes it the cross-attention sublayer.</summary>
    public T5LayerAttention(T5Config c, T5Attention attention, bool cross, Device? device, ScalarType dtype)
        : base(cross ? "T5LayerCrossAttention" : "T5LayerSelfAttention")
    {
        childName = cross ? "EncDecAttention" : "SelfAttention";
        // the attention's checkpoint name depends on the sublayer's use, so it is registered by that name and read back
        // through Attention (no field: RegisterComponents would register it a second time under the field's name)
        register_module(childName, attention);
        layer_norm = new RmsNorm(c.HiddenSize, c.LayerNormEpsilon, device, dtype);
        dropout = c.DropoutRate;
        RegisterComponents();
    }

    private nn.Module<Tensor, T5AttentionContext, Tensor> Attention => (nn.Module<Tensor, T5AttentionContext, Tensor>)_internal_submodules[childName];

    /// <summary>h [B, T, d] -> [B, T, d].</summary>
    public override Tensor forward(Tensor h, T5AttentionContext ctx)
        => h + nn.functional.dropout(Attention.forward(layer_norm.forward(h), ctx), dropout, training);

    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren => [childName];

    /// <inheritdoc/>
    public nn.Module GetChild(string name) => name == childName ? Attention : throw ModuleSlots.Unknown(GetName(), name, ReplaceableChildren);

    /// <inheritdoc/>
    public void ReplaceChild(string name, nn.Module replacement)
    {
        if (name != childName) throw ModuleSlots.Unknown(GetName(), name, ReplaceableChildren);
        ModuleSlots.Register(this, name, ModuleSlots.As<nn.Module<Tensor, T5AttentionContext, Tensor>>(GetName(), name, replacement));
    }
}

/// <summary>Pre-norm feed-forward sublayer: h + dropout(DenseReluDense(layer_norm(h))).</summary>
public sealed class T5LayerFF : nn.Module<Tensor, Tensor>, IModuleContainer
{
    private nn.Module<Tensor, Tensor> DenseReluDense;
    private readonly RmsNorm layer_norm;
    private readonly double dropout;

    /// <summary>Creates the sublayer.</summary>
    public T5LayerFF(T5Config c, Device? device, ScalarType dtype) : base(nameof(T5LayerFF))
    {
        DenseReluDense = new T5DenseReluDense(c, device, dtype);
        layer_norm = new RmsNorm(c.HiddenSize, c.LayerNormEpsilon, device, dtype);
        dropout = c.DropoutRate;
        RegisterComponents();
    }

    /// <summary>h [B, T, d] -> [B, T, d].</summary>
    public override Tensor forward(Tensor h) => h + nn.functional.dropout(DenseReluDense.forward(layer_norm.forward(h)), dropout, training);

    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren { get; } = ["DenseReluDense"];
}

/// <summary>One block: layer.0 self-attention, (decoder) layer.1 cross-attention, then the feed-forward sublayer.</summary>
public sealed class T5Block : nn.Module
{
    private readonly ModuleList<nn.Module> layer;

    /// <summary>Creates block <paramref name="index"/> of a stack; block 0's self-attention holds the relative bias table.</summary>
    public T5Block(T5Config c, int index, bool isDecoder, Device? device, ScalarType dtype) : base(nameof(T5Block))
    {
        var attention = new T5Attention(c, index, isCross: false, hasRelativeBias: index == 0, bidirectional: !isDecoder, device, dtype);
        var parts = new List<nn.Module> { new T5LayerAttention(c, attention, cross: false, device, dtype) };
        if (isDecoder) parts.Add(new T5LayerAttention(c, new T5Attention(c, index, isCross: true, hasRelativeBias: false, bidirectional: false, device, dtype), cross: true, device, dtype));
        parts.Add(new T5LayerFF(c, device, dtype));
        layer = new ModuleList<nn.Module>(parts.ToArray());
        RegisterComponents();
        SelfAttention = attention; // set after registration: it is registered once, under layer.0
    }

    /// <summary>The block's own self-attention module, even when PEFT has wrapped its slot (block 0's holds the bias table).</summary>
    internal T5Attention? SelfAttention { get; }

    /// <summary>h [B, T, d] -> [B, T, d]; <paramref name="cross"/> is required in decoder blocks.</summary>
    public Tensor Forward(Tensor h, T5AttentionContext self, T5AttentionContext? cross)
    {
        h = ((T5LayerAttention)layer[0]).forward(h, self);
        if (layer.Count == 3)
            h = ((T5LayerAttention)layer[1]).forward(h, cross ?? throw new ArgumentException("decoder blocks need a cross-attention context", nameof(cross)));
        return ((T5LayerFF)layer[layer.Count - 1]).forward(h);
    }
}

/// <summary>A stack of blocks with a final T5LayerNorm (checkpoint prefix <c>encoder.</c> or <c>decoder.</c>).</summary>
public sealed class T5Stack : nn.Module
{
    private readonly ModuleList<T5Block> block;
    private readonly RmsNorm final_layer_norm;
    private readonly T5Attention biasOwner;   // block 0's self-attention (a registered child of block 0)
    private readonly double dropout;

    /// <summary>Creates the encoder or decoder stack.</summary>
    public T5Stack(T5Config c, bool isDecoder, Device? device, ScalarType dtype) : base(nameof(T5Stack))
    {
        int n = isDecoder ? c.NumDecoderLayers : c.NumLayers;
        block = new ModuleList<T5Block>(Enumerable.Range(0, n).Select(i => new T5Block(c, i, isDecoder, device, dtype)).ToArray());
        final_layer_norm = new RmsNorm(c.HiddenSize, c.LayerNormEpsilon, device, dtype);
        dropout = c.DropoutRate;
        RegisterComponents();
        biasOwner = block[0].SelfAttention!; // assigned after registration: it is block 0's child, not this stack's
    }

    /// <summary>Relative position bias [1, H, T, K] from block 0 (shared by every block, as in transformers).</summary>
    public Tensor PositionBias(long queryStart, long queryLength, long keyLength, Device device) =>
        biasOwner.PositionBias(queryStart, queryLength, keyLength, device);

    /// <summary>
    /// Embedded input h [B, T, d] through every block, the final norm and dropout. With
    /// <paramref name="checkpointEvery"/> k &gt; 0, blocks 0, k, 2k, ... keep only their inputs while training and
    /// recompute their activations in backward (<see cref="ActivationCheckpoint"/>); never with a cache.
    /// </summary>
    public Tensor Forward(Tensor h, T5AttentionContext self, T5AttentionContext? cross, int checkpointEvery = 0)
    {
        h = nn.functional.dropout(h, dropout, training);
        bool checkpoint = checkpointEvery > 0 && training && self.Cache is null && is_grad_enabled();
        for (int i = 0; i < block.Count; i++)
            h = checkpoint && i % checkpointEvery == 0 ? Checkpointed(block[i], h, self, cross) : block[i].Forward(h, self, cross);
        return nn.functional.dropout(final_layer_norm.forward(h), dropout, training);
    }

    // The contexts' tensors with gradient history (the position bias, shared by every block and trainable under full
    // finetuning; the encoder output a decoder block attends to) are inputs of the checkpointed segment, so the
    // recompute builds its own graph from them and hands their gradients on.
    private static Tensor Checkpointed(T5Block b, Tensor h, T5AttentionContext self, T5AttentionContext? cross)
    {
        Tensor?[] given = [h, self.Bias, cross?.Bias, cross?.EncoderStates];
        var present = given.Select((t, i) => (t, i)).Where(x => x.t is not null).ToArray();
        return ActivationCheckpoint.Apply(inputs =>
        {
            var t = new Tensor?[given.Length];
            for (int j = 0; j < present.Length; j++) t[present[j].i] = inputs[j];
            var s = new T5AttentionContext { Bias = t[1], Prefix = self.Prefix, Stack = self.Stack };
            var c = cross is null ? null : new T5AttentionContext { Bias = t[2], EncoderStates = t[3], Prefix = cross.Prefix, Stack = cross.Stack };
            return b.Forward(t[0]!, s, c);
        }, present.Select(x => x.t!).ToArray());
    }
}

/// <summary>What the encoder hands the decoder.</summary>
/// <param name="Hidden">Encoder output [B, S', d]; S' includes prompt-tuning tokens.</param>
/// <param name="Mask">Padding mask [B, S'] (1 = token, 0 = padding), or null when nothing is padded.</param>
public sealed record T5EncoderOutput(Tensor Hidden, Tensor? Mask);

/// <summary>
/// Decoder cache for generation: self-attention keys/values appended step by step (<see cref="Self"/>), and the
/// cross-attention keys/values of the encoder output, computed on the first step and reused afterwards.
/// </summary>
public sealed class T5DecoderCache : IDisposable
{
    private readonly Tensor?[] crossKeys, crossValues;

    /// <summary>Allocates an empty cache for <paramref name="capacity"/> decoder positions (virtual ones included).</summary>
    public T5DecoderCache(T5Config c, long batch, long capacity, ScalarType dtype, Device device)
    {
        Self = new KvCache(c.NumDecoderLayers, batch, c.NumHeads, capacity, c.HeadDim, dtype, device);
        crossKeys = new Tensor?[c.NumDecoderLayers];
        crossValues = new Tensor?[c.NumDecoderLayers];
    }

    /// <summary>Decoder self-attention keys/values.</summary>
    public KvCache Self { get; }

    /// <summary>Cross-attention keys and values [B, H, S', dk] of a decoder layer, once computed.</summary>
    public (Tensor Key, Tensor Value)? Cross(int layer) => crossKeys[layer] is { } k ? (k, crossValues[layer]!) : null;

    /// <summary>Stores a layer's cross-attention keys and values (kept until the cache is disposed).</summary>
    public void SetCross(int layer, Tensor key, Tensor value)
    {
        crossKeys[layer] = key.contiguous().DetachFromDisposeScope();
        crossValues[layer] = value.contiguous().DetachFromDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Self.Dispose();
        foreach (var t in crossKeys.Concat(crossValues)) t?.Dispose();
    }
}

/// <summary>
/// T5 encoder-decoder LM: shared embedding, encoder, decoder and LM head (the shared embedding with d_model^-0.5
/// output scaling when tied). Implements <see cref="IPeftHost"/> with task type SEQ_2_SEQ_LM.
/// </summary>
public sealed class T5ForConditionalGeneration : nn.Module, IModuleContainer, IPeftHost
{
    private readonly TokenEmbedding shared;
    private readonly T5Stack encoder, decoder;
    private nn.Module<Tensor, Tensor>? lm_head;

    /// <summary>Builds an uninitialised model (weights as TorchSharp's defaults; load or initialise them).</summary>
    public T5ForConditionalGeneration(T5Config config, Device? device = null, ScalarType dtype = ScalarType.Float32) : base(nameof(T5ForConditionalGeneration))
    {
        config.Validate("T5 config");
        Config = config;
        shared = new TokenEmbedding(config.VocabSize, config.HiddenSize, device, dtype);
        encoder = new T5Stack(config, isDecoder: false, device, dtype);
        decoder = new T5Stack(config, isDecoder: true, device, dtype);
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, device, dtype);
        RegisterComponents();
    }

    /// <summary>The configuration this model was built from.</summary>
    public T5Config Config { get; }

    /// <summary>The shared token embedding (encoder input, decoder input, tied head).</summary>
    public TokenEmbedding EmbedTokens => shared;

    /// <summary>
    /// Activation checkpointing while training, in both stacks: 0 = off, k = every k-th block recomputes its
    /// activations in backward (1 = every block). An execution setting, not part of the checkpoint.
    /// </summary>
    public int CheckpointEvery { get; set; }

    /// <summary>The prompt/prefix-tuning adapter in use, if any.</summary>
    public IInputAdapter? InputAdapter { get; private set; }

    /// <inheritdoc/>
    public void SetInputAdapter<T>(T adapter) where T : nn.Module, IInputAdapter
    {
        if (InputAdapter is not null) throw new InvalidOperationException("an input adapter (prompt or prefix tuning) is already attached");
        InputAdapter = adapter;
        register_module("prompt_encoder", adapter);
    }

    /// <inheritdoc/>
    public nn.Module Module => this;
    /// <inheritdoc/>
    public Tensor EmbeddingWeight => shared.weight!;
    /// <inheritdoc/>
    public int HiddenSize => Config.HiddenSize;
    /// <inheritdoc/>
    public int NumLayers => Config.NumLayers;
    /// <inheritdoc/>
    public int? NumDecoderLayers => Config.NumDecoderLayers;
    /// <inheritdoc/>
    public int NumHeads => Config.NumHeads;
    /// <inheritdoc/>
    public int NumKeyValueHeads => Config.NumHeads;
    /// <inheritdoc/>
    public int HeadDim => Config.HeadDim;
    /// <inheritdoc/>
    public string TaskType => PeftTaskTypes.Seq2SeqLM;
    /// <inheritdoc/>
    public ModelLayout Layout => ModelLayout.T5;

    /// <summary>
    /// Optional checkpoint keys that alias <c>shared.weight</c>: the stacks' embed_tokens copies, and lm_head when tied.
    /// When present they must equal it.
    /// </summary>
    public IReadOnlyDictionary<string, string> TiedKeys
    {
        get
        {
            var d = new Dictionary<string, string> { ["encoder.embed_tokens.weight"] = "shared.weight", ["decoder.embed_tokens.weight"] = "shared.weight" };
            if (Config.TieWordEmbeddings) d["lm_head.weight"] = "shared.weight";
            return d;
        }
    }

    /// <summary>
    /// Teacher-forced logits [B, T, V] of <paramref name="decoderInputIds"/> [B, T] (starting with the decoder start
    /// token) given <paramref name="inputIds"/> [B, S]. Masks: 1 = token, 0 = padding; null = all ones.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor decoderInputIds, Tensor? attentionMask = null, Tensor? decoderAttentionMask = null)
        => Decode(decoderInputIds, Encode(inputIds, attentionMask), decoderAttentionMask);

    /// <summary>Runs the encoder on <paramref name="inputIds"/> [B, S] (prompt-tuning tokens prepended).</summary>
    public T5EncoderOutput Encode(Tensor inputIds, Tensor? attentionMask = null)
    {
        long b = inputIds.shape[0], s = inputIds.shape[1];
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"attention_mask has shape [{string.Join(", ", attentionMask.shape)}], expected [{b}, {s}] like input_ids");
        var device = inputIds.device;
        var h = TokenIds.Embed(shared, inputIds, "input_ids");                                            // [B, S, d]
        var dtype = h.dtype;
        var adapter = InputAdapter;
        long prompt = 0, prefix = 0;
        if (adapter is not null)
        {
            (h, prompt) = VirtualTokens.Prepend(h, adapter.VirtualEmbeddings(ModelStack.Encoder, b, dtype));   // [B, n + S, d]
            if (prompt == 0) prefix = adapter.VirtualTokens(ModelStack.Encoder);  // per-layer key/value prefixes
        }
        long tq = prompt + s, keys = prefix + tq;
        Tensor? outputMask = attentionMask is null || attentionMask.to_type(ScalarType.Int64).min().item<long>() != 0 ? null
            : VirtualTokens.VisibleInFront(attentionMask, prompt);                  // [B, n + S]
        Tensor? keyMask = outputMask is null ? null
            : VirtualTokens.VisibleInFront(outputMask, prefix);                     // [B, K]
        var bias = encoder.PositionBias(prefix, tq, keys, device);                   // [1, H, T, K]: prefixes take positions 0..n-1
        if (keyMask is not null) bias = bias + AttentionMasks.Additive(keyMask.view(b, 1, 1, keys), dtype);
        var ctx = new T5AttentionContext { Bias = bias, Prefix = prefix > 0 ? adapter : null, Stack = ModelStack.Encoder };
        return new T5EncoderOutput(encoder.Forward(h, ctx, null, CheckpointEvery), outputMask);
    }

    /// <summary>
    /// Runs the decoder on <paramref name="decoderInputIds"/> [B, T] against <paramref name="encoderOutput"/> and returns
    /// logits [B, T, V] (or [B, 1, V] for <see cref="LogitsMode.Last"/>), virtual positions dropped.
    /// <paramref name="decoderAttentionMask"/> covers the real decoder positions so far (past + T). With a
    /// <paramref name="cache"/>, only the new tokens are passed and keys/values accumulate in it.
    /// </summary>
    public Tensor Decode(Tensor decoderInputIds, T5EncoderOutput encoderOutput, Tensor? decoderAttentionMask = null,
        T5DecoderCache? cache = null, LogitsMode mode = LogitsMode.All)
    {
        long b = decoderInputIds.shape[0], t = decoderInputIds.shape[1];
        var device = decoderInputIds.device;
        var h = TokenIds.Embed(shared, decoderInputIds, "decoder_input_ids");                                     // [B, T, d]
        var dtype = h.dtype;
        var adapter = InputAdapter;
        long past = cache?.Self.Length ?? 0;
        long virtualNow = 0, virtualTotal = 0, uncachedPrefix = 0;
        long n = adapter?.VirtualTokens(ModelStack.Decoder) ?? 0;
        if (adapter is not null && n > 0)
        {
            virtualTotal = n;
            if (past == 0) (h, virtualNow) = VirtualTokens.Prepend(h, adapter.VirtualEmbeddings(ModelStack.Decoder, b, dtype));   // [B, n + T, d]
            if (virtualNow == 0 && past == 0 && cache is not null)
            {
                // prefix tuning with a cache: the prefixes become the first cache entries
                for (int i = 0; i < Config.NumDecoderLayers; i++)
                    if (adapter.LayerPrefix(ModelStack.Decoder, i, b, dtype) is var (pk, pv)) cache.Self.Append(i, pk, pv);
                cache.Self.Advance(n);
                cache.Self.PrefixLength = n;
                past = n;
            }
            else if (virtualNow == 0 && cache is null) uncachedPrefix = n;           // prefix tuning without a cache: each layer prepends its own
        }
        long tq = t + virtualNow;
        long keys = cache is not null ? past + tq : uncachedPrefix + tq;            // K
        long queryStart = keys - tq;

        // Decoder self-attention: causal, plus padding of real decoder positions when a mask is given.
        var bias = decoder.PositionBias(queryStart, tq, keys, device);               // [1, H, T, K]
        Tensor? keyMask = null;
        if (decoderAttentionMask is not null)
        {
            long realKeys = keys - virtualTotal;
            if (decoderAttentionMask.shape[0] != b || decoderAttentionMask.shape[1] != realKeys)
                throw new ArgumentException($"decoder_attention_mask covers {decoderAttentionMask.shape[1]} positions, expected {realKeys} (past + new decoder tokens)");
            keyMask = VirtualTokens.VisibleInFront(decoderAttentionMask, virtualTotal);
        }
        if (tq > 1 || keyMask is not null)
        {
            var qPos = arange(queryStart, keys, device: device).view(tq, 1);       // [T, 1]
            var kPos = arange(0, keys, device: device).view(1, keys);              // [1, K]
            var allowed = kPos.le(qPos).view(1, 1, tq, keys);                       // [1, 1, T, K]
            if (keyMask is not null) allowed = allowed.logical_and(keyMask.to_type(ScalarType.Bool).view(b, 1, 1, keys));
            bias = bias + AttentionMasks.Additive(allowed, dtype);
        }
        var self = new T5AttentionContext { Bias = bias, Cache = cache, Prefix = uncachedPrefix > 0 ? adapter : null, Stack = ModelStack.Decoder };

        var encMask = encoderOutput.Mask;
        var crossBias = encMask is null ? null : AttentionMasks.Additive(encMask.view(b, 1, 1, encMask.shape[1]), dtype); // [B, 1, 1, S']
        var cross = new T5AttentionContext { Bias = crossBias, EncoderStates = encoderOutput.Hidden, Cache = cache, Stack = ModelStack.Decoder };

        h = decoder.Forward(h, self, cross, CheckpointEvery);                                       // [B, n + T, d]
        cache?.Self.Advance(tq);
        h = VirtualTokens.Drop(h, virtualNow);                                       // [B, T, d]
        if (mode == LogitsMode.Last) h = h.narrow(1, h.shape[1] - 1, 1);
        if (lm_head is not null) return lm_head.forward(h);
        // Tied head: transformers rescales the decoder output by d_model^-0.5 before reusing the embedding.
        return nn.functional.linear(h * Math.Pow(Config.HiddenSize, -0.5), shared.EffectiveWeight);
    }


    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren => lm_head is null ? [] : ["lm_head"];

    /// <inheritdoc/>
    public nn.Module GetChild(string name) => name == "lm_head" && lm_head is not null ? lm_head
        : throw ModuleSlots.Unknown("T5ForConditionalGeneration", name, ReplaceableChildren);

    /// <inheritdoc/>
    public void ReplaceChild(string name, nn.Module replacement)
    {
        if (name != "lm_head" || lm_head is null) throw ModuleSlots.Unknown("T5ForConditionalGeneration", name, ReplaceableChildren);
        lm_head = ModuleSlots.As<nn.Module<Tensor, Tensor>>("T5ForConditionalGeneration", name, replacement);
        _internal_submodules[name] = replacement;
    }
}
