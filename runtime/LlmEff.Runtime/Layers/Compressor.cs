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
        wkv = new Linear(dim, width, hasBias: false, device: device, dtype: ScalarType.Float32);
        wgate = new Linear(dim, width, hasBias: false, device: device, dtype: ScalarType.Float32);
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
        CheckInput(x, rotary);
        long batch = x.shape[0], windows = x.shape[1] / Ratio;
        if (windows == 0) return torch.zeros(batch, 0, HeadDim, dtype: x.dtype, device: x.device);
        using var scope = NewDisposeScope();
        var (kv, score) = Project(x.narrow(1, 0, windows * Ratio), 0);
        var (noKv, noScore) = EmptyWindow(batch, x.device);
        var pooled = Pool(kv.view(batch, windows, Ratio, -1), score.view(batch, windows, Ratio, -1), noKv, noScore);
        return Finish(pooled, 0, rotary, x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Decoding: feeds tokens <paramref name="x"/> [batch, n, Dim] at positions <paramref name="start"/> … and returns the
    /// entries of the windows they complete [batch, k, HeadDim] (k may be 0). <paramref name="state"/> holds what
    /// DeepSeek's <c>kv_state</c> and <c>score_state</c> hold, [batch, c·Ratio, c·HeadDim] each (c = 2 when
    /// overlapping): with overlap, slots 0 … Ratio − 1 the last complete window's projections (zero values and −∞ logits
    /// before the first), and the current unfinished window's tokens in the last Ratio slots.
    /// </summary>
    public Tensor Step(Tensor x, long start, CompressorState state, RotaryEmbedding rotary)
    {
        CheckInput(x, rotary);
        ArgumentNullException.ThrowIfNull(state);
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "A position cannot be negative.");
        using var scope = NewDisposeScope();
        long batch = x.shape[0], pending = start % Ratio, current = Overlap ? Ratio : 0;
        var (kv, score) = Project(x, start);
        // The unfinished window so far, then the new tokens: windows of the sequence from the current window's start.
        var sequenceKv = torch.cat(new[] { state.Values.narrow(1, current, pending), kv }, 1);
        var sequenceScore = torch.cat(new[] { state.Logits.narrow(1, current, pending), score }, 1);
        var length = sequenceKv.shape[1];
        var complete = length / Ratio;
        Tensor entries;
        using (no_grad())
        {
            if (complete > 0)
            {
                var windowsKv = sequenceKv.narrow(1, 0, complete * Ratio).view(batch, complete, Ratio, -1);
                var windowsScore = sequenceScore.narrow(1, 0, complete * Ratio).view(batch, complete, Ratio, -1);
                var pooled = Pool(windowsKv, windowsScore, state.Values.narrow(1, 0, Ratio), state.Logits.narrow(1, 0, Ratio));
                entries = Finish(pooled, start / Ratio, rotary, x.dtype);
                if (Overlap)
                {
                    state.Values.narrow(1, 0, Ratio).copy_(windowsKv.select(1, complete - 1));
                    state.Logits.narrow(1, 0, Ratio).copy_(windowsScore.select(1, complete - 1));
                }
            }
            else entries = torch.zeros(batch, 0, HeadDim, dtype: x.dtype, device: x.device);
            var rest = length - complete * Ratio;
            state.Values.narrow(1, current, rest).copy_(sequenceKv.narrow(1, complete * Ratio, rest));
            state.Logits.narrow(1, current, rest).copy_(sequenceScore.narrow(1, complete * Ratio, rest));
        }
        return entries.MoveToOuterDisposeScope();
    }

    /// <summary>A fresh decoding state for <paramref name="batch"/> sequences.</summary>
    public CompressorState NewState(long batch, Device? device = null)
    {
        var c = Overlap ? 2L : 1L;
        var values = torch.zeros(batch, c * Ratio, c * HeadDim, device: device);
        var logits = torch.full(new long[] { batch, c * Ratio, c * HeadDim }, double.NegativeInfinity, device: device);
        return new CompressorState(values, logits);
    }

    /// <summary>Values and gate logits (position bias added) [batch, n, c·HeadDim] in fp32 of tokens at positions
    /// <paramref name="start"/> ….</summary>
    private (Tensor Kv, Tensor Score) Project(Tensor x, long start)
    {
        var x32 = x.to(ScalarType.Float32);
        var positions = torch.arange(start, start + x.shape[1], dtype: ScalarType.Int64, device: x.device).remainder(Ratio);
        return (wkv.forward(x32), wgate.forward(x32) + ape.index_select(0, positions));
    }

    /// <summary>The window before window 0: zero values, −∞ logits.</summary>
    private (Tensor Kv, Tensor Score) EmptyWindow(long batch, Device device) =>
        (torch.zeros(batch, Ratio, (Overlap ? 2L : 1L) * HeadDim, device: device),
         torch.full(new long[] { batch, Ratio, (Overlap ? 2L : 1L) * HeadDim }, double.NegativeInfinity, device: device));

    /// <summary>Pooled entries [batch, windows, HeadDim] of complete windows [batch, windows, Ratio, c·HeadDim];
    /// <paramref name="previousKv"/> and <paramref name="previousScore"/> [batch, Ratio, c·HeadDim] are the window
    /// before the first (read only when overlapping).</summary>
    private Tensor Pool(Tensor kv, Tensor score, Tensor previousKv, Tensor previousScore)
    {
        long d = HeadDim, windows = kv.shape[1];
        if (Overlap)
        {
            // Slots 0 … Ratio−1: the previous window's first d channels; slots Ratio … 2·Ratio−1: this window's last d.
            var previousKvs = torch.cat(new[] { previousKv.unsqueeze(1), kv.narrow(1, 0, windows - 1) }, 1).narrow(-1, 0, d);
            var previousScores = torch.cat(new[] { previousScore.unsqueeze(1), score.narrow(1, 0, windows - 1) }, 1).narrow(-1, 0, d);
            kv = torch.cat(new[] { previousKvs, kv.narrow(-1, d, d) }, 2);
            score = torch.cat(new[] { previousScores, score.narrow(-1, d, d) }, 2);
        }
        return (kv * score.softmax(2)).sum(2);
    }

    /// <summary>RMSNorm, then rotary at each window's first position; windows numbered from <paramref name="firstWindow"/>.</summary>
    private Tensor Finish(Tensor pooled, long firstWindow, RotaryEmbedding rotary, ScalarType dtype)
    {
        long d = HeadDim, windows = pooled.shape[1];
        var entries = norm.forward(pooled);
        if (RopeDim > 0)
        {
            var last = (firstWindow + windows - 1) * Ratio;
            var (cos, sin) = rotary.Angles(last + 1);
            var starts = torch.arange(firstWindow * Ratio, last + 1, Ratio, dtype: ScalarType.Int64, device: cos.device);
            var rotated = RotaryEmbedding.Rotate(entries.narrow(-1, d - RopeDim, RopeDim), cos.index_select(0, starts).to(ScalarType.Float32), sin.index_select(0, starts).to(ScalarType.Float32));
            entries = torch.cat(new[] { entries.narrow(-1, 0, d - RopeDim), rotated }, -1);
        }
        return entries.to(dtype);
    }

    private void CheckInput(Tensor x, RotaryEmbedding rotary)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rotary);
        if (x.dim() != 3 || x.shape[2] != Dim)
            throw new ArgumentException($"Expected input [batch, time, {Dim}], got [{string.Join(", ", x.shape)}].", nameof(x));
    }
}

/// <summary>A <see cref="Compressor"/>'s decoding state: values and gate logits [batch, c·Ratio, c·HeadDim] in fp32.</summary>
public sealed class CompressorState : IDisposable
{
    internal CompressorState(Tensor values, Tensor logits)
    {
        Values = values.DetachFromDisposeScope();
        Logits = logits.DetachFromDisposeScope();
    }

    /// <summary>Projected values of the kept tokens.</summary>
    public Tensor Values { get; }

    /// <summary>Gate logits (position bias added) of the kept tokens.</summary>
    public Tensor Logits { get; }

    /// <summary>Values held per sequence (both tensors).</summary>
    public long ElementsPerSequence => (Values.numel() + Logits.numel()) / Values.shape[0];

    /// <summary>Releases both tensors.</summary>
    public void Dispose()
    {
        Values.Dispose();
        Logits.Dispose();
    }
}
