using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// Activation checkpointing: runs a block without recording its graph and keeps only the block's input; backward
/// runs the block again with the graph on and backpropagates through that. Peak activation memory drops to one
/// block's worth plus the block inputs, for roughly one extra forward per step.
/// </summary>
/// <remarks>The block must be a pure function of its input, the constants and its parameters (no dropout, no
/// state written during forward), or the recomputed forward would differ from the first. Other tensors it needs
/// (rotary tables) go in as constants: autograd keeps them alive for the recomputation, whereas tensors captured
/// by the block would be disposed with the forward's dispose scope long before backward runs.</remarks>
public static class ActivationCheckpoint
{
    /// <summary><paramref name="block"/>(<paramref name="input"/>, <paramref name="constants"/>), recomputed in
    /// backward. Outside training (no gradient wanted) it simply calls the block. Constants get no gradient.</summary>
    public static Tensor Apply(Func<Tensor, IReadOnlyList<Tensor>, Tensor> block, Tensor input, params Tensor[] constants)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(constants);
        if (!is_grad_enabled()) return block(input, constants);
        return RecomputeFunction.apply(input, block, constants);
    }

    private sealed class RecomputeFunction : autograd.SingleTensorFunction<RecomputeFunction>
    {
        private const string BlockKey = "block";

        public override string Name => nameof(RecomputeFunction);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var input = (Tensor)vars[0];
            var block = (Func<Tensor, IReadOnlyList<Tensor>, Tensor>)vars[1];
            var constants = (Tensor[])vars[2];
            ctx.save_for_backward(new List<Tensor> { input }.Concat(constants.Select(c => c.detach())).ToList());
            ctx.save_data(BlockKey, block);
            using (no_grad()) return block(input, constants);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
        {
            var block = (Func<Tensor, IReadOnlyList<Tensor>, Tensor>)ctx.get_data(BlockKey);
            var saved = ctx.get_saved_variables();
            using var _ = enable_grad();
            // A fresh leaf, so the inner backward stops at the block's input and hands its gradient out here.
            var input = saved[0].detach().requires_grad_();
            using var output = block(input, saved.Skip(1).ToList());
            autograd.backward(new List<Tensor> { output }, new List<Tensor> { grad_output });
            return new List<Tensor> { input.grad!, null!, null! };
        }
    }
}
