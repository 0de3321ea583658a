using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Peft;

/// <summary>How TIES and DARE-TIES elect each entry's sign across the task tensors.</summary>
public enum MajoritySignMethod
{
    /// <summary>The sign of the sum of the (pruned, unweighted) task tensors: large entries outvote small ones.</summary>
    Total,
    /// <summary>The sign most task tensors have: one vote per tensor.</summary>
    Frequency,
}

/// <summary>
/// The model-merging rules of PEFT's <c>merge_utils</c> (task arithmetic, magnitude pruning, TIES, DARE), as pure
/// functions of a list of same-shaped task tensors and one weight per tensor. Each returns the merged tensor.
/// </summary>
public static class MergeRules
{
    /// <summary>Task arithmetic: Σᵢ wᵢ tᵢ.</summary>
    public static Tensor TaskArithmetic(IReadOnlyList<Tensor> tensors, IReadOnlyList<double> weights) =>
        Weighted(stack(tensors, 0), weights).sum(0L);

    /// <summary>Σᵢ wᵢ · prune(tᵢ): each tensor keeps its ⌊density · numel⌋ largest-magnitude entries.</summary>
    public static Tensor MagnitudePrune(IReadOnlyList<Tensor> tensors, IReadOnlyList<double> weights, double density) =>
        Weighted(stack(tensors.Select(t => KeepLargest(t, density)).ToArray(), 0), weights).sum(0L);

    /// <summary>
    /// TIES (Yadav et al. 2023): magnitude-prune each tensor to <paramref name="density"/>, elect every entry's sign
    /// from the pruned tensors, and average the weighted entries that agree with it (entries of no tensor agreeing give 0).
    /// </summary>
    public static Tensor Ties(IReadOnlyList<Tensor> tensors, IReadOnlyList<double> weights, double density, MajoritySignMethod method) =>
        SignElectedMean(stack(tensors.Select(t => KeepLargest(t, density)).ToArray(), 0), weights, method);

    /// <summary>
    /// DARE (Yu et al. 2024) with a linear merge: each entry of each tensor is kept with probability
    /// <paramref name="density"/> (drawn from <paramref name="generator"/>, tensor by tensor) and rescaled by 1/density; then Σᵢ wᵢ tᵢ.
    /// </summary>
    public static Tensor DareLinear(IReadOnlyList<Tensor> tensors, IReadOnlyList<double> weights, double density, Generator generator) =>
        Weighted(stack(tensors.Select(t => KeepRandom(t, density, generator)).ToArray(), 0), weights).sum(0L);

    /// <summary>DARE's random pruning and rescaling followed by TIES' sign election and disjoint mean.</summary>
    public static Tensor DareTies(IReadOnlyList<Tensor> tensors, IReadOnlyList<double> weights, double density, MajoritySignMethod method, Generator generator) =>
        SignElectedMean(stack(tensors.Select(t => KeepRandom(t, density, generator)).ToArray(), 0), weights, method);

    /// <summary>
    /// <paramref name="tensor"/> with all but its ⌊density · numel⌋ largest-magnitude entries set to 0 (density ≥ 1:
    /// unchanged, as PEFT's <c>prune</c>).
    /// </summary>
    public static Tensor KeepLargest(Tensor tensor, double density)
    {
        CheckDensity(density);
        if (density >= 1) return tensor;
        long k = (long)(density * tensor.numel());
        var flat = tensor.reshape(-1);
        var mask = zeros_like(flat);
        if (k > 0) mask.index_fill_(0, flat.abs().topk((int)k).indexes, 1);
        return tensor * mask.reshape(tensor.shape);
    }

    /// <summary>Each entry kept with probability <paramref name="density"/> and divided by it (density ≥ 1: unchanged).</summary>
    public static Tensor KeepRandom(Tensor tensor, double density, Generator generator)
    {
        CheckDensity(density);
        if (density >= 1) return tensor;
        var mask = bernoulli(full_like(tensor, density), generator);
        return tensor * mask / density;
    }

    /// <summary>
    /// Per entry: +1/−1 where the elected sign is that of the stacked tensors [n, ...] (ties go to +), as PEFT's
    /// <c>calculate_majority_sign_mask</c>; returns a boolean mask of the entries agreeing with it (zeros never agree).
    /// </summary>
    public static Tensor MajoritySignMask(Tensor stacked, MajoritySignMethod method)
    {
        var sign = stacked.sign();
        var magnitude = method == MajoritySignMethod.Total ? stacked.sum(0L) : sign.sum(0L);
        var elected = where(magnitude >= 0, ones_like(magnitude), -ones_like(magnitude));
        return sign.eq(elected);
    }

    private static Tensor SignElectedMean(Tensor stacked, IReadOnlyList<double> weights, MajoritySignMethod method)
    {
        var mask = MajoritySignMask(stacked, method);                 // elected from the unweighted tensors, as PEFT
        var agreeing = (Weighted(stacked, weights) * mask).sum(0L);
        return agreeing / mask.sum(0L).to_type(stacked.dtype).clamp_min(1);
    }

    private static Tensor Weighted(Tensor stacked, IReadOnlyList<double> weights)
    {
        if (weights.Count != stacked.shape[0])
            throw new ArgumentException($"{stacked.shape[0]} task tensors but {weights.Count} weights");
        var shape = new long[stacked.dim()];
        Array.Fill(shape, 1L);
        shape[0] = weights.Count;
        return stacked * tensor(weights.ToArray(), dtype: stacked.dtype, device: stacked.device).reshape(shape);
    }

    private static void CheckDensity(double density)
    {
        if (!(density >= 0)) throw new ArgumentException($"density must be in [0, 1] (got {density})");
    }
}
