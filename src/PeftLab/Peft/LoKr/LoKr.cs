using System.Text.Json.Nodes;
using PeftLab.Configuration;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.LoKr;

/// <summary>
/// LoKr (Yeh et al. 2023, LyCORIS): ΔW = (W₁ ⊗ W₂) · α/r, a Kronecker product of a small [out_l, in_m] factor and a
/// [out_k, in_n] factor (out = out_l·out_k, in = in_m·in_n), the second (and with <see cref="DecomposeBoth"/> the
/// first) itself low-rank when r is small against its size.
/// </summary>
public sealed record LoKrConfig : LycorisConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.LoKr;
    /// <summary>Also factor the first Kronecker factor as w1_a·w1_b when r is below half its larger side (PEFT's decompose_both).</summary>
    public bool DecomposeBoth { get; init; }
    /// <summary>
    /// Size of the first factor of each dimension when it divides it (out_l = in_m = factor); −1 splits every dimension
    /// into the two divisors closest to its square root (PEFT's decompose_factor).
    /// </summary>
    [ConfigRange(-1, int.MaxValue)]
    public int DecomposeFactor { get; init; } = -1;
    /// <summary>Rescale the rows rank dropout keeps by 1 / their mean (PEFT's rank_dropout_scale; LoHa always does).</summary>
    public bool RankDropoutScale { get; init; }
}

/// <summary>
/// A linear layer with a LoKr update: y = W x + b + ΔW x, ΔW = kron(w1, w2) · α/r rebuilt on every forward, where
/// w1 = lokr_w1 or lokr_w1_a·lokr_w1_b and w2 = lokr_w2 or lokr_w2_a·lokr_w2_b.
/// </summary>
public sealed class LoKrLinear : nn.Module<Tensor, Tensor>, IWrappedLinear
{
    private readonly Linear base_layer;
    private readonly Parameter? lokr_w1;     // [out_l, in_m], zeros at start so ΔW = 0
    private readonly Parameter? lokr_w1_a;   // [out_l, r], zeros at start
    private readonly Parameter? lokr_w1_b;   // [r, in_m]
    private readonly Parameter? lokr_w2;     // [out_k, in_n]
    private readonly Parameter? lokr_w2_a;   // [out_k, r]
    private readonly Parameter? lokr_w2_b;   // [r, in_n]
    private readonly double scaling, rankDropout, moduleDropout;
    private readonly bool rescaleRankDropout;

    /// <summary>Wraps <paramref name="baseLayer"/>; shapes and initialisation as PEFT's LoKr with init_weights=true.</summary>
    public LoKrLinear(Linear baseLayer, int r, double alpha, LoKrConfig config, Generator generator) : base(nameof(LoKrLinear))
    {
        base_layer = baseLayer;
        var w = baseLayer.weight!;
        long outF = w.shape[0], inF = w.shape[1];
        var (inM, inN) = LoKrMethod.Factorization(inF, config.DecomposeFactor);
        var (outL, outK) = LoKrMethod.Factorization(outF, config.DecomposeFactor);
        Parameter New(long rows, long cols) => LinearWrappers.NewFactor(w, rows, cols);
        // creation and initialisation order as PEFT's: the first factor, then the second
        if (!(config.DecomposeBoth && r < Math.Max(outL, inM) / 2.0))
        {
            lokr_w1 = New(outL, inM);
            using (no_grad()) lokr_w1.zero_();
        }
        else
        {
            lokr_w1_a = New(outL, r);
            lokr_w1_b = New(r, inM);
            using (no_grad()) lokr_w1_a.zero_();
            LinearWrappers.KaimingUniform(lokr_w1_b, generator);
        }
        if (!(r < Math.Max(outK, inN) / 2.0))
        {
            lokr_w2 = New(outK, inN);
            LinearWrappers.KaimingUniform(lokr_w2, generator);
        }
        else
        {
            lokr_w2_a = New(outK, r);
            lokr_w2_b = New(r, inN);
            LinearWrappers.KaimingUniform(lokr_w2_a, generator);
            LinearWrappers.KaimingUniform(lokr_w2_b, generator);
        }
        scaling = alpha / r;
        rankDropout = config.RankDropout;
        moduleDropout = config.ModuleDropout;
        rescaleRankDropout = config.RankDropoutScale;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public Linear BaseLayer => base_layer;

    /// <summary>ΔW = kron(w1, w2) · α/r, [out, in]; block (i, j) is w1[i, j] · w2.</summary>
    public Tensor DeltaWeight()
    {
        var w1 = lokr_w1 ?? lokr_w1_a!.mm(lokr_w1_b!);   // [out_l, in_m]
        var w2 = lokr_w2 ?? lokr_w2_a!.mm(lokr_w2_b!);   // [out_k, in_n]
        return kron(w1, w2).mul(scaling);
    }

    /// <summary>x [..., in] → [..., out].</summary>
    public override Tensor forward(Tensor x) => Lycoris.Forward(base_layer, x, DeltaWeight, training, rankDropout, moduleDropout, rescaleRankDropout);

    /// <inheritdoc/>
    public Tensor MergedWeight() => LinearWrappers.MergedWeight(base_layer, DeltaWeight());
}

/// <summary>LoKr in the Python PEFT library's LOKR format (keys <c>&lt;layer&gt;.lokr_w1</c>, <c>.lokr_w2_a</c>, …).</summary>
public sealed class LoKrMethod : LycorisMethod<LoKrConfig>
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.LoKr;
    /// <inheritdoc/>
    public override string Name => "lokr";
    /// <inheritdoc/>
    public override string? PeftType => "LOKR";
    /// <inheritdoc/>
    public override CapacityKnob? Capacity { get; } = new("lokr_r", "r", "LoKr rank");

    /// <inheritdoc/>
    public override IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 4, 8, 16, 32 }.Select(r => ($"r={r} q,v", (PeftConfig)new LoKrConfig { R = r, Alpha = r })).ToArray();

    /// <summary>
    /// PEFT's (and LyCORIS') split of <paramref name="dimension"/> into m·n: (factor, dimension/factor) as given when
    /// factor divides it; otherwise the divisor pair closest to √dimension with m ≤ factor, smaller first
    /// (4096 → (64, 64), 11008 → (86, 128), 127 → (1, 127)).
    /// </summary>
    public static (long M, long N) Factorization(long dimension, int factor = -1)
    {
        if (factor > 0 && dimension % factor == 0) return (factor, dimension / factor);
        long limit = factor == -1 ? dimension : factor;
        long m = 1, n = dimension;
        while (m < n)
        {
            long next = m + 1;
            while (dimension % next != 0) next++;
            if (next > limit) break;
            (m, n) = (next, dimension / next);
        }
        return m > n ? (n, m) : (m, n);
    }

    /// <inheritdoc/>
    protected override void Validate(LoKrConfig config)
    {
        if (config.DecomposeFactor is 0 or < -1)
            throw new PeftConfigException($"lokr decompose_factor must be -1 (closest to √dim) or > 0 (got {config.DecomposeFactor})");
    }

    /// <inheritdoc/>
    protected override LoKrConfig ReadOwn(AdapterJson j, LoKrConfig shared) => shared with
    {
        DecomposeBoth = j.Bool("decompose_both", false),
        DecomposeFactor = j.Int("decompose_factor", -1),
        RankDropoutScale = j.Bool("rank_dropout_scale", false),
    };

    /// <inheritdoc/>
    protected override void WriteOwn(LoKrConfig config, JsonObject json)
    {
        json["decompose_both"] = config.DecomposeBoth;
        json["decompose_factor"] = config.DecomposeFactor;
        json["rank_dropout_scale"] = config.RankDropoutScale;
    }

    /// <inheritdoc/>
    protected override nn.Module Wrap(Linear baseLayer, LoKrConfig config, int r, double alpha, Generator generator) =>
        new LoKrLinear(baseLayer, r, alpha, config, generator);
}
