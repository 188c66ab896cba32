using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// DeepSeek V4's KV compressor: turns every complete window of <see cref="Ratio"/> tokens into one compressed entry
/// <see cref="HeadDim"/> wide. Per channel, entry w is a softmax-weighted sum over the window's positions,
/// <c>Σ_j softmax_j(Z_j + B_j) ⊙ C_j</c>, with values C = <c>wkv</c>·x, gate logits Z = <c>wgate</c>·x and a learned
/// position bias B = <c>ape</c> [Ratio, c·HeadDim]; then RMSNorm (<c>norm</c>) and rotary position on the last
/// <see cref="RopeDim"/> channels at the window's first position w·Ratio. Projections, bias and pooling run in fp32
/// whatever the model's dtype, as DeepSeek's do (its comment: "compression need fp32").
/// </summary>
/// <remarks>
/// <para>With <see cref="Overlap"/> (DeepSeek's CSA, ratio 4) the projections are 2·HeadDim wide and entry w pools
/// 2·Ratio slots: the first HeadDim channels of window w − 1's tokens and the last HeadDim channels of window w's
/// (window −1 is empty: zero values, −∞ logits). Without it (HCA, ratio 128) windows do not overlap. Source:
/// <c>Compressor</c> and <c>overlap_transform</c> in deepseek-ai's V4 <c>inference/model.py</c>. DeepSeek rotates
/// pairs of adjacent channels; this runtime rotates halves, as its other blocks do (<see cref="RotaryEmbedding"/>).</para>
/// <para>Only complete windows are compressed: a sequence of t tokens has t div Ratio entries, so a query at position
/// t may see entry w only when w &lt; (t + 1) div Ratio (its callers mask that), and no entry depends on a later token
/// than its window's last.</para>
/// </remarks>
public sealed class Compressor : nn.Module
{
    private readonly Linear wkv;
    private readonly Linear wgate;
    private readonly Parameter ape;
    private readonly RmsNorm norm;

    /// <summary>Creates the compressor; projections N(0, 0.02²), position bias zero (uniform pooling), norm one.</summary>
    public Compressor(int dim, int headDim, int ratio, bool overlap, int ropeDim, double normEps, Device? device = null) : base(nameof(Compressor))
    {
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "Width must be positive.");
        if (headDim <= 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "Entry width must be positive.");
        if (ratio < 2) throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "A compression ratio pools at least 2 tokens.");
        if (ropeDim < 0 || ropeDim % 2 != 0 || ropeDim > headDim)
            throw new ArgumentOutOfRangeException(nameof(ropeDim), ropeDim, $"The rotary part must be even and at most the entry width {headDim}.");
        Dim = dim;
        HeadDim = headDim;
        Ratio = ratio;
        Overlap = overlap;
        RopeDim = ropeDim;
        var width = (overlap ? 2L : 1L) * headDim;
        wkv = nn.Linear(dim, width, hasBias: false, device: device, dtype: ScalarType.Float32);
        wgate = nn.Linear(dim, width, hasBias: false, device: device, dtype: ScalarType.Float32);
        ape = new Parameter(torch.zeros(ratio, width, dtype: ScalarType.Float32, device: device));
        norm = new RmsNorm(headDim, normEps, device, ScalarType.Float32);
        RegisterComponents();
        Init.Normal(wkv.weight);
        Init.Normal(wgate.weight);
    }

    /// <summary>Input width.</summary>
    public int Dim { get; }

    /// <summary>Width of one compressed entry.</summary>
    public int HeadDim { get; }

    /// <summary>Tokens per window (the stride between entries).</summary>
    public int Ratio { get; }

    /// <summary>Whether each entry also pools the previous window (CSA).</summary>
    public bool Overlap { get; }

    /// <summary>Rotary channels at the end of each entry.</summary>
    public int RopeDim { get; }

    /// <summary>Compressed entries [batch, time div Ratio, HeadDim] of <paramref name="x"/> [batch, time, Dim] at
    /// positions 0 …, in x's dtype; <paramref name="rotary"/> supplies the RopeDim-wide rotary tables.</summary>
    public Tensor forward(Tensor x, RotaryEmbedding rotary)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rotary);
        if (x.dim() != 3 || x.shape[2] != Dim)
            throw new ArgumentException($"Expected input [batch, time, {Dim}], got [{string.Join(", ", x.shape)}].", nameof(x));
        long batch = x.shape[0], windows = x.shape[1] / Ratio, d = HeadDim;
        if (windows == 0) return torch.zeros(batch, 0, d, dtype: x.dtype, device: x.device);
        using var scope = NewDisposeScope();
        var x32 = x.narrow(1, 0, windows * Ratio).to(ScalarType.Float32);
        var kv = wkv.forward(x32).view(batch, windows, Ratio, -1);
        var score = wgate.forward(x32).view(batch, windows, Ratio, -1) + ape;
        if (Overlap)
        {
            // Slots 0 … Ratio−1: the previous window's first d channels; slots Ratio … 2·Ratio−1: this window's last d.
            var previousKv = torch.cat(new[] { torch.zeros(batch, 1, Ratio, d, device: x.device), kv.narrow(1, 0, windows - 1).narrow(-1, 0, d) }, 1);
            var previousScore = torch.cat(new[]
            {
                torch.full(new long[] { batch, 1, Ratio, d }, double.NegativeInfinity, device: x.device),
                score.narrow(1, 0, windows - 1).narrow(-1, 0, d),
            }, 1);
            kv = torch.cat(new[] { previousKv, kv.narrow(-1, d, d) }, 2);
            score = torch.cat(new[] { previousScore, score.narrow(-1, d, d) }, 2);
        }
        var pooled = (kv * score.softmax(2)).sum(2);
        var entries = norm.forward(pooled);
        if (RopeDim > 0)
        {
            // Entry w sits at its window's first position, w·Ratio.
            var (cos, sin) = rotary.Angles(windows * Ratio);
            var starts = torch.arange(0, windows * Ratio, Ratio, dtype: ScalarType.Int64, device: cos.device);
            var rotated = RotaryEmbedding.Rotate(entries.narrow(-1, d - RopeDim, RopeDim), cos.index_select(0, starts).to(ScalarType.Float32), sin.index_select(0, starts).to(ScalarType.Float32));
            entries = torch.cat(new[] { entries.narrow(-1, 0, d - RopeDim), rotated }, -1);
        }
        return entries.to(x.dtype).MoveToOuterDisposeScope();
    }
}
