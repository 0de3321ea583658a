using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>
/// A module whose named children can be swapped (by the PEFT injector). Fields named like the
/// Hugging Face keys are reassigned together with the registered submodule, so <c>forward</c>
/// and <c>named_modules()</c> always agree.
/// </summary>
public interface IModuleContainer
{
    /// <summary>Names of the children that may be replaced (each the name of the field holding it).</summary>
    IReadOnlyList<string> ReplaceableChildren { get; }
    /// <summary>The current child of that name (default: the field of that name).</summary>
    nn.Module GetChild(string name) => ModuleSlots.Get(this, name);
    /// <summary>
    /// Replaces a child; throws if the name is not replaceable or the module has the wrong kind (default: sets the field
    /// of that name and the registered submodule together).
    /// </summary>
    void ReplaceChild(string name, nn.Module replacement) => ModuleSlots.Replace(this, name, replacement);
}

/// <summary>Helpers shared by module containers.</summary>
public static class ModuleSlots
{
    private static readonly System.Reflection.FieldInfo Submodules =
        typeof(nn.Module).GetField("_internal_submodules", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
        ?? throw new InvalidOperationException("TorchSharp's Module has no _internal_submodules field: the slot helpers need updating for this TorchSharp version");

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(Type, string), System.Reflection.FieldInfo> Fields = new();

    private static string OwnerName(IModuleContainer c) => ((nn.Module)c).GetName();

    private static System.Reflection.FieldInfo Field(IModuleContainer c, string name)
    {
        if (!c.ReplaceableChildren.Contains(name)) throw Unknown(OwnerName(c), name, c.ReplaceableChildren);
        return Fields.GetOrAdd((c.GetType(), name), key =>
            key.Item1.GetField(key.Item2, System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)
            ?? throw new InvalidOperationException($"{key.Item1.Name} lists '{key.Item2}' as replaceable but has no field of that name"));
    }

    /// <summary>The child held by the field named <paramref name="name"/> (one of the container's replaceable children).</summary>
    public static nn.Module Get(IModuleContainer c, string name) =>
        Field(c, name).GetValue(c) as nn.Module ?? throw Unknown(OwnerName(c), name, c.ReplaceableChildren);

    /// <summary>
    /// Sets the field named <paramref name="name"/> and the registered submodule of that name to <paramref name="replacement"/>,
    /// which must fit the field's type (the forward pass calls it through that type).
    /// </summary>
    public static void Replace(IModuleContainer c, string name, nn.Module replacement)
    {
        var field = Field(c, name);
        if (!field.FieldType.IsInstanceOfType(replacement))
            throw new ArgumentException($"{OwnerName(c)}.{name} must be replaced by a {field.FieldType.Name}, got {replacement.GetType().Name}");
        field.SetValue(c, replacement);
        Register(c, name, replacement);
    }

    /// <summary>Replaces the registered submodule <paramref name="name"/> in place (keeps module order; register_module refuses existing names).</summary>
    public static void Register(IModuleContainer c, string name, nn.Module replacement) =>
        ((TorchSharp.Utils.OrderedDict<string, nn.Module>)Submodules.GetValue(c)!)[name] = replacement;

    /// <summary>Adds <paramref name="child"/> to <paramref name="owner"/> under <paramref name="name"/>, replacing a child of that name.</summary>
    public static void SetChild(nn.Module owner, string name, nn.Module child) =>
        ((TorchSharp.Utils.OrderedDict<string, nn.Module>)Submodules.GetValue(owner)!)[name] = child;

    /// <summary>Removes the child <paramref name="name"/> of <paramref name="owner"/>, if there is one.</summary>
    public static void RemoveChild(nn.Module owner, string name) =>
        ((TorchSharp.Utils.OrderedDict<string, nn.Module>)Submodules.GetValue(owner)!).Remove(name);

    /// <summary>Casts a replacement to the slot's type with an error naming the slot.</summary>
    public static T As<T>(string owner, string name, nn.Module replacement) where T : class
        => replacement as T ?? throw new ArgumentException(
            $"{owner}.{name} must be replaced by a {typeof(T).Name}, got {replacement.GetType().Name}");

    /// <summary>Error for a name that is not a replaceable child.</summary>
    public static ArgumentException Unknown(string owner, string name, IReadOnlyList<string> names)
        => new($"{owner} has no replaceable child '{name}'; it has: {string.Join(", ", names)}");
}

/// <summary>Attention masks shared by the model families.</summary>
public static class AttentionMasks
{
    /// <summary>Additive mask from an "allowed" tensor (bool or 0/1): 0 where allowed, a large negative where blocked.</summary>
    public static Tensor Additive(Tensor allowed, ScalarType dtype)
    {
        // A large negative rather than -inf keeps fully masked rows finite (they are ignored anyway), as transformers' finfo.min does.
        double blocked = dtype == ScalarType.BFloat16 ? -3.0e38 : float.MinValue;
        return zeros(1, dtype: dtype, device: allowed.device).masked_fill(allowed.to_type(ScalarType.Bool).logical_not(), blocked);
    }
}

/// <summary>Root-mean-square layer norm computed in float32 (as transformers does), weight applied in the input dtype.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;

    /// <summary>Creates a norm of width <paramref name="dim"/> with weights of one.</summary>
    public RmsNorm(long dim, double eps, Device? device = null, ScalarType dtype = ScalarType.Float32) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(dim, dtype: dtype, device: device));
        this.eps = eps;
        RegisterComponents();
    }

    /// <summary>The gain vector.</summary>
    public Parameter Weight => weight;

    /// <summary>x: [..., d] -> [..., d].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to_type(ScalarType.Float32);
        var normed = x32 * rsqrt(x32.pow(2).mean([-1], keepdim: true) + eps);
        return (weight * normed.to_type(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>Rotary position embeddings (half-split <c>rotate_half</c> layout of transformers).</summary>
public sealed class Rotary : nn.Module
{
    private readonly Tensor inv_freq; // [hd/2], float32, not persistent (not in checkpoints)

    /// <summary>Builds inverse frequencies for <paramref name="headDim"/> with the given scaling.</summary>
    public Rotary(int headDim, RopeConfig rope, Device? device = null) : base(nameof(Rotary))
    {
        inv_freq = tensor(InverseFrequencies(headDim, rope), dtype: ScalarType.Float32, device: device);
        register_buffer("inv_freq", inv_freq, persistent: false);
    }

    /// <summary>inv_freq_i = 1/theta^(2i/d), adjusted for linear or llama3 scaling.</summary>
    public static float[] InverseFrequencies(int headDim, RopeConfig rope)
    {
        int half = headDim / 2;
        var result = new float[half];
        for (int i = 0; i < half; i++)
        {
            double f = 1.0 / Math.Pow(rope.Theta, 2.0 * i / headDim);
            switch (rope.Kind)
            {
                case RopeScalingKind.Linear:
                    f /= rope.Factor;
                    break;
                case RopeScalingKind.Llama3:
                    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
                    double lowWavelen = rope.OriginalMaxPositions / rope.LowFreqFactor;
                    double highWavelen = rope.OriginalMaxPositions / rope.HighFreqFactor;
                    double wavelen = 2 * Math.PI / f;
                    if (wavelen > lowWavelen) f /= rope.Factor;
                    else if (wavelen >= highWavelen)
                    {
                        double smooth = (rope.OriginalMaxPositions / wavelen - rope.LowFreqFactor) / (rope.HighFreqFactor - rope.LowFreqFactor);
                        f = (1 - smooth) * f / rope.Factor + smooth * f;
                    }
                    break;
            }
            // transformers computes inv_freq in float32 from an int64 arange; doing it in double then rounding matches to 1 ulp.
            result[i] = (float)f;
        }
        return result;
    }

    /// <summary>
    /// positions [B, T] (int64) -> (cos, signedSin) each [B, 1, T, hd], float32; signedSin has its first half negated,
    /// which turns <c>rotate_half</c> into a plain roll in <see cref="Apply"/> (computed once per forward, not per layer).
    /// </summary>
    public (Tensor Cos, Tensor SignedSin) CosSin(Tensor positions)
    {
        using var scope = NewDisposeScope();
        var freqs = positions.to_type(ScalarType.Float32).unsqueeze(-1) * inv_freq; // [B, T, hd/2]
        var cos = cat([freqs, freqs], -1).cos_().unsqueeze(1);                      // [B, 1, T, hd]
        var sin = freqs.sin();
        return (cos.MoveToOuterDisposeScope(), cat([-sin, sin], -1).unsqueeze(1).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// x [B, H, T, hd] rotated, in float32: x·cos + rotate_half(x)·sin, where rotate_half(x) = [−x₂, x₁] equals
    /// roll(x, hd/2)·[−1, 1]; the sign lives in <paramref name="signedSin"/>, so this is 4 tensor ops instead of 9
    /// (decoding is bound by per-op overhead), with bit-identical results.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor signedSin)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to_type(ScalarType.Float32);
        var rotated = (x32 * cos + x32.roll(x.shape[^1] / 2, -1) * signedSin);
        return rotated.to_type(x.dtype).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Calls a projection. Single-token decoding is bound by streaming weights from memory, and libtorch's one-row
/// kernels do not stream at the memory's rate: MKL runs a float32 GEMV on one thread (perf: 31 % of `small` decode in
/// <c>mkl_blas_def_xsgemv</c> while the second thread spins) and its bf16 GEMV reads 21–31 GB/s. Two other paths
/// compute the same row: an elementwise product and row sum, which ATen spreads over all threads (float32 only; its
/// temporary can evict what the next op needs), and <see cref="StreamedGemv"/>. Which wins depends on the shape, the
/// dtype and the machine's caches, so each projection times every path it may take in place during its first
/// single-row calls and keeps the fastest (as cuDNN's benchmark mode does). Never under autograd; results differ from
/// the GEMV only by float32 summation order.
/// </summary>
public static class Projection
{
    private const int TrialsPerPath = 8;

    private enum Path { Module, RowSum, Streamed }

    private sealed class TunerPair
    {
        public Tuner? Plain, Decoding;   // outside and inside StreamedGemv.SingleRowDecoding (different threads, different winners)
    }

    private sealed class Tuner
    {
        public int Calls;
        public Path[] Paths = [];
        public double[] Seconds = [];
        public Path? Chosen;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, TunerPair> Tuners = new();

    /// <summary>Allows the timed choice of decoding paths (false: always the module; for A/B measurements and tests).</summary>
    public static bool TunedDecoding { get; set; } = true;

    /// <summary>y = m(x); a single row through a plain <see cref="Linear"/> may take a faster decoding path.</summary>
    public static Tensor Apply(nn.Module<Tensor, Tensor> m, Tensor x) =>
        m is Linear lin ? Apply(lin, lin.weight!, lin.bias, x, lin) : m.forward(x);

    /// <summary>
    /// Several projections of one input (q/k/v; gate/up) → their outputs in order. Inside a decode step
    /// (<see cref="StreamedGemv.SingleRowDecoding"/>) plain <see cref="Linear"/> layers of one dtype and width are
    /// streamed in one pass: one dispatch to the threads and one float32 copy of the row for all of them. There
    /// libtorch runs on one thread, so the streamed kernel beats its GEMV on every shape but the largest heads (timed
    /// above), and a decode step of a small model is bound by its count of tensor ops. Otherwise each goes through
    /// <see cref="Apply(nn.Module{Tensor, Tensor}, Tensor)"/>.
    /// </summary>
    public static Tensor[] Apply(IReadOnlyList<nn.Module<Tensor, Tensor>> modules, Tensor x)
    {
        if (TunedDecoding && StreamedGemv.Decoding && !is_grad_enabled() && modules.All(m => m is Linear)
            && modules.Select(m => ((Linear)m).weight!).ToArray() is var ws
            && ws.All(w => StreamedGemv.Accepts(w, x) && w.dtype == ws[0].dtype))
            return StreamedGemv.Apply(ws, modules.Select(m => ((Linear)m).bias).ToArray(), x);
        var ys = new Tensor[modules.Count];
        for (int i = 0; i < ys.Length; i++) ys[i] = Apply(modules[i], x);
        return ys;
    }

    /// <summary>
    /// y = x·Wᵀ (+ bias) for a weight that is not a module's (a head tied to the token table); <paramref name="key"/>
    /// identifies the projection across calls (its tuner), so pass the owner of a stored weight, never a fresh tensor.
    /// </summary>
    public static Tensor Apply(object key, Tensor weight, Tensor? bias, Tensor x) => Apply(key, weight, bias, x, module: null);

    /// <summary>The tuned call; <paramref name="module"/> is the linear owning the weight, or null for a bare weight (libtorch's linear).</summary>
    private static Tensor Apply(object key, Tensor w, Tensor? bias, Tensor x, Linear? module)
    {
        if (!TunedDecoding || is_grad_enabled() || x.numel() != x.shape[^1]) return Plain(module, w, bias, x);
        var both = Tuners.GetOrCreateValue(key);
        var tuner = StreamedGemv.Decoding ? both.Decoding ??= NewTuner(w, x) : both.Plain ??= NewTuner(w, x);
        if (tuner.Paths.Length == 1) return Plain(module, w, bias, x);
        if (tuner.Chosen is Path chosen) return Run(chosen, w, bias, x, module);

        int i = tuner.Calls++ % tuner.Paths.Length;                                   // round robin while timing
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var y = Run(tuner.Paths[i], w, bias, x, module);
        tuner.Seconds[i] += sw.Elapsed.TotalSeconds;
        if (tuner.Calls == TrialsPerPath * tuner.Paths.Length)
            tuner.Chosen = tuner.Paths[Array.IndexOf(tuner.Seconds, tuner.Seconds.Min())];
        return y;
    }

    private static Tuner NewTuner(Tensor w, Tensor x)
    {
        var paths = new List<Path> { Path.Module };
        if (w.dtype == ScalarType.Float32 && x.dtype == ScalarType.Float32) paths.Add(Path.RowSum);
        if (StreamedGemv.Accepts(w, x)) paths.Add(Path.Streamed);
        return new Tuner { Paths = [.. paths], Seconds = new double[paths.Count] };
    }

    private static Tensor Run(Path path, Tensor w, Tensor? bias, Tensor x, Linear? module) => path switch
    {
        Path.RowSum => RowSum(w, bias, x),
        Path.Streamed => StreamedGemv.Apply(w, bias, x),
        _ => Plain(module, w, bias, x),
    };

    private static Tensor Plain(Linear? module, Tensor w, Tensor? bias, Tensor x) => module?.forward(x) ?? nn.functional.linear(x, w, bias);

    private static Tensor RowSum(Tensor w, Tensor? bias, Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = (w * x.reshape(1, -1)).sum(-1);                                          // [out]
        if (bias is { } b) y = y + b;
        long[] shape = [.. x.shape[..^1], w.shape[0]];
        return y.view(shape).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Rows that stand in for rows of a token table (PEFT's trainable tokens): <see cref="Indices"/> [n] (int64) and
/// <see cref="Values"/> [n, d] in the table's dtype.
/// </summary>
public interface ITokenRows
{
    /// <summary>Token ids whose rows are replaced, [n].</summary>
    Tensor Indices { get; }
    /// <summary>Their rows, [n, d].</summary>
    Tensor Values { get; }
}

/// <summary>
/// A token embedding table [V, d] (checkpoint key <c>&lt;name&gt;.weight</c>, initialised N(0, 1) as nn.Embedding).
/// A fine-tuning method may attach a child <c>token_adapter</c> (<see cref="ITokenRows"/>) whose rows replace the
/// table's: every lookup — and a head tied to this table — then sees <see cref="EffectiveWeight"/>.
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    /// <summary>The child name of an attached row override (PEFT's <c>token_adapter</c>).</summary>
    public const string AdapterName = "token_adapter";

    private readonly Parameter table;
    private ITokenRows? rows;

    /// <summary>A [<paramref name="vocab"/>, <paramref name="dim"/>] table.</summary>
    public TokenEmbedding(long vocab, long dim, Device? device, ScalarType dtype) : base(nameof(TokenEmbedding))
    {
        table = new Parameter(empty([vocab, dim], dtype: dtype, device: device));
        using (no_grad()) table.normal_();                 // as nn.Embedding: same draws from the global generator
        register_parameter("weight", table);
        RegisterComponents();
    }

    /// <summary>The stored table [V, d] (the checkpoint's weight).</summary>
    public Parameter weight => table;

    /// <summary>The table as lookups see it: the stored table with the attached rows in place, [V, d].</summary>
    public Tensor EffectiveWeight => rows is null ? table : table.index_copy(0, rows.Indices, rows.Values);

    /// <summary>The attached row override, if any.</summary>
    public ITokenRows? TokenRows => rows;

    /// <summary>Attaches <paramref name="adapter"/> as the child <c>token_adapter</c> (replacing any before).</summary>
    public void SetTokenRows<T>(T adapter) where T : nn.Module, ITokenRows
    {
        ModuleSlots.SetChild(this, AdapterName, adapter);
        rows = adapter;
    }

    /// <summary>Writes the attached rows into the stored table and detaches them (merging).</summary>
    public void MergeTokenRows()
    {
        if (rows is null) return;
        using (no_grad()) table.index_copy_(0, rows.Indices, rows.Values.to_type(table.dtype));
        ModuleSlots.RemoveChild(this, AdapterName);
        rows = null;
    }

    /// <summary>ids [...] (int64) → [..., d].</summary>
    public override Tensor forward(Tensor ids)
    {
        var flat = EffectiveWeight.index_select(0, ids.reshape(-1));                        // [N, d]
        return flat.view([.. ids.shape, flat.shape[1]]);
    }
}
