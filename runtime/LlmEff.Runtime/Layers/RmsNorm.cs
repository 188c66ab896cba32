using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>Root-mean-square normalization with a learned per-channel scale (no bias, no mean removal).
/// TorchSharp 0.107 has none built in.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;

    /// <summary>Creates the norm over the last dimension of size <paramref name="dim"/>, scale initialised to one.</summary>
    public RmsNorm(long dim, double eps = 1e-5, Device? device = null, ScalarType? dtype = null) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(torch.ones(dim, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <summary>The learned scale, one value per channel.</summary>
    public Parameter Weight => weight;

    /// <summary>Added to the mean square before the root.</summary>
    public double Eps => eps;

    /// <summary>x / √(mean(x²) + eps) · weight over the last dimension.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // Accumulate the mean square in fp32 even for bf16 activations: the sum over a wide row loses
        // precision fast otherwise.
        var x32 = x.to(ScalarType.Float32);
        var normalized = x32 * torch.rsqrt(x32.square().mean(new long[] { -1 }, keepdim: true) + eps);
        return (normalized.to(x.dtype) * weight).MoveToOuterDisposeScope();
    }
}
