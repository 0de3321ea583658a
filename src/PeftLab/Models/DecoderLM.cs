using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Models;

// Llama-family decoder-only LM (llama, mistral, qwen2), following transformers' modeling_llama.
// Field names equal checkpoint keys: model.embed_tokens, model.layers.{i}.self_attn.{q,k,v,o}_proj,
// model.layers.{i}.mlp.{gate,up,down}_proj, model.layers.{i}.{input,post_attention}_layernorm, model.norm, lm_head.
// Shapes: B batch, T new tokens, K keys (past + new), d hidden, H query heads, Hkv key/value heads, hd head dim, V vocab.

/// <summary>Per-forward state shared by every attention layer.</summary>
public sealed class AttentionContext
{
    /// <summary>Additive mask [B, 1, T, K] (0 = attend, dtype minimum = blocked), or null when <see cref="IsCausal"/> or no mask is needed.</summary>
    public Tensor? Mask { get; init; }
    /// <summary>Plain causal attention over exactly T keys (lets SDPA use its fused causal path).</summary>
    public bool IsCausal { get; init; }
    /// <summary>Rotary cos [B, 1, T, hd].</summary>
    public required Tensor Cos { get; init; }
    /// <summary>Rotary sin [B, 1, T, hd] with its first half negated (see <see cref="Rotary.Apply"/>).</summary>
    public required Tensor SignedSin { get; init; }
    /// <summary>KV cache to append to, or null.</summary>
    public KvCache? Cache { get; init; }
    /// <summary>Input-side adapter supplying key/value prefixes when there is no cache.</summary>
    public IInputAdapter? Prefix { get; init; }
}

/// <summary>Grouped-query self-attention with rotary embeddings; projections are swappable modules.</summary>
public sealed class Attention : nn.Module<Tensor, AttentionContext, Tensor>, IModuleContainer
{
    private nn.Module<Tensor, Tensor> q_proj, k_proj, v_proj, o_proj;
    private readonly int layer, heads, kvHeads, headDim;

    /// <summary>Creates the attention of block <paramref name="layer"/>.</summary>
    public Attention(DecoderConfig c, int layer, Device? device, ScalarType dtype) : base(nameof(Attention))
    {
        this.layer = layer;
        heads = c.NumHeads;
        kvHeads = c.NumKeyValueHeads;
        headDim = c.HeadDim;
        q_proj = nn.Linear(c.HiddenSize, heads * headDim, c.QkvBias, device, dtype);
        k_proj = nn.Linear(c.HiddenSize, kvHeads * headDim, c.QkvBias, device, dtype);
        v_proj = nn.Linear(c.HiddenSize, kvHeads * headDim, c.QkvBias, device, dtype);
        o_proj = nn.Linear(heads * headDim, c.HiddenSize, c.OutputBias, device, dtype);
        RegisterComponents();
    }

    /// <summary>x [B, T, d] -> [B, T, d].</summary>
    public override Tensor forward(Tensor x, AttentionContext ctx)
    {
        long b = x.shape[0], t = x.shape[1];
        var qkv = Projection.Apply([q_proj, k_proj, v_proj], x);
        var q = qkv[0].view(b, t, heads, headDim).transpose(1, 2);               // [B, H, T, hd]
        var k = qkv[1].view(b, t, kvHeads, headDim).transpose(1, 2);             // [B, Hkv, T, hd]
        var v = qkv[2].view(b, t, kvHeads, headDim).transpose(1, 2);             // [B, Hkv, T, hd]
        q = Rotary.Apply(q, ctx.Cos, ctx.SignedSin);
        k = Rotary.Apply(k, ctx.Cos, ctx.SignedSin);

        if (ctx.Cache is not null)
            (k, v) = ctx.Cache.Append(layer, k, v);                              // [B, Hkv, K, hd]
        else if (ctx.Prefix?.LayerPrefix(layer, b, k.dtype) is var (pk, pv))
        {
            k = cat([pk, k], 2);
            v = cat([pv, v], 2);
        }
        if (kvHeads != heads && t == 1 && ctx.Mask is null && !ctx.IsCausal)
        {
            // one query token that sees every key (a decode step): each K/V head's query heads as rows of one query
            // block, so the cache is read once instead of copied heads/kvHeads times (repeat_kv) per layer and step
            var grouped = nn.functional.scaled_dot_product_attention(q.view(b, kvHeads, heads / kvHeads, headDim), k, v); // [B, Hkv, H/Hkv, hd]
            return Projection.Apply(o_proj, grouped.reshape(b, 1, heads * headDim));
        }
        if (kvHeads != heads)
        {
            // transformers' repeat_kv: each K/V head serves heads/kvHeads consecutive query heads
            k = k.repeat_interleave(heads / kvHeads, dim: 1);                   // [B, H, K, hd]
            v = v.repeat_interleave(heads / kvHeads, dim: 1);
        }
        var y = nn.functional.scaled_dot_product_attention(q, k, v, ctx.Mask, is_casual: ctx.IsCausal); // [B, H, T, hd]
        y = y.transpose(1, 2).reshape(b, t, heads * headDim);                   // [B, T, H*hd]
        return Projection.Apply(o_proj, y);
    }

    /// <summary>The projections' weights and biases when all four are plain linear layers (no adapter wraps them), else null.</summary>
    internal (Tensor[] Qkv, Tensor?[] QkvBias, Tensor O, Tensor? OBias)? PlainWeights() =>
        q_proj is Linear q && k_proj is Linear k && v_proj is Linear v && o_proj is Linear o
            ? ([q.weight!, k.weight!, v.weight!], [q.bias, k.bias, v.bias], o.weight!, o.bias) : null;

    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren { get; } = ["q_proj", "k_proj", "v_proj", "o_proj"];
}

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) * up(x)).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>, IModuleContainer
{
    private nn.Module<Tensor, Tensor> gate_proj, up_proj, down_proj;

    /// <summary>Creates the MLP of one block.</summary>
    public Mlp(DecoderConfig c, Device? device, ScalarType dtype) : base(nameof(Mlp))
    {
        gate_proj = nn.Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, device, dtype);
        up_proj = nn.Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, device, dtype);
        down_proj = nn.Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias, device, dtype);
        RegisterComponents();
    }

    /// <summary>x [B, T, d] -> [B, T, d] through [B, T, ff].</summary>
    public override Tensor forward(Tensor x)
    {
        var gateUp = Projection.Apply([gate_proj, up_proj], x);
        return Projection.Apply(down_proj, nn.functional.silu(gateUp[0]) * gateUp[1]);
    }

    /// <summary>The projections' weights and biases when all three are plain linear layers, else null.</summary>
    internal (Tensor[] GateUp, Tensor?[] GateUpBias, Tensor Down, Tensor? DownBias)? PlainWeights() =>
        gate_proj is Linear g && up_proj is Linear u && down_proj is Linear dn
            ? ([g.weight!, u.weight!], [g.bias, u.bias], dn.weight!, dn.bias) : null;

    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren { get; } = ["gate_proj", "up_proj", "down_proj"];
}

/// <summary>One pre-norm block: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
public sealed class DecoderLayer : nn.Module<Tensor, AttentionContext, Tensor>, IModuleContainer
{
    private nn.Module<Tensor, AttentionContext, Tensor> self_attn;
    private nn.Module<Tensor, Tensor> mlp;
    private readonly RmsNorm input_layernorm, post_attention_layernorm;

    /// <summary>Creates block <paramref name="layer"/>.</summary>
    public DecoderLayer(DecoderConfig c, int layer, Device? device, ScalarType dtype) : base(nameof(DecoderLayer))
    {
        self_attn = new Attention(c, layer, device, dtype);
        mlp = new Mlp(c, device, dtype);
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>x [B, T, d] -> [B, T, d].</summary>
    public override Tensor forward(Tensor x, AttentionContext ctx)
    {
        var h = x + self_attn.forward(input_layernorm.forward(x), ctx);
        return h + mlp.forward(post_attention_layernorm.forward(h));
    }

    /// <summary>The block's weights when it is the plain block (attention and MLP unreplaced, every projection a plain linear layer), else null.</summary>
    internal SingleRowStep.Layer? PlainWeights() =>
        self_attn is Attention a && a.PlainWeights() is var (qkv, qkvBias, o, oBias)
        && mlp is Mlp m && m.PlainWeights() is var (gateUp, gateUpBias, down, downBias)
            ? new(input_layernorm.Weight, qkv, qkvBias, o, oBias, post_attention_layernorm.Weight, gateUp, gateUpBias, down, downBias)
            : null;

    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren { get; } = ["self_attn", "mlp"];
}

/// <summary>The transformer body (checkpoint prefix <c>model.</c>).</summary>
public sealed class DecoderModel : nn.Module
{
    private readonly TokenEmbedding embed_tokens;
    private readonly ModuleList<DecoderLayer> layers;
    private readonly RmsNorm norm;

    /// <summary>Creates the body for a config.</summary>
    public DecoderModel(DecoderConfig c, Device? device, ScalarType dtype) : base(nameof(DecoderModel))
    {
        embed_tokens = new TokenEmbedding(c.VocabSize, c.HiddenSize, device, dtype);
        layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new DecoderLayer(c, i, device, dtype)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>The token embedding.</summary>
    public TokenEmbedding EmbedTokens => embed_tokens;

    /// <summary>The blocks' weights and the final norm's gain when every block is plain (<see cref="DecoderLayer.PlainWeights"/>), else null.</summary>
    internal (SingleRowStep.Layer[] Layers, Tensor FinalNorm)? PlainWeights()
    {
        var plain = layers.Select(l => l.PlainWeights()).ToArray();
        return plain.All(l => l is not null) ? (plain.Select(l => l!).ToArray(), norm.Weight) : null;
    }

    /// <summary>
    /// h [B, T, d] through every block and the final norm. With <paramref name="checkpointEvery"/> k &gt; 0, blocks
    /// 0, k, 2k, ... keep only their input while training and recompute their activations in backward
    /// (<see cref="ActivationCheckpoint"/>); never with a KV cache.
    /// </summary>
    public Tensor Body(Tensor h, AttentionContext ctx, int checkpointEvery = 0)
    {
        bool checkpoint = checkpointEvery > 0 && training && ctx.Cache is null && is_grad_enabled();
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            h = checkpoint && i % checkpointEvery == 0 ? ActivationCheckpoint.Apply(x => layer.forward(x, ctx), h) : layer.forward(h, ctx);
        }
        return norm.forward(h);
    }
}

/// <summary>What <see cref="CausalLM.Forward"/> returns logits for.</summary>
public enum LogitsMode
{
    /// <summary>Every real (non-virtual) position: [B, T, V].</summary>
    All,
    /// <summary>Only the last position: [B, 1, V] (generation prefill and decode).</summary>
    Last,
}

/// <summary>Decoder-only causal LM: body plus LM head (tied to the embedding when the config says so).</summary>
public sealed class CausalLM : nn.Module, IModuleContainer, IPeftHost
{
    private readonly DecoderModel model;
    private nn.Module<Tensor, Tensor>? lm_head;
    private readonly Rotary rotary;

    /// <summary>Builds an uninitialised model (weights as TorchSharp's defaults; load or initialise them).</summary>
    public CausalLM(DecoderConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32) : base(nameof(CausalLM))
    {
        Config = config;
        model = new DecoderModel(config, device, dtype);
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, device, dtype);
        rotary = new Rotary(config.HeadDim, config.Rope, device);
        RegisterComponents();
    }

    /// <summary>The configuration this model was built from.</summary>
    public DecoderConfig Config { get; }

    /// <summary>
    /// Activation checkpointing while training: 0 = off, k = every k-th block recomputes its activations in backward
    /// (1 = every block). An execution setting, not part of the checkpoint.
    /// </summary>
    public int CheckpointEvery { get; set; }

    /// <summary>The prompt/prefix-tuning adapter in use, if any.</summary>
    public IInputAdapter? InputAdapter { get; private set; }

    /// <summary>Attaches an input-side adapter; it is registered as the child <c>prompt_encoder</c> so its parameters train and count.</summary>
    public void SetInputAdapter<T>(T adapter) where T : nn.Module, IInputAdapter
    {
        if (InputAdapter is not null) throw new InvalidOperationException("an input adapter (prompt or prefix tuning) is already attached");
        InputAdapter = adapter;
        register_module("prompt_encoder", adapter);
    }

    /// <summary>The token embedding module.</summary>
    public TokenEmbedding EmbedTokens => model.EmbedTokens;

    /// <inheritdoc/>
    public nn.Module Module => this;
    /// <inheritdoc/>
    public Tensor EmbeddingWeight => model.EmbedTokens.weight!;
    /// <inheritdoc/>
    public int HiddenSize => Config.HiddenSize;
    /// <inheritdoc/>
    public int NumLayers => Config.NumLayers;
    /// <inheritdoc/>
    public int NumHeads => Config.NumHeads;
    /// <inheritdoc/>
    public int NumKeyValueHeads => Config.NumKeyValueHeads;
    /// <inheritdoc/>
    public int HeadDim => Config.HeadDim;
    /// <inheritdoc/>
    public string TaskType => "CAUSAL_LM";
    /// <inheritdoc/>
    public ModelLayout Layout => ModelLayout.Llama;

    /// <summary>Checkpoint keys that may be absent because they alias another tensor.</summary>
    public IReadOnlySet<string> TiedKeys => Config.TieWordEmbeddings ? new HashSet<string> { "lm_head.weight" } : new HashSet<string>();

    /// <summary>
    /// Runs the model. <paramref name="inputIds"/> [B, T]; <paramref name="attentionMask"/> [B, past + T] over real
    /// tokens (1 = token, 0 = padding; null = all ones); <paramref name="positionIds"/> [B, T] (null = derived from
    /// the mask); <paramref name="segmentIds"/> [B, T] for packed sequences (tokens attend only within their segment).
    /// Returns logits [B, T, V] (or [B, 1, V] for <see cref="LogitsMode.Last"/>) in the compute dtype. A batch-1 decode
    /// step inside <see cref="StreamedGemv.SingleRowDecoding"/> runs fused (<see cref="SingleRowStep"/>) when nothing needs the modules.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        Tensor? segmentIds = null, KvCache? cache = null, LogitsMode mode = LogitsMode.All)
        => cache is not null && SingleRowStepFor(inputIds, attentionMask, positionIds, segmentIds, cache, out long token) is { } step
            ? step.Step(token, cache)
            : Head(Hidden(inputIds, attentionMask, positionIds, segmentIds, cache, mode));

    /// <summary>
    /// The fused decode step (<see cref="SingleRowStep"/>) when this call is one: inside
    /// <see cref="StreamedGemv.SingleRowDecoding"/>, one token of one sequence after the cached ones, nothing masked,
    /// no explicit positions, packing, input adapter or active sliding window, and every module plain.
    /// </summary>
    private SingleRowStep? SingleRowStepFor(Tensor inputIds, Tensor? attentionMask, Tensor? positionIds, Tensor? segmentIds, KvCache cache, out long token)
    {
        token = -1;
        if (!SingleRowStep.Enabled || !StreamedGemv.Decoding || is_grad_enabled() || positionIds is not null || segmentIds is not null
            || InputAdapter is not null || cache.PrefixLength != 0 || inputIds.numel() != 1 || inputIds.dim() != 2
            || inputIds.device_type != DeviceType.CPU || (Config.SlidingWindow is int w && cache.Length + 1 > w))
            return null;
        if (attentionMask is not null && !AllOnes(attentionMask, cache.Length + 1)) return null;
        token = inputIds.item<long>();
        if (token < 0 || token >= Config.VocabSize) return null;                   // the module path says what is wrong
        return SingleRowStep.For(Config, cache, () =>
            model.EmbedTokens.TokenRows is null && model.PlainWeights() is var (layers, norm)
            && (lm_head is null ? model.EmbedTokens.weight : lm_head is Linear { bias: null } head ? head.weight : null) is { } headWeight
                ? new SingleRowStep.Weights(model.EmbedTokens.weight, layers, norm, headWeight) : null);
    }

    // a [1, n] int64 mask of ones, read on the host (a decode step's mask; anything else takes the module path)
    private static unsafe bool AllOnes(Tensor mask, long n)
    {
        if (mask.dtype != ScalarType.Int64 || mask.device_type != DeviceType.CPU || mask.dim() != 2 || mask.shape[0] != 1
            || mask.shape[1] != n || !mask.is_contiguous()) return false;
        long* p = (long*)StreamedGemv.Data(mask);
        for (long i = 0; i < n; i++) if (p[i] != 1) return false;
        return true;
    }

    /// <summary>The LM head: h [B, T, d] -> logits [B, T, V].</summary>
    public Tensor Head(Tensor h) =>
        lm_head is not null ? Projection.Apply(lm_head, h)
        : model.EmbedTokens.TokenRows is null ? Projection.Apply(model.EmbedTokens, model.EmbedTokens.weight, null, h) // tied, the stored table
        : nn.functional.linear(h, model.EmbedTokens.EffectiveWeight);

    /// <summary>
    /// The head's weight [V, d] when the head is exactly <c>h @ W^T</c> (tied to the embedding, or a plain bias-free
    /// linear layer), so a loss may compute logits chunk by chunk from it; null when an adapter wraps the head.
    /// </summary>
    public Tensor? PlainHeadWeight => lm_head switch
    {
        null => model.EmbedTokens.EffectiveWeight,
        Linear { bias: null } linear => linear.weight,
        _ => null,
    };

    /// <summary>
    /// <see cref="Forward"/> without the LM head: the final hidden states [B, T, d] (or [B, 1, d] for
    /// <see cref="LogitsMode.Last"/>) of the real positions.
    /// </summary>
    public Tensor Hidden(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        Tensor? segmentIds = null, KvCache? cache = null, LogitsMode mode = LogitsMode.All)
    {
        long b = inputIds.shape[0], t = inputIds.shape[1];
        var device = inputIds.device;
        var h = TokenIds.Embed(model.EmbedTokens, inputIds, "input_ids");                               // [B, T, d]
        var dtype = h.dtype;
        var adapter = InputAdapter;
        if (adapter is not null && segmentIds is not null)
            throw new NotSupportedException("packed sequences cannot be combined with prompt or prefix tuning");

        long past = cache?.Length ?? 0;
        long virtualNow = 0;                                                          // virtual tokens prepended in this pass
        if (adapter is not null && past == 0)
        {
            (h, virtualNow) = VirtualTokens.Prepend(h, adapter.VirtualEmbeddings(b, dtype));   // [B, n + T, d]
            if (virtualNow == 0 && cache is not null)
            {
                // prefix tuning with a cache: the prefixes become the first cache entries
                for (int i = 0; i < Config.NumLayers; i++)
                    if (adapter.LayerPrefix(i, b, dtype) is var (pk, pv)) cache.Append(i, pk, pv);
                cache.Advance(adapter.NumVirtualTokens);
                cache.PrefixLength = adapter.NumVirtualTokens;
                past = cache.Length;
            }
        }
        long tq = t + virtualNow;
        long virtualTotal = adapter?.NumVirtualTokens ?? 0;                          // always visible, never padding
        // prefix tuning without a cache: each layer prepends its key/value prefix itself
        bool uncachedPrefix = cache is null && adapter is not null && virtualNow == 0;
        long keys = cache is not null ? past + tq : tq + (uncachedPrefix ? virtualTotal : 0);  // K

        // Full key mask over [virtual | real]: real-token mask from the caller, ones for virtual tokens.
        Tensor? keyMask = null;
        if (attentionMask is not null)
        {
            long realKeys = keys - virtualTotal;
            if (attentionMask.shape[1] != realKeys)
                throw new ArgumentException($"attention_mask covers {attentionMask.shape[1]} positions, expected {realKeys} (past + new real tokens)");
            keyMask = VirtualTokens.VisibleInFront(attentionMask, virtualTotal);
        }

        if (positionIds is null)
            positionIds = keyMask is null
                ? arange(keys - tq, keys, dtype: ScalarType.Int64, device: device).unsqueeze(0).expand(b, tq)   // [B, T(+n)]
                : (keyMask.to_type(ScalarType.Int64).cumsum(1) - 1).clamp_min(0).narrow(1, keys - tq, tq);
        else if (virtualNow > 0)
            throw new ArgumentException("explicit position_ids cannot be combined with prompt tuning");

        var (cos, sin) = rotary.CosSin(positionIds);
        var (mask, causal) = BuildMask(b, tq, keys, keyMask, segmentIds, dtype, device);
        var ctx = new AttentionContext { Mask = mask, IsCausal = causal, Cos = cos, SignedSin = sin, Cache = cache, Prefix = uncachedPrefix ? adapter : null };

        h = model.Body(h, ctx, CheckpointEvery);                                    // [B, n + T, d]
        cache?.Advance(tq);
        h = VirtualTokens.Drop(h, virtualNow);                                       // [B, T, d]
        return mode == LogitsMode.Last ? h.narrow(1, h.shape[1] - 1, 1) : h;
    }

    /// <summary>
    /// Additive mask [B, 1, T, K] — or no mask: plain causal attention when T = K, nothing at all for a single
    /// query at the end (decoding) — when there is no padding, packing or active window.
    /// Query i sits at key position K - T + i; it sees key j when j is not after it, the key is not padding,
    /// both are in the same packed segment, and j is inside the sliding window.
    /// </summary>
    private (Tensor? Mask, bool Causal) BuildMask(long b, long tq, long keys, Tensor? keyMask, Tensor? segmentIds, ScalarType dtype, Device device)
    {
        bool window = Config.SlidingWindow is int w && keys > w;
        bool anyPadding = keyMask is not null && keyMask.min().item<long>() == 0;
        if (!anyPadding && segmentIds is null && !window)
        {
            if (keys == tq) return (null, true);
            if (tq == 1) return (null, false);
        }

        var qPos = arange(keys - tq, keys, device: device).view(tq, 1);             // [T, 1]
        var kPos = arange(0, keys, device: device).view(1, keys);                    // [1, K]
        var allowed = kPos.le(qPos).unsqueeze(0).unsqueeze(0);                       // [1, 1, T, K]
        if (window) allowed = allowed.logical_and(qPos.sub(kPos).lt(Config.SlidingWindow!.Value).unsqueeze(0).unsqueeze(0));
        if (keyMask is not null) allowed = allowed.logical_and(keyMask.to_type(ScalarType.Bool).view(b, 1, 1, keys));
        if (segmentIds is not null) allowed = allowed.logical_and(segmentIds.unsqueeze(2).eq(segmentIds.unsqueeze(1)).unsqueeze(1));
        return (AttentionMasks.Additive(allowed.expand(b, 1, tq, keys), dtype), false);
    }

    /// <inheritdoc/>
    public IReadOnlyList<string> ReplaceableChildren => lm_head is null ? [] : ["lm_head"];

    /// <inheritdoc/>
    public nn.Module GetChild(string name) => name == "lm_head" && lm_head is not null ? lm_head
        : throw ModuleSlots.Unknown("CausalLM", name, ReplaceableChildren);

    /// <inheritdoc/>
    public void ReplaceChild(string name, nn.Module replacement)
    {
        if (name != "lm_head" || lm_head is null) throw ModuleSlots.Unknown("CausalLM", name, ReplaceableChildren);
        lm_head = ModuleSlots.As<nn.Module<Tensor, Tensor>>("CausalLM", name, replacement);
        _internal_submodules[name] = replacement;
    }
}
