using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Quantization;
using TorchSharp;
using static LlmEff.Runtime.Tests.Quantization.QuantTestHelpers;

namespace LlmEff.Runtime.Tests.Quantization;

/// <summary>The vectorised path, the packed path and the scalar reference agree bit for bit.</summary>
public sealed class AgreementTests
{
    public static IEnumerable<object[]> FormatsAndShapes()
    {
        var formats = new[] { QuantFormat.Mxfp4, QuantFormat.Nvfp4, QuantFormat.Fp8E4M3, QuantFormat.Int4 };
        var shapes = new[] { new long[] { 8, 96 }, new long[] { 3, 5, 50 }, new long[] { 7 } };
        return formats.SelectMany(f => shapes.Select(s => new object[] { f, s }));
    }

    [Theory]
    [MemberData(nameof(FormatsAndShapes))]
    public void Vectorised_packed_and_reference_paths_agree_bit_for_bit(QuantFormat format, long[] shape)
    {
        var count = (int)shape.Aggregate(1L, (a, b) => a * b);
        var rowLength = (int)shape[^1];
        var values = RandomValues(count, seed: count + (int)format);
        using var w = Tensor(values, shape);

        using var fake = Quantizer.FakeQuantize(w, format);
        using var packed = Quantizer.Quantize(w, format);
        using var dequantized = packed.Dequantize();
        var reference = ReferenceQuantizer.Quantize(values, rowLength, format);

        Assert.Equal(shape, fake.shape);
        Assert.Equal(shape, dequantized.shape);
        var expected = Bits(ReferenceQuantizer.Dequantize(reference));
        Assert.Equal(expected, Bits(fake));
        Assert.Equal(expected, Bits(dequantized));
        Assert.Equal(reference.Codes, UnpaddedCodes(packed, rowLength));
        switch (format)
        {
            case QuantFormat.Mxfp4 or QuantFormat.Nvfp4:
                Assert.Equal(reference.BlockScaleCodes, Bytes(packed.BlockScales!));
                break;
            case QuantFormat.Int4:
                Assert.Equal(Bits(reference.GroupScales), Bits(packed.BlockScales!));
                break;
        }
        if (packed.TensorScale is not null)
            Assert.Equal(BitConverter.SingleToInt32Bits(reference.TensorScale), BitConverter.SingleToInt32Bits(packed.TensorScale.item<float>()));
    }

    private static byte[] UnpaddedCodes(PackedTensor packed, int rowLength)
    {
        using var unpacked = packed.UnpackCodes();
        var codes = Bytes(unpacked);
        var padded = (int)unpacked.shape[^1];
        return Enumerable.Range(0, codes.Length / padded).SelectMany(row => codes.Skip(row * padded).Take(rowLength)).ToArray();
    }

    [Fact]
    public void Vectorised_E4M3_matches_the_scalar_encoder_on_every_code_and_every_midpoint()
    {
        // An amax of 448 makes the FP8 tensor scale exactly 1, so the codes are E4M3 of the values themselves.
        var positives = Enumerable.Range(0, 0x7F).Select(c => E4M3.Decode((byte)c)).ToArray();
        var midpoints = positives.Zip(positives.Skip(1), (a, b) => (a + b) / 2);
        var nearMidpoints = midpoints.SelectMany(m => new[] { MathF.BitDecrement(m), MathF.BitIncrement(m) });
        var magnitudes = positives.Concat(midpoints).Concat(nearMidpoints).Append(1e-30f).Append(MathF.ScaleB(1, -149)).ToArray();
        var values = magnitudes.Concat(magnitudes.Select(v => -v)).ToArray();
        using var w = Tensor(values, values.Length);

        using var packed = Quantizer.Quantize(w, QuantFormat.Fp8E4M3);

        Assert.Equal(1f, packed.TensorScale!.item<float>());
        Assert.Equal(values.Select(E4M3.Encode), Bytes(packed.Codes));
    }

    [Fact]
    public void Vectorised_E2M1_matches_the_scalar_encoder_on_every_tie_and_its_neighbours()
    {
        // Blocks whose amax lies in [4, 8) have MXFP4 scale 1, so the codes are E2M1 of the values themselves.
        var ties = new[] { 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f };
        var grid = Enumerable.Range(0, 8).Select(E2M1.Decode);
        var magnitudes = ties.Concat(grid).SelectMany(v => new[] { v, MathF.BitDecrement(v), MathF.BitIncrement(v) })
            .Where(v => v > 0).Append(7.999f).ToArray();
        var signed = magnitudes.Concat(magnitudes.Select(v => -v)).ToList();
        while (signed.Count % 32 != 0) signed.Add(-0f);
        var blocks = signed.Chunk(31).Select(chunk => chunk.Append(7.5f).Concat(new float[31 - chunk.Length])).SelectMany(b => b).ToArray();
        using var w = Tensor(blocks, blocks.Length / 32, 32);

        using var packed = Quantizer.Quantize(w, QuantFormat.Mxfp4);
        using var unpacked = packed.UnpackCodes();

        Assert.All(Bytes(packed.BlockScales!), scale => Assert.Equal(127, scale));
        Assert.Equal(blocks.Select(E2M1.Encode), Bytes(unpacked));
    }

    [Theory]
    [InlineData(QuantFormat.Mxfp4)]
    [InlineData(QuantFormat.Nvfp4)]
    [InlineData(QuantFormat.Fp8E4M3)]
    [InlineData(QuantFormat.Int4)]
    public void A_zero_dimensional_tensor_quantizes_as_one_value(QuantFormat format)
    {
        using var w = torch.tensor(-2.7f);

        using var fake = Quantizer.FakeQuantize(w, format);
        using var packed = Quantizer.Quantize(w, format);
        using var dequantized = packed.Dequantize();

        Assert.Empty(fake.shape);
        Assert.Empty(dequantized.shape);
        var expected = ReferenceQuantizer.FakeQuantize(new[] { -2.7f }, 1, format);
        Assert.Equal(Bits(expected), Bits(fake));
        Assert.Equal(Bits(expected), Bits(dequantized));
    }

    [Fact]
    public void Mxfp4_stores_exactly_4_25_bits_per_value()
    {
        using var w = torch.randn(64, 128);

        using var packed = Quantizer.Quantize(w, QuantFormat.Mxfp4);

        Assert.Equal(4.25, packed.BitsPerValue);
        Assert.Equal(64 * 128 / 2 + 64 * 128 / 32, packed.Bytes);
        Assert.True(64 * 128 * 4.0 / packed.Bytes >= 7.5, $"fp32/packed = {64 * 128 * 4.0 / packed.Bytes}");
        Assert.Equal(4.25, QuantFormats.NominalBitsPerValue(QuantFormat.Mxfp4));
    }

    [Fact]
    public void Other_formats_store_their_nominal_bits_plus_any_tensor_scale()
    {
        using var w = torch.randn(64, 128);
        const double count = 64 * 128;

        using var nv = Quantizer.Quantize(w, QuantFormat.Nvfp4);
        using var fp8 = Quantizer.Quantize(w, QuantFormat.Fp8E4M3);
        using var int4 = Quantizer.Quantize(w, QuantFormat.Int4);

        Assert.Equal(4.5 + 32 / count, nv.BitsPerValue);
        Assert.Equal(8 + 32 / count, fp8.BitsPerValue);
        Assert.Equal(5.0, int4.BitsPerValue);
        Assert.Equal(new[] { 4.5, 8, 5 }, new[] { QuantFormat.Nvfp4, QuantFormat.Fp8E4M3, QuantFormat.Int4 }.Select(f => QuantFormats.NominalBitsPerValue(f)));
    }

    [Fact]
    public void Fake_quantization_keeps_the_dtype_and_quantizes_the_fp32_value()
    {
        using var w = torch.randn(4, 64).to(torch.ScalarType.BFloat16);
        using var w32 = w.to(torch.ScalarType.Float32);

        using var fake = Quantizer.FakeQuantize(w, QuantFormat.Mxfp4);
        using var fake32 = Quantizer.FakeQuantize(w32, QuantFormat.Mxfp4);

        Assert.Equal(torch.ScalarType.BFloat16, fake.dtype);
        // MXFP4 values (two significant bits times a power of two) are exact in bf16.
        Assert.Equal(Bits(fake32), Bits(fake));
    }
}
