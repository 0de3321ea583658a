using System.Text.Json.Nodes;
using PeftLab.Configuration;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.LoHa;

/// <summary>
/// LoHa (Hyeon-Woo et al. 2022, FedPara; LyCORIS): ΔW = (A₁B₁) ⊙ (A₂B₂) · α/r, a Hadamard product of two rank-r
/// products, so a rank-r budget (2r(out+in) parameters) reaches rank up to r².
/// </summary>
public sealed record LoHaConfig : LycorisConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.LoHa;
}

/// <summary>
/// A linear layer with a LoHa update: y = W x + b + ΔW x, ΔW [out, in] rebuilt from the four factors on every forward
/// (as PEFT does), with rank and module dropout while training.
/// </summary>
public sealed class LoHaLinear : nn.Module<Tensor, Tensor>, IWrappedLinear
{
    private readonly Linear base_layer;
    private readonly Parameter hada_w1_a;   // [out, r]
    private readonly Parameter hada_w1_b;   // [r, in]
    private readonly Parameter hada_w2_a;   // [out, r]
    private readonly Parameter hada_w2_b;   // [r, in], zeros at start so ΔW = 0
    private readonly double scaling, rankDropout, moduleDropout;

    /// <summary>Wraps <paramref name="baseLayer"/>; factors initialised as PEFT's init_weights=true.</summary>
    public LoHaLinear(Linear baseLayer, int r, double alpha, double rankDropout, double moduleDropout, Generator generator) : base(nameof(LoHaLinear))
    {
        base_layer = baseLayer;
        var w = baseLayer.weight!;
        long outF = w.shape[0], inF = w.shape[1];
        Parameter New(long rows, long cols) => LinearWrappers.NewFactor(w, rows, cols);
        hada_w1_a = New(outF, r);
        hada_w1_b = New(r, inF);
        hada_w2_a = New(outF, r);
        hada_w2_b = New(r, inF);
        LinearWrappers.KaimingUniform(hada_w1_a, generator);
        LinearWrappers.KaimingUniform(hada_w1_b, generator);
        LinearWrappers.KaimingUniform(hada_w2_a, generator);
        using (no_grad()) hada_w2_b.zero_();
        scaling = alpha / r;
        this.rankDropout = rankDropout;
        this.moduleDropout = moduleDropout;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public Linear BaseLayer => base_layer;

    /// <summary>ΔW = (w1_a w1_b) ⊙ (w2_a w2_b) · α/r, [out, in].</summary>
    public Tensor DeltaWeight() => hada_w1_a.mm(hada_w1_b).mul(hada_w2_a.mm(hada_w2_b)).mul(scaling);

    /// <summary>x [..., in] → [..., out]. LoHa's rank dropout always rescales the kept rows by 1 / their mean.</summary>
    public override Tensor forward(Tensor x) => Lycoris.Forward(base_layer, x, DeltaWeight, training, rankDropout, moduleDropout, rescaleRankDropout: true);

    /// <inheritdoc/>
    public Tensor MergedWeight() => LinearWrappers.MergedWeight(base_layer, DeltaWeight());
}

/// <summary>LoHa in the Python PEFT library's LOHA format (keys <c>&lt;layer&gt;.hada_w1_a</c> … <c>.hada_w2_b</c>).</summary>
public sealed class LoHaMethod : LycorisMethod<LoHaConfig>
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.LoHa;
    /// <inheritdoc/>
    public override string Name => "loha";
    /// <inheritdoc/>
    public override string? PeftType => "LOHA";
    /// <inheritdoc/>
    public override CapacityKnob? Capacity { get; } = new("loha_r", "r", "LoHa rank");

    /// <inheritdoc/>
    public override IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 4, 8, 16, 32 }.Select(r => ($"r={r} q,v", (PeftConfig)new LoHaConfig { R = r, Alpha = r })).ToArray();

    /// <inheritdoc/>
    protected override LoHaConfig ReadOwn(AdapterJson j, LoHaConfig shared) => shared;

    /// <inheritdoc/>
    protected override void WriteOwn(LoHaConfig config, JsonObject json) { }

    /// <inheritdoc/>
    protected override nn.Module Wrap(Linear baseLayer, LoHaConfig config, int r, double alpha, Generator generator) =>
        new LoHaLinear(baseLayer, r, alpha, config.RankDropout, config.ModuleDropout, generator);
}
