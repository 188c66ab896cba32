using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests.Quantization;

/// <summary>Bit-level views of tensors for exact comparisons.</summary>
internal static class QuantTestHelpers
{
    /// <summary>The fp32 bit patterns, every NaN mapped to one pattern (NaN payloads carry no meaning here).</summary>
    public static int[] Bits(float[] values) =>
        values.Select(v => BitConverter.SingleToInt32Bits(float.IsNaN(v) ? float.NaN : v)).ToArray();

    public static int[] Bits(Tensor values) => Bits(Floats(values));

    public static float[] Floats(Tensor values)
    {
        using var contiguous = values.to(ScalarType.Float32).contiguous();
        return contiguous.data<float>().ToArray();
    }

    public static byte[] Bytes(Tensor values)
    {
        using var contiguous = values.contiguous();
        return contiguous.data<byte>().ToArray();
    }

    public static Tensor Tensor(float[] values, params long[] shape) => torch.tensor(values).reshape(shape);

    /// <summary>Random normal values at several magnitudes, with a few exact grid points, ties, zeros and extremes.</summary>
    public static float[] RandomValues(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            var gaussian = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            var magnitude = Math.Pow(2, random.Next(-20, 20));
            values[i] = (i % 17) switch
            {
                0 => 0f,
                1 => -0f,
                2 => (float)Math.ScaleB(random.Next(-12, 13) * 0.25, random.Next(-10, 10)), // grid points and ties
                3 => (float)Math.ScaleB(gaussian, random.Next(-140, 120)),
                _ => (float)(gaussian * magnitude),
            };
        }
        return values;
    }
}
