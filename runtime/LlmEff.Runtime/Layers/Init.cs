using System;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>Weight initialisation used by generated modules (GPT-2's scheme: N(0, 0.02), residual
/// output projections scaled by 1/√(2·layers), biases zero, norms one).</summary>
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

    /// <summary>Fills with zeros (biases).</summary>
    public static void Zeros(Tensor? bias)
    {
        if (bias is null) return;
        using var _ = no_grad();
        bias.zero_();
    }
}
