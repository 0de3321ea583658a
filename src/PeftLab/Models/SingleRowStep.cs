using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>
/// One batch-1 decode step of a Llama-family decoder (one new token, KV cache) computed on the tensors' memory in
/// place of some 60–70 eager tensor ops per layer. Written here because at small widths those ops, not the weights,
/// decide the step: `small` bf16 streamed its 28 MB of weights in ≈ 0.7 ms while a step of eager ops took 3.4 ms
/// (P/Invoke, dispatch, allocation and a tensor handle per op; docs/performance.md, "Streamed decoding"), and
/// libtorch 2.10 on the CPU has no fused norm or SwiGLU kernel to call instead.
/// <para>
/// Numerics follow the module path: weights are read in their dtype with float32 accumulation
/// (<see cref="StreamedGemv"/>), norms, rotary, softmax and SiLU are float32, and in a bf16 model every value the module
/// path stores as a bf16 tensor (norm outputs, projections, rotated q/k, the cache, the attention output, residual
/// sums, SiLU and its product, the logits) is rounded to bf16 (round to nearest even) at the same place, so the two
/// paths differ only by summation order.
/// </para>
/// Taken by <see cref="CausalLM.Forward"/> inside <see cref="StreamedGemv.SingleRowDecoding"/> when every projection is
/// a plain linear layer and nothing else changes the step (no adapter module, input adapter, replaced token rows,
/// padding or active sliding window); otherwise the module path runs. <see cref="Enabled"/> switches it off.
/// </summary>
public sealed unsafe class SingleRowStep
{
    /// <summary>Allows the fused step (false: the module path always; for A/B measurements and tests).</summary>
    public static bool Enabled { get; set; } = true;

    /// <summary>Fused steps this thread has run (for tests that check which path a call took).</summary>
    [ThreadStatic] internal static long Taken;

    /// <summary>One block's weights: projections [out, in] as stored, norms and biases [n].</summary>
    internal sealed record Layer(Tensor InputNorm, Tensor[] Qkv, Tensor?[] QkvBias, Tensor O, Tensor? OBias,
        Tensor PostNorm, Tensor[] GateUp, Tensor?[] GateUpBias, Tensor Down, Tensor? DownBias);

    /// <summary>A whole decoder's weights: the token table [V, d], the blocks, the final norm and the head [V, d].</summary>
    internal sealed record Weights(Tensor Embedding, IReadOnlyList<Layer> Layers, Tensor FinalNorm, Tensor Head);

    private sealed class LayerPlan
    {
        public required nint[] Qkv, O, GateUp, Down;
        public required float[] InputNorm, PostNorm;
        public required float[]? QkvBias, OBias, GateUpBias, DownBias;
        public required nint Keys, Values;                 // cache storage [1, Hkv, capacity, hd]
    }

    private readonly DecoderConfig c;
    private readonly bool bf16;
    private readonly nint embedding;
    private readonly nint[] head;
    private readonly LayerPlan[] layers;
    private readonly float[] finalNorm, invFreq;
    private readonly long capacity;
    private readonly long[] qkvRows, oRows, gateUpRows, downRows, headRows;
    // working rows, pinned (their addresses are taken once)
    private readonly float[] x, xn, qkv, att, tmp, gu, act, logits, scores, cos, sin;

    private SingleRowStep(DecoderConfig config, Weights w, KvCache cache)
    {
        c = config;
        bf16 = w.Embedding.dtype == ScalarType.BFloat16;
        embedding = StreamedGemv.Data(w.Embedding);
        head = [StreamedGemv.Data(w.Head)];
        capacity = cache.Capacity;
        int d = c.HiddenSize, hd = c.HeadDim, h = c.NumHeads, kv = c.NumKeyValueHeads, ff = c.IntermediateSize;
        layers = w.Layers.Select((l, i) =>
        {
            var (k, v) = cache.Storage(i);
            return new LayerPlan
            {
                Qkv = l.Qkv.Select(StreamedGemv.Data).ToArray(), O = [StreamedGemv.Data(l.O)],
                GateUp = l.GateUp.Select(StreamedGemv.Data).ToArray(), Down = [StreamedGemv.Data(l.Down)],
                InputNorm = Floats(l.InputNorm)!, PostNorm = Floats(l.PostNorm)!,
                QkvBias = Concat(l.QkvBias), OBias = Floats(l.OBias), GateUpBias = Concat(l.GateUpBias), DownBias = Floats(l.DownBias),
                Keys = StreamedGemv.Data(k), Values = StreamedGemv.Data(v),
            };
        }).ToArray();
        finalNorm = Floats(w.FinalNorm)!;
        invFreq = Rotary.InverseFrequencies(hd, c.Rope);
        qkvRows = [0, h * hd, (h + kv) * hd, (h + 2 * kv) * hd];
        oRows = [0, d];
        gateUpRows = [0, ff, 2 * ff];
        downRows = [0, d];
        headRows = [0, c.VocabSize];
        x = Pinned(d); xn = Pinned(d); tmp = Pinned(d);
        qkv = Pinned((h + 2 * kv) * hd); att = Pinned(h * hd);
        gu = Pinned(2 * ff); act = Pinned(ff);
        logits = Pinned(c.VocabSize);
        scores = Pinned(h * capacity);
        cos = Pinned(hd / 2); sin = Pinned(hd / 2);
    }

    private static float[] Pinned(long n) => GC.AllocateArray<float>((int)n, pinned: true);

    private static float* P(float[] a) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(a));

    private static float[]? Floats(Tensor? t) => t?.to_type(ScalarType.Float32).data<float>().ToArray();

    private static float[]? Concat(Tensor?[] ts) => ts.All(t => t is null) ? null
        : ts.Any(t => t is null) ? throw new ArgumentException("internal error: a fused projection with a bias on some parts only")
        : ts.SelectMany(t => Floats(t)!).ToArray();

    private static readonly ConditionalWeakTable<KvCache, StrongBox<SingleRowStep?>> Plans = new();

    /// <summary>
    /// The step for <paramref name="cache"/>, or null when the model's weights (<paramref name="weights"/>: null when
    /// some module is not plain) do not fit it. Decided and made on the cache's first call: a cache serves one
    /// generation, and the model does not change during it.
    /// </summary>
    internal static SingleRowStep? For(DecoderConfig config, KvCache cache, Func<Weights?> weights)
    {
        if (Plans.TryGetValue(cache, out var known)) return known.Value;
        SingleRowStep? plan;
        using (NewDisposeScope())                                      // the float32 copies of norms and biases
        {
            var w = weights();
            plan = w is not null && Fits(config, w, cache) ? new SingleRowStep(config, w, cache) : null;
        }
        Plans.AddOrUpdate(cache, new StrongBox<SingleRowStep?>(plan));
        return plan;
    }

    /// <summary>
    /// Whether <paramref name="w"/> can take the fused step with <paramref name="cache"/>: CPU, one dtype (float32 or
    /// bf16) for every matrix, norm and the cache, contiguous matrices of the config's shapes.
    /// </summary>
    internal static bool Fits(DecoderConfig c, Weights w, KvCache cache)
    {
        var dtype = w.Embedding.dtype;
        if (dtype != ScalarType.Float32 && dtype != ScalarType.BFloat16) return false;
        long d = c.HiddenSize, hd = c.HeadDim, ff = c.IntermediateSize;
        bool Mat(Tensor t, long rows, long cols) => t.dtype == dtype && t.device_type == DeviceType.CPU && t.is_contiguous()
            && t.dim() == 2 && t.shape[0] == rows && t.shape[1] == cols;
        bool Vec(Tensor? t, long n) => t is null || (t.device_type == DeviceType.CPU && t.dim() == 1 && t.shape[0] == n);
        if (!Mat(w.Embedding, c.VocabSize, d) || !Mat(w.Head, c.VocabSize, d) || !Vec(w.FinalNorm, d)) return false;
        for (int i = 0; i < w.Layers.Count; i++)
        {
            var l = w.Layers[i];
            var (k, v) = cache.Storage(i);
            if (k.dtype != dtype || v.dtype != dtype || !k.is_contiguous() || !v.is_contiguous() || k.shape[0] != 1) return false;
            if (!Mat(l.Qkv[0], c.NumHeads * hd, d) || !Mat(l.Qkv[1], c.NumKeyValueHeads * hd, d) || !Mat(l.Qkv[2], c.NumKeyValueHeads * hd, d)
                || !Mat(l.O, d, c.NumHeads * hd) || !Mat(l.GateUp[0], ff, d) || !Mat(l.GateUp[1], ff, d) || !Mat(l.Down, d, ff))
                return false;
            if (!Vec(l.InputNorm, d) || !Vec(l.PostNorm, d) || !Vec(l.OBias, d) || !Vec(l.DownBias, d)
                || !Vec(l.QkvBias[0], c.NumHeads * hd) || !Vec(l.QkvBias[1], c.NumKeyValueHeads * hd) || !Vec(l.QkvBias[2], c.NumKeyValueHeads * hd)
                || !Vec(l.GateUpBias[0], ff) || !Vec(l.GateUpBias[1], ff)
                || l.QkvBias.Count(b => b is null) is 1 or 2 || l.GateUpBias.Count(b => b is null) == 1)
                return false;
        }
        return true;
    }

    /// <summary>
    /// Runs <paramref name="token"/> through the model at the cache's end, writes its keys and values there and
    /// advances the cache; returns the logits [1, 1, V] in the model's dtype.
    /// </summary>
    internal Tensor Step(long token, KvCache cache)
    {
        long pos = cache.Length;
        Taken++;
        if (pos + 1 > capacity) throw new InvalidOperationException($"KV cache capacity {capacity} exceeded (have {pos}, adding 1)");
        int d = c.HiddenSize, hd = c.HeadDim, half = hd / 2, h = c.NumHeads, kvh = c.NumKeyValueHeads, ff = c.IntermediateSize;
        float eps = (float)c.RmsNormEps;
        float* xp = P(x), xnp = P(xn), qkvp = P(qkv), attp = P(att), tmpp = P(tmp), gup = P(gu), actp = P(act);

        // the token's row of the table
        if (bf16) { ushort* e = (ushort*)embedding + token * d; for (int i = 0; i < d; i++) xp[i] = StreamedGemv.Widen(e[i]); }
        else new ReadOnlySpan<float>((float*)embedding + token * d, d).CopyTo(x);

        // rotary angles of this position, as Rotary.CosSin computes them (float32 position × inverse frequency)
        for (int i = 0; i < half; i++)
        {
            float f = (float)pos * invFreq[i];
            cos[i] = MathF.Cos(f);
            sin[i] = MathF.Sin(f);
        }

        foreach (var l in layers)
        {
            // attention: norm, q/k/v in one pass, rotary, cache write, attend, o_proj, residual
            Norm(xp, l.InputNorm, xnp, d, eps);
            StreamedGemv.Rows(l.Qkv, qkvRows, bf16, xnp, qkvp, d);
            Finish(qkvp, l.QkvBias, (int)qkvRows[3]);
            float* q = qkvp, k = qkvp + h * hd, v = qkvp + (h + kvh) * hd;
            for (int i = 0; i < h; i++) Rotate(q + i * hd, half);
            for (int i = 0; i < kvh; i++) Rotate(k + i * hd, half);
            for (int g = 0; g < kvh; g++)
            {
                long at = (g * capacity + pos) * hd;
                Store(l.Keys, at, k + g * hd, hd);
                Store(l.Values, at, v + g * hd, hd);
            }
            Attend(l, q, attp, pos + 1);
            StreamedGemv.Rows(l.O, oRows, bf16, attp, tmpp, h * hd);
            Finish(tmpp, l.OBias, d);
            Add(xp, tmpp, d);

            // MLP: norm, gate/up in one pass, silu(gate)·up, down, residual
            Norm(xp, l.PostNorm, xnp, d, eps);
            StreamedGemv.Rows(l.GateUp, gateUpRows, bf16, xnp, gup, d);
            Finish(gup, l.GateUpBias, 2 * ff);
            for (int i = 0; i < ff; i++)
            {
                float g = gup[i];
                actp[i] = Round(Round(g / (1f + MathF.Exp(-g))) * gup[ff + i]);
            }
            StreamedGemv.Rows(l.Down, downRows, bf16, actp, tmpp, ff);
            Finish(tmpp, l.DownBias, d);
            Add(xp, tmpp, d);
        }
        cache.Advance(1);

        Norm(xp, finalNorm, xnp, d, eps);
        var result = empty([1, 1, c.VocabSize], dtype: bf16 ? ScalarType.BFloat16 : ScalarType.Float32);
        if (bf16)
        {
            float* lp = P(logits);
            StreamedGemv.Rows(head, headRows, true, xnp, lp, d);
            ushort* r = (ushort*)StreamedGemv.Data(result);
            for (int i = 0; i < c.VocabSize; i++) r[i] = (ushort)(RoundBits(lp[i]) >> 16);
        }
        else StreamedGemv.Rows(head, headRows, false, xnp, (float*)StreamedGemv.Data(result), d);
        return result;
    }

    // softmax(q·Kᵀ/√hd)·V per query head over the `keys` cached positions; each K/V head serves heads/kvHeads query heads
    private void Attend(LayerPlan l, float* q, float* o, long keys)
    {
        int hd = c.HeadDim, h = c.NumHeads, group = h / c.NumKeyValueHeads;
        float scale = 1f / MathF.Sqrt(hd);
        float* sp = P(scores);
        void Heads(int h0, int h1)
        {
            for (int i = h0; i < h1; i++)
            {
                long kvBase = i / group * capacity * hd;
                float* qi = q + i * hd, s = sp + i * capacity, oi = o + i * hd;
                float max = float.NegativeInfinity;
                // the head's cached keys are a [keys, hd] matrix: its scores are one GEMV
                if (bf16) StreamedGemv.RowsBf16((ushort*)l.Keys + kvBase, qi, s, hd, 0, keys);
                else StreamedGemv.RowsF32((float*)l.Keys + kvBase, qi, s, hd, 0, keys);
                for (long j = 0; j < keys; j++)
                {
                    s[j] *= scale;
                    if (s[j] > max) max = s[j];
                }
                float sum = 0;
                for (long j = 0; j < keys; j++) sum += s[j] = MathF.Exp(s[j] - max);
                new Span<float>(oi, hd).Clear();
                for (long j = 0; j < keys; j++)
                {
                    float p = s[j];
                    if (bf16) { ushort* vj = (ushort*)l.Values + kvBase + j * hd; for (int e = 0; e < hd; e++) oi[e] += p * StreamedGemv.Widen(vj[e]); }
                    else Axpy(p, (float*)l.Values + kvBase + j * hd, oi, hd);
                }
                float inv = 1f / sum;
                for (int e = 0; e < hd; e++) oi[e] = Round(oi[e] * inv);
            }
        }
        int parts = keys * h * hd < 1 << 15 ? 1 : Math.Min(StreamedGemv.Threads, h);
        if (parts == 1) Heads(0, h);
        else
        {
            int per = (h + parts - 1) / parts;
            StreamedGemv.Parallel(parts, p => Heads(p * per, Math.Min(h, (p + 1) * per)));
        }
    }

    // RmsNorm as the module: float32 statistics, the normalised row stored in the model dtype, then times the gain
    private void Norm(float* xp, float[] w, float* y, int d, float eps)
    {
        float ss = 0;
        for (int i = 0; i < d; i++) ss += xp[i] * xp[i];
        float inv = 1f / MathF.Sqrt(ss / d + eps);
        for (int i = 0; i < d; i++) y[i] = Round(w[i] * Round(xp[i] * inv));
    }

    // x·cos + rotate_half(x)·sin on one head, as Rotary.Apply
    private void Rotate(float* v, int half)
    {
        for (int i = 0; i < half; i++)
        {
            float a = v[i], b = v[i + half];
            v[i] = Round(a * cos[i] + b * -sin[i]);
            v[i + half] = Round(b * cos[i] + a * sin[i]);
        }
    }

    private void Finish(float* y, float[]? bias, int n)
    {
        if (bias is not null) for (int i = 0; i < n; i++) y[i] += bias[i];
        if (bf16) for (int i = 0; i < n; i++) y[i] = Round(y[i]);
    }

    private void Add(float* x, float* y, int n)
    {
        for (int i = 0; i < n; i++) x[i] = Round(x[i] + y[i]);
    }

    // the values are rounded to bf16 already (Finish, Rotate), so keeping their top half is exact
    private void Store(nint storage, long at, float* src, int n)
    {
        if (bf16) { ushort* dst = (ushort*)storage + at; for (int i = 0; i < n; i++) dst[i] = (ushort)(BitConverter.SingleToUInt32Bits(src[i]) >> 16); }
        else new ReadOnlySpan<float>(src, n).CopyTo(new Span<float>((float*)storage + at, n));
    }

    private float Round(float f) => bf16 ? BitConverter.UInt32BitsToSingle(RoundBits(f)) : f;

    // float32 → the nearest bf16 (ties to even) as float32 bits, as libtorch's conversion (NaN stays NaN)
    private static uint RoundBits(float f)
    {
        uint b = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return 0x7FC00000u;
        return (b + 0x7FFFu + ((b >> 16) & 1)) & 0xFFFF0000u;
    }

    private static void Axpy(float p, float* x, float* y, int n)
    {
        int w = Vector<float>.Count, i = 0;
        var pv = new Vector<float>(p);
        for (; i + w <= n; i += w) Vector.FusedMultiplyAdd(pv, Vector.Load(x + i), Vector.Load(y + i)).Store(y + i);
        for (; i < n; i++) y[i] += p * x[i];
    }
}
