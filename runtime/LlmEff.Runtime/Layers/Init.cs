using System;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>Weight initialisation used by generated modules: GPT-2's scheme (N(0, 0.02), residual output projections
/// scaled by 1/√(2·layers), biases zero, norms one) or, for <c>Init = InitScheme.PyTorchDefault</c>, what PyTorch's
/// default layers start with (<see cref="PyTorchLinear"/>, <see cref="Uniform"/>).</summary>
public static class Init
{
    /// <summary>Standard deviation for ordinary weights.</summary>
    public const double Std = 0.02;

    /// <summary>Fills with N(0, std²) without recording autograd history.</summary>
    public static void Normal(Tensor? weight, double std = Std)
    {
        ArgumentNullException.ThrowIfNull(weight);
        using var _ = no_grad();
        nn.init.normal_(weight, 0, std);
    }

    /// <summary>N(0, (0.02/√(2·layers))²): keeps the residual stream's variance flat with depth.</summary>
    public static void ResidualOutput(Tensor? weight, int layers) => Normal(weight, Std / Math.Sqrt(2.0 * layers));

    /// <summary>Fills with U(−bound, bound) without recording autograd history.</summary>
    public static void Uniform(Tensor? tensor, double bound)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!(bound > 0)) throw new ArgumentOutOfRangeException(nameof(bound), bound, "The bound must be positive.");
        using var _ = no_grad();
        nn.init.uniform_(tensor, -bound, bound);
    }

    /// <summary>PyTorch's nn.Linear.reset_parameters: kaiming_uniform_(a = √5) on the weight, which is
    /// U(±1/√fan_in), and the bias U(±1/√fan_in) (torch/nn/modules/linear.py).</summary>
    public static void PyTorchLinear(Tensor? weight, Tensor? bias, long fanIn)
    {
        if (fanIn < 1) throw new ArgumentOutOfRangeException(nameof(fanIn), fanIn, "A linear layer has at least one input.");
        var bound = 1.0 / Math.Sqrt(fanIn);
        Uniform(weight, bound);
        if (bias is not null) Uniform(bias, bound);
    }

    /// <summary>Fills with zeros (biases).</summary>
    public static void Zeros(Tensor? bias)
    {
        if (bias is null) return;
        using var _ = no_grad();
        bias.zero_();
    }
}
