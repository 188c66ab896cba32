using System;
using System.Linq;
using LlmEff.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>The runtime building blocks against their textbook definitions.</summary>
public sealed class LayerTests
{
    [Fact]
    public void RmsNorm_divides_by_the_root_mean_square()
    {
        using var norm = new RmsNorm(4, eps: 0);
        using var x = tensor(new float[] { 1, 2, 3, 4 });

        using var y = norm.forward(x);

        var rms = Math.Sqrt((1 + 4 + 9 + 16) / 4.0);
        Assert.Equal(new[] { 1 / rms, 2 / rms, 3 / rms, 4 / rms }, Array.ConvertAll(y.data<float>().ToArray(), v => (double)v), new ToleranceComparer(1e-6));
    }

    [Fact]
    public void Rotary_scores_depend_only_on_the_distance_between_positions()
    {
        using var rope = new RotaryEmbedding(headDim: 8, context: 64, theta: 10000, dtype: ScalarType.Float64);
        manual_seed(1);
        using var q = randn(1, 1, 1, 8, dtype: ScalarType.Float64);
        using var k = randn(1, 1, 1, 8, dtype: ScalarType.Float64);

        double Score(long queryPosition, long keyPosition)
        {
            var (qc, qs) = rope.Angles(1, queryPosition);
            var (kc, ks) = rope.Angles(1, keyPosition);
            return (RotaryEmbedding.Rotate(q, qc, qs) * RotaryEmbedding.Rotate(k, kc, ks)).sum().item<double>();
        }

        Assert.Equal(Score(10, 7), Score(40, 37), 10);
        Assert.NotEqual(Score(10, 7), Score(10, 2), 3);
        Assert.Equal(q.norm().item<double>(), RotaryEmbedding.Rotate(q, rope.Angles(1, 5).Cos, rope.Angles(1, 5).Sin).norm().item<double>(), 10);
    }

    [Fact]
    public void Grouped_attention_equals_masked_softmax_with_shared_key_value_heads()
    {
        manual_seed(2);
        using var q = randn(1, 4, 5, 8, dtype: ScalarType.Float64);
        using var k = randn(1, 2, 5, 8, dtype: ScalarType.Float64);
        using var v = randn(1, 2, 5, 8, dtype: ScalarType.Float64);

        using var actual = Attention.Causal(q, k, v);

        // Query heads 0,1 use KV head 0; heads 2,3 use KV head 1.
        using var kk = k.repeat_interleave(2, dim: 1);
        using var vv = v.repeat_interleave(2, dim: 1);
        using var mask = ones(5, 5, dtype: ScalarType.Bool).triu(1);
        using var scores = q.matmul(kk.transpose(-2, -1)) / Math.Sqrt(8);
        using var expected = scores.masked_fill(mask, double.NegativeInfinity).softmax(-1).matmul(vv);
        Assert.True((actual - expected).abs().max().item<double>() < 1e-12);
    }

    [Theory]
    [InlineData(1, 6, false)] // one new token over the cache: no mask
    [InlineData(3, 6, false)] // a chunk: query t sees keys ≤ offset + t
    [InlineData(3, 6, true)]  // a per-query keep-mask, as the sparse indexer gives
    public void Attention_over_one_key_value_head_equals_masked_softmax_for_every_head(int time, int keys, bool perQueryMask)
    {
        manual_seed(3);
        using var q = randn(2, 4, time, 8, dtype: ScalarType.Float64);
        using var k = randn(2, 1, keys, 8, dtype: ScalarType.Float64);
        using var v = randn(2, 1, keys, 5, dtype: ScalarType.Float64);
        var offset = keys - time;
        using var causal = ones(time, keys, dtype: ScalarType.Bool).tril(offset);
        // Every row keeps its own position at least, as the indexer's selection does.
        using var own = causal.logical_and(ones(time, keys, dtype: ScalarType.Bool).triu(offset));
        using var random = rand(2, 1, time, keys, dtype: ScalarType.Float64).gt(0.4).logical_or(own);
        Tensor? keep = perQueryMask ? random : time > 1 ? causal : null;

        using var actual = Attention.OverOneKeyValueHead(q, k, v, keep);

        using var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(8);
        using var masked = keep is null ? scores.alias() : scores.masked_fill(keep.logical_not(), double.NegativeInfinity);
        using var expected = masked.softmax(-1).matmul(v);
        Assert.Equal(new long[] { 2, 4, time, 5 }, actual.shape);
        Assert.True(DecodingTestMath.MaxDifference(actual, expected) < 1e-12);
    }

    [Fact]
    public void Transposed_linear_multiplies_by_its_input_by_output_weight()
    {
        using var layer = new TransposedLinear(3, 2, hasBias: true, dtype: ScalarType.Float64);
        using (no_grad())
        {
            layer.weight.copy_(tensor(new double[] { 1, 2, 3, 4, 5, 6 }).view(3, 2));
            layer.bias!.copy_(tensor(new double[] { 10, 20 }));
        }

        using var y = layer.forward(tensor(new double[] { 1, 1, 1 }));

        Assert.Equal(new double[] { 19, 32 }, y.data<double>().ToArray());
    }

    [Fact]
    public void Rotary_tables_follow_the_module_to_another_dtype()
    {
        using var rope = new RotaryEmbedding(8, 4, 10000);
        rope.to(ScalarType.Float64);
        Assert.Equal(ScalarType.Float64, rope.Angles(2).Cos.dtype);

        using var model = new LlmEff.Samples.TinyDecoder();
        model.to(ScalarType.Float64);
        using var logits = model.forward(zeros(new long[] { 1, 4 }, ScalarType.Int64));
        Assert.Equal(ScalarType.Float64, logits.dtype);
        Assert.DoesNotContain(model.state_dict().Keys, k => k.Contains("rotary"));
    }

    private sealed class ToleranceComparer(double tolerance) : System.Collections.Generic.IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(double value) => 0;
    }
}
