using System;

namespace LlmEff.Quantization;

/// <summary>The result of <see cref="ReferenceQuantizer.Quantize"/>: codes unpacked, one per value, in row-major order
/// without padding.</summary>
/// <param name="Format">The format.</param>
/// <param name="RowLength">Values per row (the last dimension).</param>
/// <param name="BlockSize">Values per block scale; 0 for per-tensor scaling.</param>
/// <param name="Codes">One code per value: a 4-bit code for the E2M1 and Int4 formats, an E4M3 byte for FP8.</param>
/// <param name="BlockScaleCodes">E8M0 (MXFP4) or E4M3 (NVFP4) bytes, one per block, row by row; empty otherwise.</param>
/// <param name="GroupScales">Int4 fp32 group scales, one per group; empty otherwise.</param>
/// <param name="TensorScale">The fp32 tensor scale (NVFP4, FP8); 1 otherwise.</param>
public sealed record ReferenceEncoding(QuantFormat Format, int RowLength, int BlockSize, byte[] Codes,
    byte[] BlockScaleCodes, float[] GroupScales, float TensorScale);

/// <summary>Scalar, loop-by-loop quantization following the definitions on <see cref="Quantizer"/> literally, as the
/// reference the vectorised path must match bit for bit. It rounds with nearest-value searches
/// (<see cref="E2M1.Encode"/>, <see cref="E4M3.Encode"/>) and takes exponents with <see cref="Math.ILogB(double)"/>,
/// sharing no code with the tensor path. Slow; meant for tests and small checks.</summary>
public static class ReferenceQuantizer
{
    /// <summary>Quantizes rows of <paramref name="rowLength"/> values (the last dimension of a row-major tensor).</summary>
    /// <param name="values">The values, row-major; the length must be a multiple of <paramref name="rowLength"/>.</param>
    /// <param name="rowLength">Values per row.</param>
    /// <param name="format">The target format.</param>
    /// <param name="groupSize">Int4 only: the group size (default 32).</param>
    public static ReferenceEncoding Quantize(ReadOnlySpan<float> values, int rowLength, QuantFormat format, int? groupSize = null)
    {
        if (rowLength <= 0 || values.Length == 0 || values.Length % rowLength != 0)
            throw new ArgumentException($"{values.Length} values do not make whole rows of {rowLength}.", nameof(values));
        var blockSize = QuantFormats.BlockSize(format, groupSize);
        return format switch
        {
            QuantFormat.Mxfp4 => QuantizeMxfp4(values, rowLength, blockSize),
            QuantFormat.Nvfp4 => QuantizeNvfp4(values, rowLength, blockSize),
            QuantFormat.Fp8E4M3 => QuantizeFp8(values, rowLength),
            QuantFormat.Int4 => QuantizeInt4(values, rowLength, blockSize),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
        };
    }

    /// <summary>The values an encoding stands for, row-major, as fp32.</summary>
    public static float[] Dequantize(ReferenceEncoding encoding)
    {
        ArgumentNullException.ThrowIfNull(encoding);
        var values = new float[encoding.Codes.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var code = encoding.Codes[i];
            var block = BlockIndex(i, encoding.RowLength, encoding.BlockSize);
            values[i] = encoding.Format switch
            {
                // Exact in double: a 2-bit significand times a power of two, representable in fp32.
                QuantFormat.Mxfp4 => (float)(E2M1.Decode(code) * (double)E8M0.Decode(encoding.BlockScaleCodes[block])),
                QuantFormat.Nvfp4 => E2M1.Decode(code) * (E4M3.Decode(encoding.BlockScaleCodes[block]) * encoding.TensorScale),
                QuantFormat.Fp8E4M3 => E4M3.Decode(code) * encoding.TensorScale,
                QuantFormat.Int4 => (code >= 8 ? code - 16 : code) * encoding.GroupScales[block],
                _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding.Format, null),
            };
        }
        return values;
    }

    /// <summary><see cref="Dequantize"/> of <see cref="Quantize"/>.</summary>
    public static float[] FakeQuantize(ReadOnlySpan<float> values, int rowLength, QuantFormat format, int? groupSize = null) =>
        Dequantize(Quantize(values, rowLength, format, groupSize));

    /// <summary>The MXFP4 E8M0 scale byte for a finite block maximum magnitude: <c>floor(log2 amax) − 2</c> clamped to
    /// [−127, 127], plus 127; 0 (2⁻¹²⁷) for a zero block. Exact for subnormal maxima too.</summary>
    public static byte Mxfp4ScaleCode(float blockAmax)
    {
        if (!float.IsFinite(blockAmax) || blockAmax < 0) throw new ArgumentOutOfRangeException(nameof(blockAmax), blockAmax, "A finite magnitude.");
        if (blockAmax == 0) return 0;
        // ILogB is exact for doubles, and every fp32 value (subnormals too) is a normal double.
        var exponent = Math.Clamp(Math.ILogB((double)blockAmax) - 2, -127, 127);
        return (byte)(exponent + E8M0.Bias);
    }

    /// <summary>
    /// The scalar reference for <see cref="IndexerQuantizer.FakeQuantize"/>: rows of <paramref name="rowLength"/> values
    /// fake-quantized to <paramref name="precision"/>. For FP4 and FP8 the block scale is found by search, the smallest
    /// power of two 2^e with <c>max·2^e ≥ amax</c> (amax floored as DeepSeek floors it), in exact double arithmetic, and
    /// elements round with the nearest-value encoders <see cref="E2M1.Encode"/> and <see cref="E4M3.Encode"/>; bf16
    /// rounds the fp32 bit pattern to nearest even. Shares no code with the vectorised path.
    /// </summary>
    public static float[] IndexerFakeQuantize(ReadOnlySpan<float> values, int rowLength, IndexerPrecision precision)
    {
        if (rowLength <= 0 || values.Length % rowLength != 0)
            throw new ArgumentException($"{values.Length} values do not make whole rows of {rowLength}.", nameof(values));
        var result = values.ToArray();
        switch (precision)
        {
            case IndexerPrecision.Fp32:
                return result;
            case IndexerPrecision.Bf16:
                for (var i = 0; i < result.Length; i++) result[i] = RoundToBf16(result[i]);
                return result;
            case IndexerPrecision.Fp4:
            case IndexerPrecision.Fp8:
                var fp4 = precision == IndexerPrecision.Fp4;
                var blockSize = fp4 ? IndexerQuantizer.Fp4BlockSize : IndexerQuantizer.Fp8BlockSize;
                if (rowLength % blockSize != 0)
                    throw new ArgumentException($"The row length ({rowLength}) must be a multiple of the block size {blockSize}.", nameof(rowLength));
                double max = fp4 ? E2M1.MaxMagnitude : E4M3.MaxValue;
                var floor = fp4 ? IndexerQuantizer.Fp4AmaxFloor : IndexerQuantizer.Fp8AmaxFloor;
                ForEachBlock(result.Length, rowLength, blockSize, (_, start, length) =>
                {
                    var (finite, amax) = Scan(result.AsSpan(start, length));
                    if (!finite)
                    {
                        for (var i = start; i < start + length; i++) result[i] = float.NaN;
                        return;
                    }
                    amax = Math.Max(amax, floor);
                    // Start where max·2^e ≤ 448·amax/1024 < amax, below the answer, and step up.
                    var exponent = Math.ILogB((double)amax) - 10;
                    while (max * Math.ScaleB(1.0, exponent) < amax) exponent++;
                    var scale = Math.ScaleB(1.0, exponent);
                    for (var i = start; i < start + length; i++)
                    {
                        var scaled = (float)(result[i] / scale); // exact: a power of two
                        var element = fp4 ? E2M1.Decode(E2M1.Encode(scaled)) : E4M3.Decode(E4M3.Encode(scaled));
                        result[i] = (float)(element * scale);
                    }
                });
                return result;
            default:
                throw new ArgumentOutOfRangeException(nameof(precision), precision, "Not an indexer precision.");
        }
    }

    /// <summary>fp32 → bf16 → fp32 with round to nearest, ties to even, on the bit pattern (NaN stays NaN).</summary>
    private static float RoundToBf16(float value)
    {
        if (float.IsNaN(value)) return value;
        var bits = (uint)BitConverter.SingleToInt32Bits(value);
        var rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
        return BitConverter.Int32BitsToSingle((int)(rounded & 0xFFFF0000u));
    }

    private static int BlockIndex(int valueIndex, int rowLength, int blockSize)
    {
        if (blockSize == 0) return 0;
        var blocksPerRow = (rowLength + blockSize - 1) / blockSize;
        var row = valueIndex / rowLength;
        return row * blocksPerRow + valueIndex % rowLength / blockSize;
    }

    /// <summary>Calls <paramref name="encodeBlock"/> for each block (start, length) of each row; the last block of a
    /// row may be short, which is the same as padding it with zeros.</summary>
    private static void ForEachBlock(int count, int rowLength, int blockSize, Action<int, int, int> encodeBlock)
    {
        var blocksPerRow = (rowLength + blockSize - 1) / blockSize;
        for (var row = 0; row < count / rowLength; row++)
            for (var b = 0; b < blocksPerRow; b++)
            {
                var start = row * rowLength + b * blockSize;
                encodeBlock(row * blocksPerRow + b, start, Math.Min(blockSize, rowLength - b * blockSize));
            }
    }

    private static (bool Finite, float Amax) Scan(ReadOnlySpan<float> values)
    {
        var finite = true;
        var amax = 0f;
        foreach (var v in values)
        {
            if (float.IsFinite(v)) amax = Math.Max(amax, Math.Abs(v));
            else finite = false;
        }
        return (finite, amax);
    }

    private static int BlockCount(int count, int rowLength, int blockSize) =>
        count / rowLength * ((rowLength + blockSize - 1) / blockSize);

    private static ReferenceEncoding QuantizeMxfp4(ReadOnlySpan<float> input, int rowLength, int blockSize)
    {
        var values = input.ToArray();
        var codes = new byte[values.Length];
        var scales = new byte[BlockCount(values.Length, rowLength, blockSize)];
        ForEachBlock(values.Length, rowLength, blockSize, (block, start, length) =>
        {
            var (finite, amax) = Scan(values.AsSpan(start, length));
            if (!finite)
            {
                scales[block] = E8M0.NaNCode; // codes stay 0
                return;
            }
            scales[block] = Mxfp4ScaleCode(amax);
            var scale = Math.ScaleB(1.0, scales[block] - E8M0.Bias);
            // The double quotient is exact, so rounding it to fp32 gives the correctly rounded fp32 quotient.
            for (var i = start; i < start + length; i++) codes[i] = E2M1.Encode((float)(values[i] / scale));
        });
        return new ReferenceEncoding(QuantFormat.Mxfp4, rowLength, blockSize, codes, scales, Array.Empty<float>(), 1f);
    }

    private static ReferenceEncoding QuantizeNvfp4(ReadOnlySpan<float> input, int rowLength, int blockSize)
    {
        var values = input.ToArray();
        var codes = new byte[values.Length];
        var scales = new byte[BlockCount(values.Length, rowLength, blockSize)];
        var tensorScale = Scan(values).Amax / (E4M3.MaxValue * E2M1.MaxMagnitude);
        ForEachBlock(values.Length, rowLength, blockSize, (block, start, length) =>
        {
            var (finite, amax) = Scan(values.AsSpan(start, length));
            if (!finite)
            {
                scales[block] = E4M3.NaNCode;
                return;
            }
            // fp32 operations in this order, exactly as the vectorised path.
            scales[block] = tensorScale > 0 ? E4M3.Encode(amax / E2M1.MaxMagnitude / tensorScale) : (byte)0;
            var scaleProduct = E4M3.Decode(scales[block]) * tensorScale;
            for (var i = start; i < start + length; i++)
                codes[i] = E2M1.Encode(scaleProduct > 0 ? values[i] / scaleProduct : MathF.CopySign(0f, values[i]));
        });
        return new ReferenceEncoding(QuantFormat.Nvfp4, rowLength, blockSize, codes, scales, Array.Empty<float>(), tensorScale);
    }

    private static ReferenceEncoding QuantizeFp8(ReadOnlySpan<float> values, int rowLength)
    {
        var codes = new byte[values.Length];
        var tensorScale = Scan(values).Amax / E4M3.MaxValue;
        for (var i = 0; i < values.Length; i++)
            codes[i] = !float.IsFinite(values[i]) ? E4M3.NaNCode
                : E4M3.Encode(tensorScale > 0 ? values[i] / tensorScale : MathF.CopySign(0f, values[i]));
        return new ReferenceEncoding(QuantFormat.Fp8E4M3, rowLength, 0, codes, Array.Empty<byte>(), Array.Empty<float>(), tensorScale);
    }

    private static ReferenceEncoding QuantizeInt4(ReadOnlySpan<float> input, int rowLength, int groupSize)
    {
        var values = input.ToArray();
        var codes = new byte[values.Length];
        var scales = new float[BlockCount(values.Length, rowLength, groupSize)];
        ForEachBlock(values.Length, rowLength, groupSize, (group, start, length) =>
        {
            var (finite, amax) = Scan(values.AsSpan(start, length));
            scales[group] = finite ? amax / 7f : float.NaN;
            if (!(scales[group] > 0)) return; // zero or NaN scale: codes stay 0
            for (var i = start; i < start + length; i++)
            {
                var level = (int)MathF.Round(Math.Clamp(values[i] / scales[group], -7f, 7f), MidpointRounding.ToEven);
                codes[i] = (byte)(level & 0xF);
            }
        });
        return new ReferenceEncoding(QuantFormat.Int4, rowLength, groupSize, codes, Array.Empty<byte>(), scales, 1f);
    }
}
