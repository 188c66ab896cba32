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
public sealed class Linear : LinearParameters
{
    /// <summary>Creates the layer with PyTorch's starting values: kaiming_uniform_(a = √5) on the weight, i.e.
    /// U(±1/√inputs), and the bias U(±1/√inputs), as <c>nn.Linear</c> draws them (weight first).</summary>
    public Linear(long inputSize, long outputSize, bool hasBias = true, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Linear), StartingWeight(inputSize, outputSize, device, dtype), hasBias ? StartingBias(inputSize, outputSize, device, dtype) : null)
    {
    }

    private static Parameter StartingWeight(long inputSize, long outputSize, Device? device, ScalarType? dtype)
    {
        if (inputSize < 1) throw new ArgumentOutOfRangeException(nameof(inputSize), inputSize, "A linear layer needs at least one input.");
        if (outputSize < 1) throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, "A linear layer needs at least one output.");
        var weight = new Parameter(torch.empty(outputSize, inputSize, dtype: dtype, device: device));
        nn.init.kaiming_uniform_(weight, a: Math.Sqrt(5));
        return weight;
    }

    private static Parameter StartingBias(long inputSize, long outputSize, Device? device, ScalarType? dtype)
    {
        var bias = new Parameter(torch.empty(outputSize, dtype: dtype, device: device));
        var bound = 1 / Math.Sqrt(inputSize);
        nn.init.uniform_(bias, -bound, bound);
        return bias;
    }

    /// <summary>x · weightᵀ + bias.</summary>
    public override Tensor forward(Tensor x) => Apply(x, weight, bias);

    /// <summary><c>nn.functional.linear</c>, with a decoding step's single row on <see cref="MatrixVector"/> (also the tied output head's product).</summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias = null) =>
        MatrixVector.TryLinear(x, weight, bias) ?? nn.functional.linear(x, weight, bias);
}
