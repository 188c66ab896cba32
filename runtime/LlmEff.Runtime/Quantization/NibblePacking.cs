using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>Two 4-bit codes per byte, the first (even-indexed) code in the low nibble.</summary>
public static class NibblePacking
{
    /// <summary>Packs uint8 codes (each below 16) along the last dimension, whose size must be even:
    /// byte i = codes[2i] | codes[2i+1] &lt;&lt; 4. The result is uint8 with half the last dimension.</summary>
    public static Tensor Pack(Tensor codes)
    {
        var shape = codes.shape;
        var last = shape[^1];
        if (last % 2 != 0) throw new ArgumentException($"The last dimension ({last}) must be even to pack two codes per byte.", nameof(codes));
        using var scope = NewDisposeScope();
        var pairs = codes.to(ScalarType.Byte).reshape(-1, last / 2, 2);
        var low = pairs.select(-1, 0);
        var high = pairs.select(-1, 1);
        var packedShape = (long[])shape.Clone();
        packedShape[^1] = last / 2;
        // high·16 + low stays within a byte because both codes are below 16.
        return (low + high * 16).to(ScalarType.Byte).view(packedShape).MoveToOuterDisposeScope();
    }

    /// <summary>Inverse of <see cref="Pack"/>: uint8 codes with twice the last dimension.</summary>
    public static Tensor Unpack(Tensor packed)
    {
        using var scope = NewDisposeScope();
        var bytes = packed.to(ScalarType.Byte);
        var fifteen = torch.tensor((byte)15, device: packed.device);
        var four = torch.tensor((byte)4, device: packed.device);
        var low = bytes.bitwise_and(fifteen);
        var high = bytes.bitwise_right_shift(four);
        var unpackedShape = (long[])packed.shape.Clone();
        unpackedShape[^1] *= 2;
        return torch.stack(new[] { low, high }, dim: -1).view(unpackedShape).MoveToOuterDisposeScope();
    }
}
