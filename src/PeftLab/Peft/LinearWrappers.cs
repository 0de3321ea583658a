using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft;

/// <summary>
/// A linear layer wrapped by a weight-space method (LoHa, LoKr, VeRA, OFT, ...): it keeps the frozen layer as
/// <c>base_layer</c> (PEFT's name) and can express itself as one merged weight.
/// </summary>
public interface IWrappedLinear
{
    /// <summary>The frozen layer inside.</summary>
    Linear BaseLayer { get; }

    /// <summary>The weight [out, in] that computes the same function as the wrapper (in the base weight's dtype); the bias is unchanged.</summary>
    Tensor MergedWeight();
}

/// <summary>
/// What the weight-space methods share: wrapping the matching linear layers through the <see cref="Injector"/>,
/// training exactly the wrappers' own parameters, and merging by swapping each wrapper for its base layer with the
/// merged weight.
/// </summary>
public static class LinearWrappers
{
    /// <summary>
    /// Replaces every linear layer matched by <paramref name="targets"/> (a resolved selector) with
    /// <paramref name="wrap"/>'s module and makes the wrappers' own parameters (all but <c>base_layer</c>'s) trainable.
    /// Returns the full names of the wrapped layers.
    /// </summary>
    public static IReadOnlyList<string> Attach(IPeftHost model, TargetSelector targets, Func<string, Linear, nn.Module> wrap, string method)
    {
        var wrapped = Injector.Replace(model.Module,
            slot => slot.Module is Linear lin && targets.Matches(slot.Name, true) ? wrap(slot.Name, lin) : null,
            $"{method} target_modules {targets}");
        foreach (var slot in Injector.Slots(model.Module).Where(s => s.Module is IWrappedLinear))
            foreach (var (name, p) in slot.Module.named_parameters())
                if (!name.StartsWith("base_layer.", StringComparison.Ordinal)) p.requires_grad = true;
        return wrapped;
    }

    /// <summary>
    /// Makes biases train as PEFT's <c>bias</c> option does (call after <see cref="Attach"/>): every bias of the model
    /// (<c>all</c>), or only those of the wrapped layers (<c>&lt;method&gt;_only</c>, the wrapper's <c>base_layer.bias</c>).
    /// Trainable biases are saved with the adapter under their module path, as PEFT saves them.
    /// </summary>
    public static void TrainBiases(IPeftHost model, bool all, bool wrappedOnly)
    {
        if (!all && !wrappedOnly) return;
        var wrapped = Injector.Slots(model.Module).Where(s => s.Module is IWrappedLinear).Select(s => s.Name + ".base_layer.bias").ToHashSet();
        foreach (var (name, p) in model.Module.named_parameters())
            if (name.EndsWith(".bias", StringComparison.Ordinal) && (all || wrapped.Contains(name))) p.requires_grad = true;
    }

    /// <summary>Folds every wrapper into its base layer's weight and puts the base layer back in its place.</summary>
    public static void Merge(IPeftHost model)
    {
        using var noGrad = no_grad();
        foreach (var slot in Injector.Slots(model.Module).Where(s => s.Module is IWrappedLinear).ToArray())
        {
            var wrapper = (IWrappedLinear)slot.Module;
            using (var scope = NewDisposeScope())
                wrapper.BaseLayer.weight!.copy_(wrapper.MergedWeight());
            slot.Owner.ReplaceChild(slot.ChildName, wrapper.BaseLayer);
        }
    }

    /// <summary>W + ΔW, summed in fp32 and returned in the base weight's dtype (a bf16 sum would round ΔW away).</summary>
    public static Tensor MergedWeight(Linear baseLayer, Tensor deltaWeight)
    {
        var w = baseLayer.weight!;
        return (w.to_type(ScalarType.Float32) + deltaWeight.to_type(ScalarType.Float32)).to_type(w.dtype);
    }

    /// <summary>A frozen [rows, cols] factor in <paramref name="like"/>'s dtype and device, uninitialised (the wrapper initialises it).</summary>
    public static Parameter NewFactor(Tensor like, long rows, long cols) =>
        new(empty([rows, cols], dtype: like.dtype, device: like.device), requires_grad: false);

    /// <summary>
    /// PEFT's Kaiming-uniform initialisation with a = √5 (<c>nn.init.kaiming_uniform_(w, a=math.sqrt(5))</c>):
    /// U(−b, b) with b = √(6 / ((1 + a²) · fan_in)) = 1/√fan_in, fan_in = the tensor's second dimension.
    /// </summary>
    public static void KaimingUniform(Tensor weight, Generator generator)
    {
        using var noGrad = no_grad();
        double bound = 1.0 / Math.Sqrt(weight.shape[1]);
        weight.uniform_(-bound, bound, generator: generator);
    }
}
