using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.Lora;

/// <summary>
/// A linear layer with a low-rank update: y = W x + b + s · B(A(dropout(x))), s = α/r (or α/√r).
/// With DoRA: y = (m / ‖W + s·BA‖_row) ⊙ (W x + s · B A x) + b, the norm detached as in the DoRA paper §4.3.
/// The update is never materialised as a matrix in forward.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    private readonly Linear base_layer;
    private readonly Linear lora_A;                 // [r, in]
    private readonly Linear lora_B;                 // [out, r]
    private readonly nn.Module<Tensor, Tensor> lora_dropout;
    private readonly Parameter? lora_magnitude_vector; // [out], DoRA only
    private readonly double scaling;

    /// <summary>Wraps <paramref name="baseLayer"/> with a rank-r update initialised per <paramref name="config"/>.</summary>
    public LoraLinear(Linear baseLayer, LoraConfig config, Generator generator) : base(nameof(LoraLinear))
    {
        base_layer = baseLayer;
        var w = baseLayer.weight!;
        long outF = w.shape[0], inF = w.shape[1];
        lora_A = nn.Linear(inF, config.R, hasBias: false, device: w.device, dtype: w.dtype);
        lora_B = nn.Linear(config.R, outF, hasBias: false, device: w.device, dtype: w.dtype);
        lora_dropout = config.Dropout > 0 ? nn.Dropout(config.Dropout) : nn.Identity();
        scaling = config.Scaling;
        using (no_grad())
        {
            switch (config.Init)
            {
                case LoraInit.Default:
                    // kaiming_uniform_(a=√5) on [r, in]: bound = sqrt(6 / ((1 + a²) · fan_in)) = 1/sqrt(in)
                    double bound = 1.0 / Math.Sqrt(inF);
                    lora_A.weight!.copy_(rand([config.R, inF], generator: generator).mul_(2 * bound).sub_(bound));
                    lora_B.weight!.zero_();
                    break;
                case LoraInit.Gaussian:
                    lora_A.weight!.copy_(randn([config.R, inF], generator: generator).mul_(1.0 / config.R));
                    lora_B.weight!.zero_();
                    break;
                case LoraInit.Pissa:
                    // W = U S Vᵀ; A = √(S_r/s) V_rᵀ, B = U_r √(S_r/s); W keeps W - s·BA so the output is unchanged.
                    using (var scope = NewDisposeScope())
                    {
                        var (u, sv, vh) = linalg.svd(w.to_type(ScalarType.Float32), fullMatrices: false);
                        var sr = sv.narrow(0, 0, config.R) / scaling;
                        var sqrtS = sr.sqrt();
                        var a = sqrtS.unsqueeze(1) * vh.narrow(0, 0, config.R);            // [r, in]
                        var b = u.narrow(1, 0, config.R) * sqrtS.unsqueeze(0);             // [out, r]
                        lora_A.weight!.copy_(a);
                        lora_B.weight!.copy_(b);
                        w.copy_(w.to_type(ScalarType.Float32) - scaling * b.matmul(a));
                        InitialFactors = (a.to_type(w.dtype).detach().MoveToOuterDisposeScope(), b.to_type(w.dtype).detach().MoveToOuterDisposeScope());
                    }
                    break;
                case LoraInit.Olora:
                    // W = Q R (reduced QR, Q [out, k] orthonormal columns, R [k, in]); A = R[:r], B = Q[:, :r]; W keeps W - s·BA.
                    using (var scope = NewDisposeScope())
                    {
                        var (q, rr) = linalg.qr(w.to_type(ScalarType.Float32));
                        var a = rr.narrow(0, 0, config.R).contiguous();                   // [r, in]
                        var b = q.narrow(1, 0, config.R).contiguous();                    // [out, r]
                        lora_A.weight!.copy_(a);
                        lora_B.weight!.copy_(b);
                        w.copy_(w.to_type(ScalarType.Float32) - scaling * b.matmul(a));
                        InitialFactors = (a.to_type(w.dtype).detach().MoveToOuterDisposeScope(), b.to_type(w.dtype).detach().MoveToOuterDisposeScope());
                    }
                    break;
            }
        }
        if (config.UseDora)
        {
            using var noGrad = no_grad();
            lora_magnitude_vector = new Parameter(RowNorm(w.to_type(ScalarType.Float32)).to_type(w.dtype));
        }
        RegisterComponents();
    }

    /// <summary>The wrapped layer.</summary>
    public Linear BaseLayer => base_layer;

    private static Tensor RowNorm(Tensor weight) => linalg.norm(weight, dims: [1]); // ‖W‖ over inputs, one per output

    /// <summary>x [..., in] -> [..., out].</summary>
    public override Tensor forward(Tensor x)
    {
        var lora = lora_B.forward(lora_A.forward(lora_dropout.forward(x)));                     // [..., out]
        if (lora_magnitude_vector is null)
            return base_layer.forward(x) + lora * scaling;

        var w = base_layer.weight!;
        Tensor norm;
        using (no_grad())
            norm = RowNorm((w + scaling * lora_B.weight!.matmul(lora_A.weight!)).to_type(ScalarType.Float32)).to_type(x.dtype);
        var scale = lora_magnitude_vector / norm;                                               // [out]
        var result = (nn.functional.linear(x, w) + lora * scaling) * scale;
        return base_layer.bias is null ? result : result + base_layer.bias;
    }

    /// <summary>W + s·BA, or the DoRA-rescaled weight: the weight that replaces the wrapper on merge.</summary>
    public Tensor MergedWeight()
    {
        using var scope = NewDisposeScope();
        var w = base_layer.weight!;
        var merged = w.to_type(ScalarType.Float32) + scaling * lora_B.weight!.to_type(ScalarType.Float32).matmul(lora_A.weight!.to_type(ScalarType.Float32));
        if (lora_magnitude_vector is not null)
            merged = merged * (lora_magnitude_vector.to_type(ScalarType.Float32) / RowNorm(merged)).unsqueeze(1);
        return merged.to_type(w.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>PiSSA's or OLoRA's starting (A₀, B₀), kept to convert the saved adapter to one for the original base.</summary>
    public (Tensor A, Tensor B)? InitialFactors { get; }

    /// <summary>(A, B) for the PiSSA/OLoRA conversion and inspection.</summary>
    public (Parameter A, Parameter B) Factors => (lora_A.weight!, lora_B.weight!);
}
