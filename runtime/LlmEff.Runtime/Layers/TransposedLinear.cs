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
        set // Module.to() moves a layer by setting the property named like each parameter; as nn.Linear's setter,
            // this frees the parameter it replaces and keeps the new one out of any dispose scope.
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Handle == weight_?.Handle) return;
            weight_?.Dispose();
            weight_ = (Parameter)value.DetachFromDisposeScope();
            ConditionallyRegisterParameter("weight", weight_);
        }
    }

    /// <summary>Bias, or null.</summary>
    public Parameter? bias
    {
        get => bias_;
        set
        {
            if (value?.Handle == bias_?.Handle) return;
            bias_?.Dispose();
            bias_ = (Parameter?)value?.DetachFromDisposeScope();
            ConditionallyRegisterParameter("bias", bias_);
        }
    }

    /// <summary>x · weight + bias. linear() on the transposed view runs the same GEMM as a Linear layer; no copy is made.</summary>
    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight.t(), bias);
}
