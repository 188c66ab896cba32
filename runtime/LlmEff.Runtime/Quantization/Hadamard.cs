using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>
/// The normalised Walsh–Hadamard rotation <c>x·H/√n</c> along the last dimension (n a power of two), by the fast
/// transform: log₂ n butterfly stages of sums and differences, then one multiplication by the fp32 value of 1/√n.
/// DeepSeek V4 rotates the indexer's queries and compressed keys with it before fake-quantizing them to FP4
/// (<c>rotate_activation</c> in deepseek-ai's V4 <c>inference/model.py</c>: <c>hadamard_transform(x, scale=n^-0.5)</c>);
/// the rotation is orthogonal, so q·k is unchanged, but an outlier channel is spread over all n channels before a
/// block shares one scale.
/// </summary>
/// <remarks>Every stage is elementwise fp32 additions in a fixed order, so <see cref="Rotate"/>,
/// <see cref="RotateReference"/> and the Python twin (<c>hadamard.py</c>) agree bit for bit.</remarks>
public static class Hadamard
{
    /// <summary>Rotates the last dimension of <paramref name="x"/> (computed in fp32, returned in x's dtype).</summary>
    /// <exception cref="ArgumentException">When the last dimension is not a power of two.</exception>
    public static Tensor Rotate(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var n = x.shape[^1];
        CheckLength(n);
        using var scope = NewDisposeScope();
        var y = x.to(ScalarType.Float32).contiguous();
        var leading = x.shape[..^1];
        for (long half = 1; half < n; half *= 2)
        {
            // Pairs (i, i + half) inside each block of 2·half: [..., blocks, 2, half].
            var pairs = y.reshape([.. leading, n / (2 * half), 2, half]);
            var a = pairs.select(-2, 0);
            var b = pairs.select(-2, 1);
            y = torch.stack(new[] { a + b, a - b }, dim: -2).reshape(x.shape);
        }
        using var scale = torch.tensor(Scale(n), dtype: ScalarType.Float32, device: x.device);
        return (y * scale).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The scalar reference: the same butterflies, loop by loop, on every row of <paramref name="rowLength"/>
    /// values.</summary>
    public static float[] RotateReference(ReadOnlySpan<float> values, int rowLength)
    {
        CheckLength(rowLength);
        if (values.Length % rowLength != 0)
            throw new ArgumentException($"{values.Length} values do not make whole rows of {rowLength}.", nameof(values));
        var result = values.ToArray();
        var scale = Scale(rowLength);
        for (var start = 0; start < result.Length; start += rowLength)
        {
            for (var half = 1; half < rowLength; half *= 2)
                for (var block = start; block < start + rowLength; block += 2 * half)
                    for (var i = block; i < block + half; i++)
                    {
                        float a = result[i], b = result[i + half];
                        result[i] = a + b;
                        result[i + half] = a - b;
                    }
            for (var i = start; i < start + rowLength; i++) result[i] *= scale;
        }
        return result;
    }

    /// <summary>1/√n rounded once to fp32 (the division and the square root are correctly rounded in double, as in
    /// the Python twin's <c>1.0 / math.sqrt(n)</c>).</summary>
    private static float Scale(long n) => (float)(1.0 / Math.Sqrt(n));

    private static void CheckLength(long n)
    {
        if (n < 1 || (n & (n - 1)) != 0)
            throw new ArgumentException($"The Hadamard rotation needs a power-of-two last dimension; got {n}.", "x");
    }
}
