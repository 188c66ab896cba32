using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// The two parameters of the runtime's linear layers (<see cref="Linear"/>, <see cref="TransposedLinear"/>), named
/// <c>weight</c> and <c>bias</c> as on <c>nn.Linear</c>, with setters that behave as <c>nn.Linear</c>'s: Module.to()
/// moves a layer by setting the property named like each parameter, and the setter frees the parameter it replaces
/// and keeps the new one out of any dispose scope.
/// </summary>
public abstract class LinearParameters : nn.Module<Tensor, Tensor>
{
    private Parameter weight_;
    private Parameter? bias_;

    /// <summary>Registers <paramref name="weight"/> and, when given, <paramref name="bias"/>.</summary>
    protected LinearParameters(string name, Parameter weight, Parameter? bias) : base(name)
    {
        weight_ = weight;
        register_parameter("weight", weight_);
        if (bias is null) return;
        bias_ = bias;
        register_parameter("bias", bias_);
    }

    /// <summary>The weight.</summary>
    public Parameter weight
    {
        get => weight_;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Handle == weight_.Handle) return;
            weight_.Dispose();
            weight_ = (Parameter)value.DetachFromDisposeScope();
            ConditionallyRegisterParameter("weight", weight_);
        }
    }

    /// <summary>The bias, or null.</summary>
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
}
