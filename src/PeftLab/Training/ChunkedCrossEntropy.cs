using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Training;

/// <summary>
/// The LM head and its cross entropy over chunks of tokens, so that no [tokens, vocab] float32 tensor is ever
/// whole: for vocab 151,936 at 2048 tokens one such tensor is 1.2 GB, and the plain path holds the logits, their
/// float32 copy, the log-softmax and its gradient at once. Each chunk's logits are computed, reduced to the loss
/// and — when gradients are wanted — turned straight into the chunk's gradients with respect to the hidden states
/// and the head weight (softmax minus one-hot, times the weight / the hidden states), then freed. Backward only
/// scales those gradients by the incoming one, so no matmul is repeated (the approach of Liger-Kernel's fused
/// linear cross entropy). Written here because TorchSharp has no such op.
/// </summary>
public static class ChunkedCrossEntropy
{
    /// <summary>The target id that contributes no loss (as <see cref="nn.functional.cross_entropy"/>'s ignore_index).</summary>
    public const long IgnoreIndex = -100;

    /// <summary>Bytes of one chunk's float32 logits the chunk length aims at.</summary>
    public const long ChunkBytes = 64L << 20;

    /// <summary>Tokens per chunk for a vocabulary: <see cref="ChunkBytes"/> of float32 logits, at least 16 tokens.</summary>
    public static int ChunkTokens(long vocab) => (int)Math.Max(16, ChunkBytes / (4 * Math.Max(1, vocab)));

    /// <summary>
    /// Sum over tokens of −log softmax(<paramref name="hidden"/> Wᵀ)[target], float32 scalar; targets equal to
    /// <see cref="IgnoreIndex"/> add nothing. <paramref name="hidden"/> [N, d], <paramref name="weight"/> [V, d] (same
    /// dtype; logits are computed in it and reduced in float32, as the plain path does), <paramref name="targets"/> [N]
    /// int64. Gradients reach <paramref name="hidden"/> and <paramref name="weight"/> where they require them.
    /// </summary>
    public static Tensor Sum(Tensor hidden, Tensor weight, Tensor targets, int chunkTokens)
    {
        if (hidden.dim() != 2 || weight.dim() != 2 || hidden.shape[1] != weight.shape[1])
            throw new ArgumentException($"hidden [N, d] and weight [V, d] expected, got [{string.Join(", ", hidden.shape)}] and [{string.Join(", ", weight.shape)}]");
        if (targets.dim() != 1 || targets.shape[0] != hidden.shape[0])
            throw new ArgumentException($"targets [N = {hidden.shape[0]}] expected, got [{string.Join(", ", targets.shape)}]");
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkTokens, 1);
        return Fused.apply(hidden, weight, targets, chunkTokens)[0];
    }

    private sealed class Fused : autograd.MultiTensorFunction<Fused>
    {
        public override string Name => nameof(ChunkedCrossEntropy);

        public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (h, w, y, chunk) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (int)vars[3]);
            bool needH = h.requires_grad, needW = w.requires_grad;
            long n = h.shape[0];
            var total = zeros([], dtype: ScalarType.Float32, device: h.device);
            var gradH = needH ? zeros_like(h) : null;                                    // [N, d]
            var gradW = needW ? zeros(w.shape, dtype: ScalarType.Float32, device: w.device) : null;   // [V, d]
            for (long s = 0; s < n; s += chunk)
            {
                using var scope = NewDisposeScope();
                long len = Math.Min(chunk, n - s);
                var hc = h.narrow(0, s, len);                                            // [c, d]
                var yc = y.narrow(0, s, len);                                            // [c]
                var logits = nn.functional.linear(hc, w).to_type(ScalarType.Float32);   // [c, V]
                var lse = logits.logsumexp(1);                                           // [c]
                var valid = yc.ne(IgnoreIndex);                                          // [c]
                var safe = yc.where(valid, zeros_like(yc));                              // ignored rows read class 0, then drop out
                var picked = logits.gather(1, safe.unsqueeze(1)).squeeze(1);             // [c]
                total.add_(lse.sub(picked).where(valid, zeros_like(lse)).sum());
                if (!needH && !needW) continue;
                // d loss / d logits = softmax − one-hot, zero on ignored rows
                var g = logits.sub_(lse.unsqueeze(1)).exp_();                            // [c, V], in place of the logits
                g.scatter_add_(1, safe.unsqueeze(1), valid.to_type(ScalarType.Float32).neg().unsqueeze(1));
                g.mul_(valid.to_type(ScalarType.Float32).unsqueeze(1));
                var gc = g.to_type(w.dtype);
                if (gradH is not null) gradH.narrow(0, s, len).copy_(gc.matmul(w));      // [c, d]
                if (gradW is not null) gradW.add_(gc.t().matmul(hc).to_type(ScalarType.Float32));   // [V, d]
            }
            ctx.save_data("grads", new Grads(gradH, gradW?.to_type(w.dtype)));
            return [total];
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> gradOutputs)
        {
            var grads = (Grads)ctx.get_data("grads");
            var g = gradOutputs[0];
            return [grads.Hidden?.mul(g.to_type(grads.Hidden.dtype))!, grads.Weight?.mul(g.to_type(grads.Weight.dtype))!, null!, null!];   // one per forward argument
        }
    }

    /// <summary>The gradients computed in forward, held for backward (not saved tensors: nothing in them is an input).</summary>
    private sealed record Grads(Tensor? Hidden, Tensor? Weight);
}
