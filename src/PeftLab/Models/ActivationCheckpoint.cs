using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>
/// Activation checkpointing: runs a segment of the network (one transformer block) without keeping its
/// intermediate activations, and runs it again in backward to get them (the "reentrant" form of PyTorch's
/// <c>torch.utils.checkpoint</c>; TorchSharp has no checkpoint utility, so it is written here on TorchSharp's custom
/// autograd functions). Memory per checkpointed block drops from every activation the block's backward needs to its
/// input alone, for the price of a second forward of the block. Gradients equal the plain run's: the recompute sees
/// the same input, the same parameters and the same random state (dropout masks), and its backward accumulates into
/// the same parameter gradients.
/// </summary>
public static class ActivationCheckpoint
{
    /// <summary>
    /// <paramref name="segment"/>(<paramref name="x"/>), recomputed in backward. Outside gradient mode it is a plain call.
    /// The segment must be a pure function of <paramref name="x"/>, module parameters and tensors that live until
    /// backward (masks, rotary tables); it must not mutate state (no KV cache).
    /// </summary>
    public static Tensor Apply(Func<Tensor, Tensor> segment, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (!is_grad_enabled()) return segment(x);
        // With frozen embeddings the first block's input needs no gradient, and a function none of whose inputs needs
        // one is not part of the graph at all: the parameters inside would get no gradient (PyTorch's reentrant
        // checkpoint has the same trap; transformers works around it with enable_input_require_grads). Nothing upstream
        // needs that gradient, so a leaf that asks for one is enough.
        var input = x.requires_grad ? x : x.detach().requires_grad_(true);
        return Recompute.apply(input, new Segment(segment, RngState.Capture()));
    }

    private sealed record Segment(Func<Tensor, Tensor> Run, RngState Rng);

    /// <summary>The default CPU generator's state, so the recompute draws the same dropout masks.</summary>
    private sealed class RngState
    {
        private readonly byte[] bytes;
        private RngState(byte[] bytes) => this.bytes = bytes;

        public static RngState Capture()
        {
            using var state = random.get_rng_state();
            return new RngState(state.data<byte>().ToArray());
        }

        public void Restore()
        {
            using var state = tensor(bytes, dtype: ScalarType.Byte);
            random.set_rng_state(state);
        }
    }

    private sealed class Recompute : autograd.SingleTensorFunction<Recompute>
    {
        public override string Name => nameof(ActivationCheckpoint);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            var segment = (Segment)vars[1];
            ctx.save_for_backward([x]);
            ctx.save_data("segment", segment);
            // runs with gradients off (the function's forward always does); the inner scope frees the block's
            // intermediates now instead of at the end of the step
            using var scope = NewDisposeScope();
            return segment.Run(x).MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var x = ctx.get_saved_variables()[0];
            var segment = (Segment)ctx.get_data("segment");
            var after = RngState.Capture();
            using var scope = NewDisposeScope();
            Tensor gradInput;
            using (enable_grad())
            {
                var leaf = x.detach().requires_grad_(true);
                segment.Rng.Restore();
                var y = segment.Run(leaf);
                after.Restore();
                // parameter gradients accumulate into .grad as in the plain backward; the input's is handed on
                autograd.backward([y], [gradOutput]);
                gradInput = leaf.grad ?? zeros_like(x);
            }
            return [gradInput.MoveToOuterDisposeScope(), null!];   // one per forward argument; the segment gets none
        }
    }
}
