using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Quantization;
using TorchSharp;
using static LlmEff.Runtime.Tests.Quantization.QuantTestHelpers;

namespace LlmEff.Runtime.Tests.Quantization;

/// <summary>Each format on hand-computed blocks, its edge cases and its stated policies.</summary>
public sealed class FormatTests
{
    private static float[] Block(int size, params float[] leading) => leading.Concat(new float[size - leading.Length]).ToArray();

    [Fact]
    public void Mxfp4_hand_computed_blocks()
    {
        var a = Block(32, 0.1f, -0.3f, 1f, 2.4f, -5.5f, 3.3f);          // amax 5.5: floor(log2) 2, exponent 0
        var b = Block(32, 100f, -37f, 8f, 20f, 0.5f);                    // amax 100: floor(log2) 6, exponent 4
        var c = Block(32, 3 * MathF.ScaleB(1, -129), -MathF.ScaleB(1, -128)); // amax 1.5·2^-128: exponent clamps to -127
        using var w = Tensor(a.Concat(b).Concat(c).ToArray(), 3, 32);

        using var packed = Quantizer.Quantize(w, QuantFormat.Mxfp4);
        using var dequantized = packed.Dequantize();

        Assert.Equal(new byte[] { 127, 131, 0 }, Bytes(packed.BlockScales!));
        var bytes = Bytes(packed.Codes);
        // Codes a: 0.1→0, -0.3→-0.5 (9), 1→1 (2), 2.4→2 (4), -5.5→-6 (15), 3.3→3 (5): low nibble first.
        Assert.Equal(new byte[] { 0x90, 0x42, 0x5F, 0x00 }, bytes[..4]);
        // Codes b (scale 16): 6.25→6 saturated (7), -2.3125→-2 (12), 0.5 (1), 1.25→1 tie (2), 0.03125→0 (0).
        Assert.Equal(new byte[] { 0xC7, 0x21, 0x00 }, bytes[16..19]);
        // Codes c (scale 2^-127): 0.75→1 tie (2), -0.5 (9).
        Assert.Equal(0x92, bytes[32]);
        var values = Floats(dequantized);
        Assert.Equal(new[] { 0f, -0.5f, 1f, 2f, -6f, 3f }, values[..6]);
        Assert.Equal(new[] { 96f, -32f, 8f, 16f, 0f }, values[32..37]);
        Assert.Equal(new[] { MathF.ScaleB(1, -127), -MathF.ScaleB(1, -128) }, values[64..66]);
    }

    public static IEnumerable<object[]> PowerOfTwoBoundaries()
    {
        // amax = 2^k, just below 2^k, and 1.5·2^k, from the fp32 subnormals to the top of the range.
        for (var k = -148; k <= 127; k++)
        {
            var power = (float)Math.ScaleB(1.0, k);
            yield return new object[] { power, k };
            yield return new object[] { MathF.BitDecrement(power), k - 1 };
            yield return new object[] { (float)Math.ScaleB(1.5, k), k };
        }
    }

    [Fact]
    public void Mxfp4_scale_is_floor_log2_amax_minus_two_at_every_power_of_two_boundary()
    {
        var cases = PowerOfTwoBoundaries().Select(c => ((float)c[0], (int)c[1])).ToArray();
        // One block per case: the amax, a value a third of it, and a negative half of it.
        var values = cases.SelectMany(c => Block(32, c.Item1, c.Item1 / 3, -c.Item1 / 2)).ToArray();
        using var w = Tensor(values, cases.Length, 32);

        using var packed = Quantizer.Quantize(w, QuantFormat.Mxfp4);
        using var fake = Quantizer.FakeQuantize(w, QuantFormat.Mxfp4);

        var expectedScales = cases.Select(c => (byte)(Math.Clamp(c.Item2 - 2, -127, 127) + 127)).ToArray();
        Assert.Equal(expectedScales, Bytes(packed.BlockScales!));
        Assert.Equal(expectedScales, cases.Select(c => ReferenceQuantizer.Mxfp4ScaleCode(c.Item1)));
        // Unclamped, the amax lands on 4 (2^k), 6 (1.5·2^k) or saturates from just below 8 to 6.
        using var unpacked = packed.UnpackCodes();
        var codes = Bytes(unpacked);
        for (var i = 0; i < cases.Length; i++)
        {
            if (cases[i].Item2 - 2 < -127) continue;
            var expectedCode = BitConverter.SingleToInt32Bits(cases[i].Item1) == BitConverter.SingleToInt32Bits((float)Math.ScaleB(1.0, cases[i].Item2)) ? 6 : 7;
            Assert.True(expectedCode == codes[i * 32], $"amax {cases[i].Item1:R}: code {codes[i * 32]}, expected {expectedCode}");
        }
        Assert.Equal(Bits(ReferenceQuantizer.FakeQuantize(values, 32, QuantFormat.Mxfp4)), Bits(fake));
    }

    [Fact]
    public void Mxfp4_saturates_scaled_values_beyond_six()
    {
        using var w = Tensor(Block(32, 7f, 7.9f, -7.5f, 6.1f), 1, 32); // amax 7.9: exponent 0, scale 1

        using var fake = Quantizer.FakeQuantize(w, QuantFormat.Mxfp4);

        Assert.Equal(new[] { 6f, 6f, -6f, 6f, 0f }, Floats(fake)[..5]);
    }

    [Fact]
    public void Zero_blocks_store_the_smallest_scale_and_zero_codes_keeping_negative_zeros()
    {
        var values = new float[64];
        values[1] = -0f;
        values[40] = 1f;
        using var w = Tensor(values, 1, 64);

        using var mx = Quantizer.Quantize(w, QuantFormat.Mxfp4);
        using var mxValues = mx.Dequantize();
        using var nv = Quantizer.Quantize(w[.., ..16], QuantFormat.Nvfp4);
        using var int4 = Quantizer.Quantize(w[.., ..32], QuantFormat.Int4);

        Assert.Equal(new byte[] { 0, 127 - 2 }, Bytes(mx.BlockScales!));
        Assert.Equal(new byte[] { 0x80, 0, 0 }, Bytes(mx.Codes)[..3]);
        Assert.Equal(Bits(values), Bits(mxValues));
        Assert.Equal(new byte[] { 0 }, Bytes(nv.BlockScales!));
        Assert.Equal(0f, nv.TensorScale!.item<float>());
        Assert.Equal(0f, int4.BlockScales!.item<float>());
        using var nvValues = nv.Dequantize();
        using var int4Values = int4.Dequantize();
        Assert.Equal(Bits(values[..16]), Bits(nvValues));
        Assert.All(Floats(int4Values), v => Assert.Equal(0, BitConverter.SingleToInt32Bits(v))); // integers have no -0
    }

    [Fact]
    public void A_NaN_or_infinity_poisons_its_block_and_only_its_block()
    {
        var values = Enumerable.Range(0, 96).Select(i => (i % 7 - 3) * 0.5f).ToArray();
        values[5] = float.NaN;
        values[40] = float.PositiveInfinity;
        values[41] = 1000f; // would dominate the block; the block is NaN anyway
        using var w = Tensor(values, 1, 96);

        using var mx = Quantizer.Quantize(w, QuantFormat.Mxfp4);
        using var mxValues = mx.Dequantize();
        using var nv = Quantizer.Quantize(w, QuantFormat.Nvfp4);
        using var nvValues = nv.Dequantize();
        using var int4 = Quantizer.Quantize(w, QuantFormat.Int4);
        using var int4Values = int4.Dequantize();
        using var fp8 = Quantizer.Quantize(w, QuantFormat.Fp8E4M3);
        using var fp8Values = fp8.Dequantize();

        Assert.Equal(new byte[] { 0xFF, 0xFF, 127 - 2 }, Bytes(mx.BlockScales!)); // amax 1.5: floor(log2) 0, exponent -2
        Assert.All(Bytes(mx.Codes)[..32], b => Assert.Equal(0, b));
        AssertNaNExactlyIn(Floats(mxValues), 0, 64);
        // NVFP4 blocks of 16: blocks 0 and 2 are poisoned; the tensor scale ignores the non-finite values but not 1000.
        Assert.Equal(new byte[] { 0x7F, 0x7F }, Bytes(nv.BlockScales!).Where((_, i) => i is 0 or 2));
        Assert.Equal(1000f / 2688f, nv.TensorScale!.item<float>());
        AssertNaNExactlyIn(Floats(nvValues), 0, 16, 32, 48);
        Assert.True(float.IsNaN(Floats(int4.BlockScales!)[0]) && float.IsNaN(Floats(int4.BlockScales!)[1]));
        AssertNaNExactlyIn(Floats(int4Values), 0, 64);
        // FP8 holds NaN per element, and ∞ has nowhere to go but NaN.
        var fp8Codes = Bytes(fp8.Codes);
        Assert.Equal(new byte[] { 0x7F, 0x7F }, new[] { fp8Codes[5], fp8Codes[40] });
        Assert.Equal(1000f / 448f, fp8.TensorScale!.item<float>());
        var fp8Decoded = Floats(fp8Values);
        Assert.Equal(new[] { 5, 40 }, Enumerable.Range(0, 96).Where(i => float.IsNaN(fp8Decoded[i])));
        Assert.Equal(Bits(ReferenceQuantizer.FakeQuantize(values, 96, QuantFormat.Nvfp4)), Bits(nvValues));
    }

    private static void AssertNaNExactlyIn(float[] values, params int[] ranges)
    {
        var poisoned = new bool[values.Length];
        for (var r = 0; r < ranges.Length; r += 2)
            for (var i = ranges[r]; i < ranges[r + 1]; i++) poisoned[i] = true;
        Assert.Equal(poisoned, values.Select(float.IsNaN).ToArray());
    }

    [Fact]
    public void Nvfp4_hand_computed_example_with_E4M3_rounding_of_the_block_scales()
    {
        // Tensor amax 2688 makes the tensor scale exactly 1, so the block scale is amax_block / 6 itself.
        var values = Block(16, 2688f, 448f)
            .Concat(Block(16, 300f, 120f, -72f))          // 50: midway 48 and 52 → 48 (even mantissa)
            .Concat(Block(16, 276f))                        // 46: midway 44 and 48 → 48
            .Concat(Block(16, 0.017578125f, -0.005859375f)) // 3·2^-10: midway subnormal codes 1 and 2 → 2 (2^-8)
            .ToArray();
        using var w = Tensor(values, 1, 64);

        using var packed = Quantizer.Quantize(w, QuantFormat.Nvfp4);
        using var dequantized = packed.Dequantize();

        Assert.Equal(1f, packed.TensorScale!.item<float>());
        Assert.Equal(new byte[] { 0x7E, 0x64, 0x64, 0x02 }, Bytes(packed.BlockScales!));
        var codes = Bytes(packed.Codes);
        Assert.Equal(new byte[] { 0x27 }, codes[..1]);       // 2688/448 = 6 (7); 448/448 = 1 (2)
        Assert.Equal(new byte[] { 0x47, 0x0B }, codes[8..10]); // 300/48 = 6.25 → 6 (7); 120/48 = 2.5 → 2 (4); -1.5 (11)
        Assert.Equal(new byte[] { 0x07 }, codes[16..17]);     // 276/48 = 5.75 → 6
        Assert.Equal(new byte[] { 0xB6 }, codes[24..25]);     // 0.017578125/2^-8 = 4.5 → 4 (6); -1.5 (11)
        var decoded = Floats(dequantized);
        Assert.Equal(new[] { 2688f, 448f, 288f, 96f, -72f, 288f, 0.015625f, -0.005859375f },
            new[] { decoded[0], decoded[1], decoded[16], decoded[17], decoded[18], decoded[32], decoded[48], decoded[49] });
    }

    [Fact]
    public void Nvfp4_general_tensor_scale_is_amax_over_2688()
    {
        var values = Block(16, 10f, 5f, -2.5f).Concat(Block(16, 1f, 0.5f, -0.25f)).ToArray();
        using var w = Tensor(values, 2, 16);

        using var packed = Quantizer.Quantize(w, QuantFormat.Nvfp4);

        var tensorScale = 10f / 2688f;
        Assert.Equal(tensorScale, packed.TensorScale!.item<float>());
        // (10/6)/t ≈ 448 → 0x7E; (1/6)/t = 44.8 → 44 (exponent field 12, mantissa 3) → 0x63.
        Assert.Equal(new byte[] { 0x7E, 0x63 }, Bytes(packed.BlockScales!));
        // Block 2 at scale 44·t: 1 → 6.1 → 6 (7), 0.5 → 3.05 → 3 (5), -0.25 → -1.53 → -1.5 (11).
        Assert.Equal(new byte[] { 0x57, 0x0B }, Bytes(packed.Codes)[8..10]);
        Assert.Equal(new byte[] { 0x57, 0x0B }, Bytes(packed.Codes)[..2]);
        var scaleProduct = 44f * tensorScale;
        using var dequantized = packed.Dequantize();
        Assert.Equal(new[] { 6 * scaleProduct, 3 * scaleProduct, -1.5f * scaleProduct }, Floats(dequantized)[16..19]);
    }

    [Fact]
    public void Nvfp4_block_scale_divides_by_six_then_by_the_tensor_scale()
    {
        // Find a block amax b where (b/6)/t and b/(6t) differ by one ulp across an E4M3 midpoint, so the
        // order of the fp32 operations decides the scale byte.
        var tensorScale = 10f / 2688f;
        var found = float.NaN;
        foreach (var code in Enumerable.Range(8, 110))
        {
            var midpoint = (E4M3.Decode((byte)code) + E4M3.Decode((byte)(code + 1))) / 2;
            var b = midpoint * 6f * tensorScale;
            for (var step = 0; step < 64 && float.IsNaN(found); step++, b = MathF.BitIncrement(b))
                if (E4M3.Encode(b / 6f / tensorScale) != E4M3.Encode(b / (tensorScale * 6f)) && b < 10f) found = b;
            if (!float.IsNaN(found)) break;
        }
        Assert.False(float.IsNaN(found), "no order-sensitive block amax found");
        using var w = Tensor(Block(16, 10f).Concat(Block(16, found)).ToArray(), 1, 32);

        using var packed = Quantizer.Quantize(w, QuantFormat.Nvfp4);

        Assert.Equal(E4M3.Encode(found / 6f / tensorScale), Bytes(packed.BlockScales!)[1]);
    }

    [Fact]
    public void Fp8_scales_by_amax_over_448()
    {
        using var w = Tensor(new[] { 896f, 3f, -1f, 0.003f }, 2, 2);

        using var packed = Quantizer.Quantize(w, QuantFormat.Fp8E4M3);
        using var dequantized = packed.Dequantize();

        Assert.Equal(2f, packed.TensorScale!.item<float>());
        Assert.Null(packed.BlockScales);
        // 448 (0x7E), 1.5 (0x3C), -0.5 (0xB0), 0.0015 = 0.77·2^-9 → 2^-9 (0x01).
        Assert.Equal(new byte[] { 0x7E, 0x3C, 0xB0, 0x01 }, Bytes(packed.Codes));
        Assert.Equal(new[] { 896f, 3f, -1f, 0.00390625f }, Floats(dequantized));
        Assert.Equal(new long[] { 2, 2 }, packed.Codes.shape);
    }

    [Fact]
    public void Int4_symmetric_groups_round_half_to_even_into_twos_complement_nibbles()
    {
        var values = Block(32, -7f, 3.5f, 2.5f, 0.4f, -3.5f, -0.5f, 1.5f, 7f)
            .Concat(Block(32, 14f, -5f, 3f)).ToArray();
        using var w = Tensor(values, 1, 64);

        using var packed = Quantizer.Quantize(w, QuantFormat.Int4);
        using var dequantized = packed.Dequantize();

        Assert.Equal(new[] { 1f, 2f }, Floats(packed.BlockScales!));
        // -7 (9), 4 (4), 2 (2), 0 (0), -4 (C), -0 → 0 (0), 2 (2), 7 (7); then 7 (7), -2.5 → -2 (E), 1.5 → 2 (2).
        var codes = Bytes(packed.Codes);
        Assert.Equal(new byte[] { 0x49, 0x02, 0x0C, 0x72 }, codes[..4]);
        Assert.Equal(new byte[] { 0xE7, 0x02 }, codes[16..18]);
        Assert.Equal(new[] { -7f, 4f, 2f, 0f, -4f, 0f, 2f, 7f }, Floats(dequantized)[..8]);
        Assert.Equal(new[] { 14f, -4f, 4f }, Floats(dequantized)[32..35]);
    }

    [Fact]
    public void Int4_takes_a_group_size_and_the_other_formats_refuse_one()
    {
        using var w = Tensor(Enumerable.Range(0, 16).Select(i => (float)i).ToArray(), 2, 8);

        using var packed = Quantizer.Quantize(w, QuantFormat.Int4, groupSize: 4);

        Assert.Equal(new long[] { 2, 2 }, packed.BlockScales!.shape);
        Assert.Equal(new[] { 3f / 7, 7f / 7, 11f / 7, 15f / 7 }, Floats(packed.BlockScales!)[..4]);
        Assert.Throws<ArgumentException>(() => Quantizer.Quantize(w, QuantFormat.Mxfp4, groupSize: 16));
        Assert.Throws<ArgumentException>(() => Quantizer.Quantize(w, QuantFormat.Int4, groupSize: 3));
    }

    [Fact]
    public void Fp4_is_MXFP4()
    {
        Assert.Equal(QuantFormat.Mxfp4, QuantFormat.Fp4);
    }
}
