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
    /// The segment must be a pure function of <paramref name="x"/>, module parameters and tensors that need no
    /// gradient (masks, rotary tables); it must not mutate state (no KV cache). Tensors with gradient history that the
    /// segment reads besides <paramref name="x"/> go through <see cref="Apply(Func{IReadOnlyList{Tensor}, Tensor}, IReadOnlyList{Tensor})"/>.
    /// </summary>
    public static Tensor Apply(Func<Tensor, Tensor> segment, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(segment);
        return Apply(inputs => segment(inputs[0]), [x]);
    }

    /// <summary>
    /// <paramref name="segment"/>(<paramref name="inputs"/>), recomputed in backward, with gradients handed to every
    /// input that requires one (e.g. a T5 decoder block's hidden states, the encoder output it attends to and the
    /// shared position bias).
    /// </summary>
    public static Tensor Apply(Func<IReadOnlyList<Tensor>, Tensor> segment, IReadOnlyList<Tensor> inputs)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (inputs.Count == 0) throw new ArgumentException("a checkpointed segment needs at least one input", nameof(inputs));
        if (!is_grad_enabled()) return segment(inputs);
        // With frozen embeddings the first block's input needs no gradient, and a function none of whose inputs needs
        // one is not part of the graph at all: the parameters inside would get no gradient (PyTorch's reentrant
        // checkpoint has the same trap; transformers works around it with enable_input_require_grads). Nothing upstream
        // needs that gradient, so a leaf that asks for one is enough.
        var args = inputs.ToArray();
        if (!args.Any(t => t.requires_grad)) args[0] = args[0].detach().requires_grad_(true);
        return Recompute.apply([new Segment(segment, RngState.Capture()), .. args]);
    }

    private sealed record Segment(Func<IReadOnlyList<Tensor>, Tensor> Run, RngState Rng);

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

        // vars: the segment, then its input tensors
        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var segment = (Segment)vars[0];
            var inputs = vars.Skip(1).Cast<Tensor>().ToArray();
            ctx.save_for_backward([.. inputs]);
            ctx.save_data("segment", segment);
            ctx.save_data("needs", inputs.Select(t => t.requires_grad).ToArray());
            // runs with gradients off (the function's forward always does); the inner scope frees the block's
            // intermediates now instead of at the end of the step
            using var scope = NewDisposeScope();
            return segment.Run(inputs).MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var segment = (Segment)ctx.get_data("segment");
            var needs = (bool[])ctx.get_data("needs");
            var after = RngState.Capture();
            using var scope = NewDisposeScope();
            var grads = new List<Tensor> { null! };                                  // the segment gets none
            using (enable_grad())
            {
                var leaves = saved.Select((t, i) => t.detach().requires_grad_(needs[i])).ToArray();
                segment.Rng.Restore();
                var y = segment.Run(leaves);
                after.Restore();
                // parameter gradients accumulate into .grad as in the plain backward; the inputs' are handed on
                autograd.backward([y], [gradOutput]);
                for (int i = 0; i < leaves.Length; i++)
                    grads.Add(needs[i] ? (leaves[i].grad ?? zeros_like(leaves[i])).MoveToOuterDisposeScope() : null!);
            }
            return grads;
        }
    }
}
