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
    /// <summary>Names of the children that may be replaced.</summary>
    IReadOnlyList<string> ReplaceableChildren { get; }
    /// <summary>The current child of that name.</summary>
    nn.Module GetChild(string name);
    /// <summary>Replaces a child; throws if the name is not replaceable or the module has the wrong kind.</summary>
    void ReplaceChild(string name, nn.Module replacement);
}

/// <summary>Helpers shared by module containers.</summary>
public static class ModuleSlots
{
    /// <summary>Casts a replacement to the slot's type with an error naming the slot.</summary>
    public static T As<T>(string owner, string name, nn.Module replacement) where T : class
        => replacement as T ?? throw new ArgumentException(
            $"{owner}.{name} must be replaced by a {typeof(T).Name}, got {replacement.GetType().Name}");

    /// <summary>Error for a name that is not a replaceable child.</summary>
    public static ArgumentException Unknown(string owner, string name, IReadOnlyList<string> names)
        => new($"{owner} has no replaceable child '{name}'; it has: {string.Join(", ", names)}");
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
