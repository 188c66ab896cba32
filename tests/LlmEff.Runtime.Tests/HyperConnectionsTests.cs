using System;
using System.Linq;
using LlmEff.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>DeepSeek V4's residual streams (mHC) against their definition: Sinkhorn's doubly stochastic matrices,
/// and pre, post and head against scalar loops over DeepSeek's reference formulas.</summary>
public sealed class HyperConnectionsTests
{
    [Theory]
    [InlineData(2, 1)]
    [InlineData(4, 2)]
    [InlineData(4, 3)]
    [InlineData(8, 4)]
    public void Sinkhorn_makes_rows_and_columns_sum_to_one_for_random_logits(int n, int seed)
    {
        manual_seed(seed);
        using var logits = randn(1000, n, n, dtype: ScalarType.Float64);
        using var comb = HyperConnections.Sinkhorn(logits, iterations: 20);

        Assert.True(comb.min().item<double>() > 0);
        // The last step normalises columns: they sum to 1 within hc_eps. Rows are 20 iterations from converged: for
        // unit-variance logits the worst of 10,000 matrices was 0.9% off (measured 2026-11-30), so 1% here.
        Assert.True(Off(comb.sum(-2)) < 1e-5, $"column sums off by {Off(comb.sum(-2))}");
        Assert.True(Off(comb.sum(-1)) < 1e-2, $"row sums off by {Off(comb.sum(-1))}");
    }

    [Fact]
    public void Sinkhorn_converges_to_doubly_stochastic_with_more_iterations()
    {
        manual_seed(7);
        using var logits = randn(1000, 4, 4, dtype: ScalarType.Float64);
        using var twenty = HyperConnections.Sinkhorn(logits, iterations: 20);
        using var many = HyperConnections.Sinkhorn(logits, iterations: 300);
        Assert.True(Off(many.sum(-1)) < 1e-4, $"row sums off by {Off(many.sum(-1))}");
        Assert.True(Off(many.sum(-1)) < Off(twenty.sum(-1)));
        Assert.True(Off(many.sum(-2)) < 1e-5);
    }

    private static double Off(Tensor sums)
    {
        using (sums) return (sums - 1).abs().max().item<double>();
    }

    [Fact]
    public void Sinkhorn_follows_deepseeks_order_softmax_then_columns_then_rows_and_columns()
    {
        using var logits = tensor(new double[] { 0.3, -1.2, 2.0, 0.5 }, dtype: ScalarType.Float64).reshape(2, 2);
        var expected = ScalarSinkhorn(new[,] { { 0.3, -1.2 }, { 2.0, 0.5 } }, iterations: 3, eps: 1e-6);
        using var comb = HyperConnections.Sinkhorn(logits, iterations: 3, eps: 1e-6);
        for (var i = 0; i < 2; i++)
            for (var j = 0; j < 2; j++)
                Assert.Equal(expected[i, j], comb[i, j].item<double>(), 12);
    }

    [Fact]
    public void Sinkhorn_refuses_non_square_matrices_and_zero_iterations_by_name()
    {
        using var wide = zeros(2, 3);
        Assert.Contains("[2, 3]", Assert.Throws<ArgumentException>(() => HyperConnections.Sinkhorn(wide)).Message);
        using var square = zeros(2, 2);
        Assert.Equal("iterations", Assert.Throws<ArgumentOutOfRangeException>(() => HyperConnections.Sinkhorn(square, iterations: 0)).ParamName);
    }

    [Fact]
    public void Pre_post_and_head_equal_a_scalar_loop_over_deepseeks_formulas()
    {
        const int n = 2, d = 3, rows = (2 + n) * n;
        manual_seed(11);
        using var streams = randn(1, 1, n, d, dtype: ScalarType.Float64);
        using var fn = randn(rows, n * d, dtype: ScalarType.Float64) * 0.5;
        using var scale = tensor(new[] { 0.7, 1.3, 0.9 }, dtype: ScalarType.Float64);
        using var @base = randn(rows, dtype: ScalarType.Float64) * 0.3;
        using var output = randn(1, 1, d, dtype: ScalarType.Float64);
        const double normEps = 1e-5, eps = 1e-6;

        var x = Values(streams.reshape(n * d));
        var mixes = Mixes(x, Rows(fn), normEps);
        var s = Values(scale);
        var b = Values(@base);
        var pre = Enumerable.Range(0, n).Select(i => Sigmoid(mixes[i] * s[0] + b[i]) + eps).ToArray();
        var post = Enumerable.Range(0, n).Select(i => 2 * Sigmoid(mixes[n + i] * s[1] + b[n + i])).ToArray();
        var logits = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                logits[i, j] = mixes[2 * n + i * n + j] * s[2] + b[2 * n + i * n + j];
        var comb = ScalarSinkhorn(logits, 20, eps);

        var (input, postOut, combOut) = HyperConnections.Pre(streams, fn, scale, @base, iterations: 20, normEps: normEps, eps: eps);
        using (input) using (postOut) using (combOut)
        {
            for (var k = 0; k < d; k++)
                Assert.Equal(Enumerable.Range(0, n).Sum(i => pre[i] * x[i * d + k]), input[0, 0, k].item<double>(), 10);
            using var next = HyperConnections.Post(output, streams, postOut, combOut);
            var o = Values(output.reshape(d));
            for (var j = 0; j < n; j++)
                for (var k = 0; k < d; k++)
                {
                    // New stream j = post_j · out + Σ_i comb[i, j] · stream_i (combᵀ, as the reference sums over dim 2).
                    var expected = post[j] * o[k] + Enumerable.Range(0, n).Sum(i => comb[i, j] * x[i * d + k]);
                    Assert.Equal(expected, next[0, 0, j, k].item<double>(), 10);
                }
        }

        using var headFn = randn(n, n * d, dtype: ScalarType.Float64) * 0.5;
        using var headScale = tensor(new[] { 1.1 }, dtype: ScalarType.Float64);
        using var headBase = randn(n, dtype: ScalarType.Float64) * 0.3;
        var headMixes = Mixes(x, Rows(headFn), normEps);
        var hs = headScale.item<double>();
        var hb = Values(headBase);
        using var head = HyperConnections.Head(streams, headFn, headScale, headBase, normEps, eps);
        for (var k = 0; k < d; k++)
            Assert.Equal(Enumerable.Range(0, n).Sum(i => (Sigmoid(headMixes[i] * hs + hb[i]) + eps) * x[i * d + k]), head[0, 0, k].item<double>(), 10);
    }

    [Fact]
    public void A_map_at_its_start_gives_each_stream_the_input_plus_the_output()
    {
        // Hugging Face's start: fn N(0, 0.02²), base 0, scale 1; with fn at 0 (its mean) pre = ½ + eps, post = 1 and comb is
        // the uniform doubly stochastic matrix. Equal streams then stay equal: each becomes x + out, an ordinary residual.
        const int n = 4, d = 8;
        manual_seed(5);
        using var fn = ones(HyperConnections.MixRows(n), n * d);
        using var @base = ones(HyperConnections.MixRows(n));
        using var scale = zeros(3);
        HyperConnections.Initialize(fn, @base, scale);
        Assert.InRange(fn.std().item<float>(), 0.018f, 0.022f);
        Assert.Equal(0f, @base.abs().max().item<float>());
        Assert.Equal(new[] { 1f, 1f, 1f }, scale.data<float>().ToArray());

        using (no_grad()) fn.zero_();
        using var hidden = randn(2, 3, d);
        using var streams = HyperConnections.Expand(hidden, n);
        var (input, post, comb) = HyperConnections.Pre(streams, fn, scale, @base, normEps: 1e-5);
        using (input) using (post) using (comb)
        {
            Assert.True((input - 4 * (0.5 + HyperConnections.Eps) * hidden).abs().max().item<float>() < 1e-5f);
            using var output = randn(2, 3, d);
            using var next = HyperConnections.Post(output, streams, post, comb);
            using var expected = (hidden + output).unsqueeze(2).expand(2, 3, n, d);
            Assert.True((next - expected).abs().max().item<float>() < 1e-4f, "every stream = x + out");
        }
    }

    [Fact]
    public void Streams_of_the_wrong_rank_are_refused_with_their_shape()
    {
        using var flat = zeros(2, 3, 8);
        using var fn = zeros(24, 32);
        using var gates = ones(3);
        using var @base = zeros(24);
        var error = Assert.Throws<ArgumentException>(() => HyperConnections.Pre(flat, fn, gates, @base));
        Assert.Contains("[2, 3, 8]", error.Message);
    }

    [Fact]
    public void Gradients_reach_the_map_the_biases_and_the_gates()
    {
        const int n = 4, d = 8;
        manual_seed(2);
        using var fn = zeros(HyperConnections.MixRows(n), n * d).requires_grad_();
        using var @base = zeros(HyperConnections.MixRows(n)).requires_grad_();
        using var scale = zeros(3).requires_grad_();
        HyperConnections.Initialize(fn, @base, scale);
        using var streams = randn(2, 3, n, d);
        var (input, post, comb) = HyperConnections.Pre(streams, fn, scale, @base);
        using var next = HyperConnections.Post(input.square(), streams, post, comb);
        next.sum().backward();
        foreach (var p in new[] { fn, @base, scale })
            Assert.True(p.grad is { } g && g.abs().sum().item<float>() > 0);
    }

    private static double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));

    private static double[] Values(Tensor t) => t.to(ScalarType.Float64).data<double>().ToArray();

    private static double[][] Rows(Tensor matrix) =>
        Enumerable.Range(0, (int)matrix.shape[0]).Select(r => Values(matrix[r])).ToArray();

    /// <summary>linear(x, fn) · rsqrt(mean(x²) + eps), one token.</summary>
    private static double[] Mixes(double[] x, double[][] fn, double normEps)
    {
        var rsqrt = 1 / Math.Sqrt(x.Average(v => v * v) + normEps);
        return fn.Select(row => row.Zip(x, (w, v) => w * v).Sum() * rsqrt).ToArray();
    }

    /// <summary>DeepSeek's hc_split_sinkhorn on one matrix, loop by loop.</summary>
    private static double[,] ScalarSinkhorn(double[,] logits, int iterations, double eps)
    {
        var n = logits.GetLength(0);
        var m = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            var max = Enumerable.Range(0, n).Max(j => logits[i, j]);
            var sum = Enumerable.Range(0, n).Sum(j => Math.Exp(logits[i, j] - max));
            for (var j = 0; j < n; j++) m[i, j] = Math.Exp(logits[i, j] - max) / sum + eps;
        }
        void Columns()
        {
            for (var j = 0; j < n; j++)
            {
                var sum = Enumerable.Range(0, n).Sum(i => m[i, j]);
                for (var i = 0; i < n; i++) m[i, j] /= sum + eps;
            }
        }
        void Rows()
        {
            for (var i = 0; i < n; i++)
            {
                var sum = Enumerable.Range(0, n).Sum(j => m[i, j]);
                for (var j = 0; j < n; j++) m[i, j] /= sum + eps;
            }
        }
        Columns();
        for (var t = 1; t < iterations; t++)
        {
            Rows();
            Columns();
        }
        return m;
    }
}
