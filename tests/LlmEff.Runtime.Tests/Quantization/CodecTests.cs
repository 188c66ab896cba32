using System;
using System.Linq;
using LlmEff.Quantization;
using TorchSharp;
using static LlmEff.Runtime.Tests.Quantization.QuantTestHelpers;

namespace LlmEff.Runtime.Tests.Quantization;

/// <summary>The element and scale codecs against hand-computed values.</summary>
public sealed class CodecTests
{
    [Fact]
    public void E2M1_codes_decode_to_the_OCP_grid_and_every_code_round_trips()
    {
        var expected = new[] { 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f };

        var decoded = Enumerable.Range(0, 16).Select(E2M1.Decode).ToArray();

        Assert.Equal(Bits(expected), Bits(decoded));
        Assert.Equal(Enumerable.Range(0, 16).Select(c => (byte)c), decoded.Select(E2M1.Encode));
    }

    [Theory]
    [InlineData(0.25f, 0f)]
    [InlineData(0.75f, 1f)]
    [InlineData(1.25f, 1f)]
    [InlineData(1.75f, 2f)]
    [InlineData(2.5f, 2f)]
    [InlineData(3.5f, 4f)]
    [InlineData(5f, 4f)]
    [InlineData(-0.75f, -1f)]
    [InlineData(-1.25f, -1f)]
    [InlineData(-1.75f, -2f)]
    [InlineData(-2.5f, -2f)]
    [InlineData(-3.5f, -4f)]
    [InlineData(-5f, -4f)]
    [InlineData(0.2500001f, 0.5f)]
    [InlineData(2.4999998f, 2f)]
    [InlineData(5.0000005f, 6f)]
    [InlineData(6.5f, 6f)]
    [InlineData(1e30f, 6f)]
    [InlineData(float.PositiveInfinity, 6f)]
    [InlineData(float.NegativeInfinity, -6f)]
    public void E2M1_rounds_half_to_even_code_and_saturates_at_six(float input, float expected)
    {
        Assert.Equal(expected, E2M1.Decode(E2M1.Encode(input)));
    }

    [Fact]
    public void E2M1_keeps_the_sign_of_values_that_round_to_zero_and_rejects_NaN()
    {
        Assert.Equal(8, E2M1.Encode(-0.25f));
        Assert.Equal(8, E2M1.Encode(-0f));
        Assert.Equal(0, E2M1.Encode(0.25f));
        Assert.Throws<ArgumentOutOfRangeException>(() => E2M1.Encode(float.NaN));
    }

    [Fact]
    public void E4M3_every_code_round_trips_except_the_two_NaNs()
    {
        for (var code = 0; code < 256; code++)
        {
            var value = E4M3.Decode((byte)code);
            if (code is 0x7F or 0xFF)
            {
                Assert.True(float.IsNaN(value), $"code {code:X2}");
                continue;
            }
            Assert.Equal(code, E4M3.Encode(value));
        }
    }

    [Theory]
    [InlineData(0x00, 0f)]
    [InlineData(0x01, 0.001953125f)]      // smallest subnormal 2^-9
    [InlineData(0x07, 0.013671875f)]      // largest subnormal 7·2^-9
    [InlineData(0x08, 0.015625f)]         // smallest normal 2^-6
    [InlineData(0x38, 1f)]
    [InlineData(0x3C, 1.5f)]
    [InlineData(0x7E, 448f)]
    [InlineData(0xFE, -448f)]
    [InlineData(0xB0, -0.5f)]
    public void E4M3_decodes_bias_7_with_subnormals(int code, float expected)
    {
        Assert.Equal(expected, E4M3.Decode((byte)code));
    }

    [Theory]
    [InlineData(1.0625f, 0x38)]           // midway 1 and 1.125: even mantissa 0
    [InlineData(1.1875f, 0x3A)]           // midway 1.125 and 1.25: even mantissa 2
    [InlineData(0.0009765625f, 0x00)]     // 2^-10, midway 0 and 2^-9
    [InlineData(0.0029296875f, 0x02)]     // 3·2^-10, midway codes 1 and 2
    [InlineData(0.0146484375f, 0x08)]     // midway 7·2^-9 and 2^-6: carries into the normals
    [InlineData(460f, 0x7E)]
    [InlineData(464f, 0x7E)]              // midway 448 and the (NaN) next code
    [InlineData(1e6f, 0x7E)]              // finite overflow saturates
    [InlineData(-1e6f, 0xFE)]
    [InlineData(-0f, 0x80)]
    [InlineData(float.NaN, 0x7F)]
    [InlineData(float.PositiveInfinity, 0x7F)]
    [InlineData(float.NegativeInfinity, 0x7F)]
    public void E4M3_rounds_half_to_even_saturates_finite_values_and_maps_non_finite_to_NaN(float input, int expected)
    {
        Assert.Equal(expected, E4M3.Encode(input));
    }

    [Theory]
    [InlineData(127, 1f)]
    [InlineData(0, 5.877471754111438e-39f)] // 2^-127, an fp32 subnormal
    [InlineData(254, 1.7014118346046923e38f)] // 2^127
    [InlineData(131, 16f)]
    public void E8M0_decodes_powers_of_two(int code, float expected)
    {
        Assert.Equal(expected, E8M0.Decode((byte)code));
        Assert.True(float.IsNaN(E8M0.Decode(E8M0.NaNCode)));
    }

    [Fact]
    public void Nibbles_pack_low_nibble_first()
    {
        using var codes = torch.tensor(new byte[] { 1, 2, 3, 4, 15, 0, 0, 15, 9, 12 });

        using var packed = NibblePacking.Pack(codes);
        using var unpacked = NibblePacking.Unpack(packed);

        Assert.Equal(new byte[] { 0x21, 0x43, 0x0F, 0xF0, 0xC9 }, Bytes(packed));
        Assert.Equal(Bytes(codes), Bytes(unpacked));
        using var odd = torch.zeros(3, dtype: torch.ScalarType.Byte);
        Assert.Throws<ArgumentException>(() => NibblePacking.Pack(odd));
    }
}
