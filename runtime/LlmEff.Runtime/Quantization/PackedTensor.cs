using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>A tensor stored in a <see cref="QuantFormat"/>: codes, block scales and the tensor scale, as produced by
/// <see cref="Quantizer.Quantize"/>. Owns its tensors.</summary>
/// <remarks>Layouts, with <c>L</c> the original leading dimensions and <c>P</c> the last dimension padded to a multiple
/// of <see cref="BlockSize"/>:
/// <list type="bullet">
/// <item>MXFP4: <see cref="Codes"/> uint8 <c>L × P/2</c> (E2M1 nibbles, low nibble first); <see cref="BlockScales"/>
/// uint8 <c>L × P/32</c> E8M0 bytes; no tensor scale.</item>
/// <item>NVFP4: codes as MXFP4; block scales uint8 <c>L × P/16</c> E4M3 bytes; <see cref="TensorScale"/> one fp32.</item>
/// <item>FP8 E4M3: codes uint8 in the original shape, one E4M3 byte per value; no block scales; one fp32 tensor
/// scale.</item>
/// <item>Int4: codes as MXFP4 (two's-complement nibbles); block scales fp32 <c>L × P/group</c>; no tensor scale.</item>
/// </list></remarks>
public sealed class PackedTensor : IDisposable
{
    private readonly long[] shape;

    /// <summary>Wraps already encoded parts (for example read from a checkpoint); the parts must follow the layout
    /// described on this class. The new instance owns them.</summary>
    public PackedTensor(QuantFormat format, long[] shape, int blockSize, Tensor codes, Tensor? blockScales, Tensor? tensorScale)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(codes);
        if (codes.dtype != ScalarType.Byte) throw new ArgumentException("Codes are uint8.", nameof(codes));
        Format = format;
        this.shape = (long[])shape.Clone();
        BlockSize = blockSize;
        Codes = codes;
        BlockScales = blockScales;
        TensorScale = tensorScale;
    }

    /// <summary>The format of the codes.</summary>
    public QuantFormat Format { get; }

    /// <summary>The shape of the original tensor.</summary>
    public IReadOnlyList<long> Shape => shape;

    /// <summary>How many values the tensor holds (the product of <see cref="Shape"/>).</summary>
    public long NumberOfValues => shape.Aggregate(1L, (product, size) => product * size);

    /// <summary>Values per block scale along the last dimension; 0 for per-tensor scaling (FP8).</summary>
    public int BlockSize { get; }

    /// <summary>The element codes, uint8: two 4-bit codes per byte (low nibble first), or one E4M3 byte per value.</summary>
    public Tensor Codes { get; }

    /// <summary>One scale per block: E8M0 bytes (MXFP4), E4M3 bytes (NVFP4) or fp32 (Int4); null for FP8.</summary>
    public Tensor? BlockScales { get; }

    /// <summary>The fp32 scale of the whole tensor (NVFP4, FP8), a 0-dimensional tensor; null otherwise.</summary>
    public Tensor? TensorScale { get; }

    /// <summary>Bytes of storage: codes, block scales and tensor scale (padding included).</summary>
    public long Bytes =>
        Codes.numel() * Codes.ElementSize
        + (BlockScales is null ? 0 : BlockScales.numel() * BlockScales.ElementSize)
        + (TensorScale is null ? 0 : TensorScale.numel() * TensorScale.ElementSize);

    /// <summary>Storage bits per original value: exactly 4.25 for MXFP4 when the last dimension is a multiple of 32;
    /// 4.5 plus the 32-bit tensor scale spread over the values for NVFP4.</summary>
    public double BitsPerValue => 8.0 * Bytes / NumberOfValues;

    /// <summary>The element codes one per byte, uint8, the last dimension padded to whole blocks (for FP8, the
    /// codes as stored).</summary>
    public Tensor UnpackCodes() => Format == QuantFormat.Fp8E4M3 ? Codes.clone() : NibblePacking.Unpack(Codes);

    /// <summary>The values the codes stand for, as fp32 in the original shape, on the codes' device.</summary>
    public Tensor Dequantize() => Quantizer.Dequantize(this);

    /// <summary>Disposes the codes and scales.</summary>
    public void Dispose()
    {
        Codes.Dispose();
        BlockScales?.Dispose();
        TensorScale?.Dispose();
    }
}
