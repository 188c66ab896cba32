using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// Rotary position embedding with the half-split layout of Hugging Face Llama (<c>rotate_half</c>), so that
/// checkpoints exchanged under Llama names rotate the same channel pairs. The cos/sin tables are derived
/// state: neither parameters nor part of a checkpoint.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 never enumerates non-persistent buffers (so <c>to()</c> would leave them behind) and
/// registers every Tensor field as a persistent one, hence the tables sit in an array that this module moves
/// and disposes itself.
/// </remarks>
public sealed class RotaryEmbedding : nn.Module
{
    // [cos, sin], each [context, headDim]. An array, not Tensor fields: see remarks.
    private readonly Tensor[] tables;

    /// <summary>Precomputes angles for <paramref name="context"/> positions of heads <paramref name="headDim"/> wide with base <paramref name="theta"/>.</summary>
    public RotaryEmbedding(int headDim, int context, double theta, Device? device = null, ScalarType? dtype = null)
        : base(nameof(RotaryEmbedding))
    {
        if (headDim % 2 != 0) throw new ArgumentException($"Rotary embedding needs an even head width; got {headDim}.", nameof(headDim));
        using (var scope = NewDisposeScope())
        {
            // Tables are computed in fp64 on the CPU, then cast: positions up to 10^6 keep their phase.
            var inverseFrequency = torch.pow(theta, -torch.arange(0, headDim, 2, dtype: ScalarType.Float64) / headDim);
            var angles = torch.outer(torch.arange(context, dtype: ScalarType.Float64), inverseFrequency);
            var doubled = torch.cat(new[] { angles, angles }, dim: -1);
            var tableType = dtype ?? ScalarType.Float32;
            tables = new[]
            {
                doubled.cos().to(tableType).to(device ?? CPU).MoveToOuterDisposeScope(),
                doubled.sin().to(tableType).to(device ?? CPU).MoveToOuterDisposeScope(),
            };
        }
    }

    /// <summary>Moves the tables with the module (see remarks).</summary>
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        base._toEpilog(dtype, device, non_blocking);
        for (var i = 0; i < tables.Length; i++) tables[i] = Moved(tables[i]);

        Tensor Moved(Tensor table)
        {
            var moved = table.to(dtype ?? table.dtype, device ?? table.device).DetachFromDisposeScope();
            if (!ReferenceEquals(moved, table)) table.Dispose();
            return moved;
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var table in tables) table.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>Cosine and sine tables [time, headDim] for positions <paramref name="offset"/> … offset + time − 1.</summary>
    public (Tensor Cos, Tensor Sin) Angles(long time, long offset = 0) => (tables[0].narrow(0, offset, time), tables[1].narrow(0, offset, time));

    /// <summary>The whole cos and sin tables [context, headDim], for the fused single-token step (<see cref="Kernels.SingleTokenDecoder"/>).</summary>
    internal (Tensor Cos, Tensor Sin) Tables => (tables[0], tables[1]);

    /// <summary>Rotates <paramref name="x"/> [batch, heads, time, headDim] by the angles of <see cref="Angles"/>.</summary>
    /// <remarks>
    /// x·cos + rotate_half(x)·sin, with rotate_half(x) = [−x₂, x₁] written as roll(x, half)·[−1, +1]: the sign goes
    /// onto the (small, [time, headDim]) sine table instead of the activations, so the activations see three
    /// operations (mul, roll, addcmul) instead of five (neg, cat, two muls, add), and backward no longer scatters
    /// two half-width slices into zero-filled gradients. Same values as Hugging Face's rotate_half form.
    /// </remarks>
    public static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var signedSin = torch.cat(new[] { -sin.narrow(-1, 0, half), sin.narrow(-1, half, half) }, dim: -1);
        return (x * cos).addcmul_(x.roll(half, -1), signedSin, 1).MoveToOuterDisposeScope();
    }
}
