using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// A linear layer whose weight is stored input × output, as GPT-2's <c>Conv1D</c> stores it, so that a
/// module with GPT-2 parameter names also has GPT-2's tensor shapes and checkpoints load without transposes.
/// </summary>
public sealed class TransposedLinear : nn.Module<Tensor, Tensor>
{
    private Parameter weight_;
    private Parameter? bias_;

    /// <summary>Creates the layer; the weight is left uninitialised (callers initialise it).</summary>
    public TransposedLinear(long inFeatures, long outFeatures, bool hasBias = true, Device? device = null, ScalarType? dtype = null)
        : base(nameof(TransposedLinear))
    {
        weight_ = new Parameter(torch.empty(inFeatures, outFeatures, dtype: dtype, device: device));
        register_parameter("weight", weight_);
        if (hasBias)
        {
            bias_ = new Parameter(torch.zeros(outFeatures, dtype: dtype, device: device));
            register_parameter("bias", bias_);
        }
    }

    /// <summary>Weight, input × output (named like TorchSharp's <c>Linear.weight</c>).</summary>
    public Parameter weight
    {
        get => weight_;
        set // Module.to() moves a layer by setting the property named like each parameter, as on nn.Linear
        {
            ArgumentNullException.ThrowIfNull(value);
            weight_ = value;
            ConditionallyRegisterParameter("weight", value);
        }
    }

    /// <summary>Bias, or null.</summary>
    public Parameter? bias
    {
        get => bias_;
        set
        {
            bias_ = value;
            ConditionallyRegisterParameter("bias", value);
        }
    }

    /// <summary>x · weight + bias. linear() on the transposed view runs the same GEMM as a Linear layer; no copy is made.</summary>
    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight.t(), bias);
}
