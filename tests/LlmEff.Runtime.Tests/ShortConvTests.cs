using System.Collections.Generic;
using System.Linq;
using LlmEff.Generation;
using LlmEff.Layers;
using TorchSharp;
using static TorchSharp.torch;
using static LlmEff.Runtime.Tests.DecodingTestMath;

namespace LlmEff.Runtime.Tests;

/// <summary>LFM2's short convolution against its definition, a scalar loop, and its own full forward.</summary>
public sealed class ShortConvTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Short_convolution_has_Hugging_Face_names_and_the_expected_size(bool bias)
    {
        const int d = 16, k = 3;
        using var block = new ShortConv(d, k, bias, layers: 4);

        var expected = new Dictionary<string, long[]>
        {
            ["in_proj.weight"] = new long[] { 3 * d, d },
            ["conv.weight"] = new long[] { d, 1, k },
            ["out_proj.weight"] = new long[] { d, d },
        };
        if (bias)
        {
            expected["in_proj.bias"] = new long[] { 3 * d };
            expected["conv.bias"] = new long[] { d };
            expected["out_proj.bias"] = new long[] { d };
        }
        Assert.Equal(expected.OrderBy(e => e.Key), Shapes(block).OrderBy(e => e.Key));
        Assert.Equal(3 * d * d + d * d + d * k + (bias ? 3 * d + d + d : 0), block.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void Short_convolution_is_causal()
    {
        manual_seed(3);
        using var block = new ShortConv(16, 3, bias: true, layers: 2);
        using var x = randn(2, 10, 16);
        using var changed = x.clone();
        using (no_grad()) changed[TensorIndex.Colon, 6].add_(randn(2, 16));

        using var y = block.forward(x);
        using var z = block.forward(changed);

        Assert.Equal(0, MaxDifference(y.narrow(1, 0, 6), z.narrow(1, 0, 6)));
        // A kernel of 3 carries token 6 into outputs 6, 7, 8 and no further.
        for (var t = 6; t < 9; t++) Assert.True(MaxDifference(y.narrow(1, t, 1), z.narrow(1, t, 1)) > 1e-7, $"output {t}");
        Assert.Equal(0, MaxDifference(y.narrow(1, 9, 1), z.narrow(1, 9, 1)));
    }

    [Theory]
    [InlineData(3, false)]
    [InlineData(4, true)]
    [InlineData(1, true)]
    public void Short_convolution_decodes_like_the_full_forward(int kernel, bool bias)
    {
        manual_seed(4);
        using var block = new ShortConv(32, kernel, bias, layers: 2);
        using var x = randn(2, 14, 32);
        using var _ = no_grad();
        using var full = block.forward(x);

        foreach (var chunks in new[] { new[] { 5, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, new[] { 5, 3, 3, 3 }, new[] { 1, 3, 1, 9 } })
        {
            using var cache = new DecodingCache(1, capacity: 14);
            using var scope = NewDisposeScope();
            foreach (var n in chunks)
            {
                var step = block.forward(x.narrow(1, cache.Position, n), cache[0]);
                Assert.True(MaxDifference(step, full.narrow(1, cache.Position, n)) <= 1e-5, $"chunks {string.Join(",", chunks)} at {cache.Position}");
                cache.Advance(n);
            }
            // A fixed-size state: nothing grows with the tokens.
            Assert.Equal(0, cache.ElementsPerBatchRow());
        }
    }

    [Fact]
    public void Short_convolution_starts_from_a_zero_state()
    {
        manual_seed(5);
        using var block = new ShortConv(8, 3, bias: false, layers: 1);
        using var x = randn(1, 1, 8);
        using var cache = new DecodingCache(1, 4);
        using var _ = no_grad();

        using var first = block.forward(x, cache[0]);

        using var state = cache[0].Get(0)!;
        Assert.Equal(new long[] { 1, 8, 2 }, state.shape);
        Assert.Equal(0, state.select(2, 0).abs().max().item<float>());
        // The newest column is B ⊙ h of the token; it is not all zero.
        Assert.True(state.select(2, 1).abs().max().item<float>() > 0);
        using var full = block.forward(x);
        Assert.True(MaxDifference(first, full) <= 1e-6);
    }

    [Fact]
    public void Short_convolution_matches_a_scalar_loop()
    {
        const int d = 2, k = 3, t = 5;
        using var block = new ShortConv(d, k, bias: true, layers: 1, dtype: ScalarType.Float64);
        manual_seed(6);
        using var x = randn(1, t, d, dtype: ScalarType.Float64);
        using (no_grad())
        {
            // Non-zero biases, so that their placement is checked too.
            foreach (var p in block.named_parameters().Where(p => p.name.EndsWith(".bias"))) p.parameter.normal_();
        }
        var parameters = block.named_parameters().ToDictionary(e => e.name, e => e.parameter.data<double>().ToArray());
        var xs = x.data<double>().ToArray();

        double Row(int row, int token) // in_proj output feature `row` for `token`: rows 0..d−1 are B, d..2d−1 C, 2d..3d−1 h
        {
            var sum = parameters["in_proj.bias"][row];
            for (var i = 0; i < d; i++) sum += parameters["in_proj.weight"][row * d + i] * xs[token * d + i];
            return sum;
        }
        var expected = new double[t * d];
        for (var token = 0; token < t; token++)
        {
            var mixed = new double[d];
            for (var c = 0; c < d; c++)
            {
                // conv[c] = bias + Σ_j w[c, j] · (B ⊙ h)[c, token − (k − 1) + j], zero before the sequence.
                var conv = parameters["conv.bias"][c];
                for (var j = 0; j < k; j++)
                {
                    var source = token - (k - 1) + j;
                    if (source >= 0) conv += parameters["conv.weight"][c * k + j] * Row(c, source) * Row(2 * d + c, source);
                }
                mixed[c] = Row(d + c, token) * conv;
            }
            for (var o = 0; o < d; o++)
            {
                var sum = parameters["out_proj.bias"][o];
                for (var c = 0; c < d; c++) sum += parameters["out_proj.weight"][o * d + c] * mixed[c];
                expected[token * d + o] = sum;
            }
        }

        using var y = block.forward(x);

        var actual = y.data<double>().ToArray();
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 12);
    }
}
