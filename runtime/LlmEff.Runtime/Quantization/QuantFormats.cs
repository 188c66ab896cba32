using System;

namespace LlmEff.Quantization;

/// <summary>Fixed facts about each <see cref="QuantFormat"/>.</summary>
public static class QuantFormats
{
    /// <summary>The name papers and vendors use: MXFP4, NVFP4, FP8 E4M3, Int4. (The enum's own names are ambiguous
    /// for MXFP4, which <see cref="QuantFormat.Fp4"/> aliases.)</summary>
    public static string DisplayName(QuantFormat format) => format switch
    {
        QuantFormat.Mxfp4 => "MXFP4",
        QuantFormat.Nvfp4 => "NVFP4",
        QuantFormat.Fp8E4M3 => "FP8 E4M3",
        QuantFormat.Int4 => "Int4",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>Values per block scale along the last dimension: 32 for MXFP4, 16 for NVFP4, the group size for Int4
    /// (<paramref name="groupSize"/>, default 32), and 0 for FP8, which has one scale for the whole tensor.</summary>
    /// <exception cref="ArgumentException">A group size for a format other than Int4, or one that is not positive and
    /// even (two codes share a byte).</exception>
    public static int BlockSize(QuantFormat format, int? groupSize = null)
    {
        if (groupSize is { } size && format != QuantFormat.Int4)
            throw new ArgumentException($"{format} has a fixed block size; only Int4 takes a group size.", nameof(groupSize));
        return format switch
        {
            QuantFormat.Mxfp4 => 32,
            QuantFormat.Nvfp4 => 16,
            QuantFormat.Fp8E4M3 => 0,
            QuantFormat.Int4 => groupSize is { } group
                ? group > 0 && group % 2 == 0 ? group : throw new ArgumentException($"The Int4 group size must be positive and even, not {group}.", nameof(groupSize))
                : Quantizer.DefaultInt4GroupSize,
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
        };
    }

    /// <summary>Storage per value, element plus block scale, leaving out any per-tensor scale and padding: 4.25 for
    /// MXFP4 (4 + 8/32), 4.5 for NVFP4 (4 + 8/16), 8 for FP8, and 5 for Int4 at the default group size
    /// (4 + 32/32, the group scale being fp32).</summary>
    public static double NominalBitsPerValue(QuantFormat format, int? groupSize = null)
    {
        var blockSize = BlockSize(format, groupSize);
        return format switch
        {
            QuantFormat.Mxfp4 => 4 + 8.0 / blockSize,
            QuantFormat.Nvfp4 => 4 + 8.0 / blockSize,
            QuantFormat.Fp8E4M3 => 8,
            _ => 4 + 32.0 / blockSize,
        };
    }

    /// <summary>The largest element magnitude after scaling; scaled values beyond it are clipped (saturated):
    /// 6 for the E2M1 formats, 448 for FP8, 7 for Int4.</summary>
    public static float MaxElementMagnitude(QuantFormat format) => format switch
    {
        QuantFormat.Mxfp4 or QuantFormat.Nvfp4 => E2M1.MaxMagnitude,
        QuantFormat.Fp8E4M3 => E4M3.MaxValue,
        QuantFormat.Int4 => 7f,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };
}
