using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// A linear layer whose weight is stored input × output, as GPT-2's <c>Conv1D</c> stores it, so that a
/// module with GPT-2 parameter names also has GPT-2's tensor shapes and checkpoints load without transposes.
/// </summary>
public sealed class TransposedLinear : LinearParameters
{
    /// <summary>Creates the layer; the weight is left uninitialised (callers initialise it), the bias is zero.</summary>
    public TransposedLinear(long inFeatures, long outFeatures, bool hasBias = true, Device? device = null, ScalarType? dtype = null)
        : base(nameof(TransposedLinear),
            new Parameter(torch.empty(inFeatures, outFeatures, dtype: dtype, device: device)),
            hasBias ? new Parameter(torch.zeros(outFeatures, dtype: dtype, device: device)) : null)
    {
    }

    /// <summary>x · weight + bias (weight input × output). linear() on the transposed view runs the same GEMM as a Linear
    /// layer; no copy is made.</summary>
    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight.t(), bias);
}
