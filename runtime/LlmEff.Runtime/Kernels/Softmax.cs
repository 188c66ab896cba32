using System;
using System.Runtime.Intrinsics;

namespace LlmEff.Kernels;

/// <summary>The exponentials of a softmax, eight at a time: a decoding step of DecodeFull takes about ten thousand of them
/// (every cached position of every head and layer), which one at a time through <see cref="MathF.Exp(float)"/> cost
/// about a sixth of the step.</summary>
internal static class Softmax
{
    /// <summary>scores[t] ← exp(scores[t] − max) for t &lt; count; returns their sum.</summary>
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
}
