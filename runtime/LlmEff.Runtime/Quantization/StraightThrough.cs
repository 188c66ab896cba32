using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>The straight-through estimator for quantization-aware training: the forward pass uses the fake-quantized
/// weights, the backward pass treats quantization as the identity.</summary>
public static class StraightThrough
{
    /// <summary><see cref="Quantizer.FakeQuantize"/> of <paramref name="weights"/>, differentiable: the gradient flows
    /// back unchanged (plain STE) or, with <paramref name="clipped"/>, only where the value was within the element's
    /// range after scaling (|scaled value| ≤ <see cref="QuantFormats.MaxElementMagnitude"/>) and zero where it was
    /// saturated or its block held NaN or ∞.</summary>
    /// <param name="weights">The weights (usually a parameter that requires grad).</param>
    /// <param name="format">The format to fake-quantize into.</param>
    /// <param name="clipped">Zero the gradient of clipped values.</param>
    /// <param name="groupSize">Int4 only: the group size.</param>
    public static Tensor Apply(Tensor weights, QuantFormat format, bool clipped = false, int? groupSize = null) =>
        StraightThroughFunction.apply(weights, format, clipped, groupSize ?? 0);

    /// <summary>The custom autograd node; its non-tensor arguments are the format, the clipped flag and the group size
    /// (0 for the default).</summary>
    private sealed class StraightThroughFunction : autograd.SingleTensorFunction<StraightThroughFunction>
    {
        private const string ClippedKey = "clipped";

        public override string Name => nameof(StraightThroughFunction);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var weights = (Tensor)vars[0];
            var format = (QuantFormat)vars[1];
            var clipped = (bool)vars[2];
            var groupSize = (int)vars[3];
            var (values, inRange) = Quantizer.FakeQuantizeWithRange(weights, format, groupSize == 0 ? null : groupSize);
            ctx.save_data(ClippedKey, clipped);
            if (clipped)
            {
                // Kept alive until the graph has taken its own reference (right after forward returns).
                ctx.save_for_backward(new List<Tensor> { inRange });
            }
            else
            {
                inRange.Dispose();
            }
            return values;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
        {
            var gradient = (bool)ctx.get_data(ClippedKey)
                ? grad_output * ctx.get_saved_variables()[0]
                : grad_output.clone();
            // One entry per forward argument; the format, flag and group size have none.
            return new List<Tensor> { gradient, null!, null!, null! };
        }
    }
}
