using System.Globalization;
using System.Text.Json.Nodes;
using PeftLab.Configuration;
using PeftLab.Models;
using PeftLab.Peft.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.Oft;

/// <summary>Which biases train along with OFT (PEFT's <c>bias</c>).</summary>
public enum OftBias
{
    /// <summary>No bias trains.</summary>
    None,
    /// <summary>Every bias of the model trains.</summary>
    All,
    /// <summary>The biases of the OFT-wrapped layers train.</summary>
    OftOnly,
}

/// <summary>
/// OFT (Qiu et al. 2023, "Controlling Text-to-Image Diffusion by Orthogonal Finetuning"; PEFT ≥ 0.18's format): the
/// input of each wrapped layer is rotated by a block-diagonal orthogonal matrix before the frozen weight, y = W (x R) + b
/// (x a row vector), i.e. W' = W Rᵀ. Each block R_i [b, b] is the Cayley transform of a skew-symmetric Q_i whose b(b−1)/2
/// upper-triangle entries are the trained parameters; zeros give R = I, so the model is unchanged at start. The input
/// width splits as in_features = r × oft_block_size: set exactly one of the two, the other 0. Field names are PEFT's
/// <c>OFTConfig</c>'s.
/// </summary>
public sealed record OftConfig : PeftConfig, IValidatable
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.Oft;
    /// <summary>Number of blocks per layer (0: derived from <see cref="OftBlockSize"/>). More blocks: smaller blocks, fewer parameters.</summary>
    [ConfigRange(0, int.MaxValue)]
    public int R { get; init; }
    /// <summary>
    /// Block size b (0: derived from <see cref="R"/>): a layer trains in_features·(b−1)/2 numbers (without block sharing).
    /// Where b does not divide a layer's input width it is moved to the nearest divisor, as PEFT does.
    /// </summary>
    [ConfigRange(0, int.MaxValue)]
    public int OftBlockSize { get; init; } = 32;
    /// <summary>While training, this fraction of a layer's blocks (rounded down) is replaced by the identity for a step (PEFT's multiplicative dropout).</summary>
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double ModuleDropout { get; init; }
    /// <summary>Modules to wrap (default: the model's, as in PEFT: LoRA's, q_proj and v_proj for Llama, q and v for T5).</summary>
    [ConfigKey("target_modules")]
    public TargetSelector Targets { get; init; } = TargetSelector.ModelDefaults;
    /// <summary>Which biases train along with the rotations.</summary>
    public OftBias Bias { get; init; } = OftBias.None;
    /// <summary>PEFT's default start (true: Q = 0, R = I); false draws the skew entries from N(0, 0.1²), so the model changes at start.</summary>
    public bool InitWeights { get; init; } = true;
    /// <summary>
    /// Constrained OFT: before every use, each block's Q is pulled back into the Frobenius ball of radius
    /// <see cref="Eps"/>/√(blocks) around 0, in place (the rotation stays within a fixed angle of the identity).
    /// </summary>
    public bool Coft { get; init; }
    /// <summary>COFT's radius (only used with <see cref="Coft"/>).</summary>
    [ConfigRange(0, double.MaxValue)]
    public double Eps { get; init; } = 6e-5;
    /// <summary>One block's parameters for every block of a layer (b(b−1)/2 numbers per layer).</summary>
    public bool BlockShare { get; init; }
    /// <summary>
    /// Approximate (I − Q)⁻¹ by a truncated Neumann series instead of solving exactly (PEFT's default). The two are not
    /// the same rotation: PEFT's series gives R ≈ (I + Q)(I − Q)⁻¹, its exact solve R = (I − Q)(I + Q)⁻¹ = its transpose.
    /// </summary>
    public bool UseCayleyNeumann { get; init; } = true;
    /// <summary>Terms of the series: R = I + 2Q + 2Q² + … + 2Q^(n−2) + Q^(n−1) (PEFT ≥ 0.18; n ≤ 4 stops at Q³).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int NumCayleyNeumannTerms { get; init; } = 5;

    /// <inheritdoc/>
    public IEnumerable<(string Key, string Message)> Validate()
    {
        if ((R != 0) == (OftBlockSize != 0))
            yield return ("oft_block_size", $"set exactly one of r and oft_block_size, the other 0 (r × oft_block_size = in_features; got r={R}, oft_block_size={OftBlockSize})");
    }
}

/// <summary>
/// PEFT's multiplicative dropout for OFT: while training with p &gt; 0 and more than one block, ⌊p·D⌋ of the D block
/// rotations, chosen at random, are replaced by the identity for the step.
/// </summary>
public sealed class OftMultiplicativeDropout : nn.Module<Tensor, Tensor>
{
    private readonly double p;

    /// <summary>Drops a fraction <paramref name="probability"/> of the blocks.</summary>
    public OftMultiplicativeDropout(double probability) : base(nameof(OftMultiplicativeDropout))
    {
        p = probability;
        RegisterComponents();
    }

    /// <summary>rotations [D, b, b] → the same with the dropped blocks set to I.</summary>
    public override Tensor forward(Tensor rotations)
    {
        long d = rotations.shape[0], b = rotations.shape[1];
        if (!training || p <= 0 || d == 1) return rotations;
        long drop = (long)(p * d);
        var mask = cat([ones(drop, device: rotations.device), zeros(d - drop, device: rotations.device)])
            .index_select(0, randperm(d, device: rotations.device)).to_type(rotations.dtype).view(d, 1, 1);
        return (1 - mask) * rotations + mask * eye(b, dtype: rotations.dtype, device: rotations.device);
    }
}

/// <summary>
/// The trained rotation of one OFT layer (PEFT's <c>OFTRotationModule</c>, saved as <c>&lt;layer&gt;.oft_R.weight</c>):
/// <c>weight</c> [D, b(b−1)/2] holds the upper triangle of each block's skew-symmetric Q, row by row; D is the number of
/// blocks r, or 1 with block sharing.
/// </summary>
public sealed class OftRotation : nn.Module
{
    private readonly Parameter weight;
    private readonly long[] upper;   // flat indices i·b + j of the strict upper triangle, in torch.triu_indices order
    private readonly int blockSize, blocks;
    private readonly OftConfig config;

    /// <summary>A rotation of <paramref name="blocks"/> blocks of size <paramref name="blockSize"/>, initialised per <paramref name="config"/>.</summary>
    public OftRotation(int blocks, int blockSize, OftConfig config, Tensor like, Generator generator) : base(nameof(OftRotation))
    {
        this.blocks = blocks;
        this.blockSize = blockSize;
        this.config = config;
        upper = [.. from i in Enumerable.Range(0, blockSize) from j in Enumerable.Range(i + 1, blockSize - i - 1) select (long)i * blockSize + j];
        using (no_grad())
        {
            var w = config.InitWeights ? zeros(config.BlockShare ? 1 : blocks, upper.Length, dtype: like.dtype, device: like.device)
                : (0.1 * randn([config.BlockShare ? 1 : blocks, upper.Length], generator: generator)).to(like.dtype, like.device);
            weight = new Parameter(w);
        }
        RegisterComponents();
    }

    /// <summary>Blocks per layer (r).</summary>
    public int Blocks => blocks;
    /// <summary>Block size (b).</summary>
    public int BlockSize => blockSize;

    /// <summary>The skew-symmetric Q [D, b, b] of each row of <paramref name="vec"/> [D, b(b−1)/2]: the row fills the upper triangle, Q = U − Uᵀ.</summary>
    private Tensor Skew(Tensor vec)
    {
        var index = tensor(upper, device: vec.device);
        var u = zeros(vec.shape[0], (long)blockSize * blockSize, dtype: vec.dtype, device: vec.device).index_copy(1, index, vec).view(-1, blockSize, blockSize);
        return u - u.transpose(1, 2);
    }

    /// <summary>COFT: each block's Q scaled back to Frobenius norm eps/√D where it is larger, written into the parameter (PEFT's <c>_project_batch</c>).</summary>
    private void Project()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var q = Skew(weight);
        double eps = config.Eps / Math.Sqrt(q.shape[0]);
        var norm = linalg.norm(q, dims: [1, 2], keepdim: true);
        var projected = where(norm <= eps, q, eps * (q / norm));
        weight.copy_(projected.reshape(q.shape[0], -1).index_select(1, tensor(upper, device: q.device)));
    }

    /// <summary>The block rotations [D, b, b]: PEFT's truncated Cayley–Neumann series or its exact Cayley solve (projected first with COFT).</summary>
    public Tensor Rotations()
    {
        if (config.Coft) Project();
        var q = Skew(weight);
        var identity = eye(blockSize, dtype: q.dtype, device: q.device).expand(q.shape[0], blockSize, blockSize);
        if (!config.UseCayleyNeumann)   // R (I + Q) = I − Q, solved in float32 (libtorch has no bf16/fp16 LU)
            return linalg.solve((identity + q).to_type(ScalarType.Float32), (identity - q).to_type(ScalarType.Float32), left: false).to_type(q.dtype);
        int n = config.NumCayleyNeumannTerms;
        var r = identity.clone();
        if (n > 1) r = r + 2 * q;
        if (n > 2)
        {
            var power = q.bmm(q);
            r = r + 2 * power;
            for (int k = 3; k < n - 1; k++)
            {
                power = power.bmm(q);
                r = r + 2 * power;
            }
            r = r + power.bmm(q);
        }
        return r;
    }

    /// <summary>The rotations of all r blocks (the shared one repeated with block sharing), [r, b, b].</summary>
    public Tensor PerBlock(Tensor rotations) => rotations.shape[0] == blocks ? rotations : rotations.expand(blocks, blockSize, blockSize);

    /// <summary>x [..., r·b] → x R: each block of b inputs times its rotation (x a row vector).</summary>
    public Tensor Rotate(Tensor x, Tensor rotations)
    {
        var shape = x.shape;
        var blocked = x.reshape([.. shape[..^1], blocks, blockSize]);
        return einsum("...rk,rkc->...rc", blocked, PerBlock(rotations).to_type(x.dtype)).reshape(shape);
    }
}

/// <summary>A linear layer whose input is rotated by a learned block-diagonal orthogonal matrix: y = W (x R) + b (PEFT's <c>oft.Linear</c>).</summary>
public sealed class OftLinear : nn.Module<Tensor, Tensor>, IWrappedLinear
{
    private readonly Linear base_layer;
    private readonly OftRotation oft_R;
    private readonly OftMultiplicativeDropout oft_dropout;

    /// <summary>Wraps <paramref name="baseLayer"/>; r and b per <see cref="OftMethod.BlockLayout"/>.</summary>
    public OftLinear(Linear baseLayer, OftConfig config, Generator generator) : base(nameof(OftLinear))
    {
        base_layer = baseLayer;
        var w = baseLayer.weight!;
        var (blocks, blockSize) = OftMethod.BlockLayout(w.shape[1], config.R, config.OftBlockSize);
        oft_R = new OftRotation(blocks, blockSize, config, w, generator);
        oft_dropout = new OftMultiplicativeDropout(config.ModuleDropout);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public Linear BaseLayer => base_layer;

    /// <summary>The layer's rotation module.</summary>
    public OftRotation Rotation => oft_R;

    /// <summary>x [..., in] → [..., out].</summary>
    public override Tensor forward(Tensor x) => base_layer.forward(oft_R.Rotate(x, oft_dropout.forward(oft_R.Rotations())));

    /// <summary>W' = W Rᵀ with R = blockdiag(R_1 … R_r), in float32: W'[o, (i, k)] = Σ_c W[o, (i, c)] R_i[k, c].</summary>
    public Tensor MergedWeight()
    {
        var w = base_layer.weight!;
        var rotations = oft_R.PerBlock(oft_R.Rotations()).to_type(ScalarType.Float32);
        var blocked = w.to_type(ScalarType.Float32).view(w.shape[0], oft_R.Blocks, oft_R.BlockSize);
        return einsum("orc,rkc->ork", blocked, rotations).reshape(w.shape[0], w.shape[1]).to_type(w.dtype);
    }
}

/// <summary>
/// OFT in the Python PEFT library's OFT format (PEFT ≥ 0.18): <c>&lt;layer&gt;.oft_R.weight</c> [r, b(b−1)/2], or
/// [1, b(b−1)/2] with block sharing. Older formats are refused: PEFT ≤ 0.13's <c>oft_r</c> [r, b, b] files (no
/// <c>oft_block_size</c> field) and Cayley–Neumann files of PEFT 0.15–0.17, whose series ended with 2Q^(n−1).
/// </summary>
public sealed class OftMethod : IPeftMethod
{
    /// <summary>
    /// The first PEFT release with the Cayley–Neumann series PeftLab computes; written as <c>peft_version</c>, which PEFT
    /// reads to tell the series apart (a file without it is taken as older).
    /// </summary>
    public const string SeriesVersion = "0.18.0";

    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.Oft;
    /// <inheritdoc/>
    public string Name => "oft";
    /// <inheritdoc/>
    public string? PeftType => "OFT";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new OftConfig();
    /// <summary>The block size: trainable numbers grow with it (in·(b−1)/2 per layer), where r = in/b shrinks them and depends on each layer's width.</summary>
    public CapacityKnob? Capacity { get; } = new("oft_block_size", "oft_block_size", "OFT block size");
    /// <inheritdoc/>
    public bool CanMerge => true;

    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 8, 16, 32, 64 }.Select(b => ($"oft_block_size={b} q,v", (PeftConfig)new OftConfig { OftBlockSize = b })).ToArray();

    /// <summary>
    /// (r, b) of a layer with <paramref name="inFeatures"/> inputs, as PEFT's <c>update_layer</c>: the given one of
    /// r / oft_block_size, moved to the nearest divisor of in_features when it does not divide it (ties to the smaller),
    /// and the other derived from it.
    /// </summary>
    public static (int Blocks, int BlockSize) BlockLayout(long inFeatures, int r, int blockSize)
    {
        if ((r != 0) == (blockSize != 0))
            throw new PeftConfigException($"oft: set exactly one of r and oft_block_size, the other 0 (got r={r}, oft_block_size={blockSize})");
        int given = r != 0 ? r : blockSize;
        if (inFeatures % given != 0 || given > inFeatures) given = NearestDivisor((int)inFeatures, given);
        int other = (int)(inFeatures / given);
        return r != 0 ? (given, other) : (other, given);
    }

    /// <summary>PEFT's <c>adjust_oft_parameters</c>: the divisor of <paramref name="n"/> nearest to <paramref name="value"/> (n itself when value exceeds it).</summary>
    private static int NearestDivisor(int n, int value)
    {
        if (value >= n) return n;
        int higher = value;
        while (higher <= n && n % higher != 0) higher++;
        int lower = value;
        while (lower > 1 && n % lower != 0) lower--;
        return value - lower <= higher - value ? lower : higher;
    }

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        j.RequireNeutral("fan_in_fan_out", AdapterJson.IsEmpty, "only nn.Linear layers (fan_in_fan_out=false) are used");
        j.RequireNeutral("modules_to_save", AdapterJson.IsEmpty, "OFT trains only its rotations and biases");
        if (j.Node("oft_block_size") is null)
            throw new PeftConfigException($"{j.Source}: no 'oft_block_size': an OFT file of PEFT ≤ 0.13 (oft_r [r, b, b]), which PEFT itself no longer loads");
        var config = new OftConfig
        {
            R = j.Int("r", 0),
            OftBlockSize = j.Int("oft_block_size", 32),
            ModuleDropout = j.Double("module_dropout", 0),
            Targets = TargetSelector.ReadPeft(j),
            Bias = j.Choice("bias", OftBias.None),
            InitWeights = j.Bool("init_weights", true),
            Coft = j.Bool("coft", false),
            Eps = j.Double("eps", 6e-5),
            BlockShare = j.Bool("block_share", false),
            UseCayleyNeumann = j.Bool("use_cayley_neumann", true),
            NumCayleyNeumannTerms = j.Int("num_cayley_neumann_terms", 5),
        };
        if (config.UseCayleyNeumann && !IsSeriesVersion(j.String("peft_version")))
            throw new PeftConfigException($"{j.Source}: 'use_cayley_neumann' = true with 'peft_version' {j.String("peft_version") ?? "absent"}: PEFT before {SeriesVersion} "
                + "(which wrote no peft_version) used another Cayley–Neumann series (… + 2Q^(n−1)); PeftLab computes PEFT ≥ 0.18's");
        return config;
    }

    /// <summary>Is <paramref name="peftVersion"/> (PEFT's form, e.g. 0.18.1.dev0@commit) at least <see cref="SeriesVersion"/>?</summary>
    private static bool IsSeriesVersion(string? peftVersion)
    {
        if (peftVersion is null) return false;
        var numbers = peftVersion.Split('@')[0].Split('.').Take(3)
            .Select(p => int.TryParse(new string(p.TakeWhile(char.IsDigit).ToArray()), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0).ToArray();
        var min = SeriesVersion.Split('.').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        for (int i = 0; i < min.Length; i++)
        {
            int v = i < numbers.Length ? numbers[i] : 0;
            if (v != min[i]) return v > min[i];
        }
        return true;
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = Resolved(config, model);
        var json = new JsonObject
        {
            ["bias"] = ConfigEnums.Name(c.Bias),
            ["block_share"] = c.BlockShare,
            ["coft"] = c.Coft,
            ["eps"] = c.Eps,
            ["fan_in_fan_out"] = false,
            ["init_weights"] = c.InitWeights,
            ["module_dropout"] = c.ModuleDropout,
            ["modules_to_save"] = null,
            ["num_cayley_neumann_terms"] = c.NumCayleyNeumannTerms,
            ["oft_block_size"] = c.OftBlockSize,
            ["peft_version"] = SeriesVersion,
            ["r"] = c.R,
            ["use_cayley_neumann"] = c.UseCayleyNeumann,
        };
        c.Targets.WritePeft(json);
        return json;
    }

    private OftConfig Resolved(PeftConfig config, IPeftHost model)
    {
        var c = (OftConfig)config;
        return c with { Targets = c.Targets.Resolve(LoraMethod.DefaultTargets.For(model, Name)) };
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = Resolved(config, model);
        if (ConfigBinder.Problems(c) is { Count: > 0 } problems)
            throw new PeftConfigException($"oft: {string.Join("; ", problems)}");
        LinearWrappers.Attach(model, c.Targets, (_, lin) => new OftLinear(lin, c, context.Generator), PeftType!);
        LinearWrappers.TrainBiases(model, c.Bias == OftBias.All, c.Bias == OftBias.OftOnly);
    }

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) => LinearWrappers.Merge(model);
}
