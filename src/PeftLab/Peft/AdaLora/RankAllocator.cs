using static TorchSharp.torch;

namespace PeftLab.Peft.AdaLora;

/// <summary>
/// AdaLoRA's rank allocator (PEFT's <c>RankAllocator</c> and <c>AdaLoraModel.update_and_allocate</c>): after each
/// optimiser step it smooths every factor entry's sensitivity s = |θ · g| (Ī ← β₁Ī + (1−β₁)s) and uncertainty
/// (Ū ← β₂Ū + (1−β₂)|s − Ī|), scores each rank i of a layer as score(E_i) + mean_j score(A_ij) + mean_j score(B_ji)
/// with score = Ī·Ū, and every deltaT steps zeroes the E of the lowest-scoring ranks across all layers down to the
/// budget of <see cref="Budget"/>. At step total_step − tfinal the final pattern is fixed; afterwards it is re-applied
/// every step. Adds the orthogonality regulariser to the loss.
/// </summary>
public sealed class RankAllocator : ITrainingHook
{
    private readonly IReadOnlyList<(string Name, SvdLinear Layer)> layers;
    private readonly AdaLoraConfig config;
    private readonly int total;
    // per layer: (Ī, Ū) of A, E, B
    private readonly Tensor[][] avgIpt, avgUnc;

    /// <summary>An allocator over <paramref name="layers"/>; <paramref name="config"/>'s total_step is resolved.</summary>
    public RankAllocator(IReadOnlyList<(string Name, SvdLinear Layer)> layers, AdaLoraConfig config)
    {
        this.layers = layers;
        this.config = config;
        total = config.TotalStep ?? throw new ArgumentException("total_step must be resolved");
        InitialBudget = layers.Sum(l => l.Layer.Rank);
        TargetBudget = config.TargetR * layers.Count;
        avgIpt = layers.Select(l => Zeros(l.Layer)).ToArray();
        avgUnc = layers.Select(l => Zeros(l.Layer)).ToArray();
    }

    private static Tensor[] Zeros(SvdLinear layer)
    {
        var (a, e, b) = layer.Factors;
        return [.. new Tensor[] { a, e, b }.Select(p => zeros(p.shape, dtype: ScalarType.Float32, device: p.device).DetachFromDisposeScope())];
    }

    /// <summary>Σ init_r over the layers.</summary>
    public int InitialBudget { get; }
    /// <summary>target_r × layers.</summary>
    public int TargetBudget { get; }

    /// <summary>
    /// PEFT's <c>budget_schedule</c>: the initial budget up to tinit (no pruning), the target after total − tfinal, and
    /// between them b = ⌊(b₀ − b_T)(1 − (t − tinit)/(total − tfinal − tinit))³ + b_T⌋, pruning when t is a multiple of deltaT.
    /// </summary>
    public static (int Budget, bool Mask) Budget(int step, int initial, int target, int tinit, int tfinal, int total, int deltaT)
    {
        if (step <= tinit) return (initial, false);
        if (step > total - tfinal) return (target, true);
        double mul = 1 - (double)(step - tinit) / (total - tfinal - tinit);
        return ((int)((initial - target) * Math.Pow(mul, 3) + target), step % deltaT == 0);
    }

    /// <summary>The regulariser mean over A's and B's of ‖AAᵀ − I‖_F and ‖BᵀB − I‖_F, times orth_reg_weight.</summary>
    public Tensor? ExtraLoss()
    {
        Tensor? sum = null;
        foreach (var (_, layer) in layers)
        {
            var (a, _, b) = layer.Factors;
            var pair = OrthPenalty(a.matmul(a.t())) + OrthPenalty(b.t().matmul(b));
            sum = sum is null ? pair : sum + pair;
        }
        return sum is null ? null : sum * (config.OrthRegWeight / (2.0 * layers.Count));
    }

    /// <summary>‖C − I‖_F of a square matrix.</summary>
    public static Tensor OrthPenalty(Tensor cov) => linalg.norm(cov - eye(cov.shape[0], dtype: cov.dtype, device: cov.device));

    /// <inheritdoc/>
    public void AfterStep(int step)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (step < total - config.Tfinal)
        {
            UpdateImportance();
            var (budget, mask) = Budget(step, InitialBudget, TargetBudget, config.Tinit, config.Tfinal, total, config.DeltaT);
            if (mask) MaskToBudget(budget);
        }
        else if (step == total - config.Tfinal)
        {
            MaskToBudget(TargetBudget);   // the final allocation; the statistics are no longer needed
            foreach (var t in avgIpt.Concat(avgUnc).SelectMany(x => x)) t.zero_();
        }
        else foreach (var (_, layer) in layers) layer.ApplyMask();
    }

    private void UpdateImportance()
    {
        for (int i = 0; i < layers.Count; i++)
        {
            var (a, e, b) = layers[i].Layer.Factors;
            Tensor[] ps = [a, e, b];
            for (int k = 0; k < 3; k++)
            {
                if (ps[k].grad is not { } g) continue;
                var ipt = (ps[k] * g).abs().to_type(ScalarType.Float32);
                avgIpt[i][k].mul_(config.Beta1).add_(ipt, alpha: 1 - config.Beta1);
                avgUnc[i][k].mul_(config.Beta2).add_((ipt - avgIpt[i][k]).abs(), alpha: 1 - config.Beta2);
            }
        }
    }

    /// <summary>
    /// Per layer and rank: score(E_i) + mean over A's row i + mean over B's column i of Ī·Ū (PEFT's triplet score).
    /// </summary>
    public Tensor[] RankScores() => [.. Enumerable.Range(0, layers.Count).Select(i =>
        (avgIpt[i][1] * avgUnc[i][1]).view(-1) + (avgIpt[i][0] * avgUnc[i][0]).mean([1]) + (avgIpt[i][2] * avgUnc[i][2]).mean([0]))];

    /// <summary>Keeps the <paramref name="budget"/> highest-scoring ranks over all layers (PEFT: score ≤ the (b₀ − budget)-th smallest is pruned).</summary>
    public void MaskToBudget(int budget)
    {
        var scores = RankScores();
        int k = InitialBudget - budget;
        if (k <= 0) return;
        var all = cat(scores.Select(s => s.view(-1)).ToArray());
        double threshold = all.kthvalue(k, 0).values.item<float>();
        for (int i = 0; i < layers.Count; i++)
        {
            var kept = scores[i].gt(threshold).cpu().data<bool>().ToArray();
            layers[i].Layer.Kept = kept;
            layers[i].Layer.ApplyMask();
        }
    }

    /// <inheritdoc/>
    public IEnumerable<(string Key, Tensor Value)> State()
    {
        for (int i = 0; i < layers.Count; i++)
        {
            for (int k = 0; k < 3; k++)
            {
                yield return ($"adalora.ipt.{layers[i].Name}.{k}", avgIpt[i][k]);
                yield return ($"adalora.unc.{layers[i].Name}.{k}", avgUnc[i][k]);
            }
            yield return ($"adalora.kept.{layers[i].Name}", tensor(layers[i].Layer.Kept).to_type(ScalarType.Float32));
        }
    }

    /// <inheritdoc/>
    public void Load(Func<string, Tensor?> read)
    {
        using var noGrad = no_grad();
        for (int i = 0; i < layers.Count; i++)
        {
            for (int k = 0; k < 3; k++)
            {
                avgIpt[i][k].copy_(read($"adalora.ipt.{layers[i].Name}.{k}") ?? throw new InvalidDataException($"checkpoint lacks AdaLoRA statistics of {layers[i].Name}"));
                avgUnc[i][k].copy_(read($"adalora.unc.{layers[i].Name}.{k}") ?? throw new InvalidDataException($"checkpoint lacks AdaLoRA statistics of {layers[i].Name}"));
            }
            var kept = read($"adalora.kept.{layers[i].Name}") ?? throw new InvalidDataException($"checkpoint lacks AdaLoRA's rank mask of {layers[i].Name}");
            layers[i].Layer.Kept = kept.gt(0.5).cpu().data<bool>().ToArray();
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in avgIpt.Concat(avgUnc).SelectMany(x => x)) t.Dispose();
    }
}
