using System;
using System.Linq;
using LlmEff.Layers;
using LlmEff.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>DeepSeek V4's attention blocks: the compressor's entries by hand, visibility (nothing from the future,
/// also not through a compressed window), shapes, the sink and the rotation back of the output.</summary>
public sealed class CompressedAttentionTests
{
    private static CompressedAttentionOptions Small(CompressedAttentionKind kind, int ratio, int window = 5, int topK = 2,
        IndexerPrecision precision = IndexerPrecision.Fp4) =>
        new(Dim: 24, Heads: 4, HeadDim: 32, RopeDim: 8, QueryRank: 16, OutputGroups: 2, OutputRank: 8, Window: window, Kind: kind, Ratio: ratio,
            IndexerHeads: 3, IndexerDim: 32, TopK: topK, Precision: precision, Bf16Scores: false, Context: 64, RopeTheta: 10000, NormEps: 1e-6);

    public static TheoryData<CompressedAttentionKind, int> Kinds() => new()
    {
        { CompressedAttentionKind.SlidingWindow, 0 },
        { CompressedAttentionKind.CompressedSparse, 4 },
        { CompressedAttentionKind.HeavilyCompressed, 8 },
    };

    [Fact]
    public void A_compressed_entry_equals_a_hand_computation_of_the_overlapping_softmax_pool_norm_and_rotation()
    {
        const int dim = 3, d = 4, ratio = 2, rope = 2, time = 7; // 3 complete windows, one token left over
        manual_seed(11);
        using var compressor = new Compressor(dim, d, ratio, overlap: true, rope, normEps: 1e-6);
        using var rotary = new RotaryEmbedding(rope, 16, 10000);
        var parameters = compressor.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
        {
            parameters["ape"].copy_(randn(ratio, 2 * d));
            parameters["norm.weight"].copy_(rand(d) + 0.5);
        }
        using var x = randn(1, time, dim);

        using var entries = compressor.forward(x, rotary);

        Assert.Equal(new long[] { 1, time / ratio, d }, entries.shape);
        double[,] Matrix(Tensor t, int rows, int cols)
        {
            var flat = t.to(ScalarType.Float64).contiguous().data<double>().ToArray();
            var m = new double[rows, cols];
            for (var i = 0; i < rows; i++) for (var j = 0; j < cols; j++) m[i, j] = flat[i * cols + j];
            return m;
        }
        var wkv = Matrix(parameters["wkv.weight"], 2 * d, dim);
        var wgate = Matrix(parameters["wgate.weight"], 2 * d, dim);
        var ape = Matrix(parameters["ape"], ratio, 2 * d);
        var norm = parameters["norm.weight"].to(ScalarType.Float64).data<double>().ToArray();
        var xs = Matrix(x.view(time, dim), time, dim);
        double Project(double[,] w, int row, int token) => Enumerable.Range(0, dim).Sum(i => w[row, i] * xs[token, i]);
        var actual = entries.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        for (var w = 0; w < time / ratio; w++)
        {
            var pooled = new double[d];
            for (var c = 0; c < d; c++)
            {
                // Slots: the previous window's tokens through channel c, then this window's through channel d + c.
                var slots = Enumerable.Range(0, ratio).Where(_ => w > 0)
                    .Select(j => (Value: Project(wkv, c, (w - 1) * ratio + j), Logit: Project(wgate, c, (w - 1) * ratio + j) + ape[j, c]))
                    .Concat(Enumerable.Range(0, ratio).Select(j => (Value: Project(wkv, d + c, w * ratio + j), Logit: Project(wgate, d + c, w * ratio + j) + ape[j, d + c])))
                    .ToList();
                var top = slots.Max(s => s.Logit);
                var total = slots.Sum(s => Math.Exp(s.Logit - top));
                pooled[c] = slots.Sum(s => Math.Exp(s.Logit - top) / total * s.Value);
            }
            var rms = Math.Sqrt(pooled.Average(v => v * v) + 1e-6);
            var normed = pooled.Select((v, c) => v / rms * norm[c]).ToArray();
            // Rotary on the last two channels (one pair: inverse frequency 1) at the window's first position.
            double angle = w * ratio, a = normed[2], b = normed[3];
            var expected = new[] { normed[0], normed[1], a * Math.Cos(angle) - b * Math.Sin(angle), b * Math.Cos(angle) + a * Math.Sin(angle) };
            for (var c = 0; c < d; c++)
                Assert.True(Math.Abs(actual[w * d + c] - expected[c]) < 1e-5, $"entry {w}, channel {c}: {actual[w * d + c]} vs {expected[c]}");
        }
    }

    [Fact]
    public void A_query_sees_a_compressed_entry_only_once_its_window_is_complete()
    {
        using var visible = CompressedAttention.VisibleEntries(9, 2, 4, CPU);

        var rows = visible.data<bool>().ToArray().Chunk(2).Select(r => (r[0] ? "1" : "0") + (r[1] ? "1" : "0")).ToArray();

        // Positions 0–2: nothing; 3–6: entry 0 (tokens 0–3); 7–8: entries 0 and 1.
        Assert.Equal(new[] { "00", "00", "00", "10", "10", "10", "10", "11", "11" }, rows);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Changing_later_tokens_changes_no_earlier_output_even_through_a_compressed_window(CompressedAttentionKind kind, int ratio)
    {
        const int time = 21, changedFrom = 13;
        manual_seed(3);
        using var layer = new CompressedAttention(Small(kind, ratio, window: 3, topK: 1));
        using (no_grad()) layer.named_parameters().Single(p => p.name == "attn_sink").parameter.fill_(0.5);
        using var x = randn(2, time, 24);
        using var changed = x.clone();
        using (no_grad()) changed.narrow(1, changedFrom, time - changedFrom).add_(randn(2, time - changedFrom, 24) * 3);

        using var before = layer.forward(x);
        using var after = layer.forward(changed);

        Assert.Equal(new long[] { 2, time, 24 }, before.shape);
        using var prefixDifference = (before.narrow(1, 0, changedFrom) - after.narrow(1, 0, changedFrom)).abs().max();
        Assert.Equal(0f, prefixDifference.item<float>());
        using var changedDifference = (before.narrow(1, changedFrom, time - changedFrom) - after.narrow(1, changedFrom, time - changedFrom)).abs().max();
        Assert.True(changedDifference.item<float>() > 1e-4f, "the changed tokens' own outputs must change");
    }

    [Theory]
    [InlineData(CompressedAttentionKind.CompressedSparse, 4)]
    [InlineData(CompressedAttentionKind.HeavilyCompressed, 8)]
    public void A_token_beyond_the_window_reaches_a_query_through_its_compressed_entry_once_the_window_is_complete(CompressedAttentionKind kind, int ratio)
    {
        // Window 1: a query sees only itself and compressed entries. Token 0 sits in entry 0 (and, overlapping, in
        // nothing later for CSA: entry 1 pools window 0's first half, so token 0 reaches entry 1 too).
        const int time = 20;
        manual_seed(5);
        using var layer = new CompressedAttention(Small(kind, ratio, window: 1, topK: 4));
        using var x = randn(1, time, 24);
        using var changed = x.clone();
        using (no_grad()) changed[0, 0].add_(5);

        using var before = layer.forward(x);
        using var after = layer.forward(changed);

        var difference = (before - after).abs().amax(new long[] { 0, 2 }).data<float>().ToArray();
        Assert.True(difference[0] > 1e-4f, "the changed token's own output");
        Assert.All(difference.Skip(1).Take(ratio - 2), d => Assert.Equal(0f, d));
        Assert.True(difference[ratio - 1] > 1e-6f, $"position {ratio - 1} completes window 0 and must see it: {string.Join(", ", difference)}");
    }

    [Fact]
    public void With_a_one_token_window_and_no_sink_mass_a_sliding_layer_returns_the_value_rotated_back()
    {
        // One head, one group, identity output projections: the output is the attended value itself, which for a
        // one-token window is the token's own normalised key/value, un-rotated only if the rotation back works.
        var options = new CompressedAttentionOptions(Dim: 16, Heads: 1, HeadDim: 16, RopeDim: 8, QueryRank: 8, OutputGroups: 1, OutputRank: 16,
            Window: 1, Kind: CompressedAttentionKind.SlidingWindow, Ratio: 0, IndexerHeads: 0, IndexerDim: 0, TopK: 0,
            Precision: IndexerPrecision.Fp32, Bf16Scores: false, Context: 32, RopeTheta: 10000, NormEps: 1e-6);
        manual_seed(9);
        using var layer = new CompressedAttention(options);
        var parameters = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
        {
            parameters["wo_a.weight"].copy_(eye(16));
            parameters["wo_b.weight"].copy_(eye(16));
            parameters["attn_sink"].fill_(-1e30);
        }
        using var x = randn(1, 12, 16);

        using var output = layer.forward(x);

        using var wkv = parameters["wkv.weight"];
        using var projected = x.matmul(wkv.t());
        using var value = projected * rsqrt(projected.square().mean(new long[] { -1 }, keepdim: true) + 1e-6);
        Assert.True(output.allclose(value, rtol: 1e-4, atol: 1e-5), $"max difference {(output - value).abs().max().item<float>()}");
    }

    [Fact]
    public void A_large_sink_takes_the_probability_mass_and_the_output_goes_to_zero()
    {
        manual_seed(2);
        using var layer = new CompressedAttention(Small(CompressedAttentionKind.HeavilyCompressed, 4));
        using var x = randn(1, 10, 24);
        using var open = layer.forward(x);
        using (no_grad()) layer.named_parameters().Single(p => p.name == "attn_sink").parameter.fill_(60);

        using var sunk = layer.forward(x);

        Assert.True(open.abs().max().item<float>() > 1e-3f);
        Assert.True(sunk.abs().max().item<float>() < 1e-12f, $"{sunk.abs().max().item<float>()}");
    }

    [Fact]
    public void The_indexer_keeps_at_most_top_k_visible_entries_per_query()
    {
        manual_seed(4);
        using var layer = new CompressedAttention(Small(CompressedAttentionKind.CompressedSparse, 4, topK: 2));
        using var x = randn(2, 30, 24);
        using var queryLatent = randn(2, 30, 16);

        using var keep = layer.Indexer!.Select(x, queryLatent, layer.Rotary);

        Assert.Equal(new long[] { 2, 30, 7 }, keep.shape);
        using var visible = CompressedAttention.VisibleEntries(30, 7, 4, CPU);
        Assert.False(keep.logical_and(visible.logical_not()).any().item<bool>(), "an invisible entry was kept");
        var counts = keep.sum(-1).data<long>().ToArray();
        var visibleCounts = visible.sum(-1).data<long>().ToArray();
        for (var i = 0; i < counts.Length; i++) Assert.Equal(Math.Min(2, visibleCounts[i % 30]), counts[i]);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Gradients_reach_every_parameter_but_the_indexers_whose_selection_is_discrete(CompressedAttentionKind kind, int ratio)
    {
        manual_seed(8);
        using var layer = new CompressedAttention(Small(kind, ratio, topK: 2));
        using var x = randn(2, 19, 24);

        using var output = layer.forward(x);
        output.square().sum().backward();

        foreach (var (name, parameter) in layer.named_parameters())
        {
            if (name.StartsWith("indexer.")) Assert.True(parameter.grad is null, $"{name} got a gradient");
            else
            {
                Assert.True(parameter.grad is not null, $"{name} got no gradient");
                Assert.True(parameter.grad!.isfinite().all().item<bool>() && parameter.grad.abs().sum().item<float>() > 0, $"{name}: zero or non-finite gradient");
            }
        }
    }

    public static TheoryData<CompressedAttentionKind, int, IndexerPrecision> DecodingKinds() => new()
    {
        { CompressedAttentionKind.SlidingWindow, 0, IndexerPrecision.Fp32 },
        { CompressedAttentionKind.CompressedSparse, 4, IndexerPrecision.Fp32 },
        { CompressedAttentionKind.CompressedSparse, 4, IndexerPrecision.Fp4 },
        { CompressedAttentionKind.HeavilyCompressed, 8, IndexerPrecision.Fp32 },
    };

    [Theory]
    [MemberData(nameof(DecodingKinds))]
    public void Prefill_single_tokens_and_chunks_from_the_cache_equal_the_full_forward_across_window_boundaries(
        CompressedAttentionKind kind, int ratio, IndexerPrecision precision)
    {
        const int time = 42;
        manual_seed(12);
        using var layer = new CompressedAttention(Small(kind, ratio, window: 5, topK: 3, precision: precision));
        using (no_grad()) layer.named_parameters().Single(p => p.name == "attn_sink").parameter.fill_(0.3);
        using var x = randn(2, time, 24);
        using var full = layer.forward(x);

        using var cache = layer.NewCache(2);
        // A prefill ending inside a window, single tokens across a boundary, then chunks of odd lengths.
        var pieces = new[] { 6, 1, 1, 1, 1, 3, 7, 1, 9, 12 };
        Assert.Equal(time, pieces.Sum());
        var outputs = new System.Collections.Generic.List<Tensor>();
        var start = 0;
        foreach (var length in pieces)
        {
            outputs.Add(layer.Decode(x.narrow(1, start, length), cache));
            start += length;
        }
        using var decoded = cat(outputs, 1);

        Assert.Equal(time, cache.Position);
        using var difference = (decoded - full).abs().max();
        Assert.True(difference.item<float>() < 1e-4f, $"max difference {difference.item<float>()}");
        Assert.Equal(System.Math.Min(time, 5), cache.Window.shape[1]);
        Assert.Equal(ratio == 0 ? 0 : time / ratio, cache.Entries.shape[1]);
        foreach (var output in outputs) output.Dispose();
    }

    [Fact]
    public void Settings_that_cannot_work_are_refused_naming_the_setting()
    {
        var bad = new[]
        {
            (Small(CompressedAttentionKind.SlidingWindow, 4), "Ratio"),
            (Small(CompressedAttentionKind.HeavilyCompressed, 1), "Ratio"),
            (Small(CompressedAttentionKind.CompressedSparse, 4) with { IndexerDim = 48 }, "IndexerDim"),
            (Small(CompressedAttentionKind.CompressedSparse, 4) with { OutputGroups = 3 }, "OutputGroups"),
            (Small(CompressedAttentionKind.CompressedSparse, 4) with { TopK = 0 }, "TopK"),
            (Small(CompressedAttentionKind.SlidingWindow, 0) with { Window = 0 }, "Window"),
        };
        foreach (var (options, name) in bad)
            Assert.Equal(name, Assert.Throws<ArgumentOutOfRangeException>(options.Validate).ParamName);
    }

    [Fact]
    public void The_indexers_distillation_loss_is_finite_for_queries_that_see_no_entry_and_falls_as_the_indexer_trains_on_it()
    {
        // 30 tokens at ratio 4: the first 3 queries see no complete window, the last sees 7 entries, top-2 of them kept.
        manual_seed(12);
        using var layer = new CompressedAttention(Small(CompressedAttentionKind.CompressedSparse, 4, topK: 2));
        using var x = randn(2, 30, 24);
        var indexerParameters = layer.named_parameters().Where(p => p.name.StartsWith("indexer.", StringComparison.Ordinal)).Select(p => p.parameter).ToList();
        using var optimizer = optim.Adam(indexerParameters, lr: 1e-2);
        layer.train();
        var losses = new System.Collections.Generic.List<float>();
        for (var step = 0; step < 40; step++)
        {
            optimizer.zero_grad();
            using var y = layer.forward(x);
            using var loss = layer.Indexer!.TakeAuxiliaryLoss()!;
            loss.backward();
            Assert.All(indexerParameters, p => Assert.True(p.grad!.isfinite().all().item<bool>(), "a non-finite gradient"));
            losses.Add(loss.item<float>());
            optimizer.step();
        }

        Assert.True(float.IsFinite(losses[0]) && losses[0] > 0, $"first loss {losses[0]}");
        // The indexer can imitate the attention it is distilled from: a real signal, not a constant.
        Assert.True(losses[^1] < 0.7f * losses[0], $"loss {losses[0]} → {losses[^1]}");
        layer.eval();
        using (no_grad()) layer.forward(x).Dispose();
        Assert.Null(layer.Indexer!.TakeAuxiliaryLoss()); // evaluation leaves no loss
    }
}
