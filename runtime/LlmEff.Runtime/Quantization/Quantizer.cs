using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>Vectorised (TorchSharp) quantization into the <see cref="QuantFormat"/>s and back, bit-exact with
/// <see cref="ReferenceQuantizer"/>.</summary>
/// <remarks>
/// <para>Values are quantized as fp32 (bf16 and fp16 convert exactly; fp64 is first rounded to fp32). Blocks and groups
/// run along the last dimension; a last dimension that is not a multiple of the block size is padded with zeros, which
/// changes no scale. Every step is an exactly specified fp32 operation (exponents come from <c>frexp</c>, powers of two
/// from tables, divisions are true divisions, rounding is round-half-to-even), so the result should not depend on the
/// device or on vectorisation; the tests check it against the scalar reference on the CPU only.</para>
/// <para>Scales, per format:</para>
/// <list type="bullet">
/// <item><see cref="QuantFormat.Mxfp4"/>: block scale 2^e with e = floor(log2 amax) − 2 clamped to [−127, 127], stored
/// as the E8M0 byte e + 127; elements E2M1(v / 2^e).</item>
/// <item><see cref="QuantFormat.Nvfp4"/>: tensor scale t = amax / 2688 (448·6) in fp32; block scale
/// s = E4M3((amax_block / 6) / t); elements E2M1(v / (s·t)).</item>
/// <item><see cref="QuantFormat.Fp8E4M3"/>: tensor scale t = amax / 448; elements E4M3(v / t), one byte each.</item>
/// <item><see cref="QuantFormat.Int4"/>: group scale s = amax_group / 7 kept as fp32; elements
/// round-half-to-even(v / s) clamped to [−7, 7] (symmetric: −8 is never produced, though it decodes), stored as
/// two's-complement nibbles.</item>
/// </list>
/// <para>Zeros: an all-zero block (or a tensor whose scale is 0) stores scale code 0 (E8M0 0 = 2⁻¹²⁷, E4M3 0 = 0, Int4
/// scale 0) and zero codes (with the sign bit of −0 inputs kept for the float formats), and decodes to zeros. In NVFP4 a
/// block whose scale rounds to E4M3 zero quantizes to zeros likewise.</para>
/// <para>NaN and ±∞: E2M1 and Int4 cannot hold them, so, as the OCP MX specification does, a non-finite value poisons
/// its scaling block: the block stores the NaN scale (E8M0 0xFF, E4M3 0x7F, Int4 fp32 NaN) and zero codes, and every
/// value of the block decodes to NaN. Tensor scales are taken over the finite values only, so one NaN does not wipe out
/// the tensor. FP8 elements encode NaN and ±∞ themselves as the E4M3 NaN 0x7F.</para>
/// <para>Saturation: finite values beyond the largest element after scaling clamp to it (±6 for E2M1, ±448 for E4M3,
/// ±7 for Int4).</para>
/// </remarks>
public static class Quantizer
{
    /// <summary>The Int4 group size used when none is given.</summary>
    public const int DefaultInt4GroupSize = 32;

    private const float Nvfp4TensorScaleDivisor = E4M3.MaxValue * E2M1.MaxMagnitude; // 2688

    /// <summary>Quantizes <paramref name="weights"/> into packed codes and scales.</summary>
    /// <param name="weights">A floating-point tensor of any shape and device.</param>
    /// <param name="format">The target format.</param>
    /// <param name="groupSize">Int4 only: the group size (positive, even; default 32). The other formats' block sizes
    /// are fixed by their specifications, so passing one for them throws.</param>
    public static PackedTensor Quantize(Tensor weights, QuantFormat format, int? groupSize = null)
    {
        var layout = Layout.Of(weights, format, groupSize);
        using var scope = NewDisposeScope();
        var encoding = Encode(layout.ToRows(weights), format, layout.BlockSize);
        var leading = layout.LeadingShape;
        Tensor codes = format == QuantFormat.Fp8E4M3
            ? encoding.Codes.reshape(layout.Shape)
            : NibblePacking.Pack(encoding.Codes).reshape(leading.Append(layout.PaddedColumns / 2).ToArray());
        var blockScales = encoding.BlockScales?.reshape(leading.Append(layout.BlocksPerRow).ToArray());
        var packed = new PackedTensor(format, layout.Shape, layout.BlockSize, codes.MoveToOuterDisposeScope(),
            blockScales?.MoveToOuterDisposeScope(), encoding.TensorScale?.MoveToOuterDisposeScope());
        return packed;
    }

    /// <summary>dequantize(quantize(w)) with vectorised torch ops, in the dtype, shape and device of
    /// <paramref name="weights"/>; bit-exact with <see cref="PackedTensor.Dequantize"/> and
    /// <see cref="ReferenceQuantizer.FakeQuantize"/> (for fp32 results).</summary>
    /// <param name="weights">A floating-point tensor of any shape and device.</param>
    /// <param name="format">The target format.</param>
    /// <param name="groupSize">Int4 only: the group size (see <see cref="Quantize"/>).</param>
    public static Tensor FakeQuantize(Tensor weights, QuantFormat format, int? groupSize = null)
    {
        var (values, inRange) = FakeQuantizeWithRange(weights, format, groupSize);
        inRange.Dispose();
        return values;
    }

    /// <summary>The fake-quantized values and a mask that is true where the scaled value was within the element's
    /// range, i.e. was not clipped (false throughout blocks poisoned by NaN or ∞).</summary>
    internal static (Tensor Values, Tensor InRange) FakeQuantizeWithRange(Tensor weights, QuantFormat format, int? groupSize)
    {
        var layout = Layout.Of(weights, format, groupSize);
        using var scope = NewDisposeScope();
        var encoding = Encode(layout.ToRows(weights), format, layout.BlockSize);
        var decoded = Decode(format, layout.BlockSize, encoding.Codes, encoding.BlockScales, encoding.TensorScale);
        var values = layout.FromRows(decoded).to(weights.dtype);
        var inRange = layout.FromRows(encoding.InRange);
        return (values.MoveToOuterDisposeScope(), inRange.MoveToOuterDisposeScope());
    }

    /// <summary>The values a packed tensor stands for, as fp32 in its original shape.</summary>
    internal static Tensor Dequantize(PackedTensor packed)
    {
        var layout = Layout.For(packed.Shape.ToArray(), packed.BlockSize);
        using var scope = NewDisposeScope();
        var codes = packed.Format == QuantFormat.Fp8E4M3 ? packed.Codes : NibblePacking.Unpack(packed.Codes);
        var decoded = Decode(packed.Format, packed.BlockSize, codes.reshape(layout.Rows, layout.PaddedColumns),
            packed.BlockScales?.reshape(layout.Rows, layout.BlocksPerRow), packed.TensorScale);
        return layout.FromRows(decoded).MoveToOuterDisposeScope();
    }

    /// <summary>Decodes unpacked codes [rows, padded columns] with their scales into fp32 [rows, padded columns].</summary>
    internal static Tensor Decode(QuantFormat format, int blockSize, Tensor codes, Tensor? blockScales, Tensor? tensorScale)
    {
        using var scope = NewDisposeScope();
        var rows = codes.shape[0];
        Tensor decoded;
        switch (format)
        {
            case QuantFormat.Mxfp4:
                decoded = E2M1.DecodeTensor(codes).view(rows, -1, blockSize)
                    * E8M0.DecodeTensor(blockScales!).view(rows, -1, 1);
                break;
            case QuantFormat.Nvfp4:
                // The same fp32 product s·t that the encoder divided by.
                var scaleProduct = E4M3.DecodeTensor(blockScales!) * tensorScale!;
                decoded = E2M1.DecodeTensor(codes).view(rows, -1, blockSize) * scaleProduct.view(rows, -1, 1);
                break;
            case QuantFormat.Fp8E4M3:
                decoded = E4M3.DecodeTensor(codes) * tensorScale!;
                break;
            case QuantFormat.Int4:
                var nibbles = codes.to(ScalarType.Int32);
                var signed = torch.where(nibbles.ge(8), nibbles - 16, nibbles);
                decoded = signed.to(ScalarType.Float32).view(rows, -1, blockSize) * blockScales!.view(rows, -1, 1);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }
        return decoded.reshape(rows, -1).MoveToOuterDisposeScope();
    }

    private sealed record Encoding(Tensor Codes, Tensor? BlockScales, Tensor? TensorScale, Tensor InRange);

    /// <summary>Encodes fp32 rows [rows, padded columns] (the padding a multiple of the block size).</summary>
    private static Encoding Encode(Tensor rows, QuantFormat format, int blockSize)
    {
        using var scope = NewDisposeScope();
        var encoding = format switch
        {
            QuantFormat.Mxfp4 => EncodeMxfp4(rows, blockSize),
            QuantFormat.Nvfp4 => EncodeNvfp4(rows, blockSize),
            QuantFormat.Fp8E4M3 => EncodeFp8(rows),
            QuantFormat.Int4 => EncodeInt4(rows, blockSize),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
        };
        return new Encoding(encoding.Codes.MoveToOuterDisposeScope(), encoding.BlockScales?.MoveToOuterDisposeScope(),
            encoding.TensorScale?.MoveToOuterDisposeScope(), encoding.InRange.MoveToOuterDisposeScope());
    }

    /// <summary>The parts every blocked format starts from.</summary>
    private readonly record struct Blocks(Tensor Values, Tensor BlockFinite, Tensor FiniteMagnitudes, Tensor BlockAmax)
    {
        public static Blocks Of(Tensor rows, int blockSize)
        {
            var values = rows.view(rows.shape[0], -1, blockSize);
            var finite = values.isfinite();
            var finiteMagnitudes = torch.where(finite, values.abs(), torch.zeros_like(values));
            return new Blocks(values, finite.all(-1, keepdim: true), finiteMagnitudes,
                finiteMagnitudes.amax(new long[] { -1 }, keepdim: true));
        }
    }

    private static Encoding EncodeMxfp4(Tensor rows, int blockSize)
    {
        var blocks = Blocks.Of(rows, blockSize);
        var amax = blocks.BlockAmax;
        // floor(log2 amax) = frexp exponent − 1, so the E8M0 byte (floor(log2 amax) − 2) + 127 is that exponent + 124.
        // Subnormal amax lands below 0 and clamps to 2^-127; zero amax is set to 2^-127 explicitly.
        var (_, frexpExponent) = torch.frexp(amax);
        var scaleCode = torch.where(amax.gt(0f), (frexpExponent + 124).clamp_min(0), torch.zeros_like(frexpExponent));
        scaleCode = torch.where(blocks.BlockFinite, scaleCode, torch.full_like(scaleCode, E8M0.NaNCode)).to(ScalarType.Byte);
        // Dividing by a power of two is exact wherever the quotient can round to a non-zero code.
        var scaled = blocks.Values / E8M0.DecodeTensor(scaleCode);
        var codes = torch.where(blocks.BlockFinite, E2M1.EncodeTensor(scaled), torch.zeros(1, ScalarType.Byte, rows.device));
        var inRange = scaled.abs().le(E2M1.MaxMagnitude);
        return new Encoding(codes.view(rows.shape), scaleCode.squeeze(-1), null, inRange.view(rows.shape));
    }

    private static Encoding EncodeNvfp4(Tensor rows, int blockSize)
    {
        var blocks = Blocks.Of(rows, blockSize);
        var tensorScale = TensorMath.DivideBy(blocks.FiniteMagnitudes.max(), Nvfp4TensorScaleDivisor);
        var zero = torch.zeros(1, ScalarType.Float32, rows.device);
        var blockScaleValue = torch.where(tensorScale.gt(0f),
            TensorMath.DivideBy(blocks.BlockAmax, E2M1.MaxMagnitude) / tensorScale, zero);
        var scaleCode = torch.where(blocks.BlockFinite, E4M3.EncodeTensor(blockScaleValue),
            torch.full(1, E4M3.NaNCode, ScalarType.Byte, rows.device));
        var scaleProduct = E4M3.DecodeTensor(scaleCode) * tensorScale;
        var scaled = torch.where(scaleProduct.gt(0f), blocks.Values / scaleProduct, TensorMath.SignedZeros(blocks.Values));
        var codes = torch.where(blocks.BlockFinite, E2M1.EncodeTensor(scaled), torch.zeros(1, ScalarType.Byte, rows.device));
        var inRange = blocks.BlockFinite.logical_and(scaled.abs().le(E2M1.MaxMagnitude));
        return new Encoding(codes.view(rows.shape), scaleCode.squeeze(-1), tensorScale, inRange.view(rows.shape));
    }

    private static Encoding EncodeFp8(Tensor rows)
    {
        var finite = rows.isfinite();
        var amax = torch.where(finite, rows.abs(), torch.zeros_like(rows)).max();
        var tensorScale = TensorMath.DivideBy(amax, E4M3.MaxValue);
        var scaled = torch.where(tensorScale.gt(0f), rows / tensorScale, TensorMath.SignedZeros(rows));
        // NaN and ±∞ elements are E4M3 NaN even when a zero scale turned them into zeros above.
        var codes = torch.where(finite, E4M3.EncodeTensor(scaled), torch.full(1, E4M3.NaNCode, ScalarType.Byte, rows.device));
        var inRange = finite.logical_and(scaled.abs().le(E4M3.MaxValue));
        return new Encoding(codes, null, tensorScale, inRange);
    }

    private static Encoding EncodeInt4(Tensor rows, int groupSize)
    {
        var blocks = Blocks.Of(rows, groupSize);
        var scale = torch.where(blocks.BlockFinite, TensorMath.DivideBy(blocks.BlockAmax, Int4Max),
            torch.full(1, float.NaN, ScalarType.Float32, rows.device));
        var scaled = torch.where(scale.gt(0f), blocks.Values / scale, torch.zeros(1, ScalarType.Float32, rows.device));
        // Clamping before rounding to integer bounds equals clamping after, and defines "clipped" as |scaled| > 7.
        var levels = scaled.clamp(-Int4Max, Int4Max).round().to(ScalarType.Int32);
        var codes = ((levels + 16) % 16).to(ScalarType.Byte); // two's complement in a nibble
        var inRange = blocks.BlockFinite.logical_and(scaled.abs().le(Int4Max));
        return new Encoding(codes.view(rows.shape), scale.squeeze(-1), null, inRange.view(rows.shape));
    }

    private const float Int4Max = 7f;

    /// <summary>How a tensor maps onto rows of whole blocks.</summary>
    private sealed record Layout(long[] Shape, long Rows, long Columns, int BlockSize, long PaddedColumns)
    {
        public long BlocksPerRow => BlockSize == 0 ? 1 : PaddedColumns / BlockSize;

        public long[] LeadingShape => Shape.Length == 0 ? Array.Empty<long>() : Shape[..^1];

        public static Layout Of(Tensor weights, QuantFormat format, int? groupSize)
        {
            if (!weights.is_floating_point()) throw new ArgumentException($"Only floating-point tensors quantize, not {weights.dtype}.", nameof(weights));
            if (weights.numel() == 0) throw new ArgumentException("An empty tensor has nothing to quantize.", nameof(weights));
            return For(weights.shape, QuantFormats.BlockSize(format, groupSize));
        }

        public static Layout For(long[] shape, int blockSize)
        {
            var columns = shape.Length == 0 ? 1 : shape[^1];
            var rows = shape.Aggregate(1L, (product, size) => product * size) / columns;
            var padded = blockSize == 0 ? columns : (columns + blockSize - 1) / blockSize * blockSize;
            return new Layout(shape, rows, columns, blockSize, padded);
        }

        /// <summary>fp32 [rows, padded columns], zero-padded.</summary>
        public Tensor ToRows(Tensor weights)
        {
            using var scope = NewDisposeScope();
            var rows = weights.to(ScalarType.Float32).reshape(Rows, Columns);
            if (PaddedColumns > Columns) rows = nn.functional.pad(rows, new long[] { 0, PaddedColumns - Columns });
            return rows.contiguous().MoveToOuterDisposeScope();
        }

        /// <summary>Drops the padding and restores the original shape.</summary>
        public Tensor FromRows(Tensor rows)
        {
            var trimmed = PaddedColumns > Columns ? rows.narrow(1, 0, Columns) : rows;
            return trimmed.reshape(Shape);
        }
    }
}
