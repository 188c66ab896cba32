using System;
using LlmEff.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// TorchSharp's <c>nn.Linear</c> (same parameter names, shapes and starting values, drawn from the generator in the
/// same order), except that a single row without autograd, a decoding step's product, runs on
/// <see cref="MatrixVector"/> on every libtorch thread instead of libtorch's one-thread matrix-vector product.
/// Everything else (training, batches, prefill, other dtypes and devices) is <c>nn.functional.linear</c>.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    private Parameter weight_;
    private Parameter? bias_;

    /// <summary>Creates the layer with PyTorch's starting values: kaiming_uniform_(a = √5) on the weight, i.e.
    /// U(±1/√inputs), and the bias U(±1/√inputs), as <c>nn.Linear</c> draws them.</summary>
    public Linear(long inputSize, long outputSize, bool hasBias = true, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Linear))
    {
        if (inputSize < 1) throw new ArgumentOutOfRangeException(nameof(inputSize), inputSize, "A linear layer needs at least one input.");
        if (outputSize < 1) throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, "A linear layer needs at least one output.");
        weight_ = new Parameter(torch.empty(outputSize, inputSize, dtype: dtype, device: device));
        nn.init.kaiming_uniform_(weight_, a: Math.Sqrt(5));
        register_parameter("weight", weight_);
        if (hasBias)
        {
            bias_ = new Parameter(torch.empty(outputSize, dtype: dtype, device: device));
            var bound = 1 / Math.Sqrt(inputSize);
            nn.init.uniform_(bias_, -bound, bound);
            register_parameter("bias", bias_);
        }
    }

    /// <summary>Weight, output × input.</summary>
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

    /// <summary>x · weightᵀ + bias.</summary>
    public override Tensor forward(Tensor x) => Apply(x, weight, bias);

    /// <summary><c>nn.functional.linear</c>, with a decoding step's single row on <see cref="MatrixVector"/> (also the tied output head's product).</summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias = null) =>
        MatrixVector.TryLinear(x, weight, bias) ?? nn.functional.linear(x, weight, bias);
}
