using System;
using System.Linq;
using LlmEff.Quantization;
using TorchSharp;
using static LlmEff.Runtime.Tests.Quantization.QuantTestHelpers;

namespace LlmEff.Runtime.Tests.Quantization;

/// <summary>DeepSeek's indexer fake quantization (never-clipping power-of-two scales) and the Hadamard rotation: the
/// vectorised paths equal their scalar references bit for bit.</summary>
public sealed class IndexerQuantizerTests
{
    [Theory]
    [InlineData(IndexerPrecision.Fp4, 5, 64)]
    [InlineData(IndexerPrecision.Fp4, 3, 128)]
    [InlineData(IndexerPrecision.Fp8, 4, 128)]
    [InlineData(IndexerPrecision.Fp8, 2, 256)]
    [InlineData(IndexerPrecision.Bf16, 3, 96)]
    [InlineData(IndexerPrecision.Fp32, 2, 32)]
    public void Vectorised_indexer_quantization_equals_the_scalar_reference_bit_for_bit(IndexerPrecision precision, int rows, int rowLength)
    {
        var values = RandomValues(rows * rowLength, seed: rows * 1000 + rowLength + (int)precision);
        using var x = Tensor(values, rows, rowLength);

        using var fake = IndexerQuantizer.FakeQuantize(x, precision);

        Assert.Equal(x.shape, fake.shape);
        Assert.Equal(Bits(ReferenceQuantizer.IndexerFakeQuantize(values, rowLength, precision)), Bits(fake));
    }

    [Fact]
    public void The_fp4_scale_is_the_smallest_power_of_two_that_fits_the_block_maximum_so_nothing_clips()
    {
        // Block maxima at, just below and just above 6·2^k: the scale is 2^k, 2^k and 2^(k+1); OCP MXFP4 would pick
        // 2^(k+1) for 6·2^k·(1−ε) too, but clip 7·2^k to 6·2^k where this rule does not.
        var maxima = new[] { 6f, MathF.BitDecrement(6f), MathF.BitIncrement(6f), 7f, 3f, 0.001f, 1e30f, 1e-40f };
        var rows = maxima.SelectMany(m => Enumerable.Repeat(0f, 31).Append(m)).ToArray();
        using var x = Tensor(rows, maxima.Length, 32);

        var quantized = Floats(IndexerQuantizer.FakeQuantize(x, IndexerPrecision.Fp4));

        for (var row = 0; row < maxima.Length; row++)
        {
            var amax = Math.Max(maxima[row], IndexerQuantizer.Fp4AmaxFloor);
            var exponent = (int)Math.Ceiling(Math.Log2(amax / 6.0));
            var scale = Math.ScaleB(1.0, exponent);
            var value = quantized[row * 32 + 31];
            Assert.True(Math.Abs(value) <= 6 * scale, $"block max {maxima[row]}: {value} exceeds 6·2^{exponent}");
            Assert.True(6 * scale / 2 < amax || exponent == -126, $"block max {maxima[row]}: a smaller scale 2^{exponent - 1} would fit");
            // The maximum itself is rounded, never clipped: within half a grid step (at most 1·scale) of itself.
            Assert.True(Math.Abs(value - maxima[row]) <= scale, $"block max {maxima[row]} became {value}");
        }
        Assert.Equal(6f, quantized[31]);
        Assert.Equal(8f, quantized[3 * 32 + 31]); // 7 / 2 = 3.5, a tie, rounds to the even code 4; times 2
    }

    [Fact]
    public void Every_e2m1_tie_rounds_to_even_under_a_unit_scale()
    {
        // A block maximum of exactly 6 gives scale 1, so the elements are E2M1 of the values themselves.
        var ties = new[] { 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f };
        var values = ties.Concat(ties.Select(t => -t)).Concat(new float[32 - 2 * ties.Length - 1]).Append(6f).ToArray();
        using var x = Tensor(values, 1, 32);

        var quantized = Floats(IndexerQuantizer.FakeQuantize(x, IndexerPrecision.Fp4));

        Assert.Equal(values.Select(v => E2M1.Decode(E2M1.Encode(v))), quantized);
        Assert.Equal(new[] { 0f, 1f, 1f, 2f, 2f, 4f, 4f }, quantized.Take(7));
    }

    [Fact]
    public void A_block_with_nan_or_infinity_comes_back_nan_and_leaves_its_neighbours_alone()
    {
        var values = Enumerable.Range(0, 96).Select(i => (float)Math.Sin(i)).ToArray();
        values[3] = float.NaN;
        values[40] = float.PositiveInfinity;
        using var x = Tensor(values, 1, 96);

        var quantized = Floats(IndexerQuantizer.FakeQuantize(x, IndexerPrecision.Fp4));

        Assert.All(quantized.Take(64), v => Assert.True(float.IsNaN(v)));
        Assert.All(quantized.Skip(64), v => Assert.True(float.IsFinite(v)));
        Assert.Equal(Bits(ReferenceQuantizer.IndexerFakeQuantize(values, 96, IndexerPrecision.Fp4)), Bits(quantized));
    }

    [Fact]
    public void A_row_that_is_not_whole_blocks_is_refused_naming_its_length()
    {
        using var x = torch.ones(2, 48);

        var error = Assert.Throws<ArgumentException>(() => IndexerQuantizer.FakeQuantize(x, IndexerPrecision.Fp4));

        Assert.Contains("48", error.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(128)]
    public void The_fast_hadamard_rotation_equals_its_scalar_reference_bit_for_bit_and_the_matrix_product(int n)
    {
        var values = RandomValues(3 * n, seed: n).Select(v => float.IsFinite(v) ? Math.Clamp(v, -1e6f, 1e6f) : 0f).ToArray();
        using var x = Tensor(values, 3, n);

        using var rotated = Hadamard.Rotate(x);

        Assert.Equal(Bits(Hadamard.RotateReference(values, n)), Bits(rotated));
        // H[i, j] = (−1)^popcount(i & j) / √n (Sylvester), in double.
        var output = Floats(rotated);
        for (var row = 0; row < 3; row++)
            for (var j = 0; j < n; j++)
            {
                var sum = 0.0;
                for (var i = 0; i < n; i++)
                    sum += values[row * n + i] * (System.Numerics.BitOperations.PopCount((uint)(i & j)) % 2 == 0 ? 1.0 : -1.0);
                var expected = sum / Math.Sqrt(n);
                var magnitude = Enumerable.Range(0, n).Sum(i => Math.Abs((double)values[row * n + i]));
                Assert.True(Math.Abs(output[row * n + j] - expected) <= 1e-6 * magnitude + 1e-30, $"row {row}, column {j}: {output[row * n + j]} vs {expected}");
            }
    }

    [Fact]
    public void Rotating_twice_returns_the_input_and_a_non_power_of_two_is_refused()
    {
        using var x = torch.randn(4, 64);

        using var twice = Hadamard.Rotate(Hadamard.Rotate(x));

        Assert.True(twice.allclose(x, rtol: 1e-5, atol: 1e-6));
        using var odd = torch.ones(2, 48);
        var error = Assert.Throws<ArgumentException>(() => Hadamard.Rotate(odd));
        Assert.Contains("48", error.Message);
    }
}
