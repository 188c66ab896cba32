using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>The 4-bit floating-point element of MXFP4 and NVFP4: 1 sign bit (bit 3), 2 exponent bits, 1 mantissa
/// bit. Codes 0..7 are 0, 0.5, 1, 1.5, 2, 3, 4, 6; codes 8..15 are their negatives. There is no infinity or NaN.</summary>
public static class E2M1
{
    /// <summary>The largest magnitude, 6; larger inputs saturate to it.</summary>
    public const float MaxMagnitude = 6f;

    /// <summary>The sign bit of a code: <c>code | SignBit</c> is the negative of <c>code</c>.</summary>
    public const int SignBit = 8;

    private static readonly float[] Magnitudes = { 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f };

    /// <summary>The value of a code (only its low 4 bits are read). Code 8 is −0.</summary>
    public static float Decode(int code)
    {
        var magnitude = Magnitudes[code & 7];
        return (code & SignBit) != 0 ? -magnitude : magnitude;
    }

    /// <summary>The code nearest to <paramref name="value"/> with ties to the even code (the neighbour whose mantissa
    /// bit is 0: 0.25 → 0, 0.75 → 1, 1.25 → 1, 1.75 → 2, 2.5 → 2, 3.5 → 4, 5 → 4). Magnitudes above 6 (±∞ included)
    /// saturate to ±6. The sign bit copies the input's, so −0 and small negatives that round to zero give code 8 (−0).
    /// This is the scalar reference: a nearest-neighbour search, independent of the vectorised encoder.</summary>
    /// <exception cref="ArgumentOutOfRangeException">For NaN, which E2M1 cannot hold (the scaled formats carry NaN in
    /// their block scale instead).</exception>
    public static byte Encode(float value)
    {
        if (float.IsNaN(value)) throw new ArgumentOutOfRangeException(nameof(value), "E2M1 has no NaN.");
        var magnitude = Math.Min(Math.Abs((double)value), MaxMagnitude);
        var best = 0;
        var bestDistance = double.PositiveInfinity;
        for (var code = 0; code < Magnitudes.Length; code++)
        {
            var distance = Math.Abs(Magnitudes[code] - magnitude);
            if (distance < bestDistance || (distance == bestDistance && code % 2 == 0))
            {
                best = code;
                bestDistance = distance;
            }
        }
        return (byte)(float.IsNegative(value) ? best | SignBit : best);
    }

    /// <summary>Vectorised <see cref="Encode"/> of an fp32 tensor into uint8 codes. NaN encodes as a zero magnitude
    /// (callers mask non-finite blocks themselves).</summary>
    internal static Tensor EncodeTensor(Tensor scaled)
    {
        using var scope = NewDisposeScope();
        var magnitude = scaled.abs();
        // Round to nearest by counting the midpoints at or below the magnitude. At a tie the even code wins, so the
        // midpoint belongs to the upper neighbour (>=) when that one is even, else to the lower one (>).
        var code = magnitude.gt(0.25).to(ScalarType.Byte)
            + magnitude.ge(0.75).to(ScalarType.Byte)
            + magnitude.gt(1.25).to(ScalarType.Byte)
            + magnitude.ge(1.75).to(ScalarType.Byte)
            + magnitude.gt(2.5).to(ScalarType.Byte)
            + magnitude.ge(3.5).to(ScalarType.Byte)
            + magnitude.gt(5.0).to(ScalarType.Byte);
        var sign = scaled.signbit().to(ScalarType.Byte) * SignBit;
        return (code + sign).to(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>Vectorised <see cref="Decode"/> of uint8 codes into fp32 values.</summary>
    internal static Tensor DecodeTensor(Tensor codes)
    {
        var table = new float[16];
        for (var code = 0; code < table.Length; code++) table[code] = Decode(code);
        return TensorMath.Lookup(table, codes);
    }
}
