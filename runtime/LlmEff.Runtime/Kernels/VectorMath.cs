using System;
using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlmEff.Kernels;

/// <summary>The row operations the single-token kernels share, fp32 by address, AVX2 where it pays.</summary>
internal static class VectorMath
{
    public static unsafe float Dot(float* a, float* b, int width)
    {
        var sum = Vector256<float>.Zero;
        var c = 0;
        for (; c + 8 <= width; c += 8) sum = Fma.MultiplyAdd(Avx.LoadVector256(a + c), Avx.LoadVector256(b + c), sum);
        var total = Vector256.Sum(sum);
        for (; c < width; c++) total += a[c] * b[c];
        return total;
    }

    /// <summary>into += scale · row.</summary>
    public static unsafe void AddScaled(float* into, float* row, float scale, int width)
    {
        var factor = Vector256.Create(scale);
        var c = 0;
        for (; c + 8 <= width; c += 8) Avx.Store(into + c, Fma.MultiplyAdd(Avx.LoadVector256(row + c), factor, Avx.LoadVector256(into + c)));
        for (; c < width; c++) into[c] += scale * row[c];
    }

    /// <summary>x / √(mean(x²) + eps) · weight, as <see cref="Layers.RmsNorm"/>; <paramref name="output"/> may be <paramref name="x"/>.</summary>
    public static unsafe void RmsNormalize(float* x, float* output, float* weight, int width, float eps)
    {
        var squares = Vector256<float>.Zero;
        var c = 0;
        for (; c + 8 <= width; c += 8)
        {
            var v = Avx.LoadVector256(x + c);
            squares = Fma.MultiplyAdd(v, v, squares);
        }
        var sum = Vector256.Sum(squares);
        for (; c < width; c++) sum += x[c] * x[c];
        var scale = 1 / MathF.Sqrt(sum / width + eps);
        for (c = 0; c < width; c++) output[c] = x[c] * scale * weight[c];
    }

    /// <summary>One head rotated in place as <see cref="Layers.RotaryEmbedding.Rotate"/> does: x·cos + rotate_half(x)·sin,
    /// with rotate_half(x) = [−x₂, x₁] over the two halves.</summary>
    public static unsafe void RotateHalves(float* x, float* cos, float* sin, int width)
    {
        var half = width / 2;
        var i = 0;
        for (; i + 8 <= half; i += 8)
        {
            var first = Avx.LoadVector256(x + i);
            var second = Avx.LoadVector256(x + i + half);
            Avx.Store(x + i, first * Avx.LoadVector256(cos + i) - second * Avx.LoadVector256(sin + i));
            Avx.Store(x + i + half, second * Avx.LoadVector256(cos + i + half) + first * Avx.LoadVector256(sin + i + half));
        }
        for (; i < half; i++)
        {
            float first = x[i], second = x[i + half];
            x[i] = first * cos[i] - second * sin[i];
            x[i + half] = second * cos[i + half] + first * sin[i + half];
        }
    }

    /// <summary>A softmax's exponentials, eight at a time: scores[t] ← exp(scores[t] − max) for t &lt; count; returns their
    /// sum. A decoding step of DecodeFull at 640 positions takes about ten thousand of them (every cached position of
    /// every head and layer), which were the one scalar call per position left in the attention kernel.</summary>
    public static unsafe float ExponentiateAndSum(float* scores, int count, float max)
    {
        var shift = Vector256.Create(max);
        var sums = Vector256<float>.Zero;
        var t = 0;
        for (; t + 8 <= count; t += 8)
        {
            var weights = Vector256.Exp(Vector256.Load(scores + t) - shift);
            weights.Store(scores + t);
            sums += weights;
        }
        var total = Vector256.Sum(sums);
        for (; t < count; t++)
        {
            var weight = MathF.Exp(scores[t] - max);
            scores[t] = weight;
            total += weight;
        }
        return total;
    }

    /// <summary>head(job, h, scores) for heads part, part + parts, … of <paramref name="heads"/>, with a row of
    /// <paramref name="time"/> floats for the scores: on the stack up to 4,096, rented above (a stack holds 1 MiB).</summary>
    public static unsafe void ForHeads(nint job, int heads, int time, int part, int parts, delegate*<nint, int, float*, void> head)
    {
        var rented = time > 4096 ? ArrayPool<float>.Shared.Rent(time) : null;
        var scores = rented is null ? stackalloc float[time] : rented.AsSpan(0, time);
        try
        {
            fixed (float* s = scores)
            {
                for (var h = part; h < heads; h += parts) head(job, h, s);
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        }
    }
}
