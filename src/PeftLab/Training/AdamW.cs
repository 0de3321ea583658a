using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Training;

/// <summary>
/// AdamW with decoupled weight decay, written out so its state can be saved bit-exactly and so parameters
/// stored in bfloat16 get float32 master copies: the update happens on the master, then is copied back.
/// θ ← θ − lr·λ·θ;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  θ ← θ − lr · m̂ / (√v̂ + ε).
/// </summary>
public sealed class AdamW : IDisposable
{
    private sealed class Slot
    {
        public required string Name;
        public required Parameter Param;
        public required Tensor Master;   // the parameter itself when it is float32
        public required Tensor M, V;
        public required bool Decay;
        public required double LrScale;
    }

    private readonly List<Slot> slots = [];
    private readonly double beta1, beta2, eps, weightDecay;

    /// <summary>
    /// Optimiser over named parameters; <paramref name="decay"/> says which get weight decay, <paramref name="lrScale"/>
    /// (default 1 for all) what each one's learning rate is a multiple of the step's (parameter groups, e.g. LoRA+).
    /// </summary>
    public AdamW(IEnumerable<(string Name, Parameter Param)> parameters, Func<string, bool> decay, double beta1, double beta2, double eps, double weightDecay,
        Func<string, double>? lrScale = null)
    {
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        using var noGrad = no_grad();
        foreach (var (name, p) in parameters)
        {
            var master = p.dtype == ScalarType.Float32 ? p : p.detach().to_type(ScalarType.Float32).DetachFromDisposeScope();
            slots.Add(new Slot
            {
                Name = name, Param = p, Master = master, Decay = decay(name), LrScale = lrScale?.Invoke(name) ?? 1,
                M = zeros(p.shape, dtype: ScalarType.Float32, device: p.device).DetachFromDisposeScope(),
                V = zeros(p.shape, dtype: ScalarType.Float32, device: p.device).DetachFromDisposeScope(),
            });
        }
    }

    /// <summary>Steps taken so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>Bytes of optimiser state (moments and master copies).</summary>
    public long StateBytes => slots.Sum(s => 2 * s.M.numel() * 4 + (ReferenceEquals(s.Master, s.Param) ? 0 : s.Master.numel() * 4));

    /// <summary>Total L2 norm of all gradients (computed in float32).</summary>
    public double GradNorm()
    {
        using var scope = NewDisposeScope();
        double sum = 0;
        foreach (var s in slots)
            if (s.Param.grad is { } g) sum += g.to_type(ScalarType.Float32).pow(2).sum().item<float>();
        return Math.Sqrt(sum);
    }

    /// <summary>Scales every gradient by <paramref name="factor"/> (clipping).</summary>
    public void ScaleGradients(double factor)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();   // each .grad read makes a handle that must be released
        foreach (var s in slots) s.Param.grad?.mul_(factor);
    }

    /// <summary>Clears gradients (set to none).</summary>
    public void ZeroGrad()
    {
        foreach (var s in slots)
        {
            s.Param.grad?.Dispose();
            s.Param.grad = null;
        }
    }

    /// <summary>One update with learning rate <paramref name="lr"/>.</summary>
    public void Step(double lr)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(beta1, StepCount), bc2 = 1 - Math.Pow(beta2, StepCount);
        using var noGrad = no_grad();
        foreach (var s in slots)
        {
            using var scope = NewDisposeScope();   // .grad returns a new handle: create it inside the scope
            if (s.Param.grad is not { } grad) continue;
            var g = grad.dtype == ScalarType.Float32 ? grad : grad.to_type(ScalarType.Float32);
            double slotLr = lr * s.LrScale;
            if (s.Decay && weightDecay > 0) s.Master.mul_(1 - slotLr * weightDecay);
            s.M.mul_(beta1).add_(g, alpha: 1 - beta1);
            s.V.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
            var denom = (s.V / bc2).sqrt_().add_(eps);
            s.Master.addcdiv_(s.M, denom, value: -slotLr / bc1);
            if (!ReferenceEquals(s.Master, s.Param)) s.Param.copy_(s.Master);
        }
    }

    /// <summary>State for checkpoints: moments and master copies, keyed by parameter name.</summary>
    public IEnumerable<(string Key, Tensor Value)> State()
    {
        foreach (var s in slots)
        {
            yield return ("m." + s.Name, s.M);
            yield return ("v." + s.Name, s.V);
            if (!ReferenceEquals(s.Master, s.Param)) yield return ("master." + s.Name, s.Master);
        }
    }

    /// <summary>Restores <see cref="State"/> and the step count.</summary>
    public void Load(Func<string, Tensor?> read, long stepCount)
    {
        using var noGrad = no_grad();
        foreach (var s in slots)
        {
            using var scope = NewDisposeScope();
            s.M.copy_(read("m." + s.Name) ?? throw new InvalidDataException($"optimizer state lacks m.{s.Name}"));
            s.V.copy_(read("v." + s.Name) ?? throw new InvalidDataException($"optimizer state lacks v.{s.Name}"));
            if (!ReferenceEquals(s.Master, s.Param))
            {
                s.Master.copy_(read("master." + s.Name) ?? throw new InvalidDataException($"optimizer state lacks master.{s.Name}"));
                s.Param.copy_(s.Master);
            }
        }
        StepCount = stepCount;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var s in slots)
        {
            s.M.Dispose();
            s.V.Dispose();
            if (!ReferenceEquals(s.Master, s.Param)) s.Master.Dispose();
        }
    }
}
