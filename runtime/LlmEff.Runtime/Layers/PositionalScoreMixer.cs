using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// The QKV study's symmetry-breaking term for attention whose scores are symmetric (queries are keys).
/// A fixed 2-D sinusoidal tensor <c>P[i, j] = [PE(i); PE(j)]</c> with <see cref="Channels"/> channels is added
/// to the score map and a learned 1×1 convolution mixes the channels back to one map:
/// <c>S'[i, j] = S[i, j]·Σw + Σ_c w_c·P[i, j, c] + b</c>. Because <c>P</c> splits into a query part and a key
/// part, the sum is <c>row(i) + column(j)</c>: it is computed from two vectors, never an n×n×m tensor.
/// </summary>
/// <remarks>
/// <c>PE</c> is the usual sinusoidal encoding of width <see cref="Channels"/>/2: channel 2k is
/// sin(t·ω_k), channel 2k+1 is cos(t·ω_k), with ω_k = 10000^(−2k/(Channels/2)). The weight has the shape of a
/// Conv2d(Channels, 1, 1) so that a PyTorch port can use one. The column term makes S' asymmetric; the row term
/// and the bias shift every score of a query equally and do not change the attention weights.
/// </remarks>
public sealed class PositionalScoreMixer : nn.Module
{
    /// <summary>Channels of the positional tensor (5 for the query position, 5 for the key position).</summary>
    public const int Channels = 10;

    private readonly Parameter weight;
    private readonly Parameter bias;

    /// <summary>Creates the mixer with weights near 1/Channels (Σw ≈ 1: scores start about unscaled) and zero bias.</summary>
    /// <remarks>Equal weights on the query and key halves would make the term symmetric too, so a little noise
    /// breaks the tie from the first step.</remarks>
    /// <param name="device">Where the parameters live.</param>
    /// <param name="dtype">Their type.</param>
    /// <param name="weightStd">When given, the weights start N(0, weightStd²) instead, as the QKV study's code draws
    /// them (0.02: Σw ≈ 0, so the scores start scaled towards 0).</param>
    public PositionalScoreMixer(Device? device = null, ScalarType? dtype = null, double? weightStd = null) : base(nameof(PositionalScoreMixer))
    {
        var shape = new long[] { 1, Channels, 1, 1 };
        if (weightStd is { } std && !(std > 0)) throw new ArgumentOutOfRangeException(nameof(weightStd), std, "The standard deviation must be positive.");
        weight = new Parameter(weightStd is { } s
            ? s * torch.randn(shape, dtype: dtype, device: device)
            : torch.full(shape, 1.0 / Channels, dtype: dtype, device: device) + 0.1 / Channels * torch.randn(shape, dtype: dtype, device: device));
        bias = new Parameter(torch.zeros(1, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <summary>Learned 1×1 convolution weight, [1, Channels, 1, 1].</summary>
    public Parameter Weight => weight;

    /// <summary>
    /// Attention with the mixed score map: softmax((q·kᵀ/√d)·Σw + row(i) + column(j) + b [+ causal mask])·v.
    /// <paramref name="query"/>, <paramref name="key"/> and <paramref name="value"/> have the same number of heads.
    /// </summary>
    public Tensor Attend(Tensor query, Tensor key, Tensor value, bool causal = true)
    {
        using var scope = NewDisposeScope();
        var (scale, bias) = ScoreAffine(query.shape[2], key.shape[2], query.device, query.dtype, causal);
        var output = nn.functional.scaled_dot_product_attention(query * scale, key, value, attn_mask: bias);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>The mixed score map S' for queries and keys of equal head count (for inspection and tests).</summary>
    public Tensor Scores(Tensor query, Tensor key)
    {
        using var scope = NewDisposeScope();
        var (scale, bias) = ScoreAffine(query.shape[2], key.shape[2], query.device, query.dtype, causal: false);
        var raw = query.matmul(key.transpose(-2, -1)) / Math.Sqrt(query.shape[^1]);
        return (raw * scale + bias).MoveToOuterDisposeScope();
    }

    /// <summary>Σw and the additive [queries, keys] map row(i) + column(j) + b, with −∞ above the diagonal when causal.</summary>
    private (Tensor Scale, Tensor Bias) ScoreAffine(long queries, long keys, Device device, ScalarType dtype, bool causal = true)
    {
        var w = weight.view(Channels).to(dtype);
        var half = Channels / 2;
        var rows = Encoding(queries, device, dtype).matmul(w.narrow(0, 0, half));   // [queries]
        var columns = Encoding(keys, device, dtype).matmul(w.narrow(0, half, half)); // [keys]
        var map = rows.unsqueeze(1) + columns.unsqueeze(0) + bias.to(dtype);
        if (causal)
        {
            // Queries sit at the last positions of the keys (same length in training).
            var mask = torch.ones(queries, keys, dtype: ScalarType.Bool, device: device).triu(keys - queries + 1);
            map = map.masked_fill(mask, double.NegativeInfinity);
        }
        return (w.sum(), map);
    }

    /// <summary>Sinusoidal encoding [positions, Channels/2].</summary>
    private static Tensor Encoding(long positions, Device device, ScalarType dtype)
    {
        var half = Channels / 2;
        var t = torch.arange(positions, dtype: ScalarType.Float64, device: device).unsqueeze(1);
        var k = torch.arange(half, dtype: ScalarType.Float64, device: device);
        var frequency = torch.pow(10000.0, -2.0 * torch.floor(k / 2) / half);
        var angle = t * frequency;
        var isCos = (k.remainder(2) == 1).unsqueeze(0);
        return torch.where(isCos, angle.cos(), angle.sin()).to(dtype);
    }
}
