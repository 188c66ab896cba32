using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Layers;
using TorchSharp;
using static TorchSharp.torch;
using static LlmEff.Runtime.Tests.DecodingTestMath;

namespace LlmEff.Runtime.Tests;

/// <summary>The lightning indexer's selection and supervision, and the masked and offset attention they rely on.</summary>
public sealed class LightningIndexerTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Indexer_keeps_the_top_k_visible_keys_of_a_scalar_recomputation(int offset)
    {
        const int dim = 16, heads = 3, width = 4, topK = 3, time = 6;
        manual_seed(7);
        using var indexer = new LightningIndexer(dim, heads, width, topK, dtype: ScalarType.Float64);
        var keysCount = offset + time;
        using var all = randn(2, keysCount, dim, dtype: ScalarType.Float64);
        using var x = all.narrow(1, offset, time);
        using var keys = indexer.Keys(all);

        using var keep = indexer.Select(x, keys, offset);

        Assert.Equal(new long[] { 2, 1, time, keysCount }, keep.shape);
        var mask = keep.data<bool>().ToArray();
        var p = indexer.named_parameters().ToDictionary(e => e.name, e => e.parameter.data<double>().ToArray());
        var xs = all.data<double>().ToArray();
        double Dot(double[] w, int row, int b, int token)
        {
            var sum = 0.0;
            for (var i = 0; i < dim; i++) sum += w[row * dim + i] * xs[(b * keysCount + token) * dim + i];
            return sum;
        }
        for (var b = 0; b < 2; b++)
        {
            for (var t = 0; t < time; t++)
            {
                // I(t, s) = Σ_j w_j(t) · ReLU(q_j(t) · k(s)) / √(heads · width) for visible s, ranked at bf16 precision.
                var position = offset + t;
                var scores = new List<(double Score, int Key)>();
                for (var s = 0; s <= position; s++)
                {
                    var score = 0.0;
                    for (var j = 0; j < heads; j++)
                    {
                        var qk = 0.0;
                        for (var e = 0; e < width; e++) qk += Dot(p["wq.weight"], j * width + e, b, position) * Dot(p["wk.weight"], e, b, s);
                        score += Dot(p["weights_proj.weight"], j, b, position) * Math.Max(0, qk);
                    }
                    scores.Add((Bf16(score * Math.Pow(heads * width, -0.5)), s));
                }
                var expected = scores.OrderByDescending(e => e.Score).ThenByDescending(e => e.Key).Take(topK).Select(e => e.Key).OrderBy(s => s).ToList();
                var kept = Enumerable.Range(0, keysCount).Where(s => mask[(b * time + t) * keysCount + s]).ToList();
                Assert.Equal(expected, kept);
                Assert.Equal(Math.Min(topK, position + 1), kept.Count);
            }
        }
    }

    [Fact]
    public void Indexer_ties_go_to_the_most_recent_keys()
    {
        using var indexer = new LightningIndexer(4, 1, 2, topK: 2);
        using var x = zeros(1, 5, 4); // every score is zero

        using var keep = indexer.Select(x, indexer.Keys(x), 0);

        using var expected = tensor(new[]
        {
            true, false, false, false, false,
            true, true, false, false, false,
            false, true, true, false, false,
            false, false, true, true, false,
            false, false, false, true, true,
        }).view(1, 1, 5, 5);
        Assert.True(keep.eq(expected).all().item<bool>());
    }

    [Theory]
    [InlineData(4)]
    [InlineData(2)]
    public void Indexer_with_top_k_of_all_keys_is_dense_causal_attention(int kvHeads)
    {
        manual_seed(8);
        using var indexer = new LightningIndexer(16, 2, 4, topK: 8);
        using var x = randn(2, 8, 16);
        using var q = randn(2, 4, 8, 8);
        using var k = randn(2, kvHeads, 8, 8);
        using var v = randn(2, kvHeads, 8, 8);

        using var keep = indexer.Select(x, indexer.Keys(x), 0);
        using var sparse = Attention.Masked(q, k, v, keep);
        using var dense = Attention.Causal(q, k, v);

        Assert.True(MaxDifference(sparse, dense) <= 1e-5);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Causal_attention_from_an_offset_equals_the_rows_of_the_full_causal_attention(int time)
    {
        manual_seed(9);
        using var q = randn(2, 4, 9, 8);
        using var k = randn(2, 2, 9, 8);
        using var v = randn(2, 2, 9, 8);
        using var full = Attention.Causal(q, k, v);

        using var rows = Attention.CausalFrom(q.narrow(2, 9 - time, time), k, v, 9 - time);

        Assert.True(MaxDifference(rows, full.narrow(2, 9 - time, time)) <= 1e-6);
        Assert.Throws<ArgumentException>(() => Attention.CausalFrom(q.narrow(2, 0, time), k, v, 2));
    }

    [Fact]
    public void Indexer_supervision_trains_the_indexer_only()
    {
        manual_seed(10);
        using var indexer = new LightningIndexer(16, 2, 4, topK: 3);
        using var projection = nn.Linear(16, 2 * 8);
        using var x = randn(2, 6, 16).requires_grad_();
        using var scope = NewDisposeScope();
        var qk = Attention.SplitHeads(projection.forward(x), 2);

        indexer.Supervise(qk, qk, x, indexer.Keys(x.detach()), 0);
        using var loss = indexer.TakeAuxiliaryLoss()!;
        loss.backward();

        Assert.True(double.IsFinite(loss.item<float>()) && loss.item<float>() >= 0);
        Assert.Null(indexer.TakeAuxiliaryLoss());
        Assert.All(indexer.parameters(), p => Assert.True(p.grad is { } g && g.abs().max().item<float>() > 0));
        Assert.True(x.grad is null);
        Assert.All(projection.parameters(), p => Assert.True(p.grad is null));
    }

    [Fact]
    public void Selecting_and_supervising_at_once_gives_the_mask_and_loss_of_both_calls()
    {
        manual_seed(11);
        using var indexer = new LightningIndexer(16, 2, 4, topK: 3);
        using var projection = nn.Linear(16, 2 * 8);
        using var x = randn(2, 7, 16);
        using var scope = NewDisposeScope();
        var qk = Attention.SplitHeads(projection.forward(x), 2);
        var indexKeys = indexer.Keys(x.detach());

        var keep = indexer.Select(x, indexKeys, 0);
        indexer.Supervise(qk, qk, x, indexKeys, 0);
        var loss = indexer.TakeAuxiliaryLoss()!;
        var keepAtOnce = indexer.SelectAndSupervise(qk, qk, x, indexKeys, 0);
        var lossAtOnce = indexer.TakeAuxiliaryLoss()!;

        Assert.True(keep.eq(keepAtOnce).all().item<bool>());
        Assert.True(keep.logical_not().any().item<bool>(), "7 keys with top 3: some must be dropped, or the test shows nothing");
        Assert.Equal(loss.item<float>(), lossAtOnce.item<float>(), 6);
        lossAtOnce.backward();
        Assert.All(indexer.parameters(), p => Assert.True(p.grad is { } g && g.abs().max().item<float>() > 0));
    }

    /// <summary>fp32 rounding then bf16 rounding (nearest, ties to even), as the indexer ranks its scores.</summary>
    private static double Bf16(double value)
    {
        var bits = BitConverter.SingleToUInt32Bits((float)value);
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000;
        return BitConverter.UInt32BitsToSingle(bits);
    }
}
