using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Generation;
using LlmEff.Layers;
using LlmEff.Samples;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>
/// The generated model of a compressed-attention declaration (TinyV4: two sliding-window layers with a 32-token window,
/// a CSA layer with ratio 4 and top 8, an HCA layer with ratio 16): its size constants match the live module, cached
/// decoding equals the full forward across window and compression boundaries, and the cache holds what
/// <c>KvCacheElements</c> says.
/// </summary>
public sealed class CompressedModelTests
{
    [Fact]
    public void The_generated_module_holds_the_declared_parameter_count_and_one_compressed_block_per_layer_of_its_kind()
    {
        using var model = new TinyV4(META);
        Assert.Equal(TinyV4.ParameterCount, Models.Zoo.CountElements(model));
        var blocks = model.modules().OfType<CompressedAttention>().ToList();
        Assert.Equal(new[] { CompressedAttentionKind.SlidingWindow, CompressedAttentionKind.SlidingWindow, CompressedAttentionKind.CompressedSparse,
            CompressedAttentionKind.HeavilyCompressed }, blocks.Select(b => b.Options.Kind));
        Assert.Equal(new[] { 0, 0, 4, 16 }, blocks.Select(b => b.Options.Ratio));
    }

    [Fact]
    public void Prefill_single_tokens_and_chunks_equal_the_full_forward_across_window_and_compression_boundaries()
    {
        manual_seed(17);
        using var model = new TinyV4();
        model.eval();
        // 80 tokens: past the 32-token window, through 20 CSA windows (4) and 5 HCA windows (16); the pieces end inside and
        // on window boundaries, and one chunk spans the window's first refill.
        const int time = 80;
        var random = new Random(9);
        using var _ = no_grad();
        using var tokens = tensor(Enumerable.Range(0, 2 * time).Select(_ => (long)random.Next(256)).ToArray(), new long[] { 2, time });
        using var full = model.forward(tokens);

        using var cache = model.NewCache();
        var pieces = new List<Tensor>();
        foreach (var (start, length) in new[] { (0, 5), (5, 1), (6, 1), (7, 1), (8, 8), (16, 1), (17, 20), (37, 1), (38, 10), (48, 1), (49, 15), (64, 1), (65, 15) })
            pieces.Add(model.forward(tokens.narrow(1, start, length), cache));
        using var incremental = cat(pieces, dim: 1);
        foreach (var piece in pieces) piece.Dispose();

        Assert.Equal(time, cache.Position);
        var difference = DecodingTestMath.MaxDifference(incremental, full);
        Assert.True(difference <= 1e-4, $"incremental logits differ from the full forward by {difference}");
    }

    [Fact]
    public void The_cache_holds_exactly_the_elements_KvCacheElements_states_at_every_length()
    {
        using var model = new TinyV4();
        model.eval();
        using var _ = no_grad();
        using var cache = model.NewCache();
        var fed = 0L;
        foreach (var length in new[] { 7, 9, 17, 1, 30, 64 })
        {
            using var tokens = zeros(new long[] { 1, length }, ScalarType.Int64);
            model.forward(tokens, cache).Dispose();
            fed += length;
            var held = Enumerable.Range(0, cache.Layers)
                .Sum(i => cache[i].Block<CompressedAttentionCache>(LayerState.CompressedAttention, () => throw new InvalidOperationException("no cache")).ElementsPerSequence);
            Assert.Equal(TinyV4.KvCacheElements(fed), held);
        }
        // At full context the per-token constant is the whole cache spread over it, and the long-context rate is the entries'.
        Assert.Equal(TinyV4.KvCacheElementsPerToken, (TinyV4.KvCacheElements(256) + 255) / 256);
        Assert.Equal(TinyV4.KvCacheElementsPerTokenLimit, 64.0 / 4 + 32.0 / 4 + 64.0 / 16);
        Assert.Throws<ArgumentOutOfRangeException>(() => TinyV4.KvCacheElements(-1));
        Assert.Equal(TinyV4.KvCacheElements(100), TinyV4.Facts.KvCacheElementsAt(100));
    }

    [Fact]
    public void Generation_with_the_cache_picks_the_tokens_of_recomputing_the_window()
    {
        manual_seed(3);
        using var model = new TinyV4();
        var prompt = new long[] { 72, 101, 108, 108, 111 };
        // A generation window of 40 passes the attention window (32) and completes CSA and HCA windows before it slides.
        foreach (var sampling in new[] { new SamplingOptions(Temperature: 0), new SamplingOptions(Temperature: 1.0, TopP: 0.9, Seed: 4) })
            Assert.Equal(TextGenerator.Generate(model, prompt, 45, context: 40, sampling, useCache: false),
                         TextGenerator.Generate(model, prompt, 45, context: 40, sampling));
    }

    [Fact]
    public void A_layer_state_keeps_one_block_state_per_stream_and_refuses_to_mix_it_with_tensors()
    {
        using var cache = new DecodingCache(1, 8);
        var made = 0;
        var first = cache[0].Block(3, () => { made++; return new DecodingCache(1, 1); });
        var second = cache[0].Block(3, () => { made++; return new DecodingCache(1, 1); });
        Assert.Same(first, second);
        Assert.Equal(1, made);
        using var values = zeros(1, 2, 1, 4);
        Assert.Throws<InvalidOperationException>(() => cache[0].Append(3, values, 2));
        cache[0].Append(0, values, 2).Dispose();
        Assert.Throws<InvalidOperationException>(() => cache[0].Block(0, () => new DecodingCache(1, 1)));
    }
}
