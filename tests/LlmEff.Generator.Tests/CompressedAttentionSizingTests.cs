using System;
using System.Linq;
using LlmEff.Generator.Model;
using LlmEff.Generator.Sizing;
using LlmEff.Generator.Tests.Infrastructure;
using LlmEff.Layers;
using LlmEff.Quantization;
using Xunit.Abstractions;

namespace LlmEff.Generator.Tests;

/// <summary>DeepSeek V4 attention sizing: parameters equal the runtime block's, the cache holds what the reference
/// holds, and DeepSeek-V4-Flash's cache per token at 1M tokens against V3.2's.</summary>
public sealed class CompressedAttentionSizingTests
{
    private readonly ITestOutputHelper log;

    public CompressedAttentionSizingTests(ITestOutputHelper log) => this.log = log;

    // deepseek-ai/DeepSeek-V4-Flash config.json: hidden_size 4096, num_attention_heads 64, head_dim 512,
    // qk_rope_head_dim 64, q_lora_rank 1024, o_groups 8, o_lora_rank 1024, sliding_window 128, index_n_heads 64,
    // index_head_dim 128; compress_ratios [0, 0, 4, 128, 4, …, 128, 4] over its 43 layers (a 44th entry, 0, is the MTP layer).
    private static readonly CompressedAttentionShape Flash = new(4096, 64, 512, 64, 1024, 8, 1024, 128, 64, 128);

    private static readonly int[] FlashRatios = new[] { 0, 0 }.Concat(Enumerable.Range(0, 41).Select(i => i % 2 == 0 ? 4 : 128)).ToArray();

    [Theory]
    [InlineData(CompressedAttentionKind.SlidingWindow, 0)]
    [InlineData(CompressedAttentionKind.CompressedSparse, 4)]
    [InlineData(CompressedAttentionKind.HeavilyCompressed, 16)]
    public void Parameters_equal_the_runtime_layers_parameter_count(CompressedAttentionKind kind, int ratio)
    {
        var shape = new CompressedAttentionShape(40, 6, 64, 16, 24, 3, 12, 8, 5, 32);
        using var layer = new CompressedAttention(new CompressedAttentionOptions(shape.Dim, shape.Heads, shape.HeadDim, shape.RopeDim, shape.QueryRank,
            shape.OutputGroups, shape.OutputRank, shape.Window, kind, ratio, shape.IndexerHeads, shape.IndexerDim, TopK: 4, IndexerPrecision.Fp4,
            Bf16Scores: false, Context: 32, RopeTheta: 10000, NormEps: 1e-6));

        var counted = layer.parameters().Sum(p => p.numel());

        Assert.Equal(counted, CompressedAttentionSizing.Parameters(shape, ratio, sparse: kind == CompressedAttentionKind.CompressedSparse));
    }

    [Theory]
    [InlineData(CompressedAttentionKind.SlidingWindow, 0, 3)]
    [InlineData(CompressedAttentionKind.CompressedSparse, 4, 23)]
    [InlineData(CompressedAttentionKind.HeavilyCompressed, 8, 23)]
    public void The_decoding_cache_holds_exactly_what_sizing_says(CompressedAttentionKind kind, int ratio, int tokens)
    {
        var shape = new CompressedAttentionShape(40, 6, 64, 16, 24, 3, 12, 8, 5, 32);
        using var layer = new CompressedAttention(new CompressedAttentionOptions(shape.Dim, shape.Heads, shape.HeadDim, shape.RopeDim, shape.QueryRank,
            shape.OutputGroups, shape.OutputRank, shape.Window, kind, ratio, shape.IndexerHeads, shape.IndexerDim, TopK: 4, IndexerPrecision.Fp4,
            Bf16Scores: false, Context: 32, RopeTheta: 10000, NormEps: 1e-6));
        using var cache = layer.NewCache(2);
        using var x = TorchSharp.torch.randn(2, tokens, shape.Dim);

        using var output = layer.Decode(x, cache);

        var expected = CompressedAttentionSizing.Cache(shape, ratio, sparse: kind == CompressedAttentionKind.CompressedSparse, tokens);
        Assert.Equal(expected.Elements, cache.ElementsPerSequence);
    }

    [Fact]
    public void The_cache_holds_the_window_and_only_complete_windows()
    {
        var shape = new CompressedAttentionShape(40, 6, 64, 16, 24, 3, 12, 8, 5, 32);

        var early = CompressedAttentionSizing.Cache(shape, 4, sparse: true, tokens: 7);
        var late = CompressedAttentionSizing.Cache(shape, 4, sparse: true, tokens: 8);
        var sliding = CompressedAttentionSizing.Cache(shape, 0, sparse: false, tokens: 1000);

        Assert.Equal((7L, 1L, 1L), (early.WindowEntries, early.CompressedEntries, early.IndexerKeys));
        Assert.Equal((8L, 2L, 2L), (late.WindowEntries, late.CompressedEntries, late.IndexerKeys));
        // Overlapping compressors keep values and logits of 2·4 slots × 2·width channels: 2·8·128 + 2·8·64.
        Assert.Equal(2L * 8 * 128 + 2L * 8 * 64, early.StateValues);
        Assert.Equal(8L * 64, sliding.Elements);
        Assert.Throws<OverflowException>(() => CompressedAttentionSizing.Cache(shape with { HeadDim = int.MaxValue }, 4, false, long.MaxValue / 2).Elements);
    }

    [Fact]
    public void DeepSeek_V4_Flash_caches_about_7_percent_of_V3_2_per_token_at_one_million_tokens()
    {
        const long tokens = 1L << 20;
        Assert.Equal(43, FlashRatios.Length);
        Assert.Equal((2, 21, 20), (FlashRatios.Count(r => r == 0), FlashRatios.Count(r => r == 4), FlashRatios.Count(r => r == 128)));
        var storage = CompressedCacheStorage.DeepSeekV4(Flash);
        long elements = 0, bytes = 0;
        foreach (var ratio in FlashRatios)
        {
            var layer = CompressedAttentionSizing.Cache(Flash, ratio, sparse: ratio == 4, tokens);
            elements += layer.Elements;
            bytes += CompressedAttentionSizing.Bytes(layer, storage);
        }

        // By hand: every layer's window (128 × 512), 21 CSA layers with 2^18 entries (512) and index keys (128) plus
        // 2·8·1024 + 2·8·256 state values, 20 HCA layers with 2^13 entries plus 2·128·512 state values.
        long handElements = 43L * 128 * 512 + 21L * ((tokens / 4) * (512 + 128) + 2 * 8 * 1024 + 2 * 8 * 256)
            + 20L * ((tokens / 128) * 512 + 2 * 128 * 512);
        Assert.Equal(handElements, elements);
        // Bytes: entries 448 FP8 + 64 bf16 = 576 B, FP4 index keys 64 + 4 scale bytes = 68 B, state fp32.
        long handBytes = 43L * 128 * 576 + 21L * ((tokens / 4) * (576 + 68) + 4 * (2 * 8 * 1024 + 2 * 8 * 256))
            + 20L * ((tokens / 128) * 576 + 4 * (2 * 128 * 512));
        Assert.Equal(handBytes, bytes);

        // DeepSeek-V3.2 (config: 61 layers, kv_lora_rank 512, qk_rope_head_dim 64, index_head_dim 128): per token and
        // layer one 576-wide latent and one 128-wide index key; stored as FlashMLA's FP8 format (512 FP8 + 4 fp32
        // scales + 64 bf16 = 656 B) and an FP8 index key with an fp32 scale (132 B).
        const double v32Elements = 61 * (576 + 128), v32Bytes = 61 * (656 + 132);
        var elementShare = elements / (double)tokens / v32Elements;
        var byteShare = bytes / (double)tokens / v32Bytes;
        log.WriteLine($"V4-Flash at 2^20 tokens: {elements / (double)tokens:F1} elements/token ({elementShare:P2} of V3.2's {v32Elements}), " +
            $"{bytes / (double)tokens:F1} B/token ({byteShare:P2} of V3.2's {v32Bytes} B)");
        // The report: about 7%. Counting elements gives 8.0%, bytes under the storage above 7.3%.
        Assert.InRange(elementShare, 0.079, 0.081);
        Assert.InRange(byteShare, 0.072, 0.073);
    }

    [Fact]
    public void The_declared_DeepSeek_V4_Flash_adds_up_to_the_sizing_of_its_43_layers_and_its_cache_at_every_length()
    {
        var run = CompilationHarness.Generate(CompilationHarness.Compile(CompilationHarness.SampleSources()["DeepSeekV4Models"])).Run;
        var flash = run.Results.Single().TrackedSteps[TrackingNames.Models].SelectMany(step => step.Outputs).Select(o => (ModelToEmit)o.Value)
            .Single(m => m.Target.Name == "DeepSeekV4Flash");

        Assert.Equal(FlashRatios, flash.Plan.Layers.Select(l => l.Compressed!.Ratio));
        Assert.Equal(FlashRatios.Sum(r => CompressedAttentionSizing.Parameters(Flash, r, sparse: r == 4)), flash.Sizes.AttentionParameters);
        foreach (var tokens in new long[] { 0, 1, 3, 4, 127, 128, 129, 4096, 1 << 20 })
            Assert.Equal(FlashRatios.Sum(r => CompressedAttentionSizing.Cache(Flash, r, sparse: r == 4, tokens).Elements), ModelSizing.CacheElements(flash.Plan, tokens));
        Assert.Equal(3446, flash.Sizes.KvCacheElementsPerToken); // 3,612,971,008 elements at 2^20 tokens, rounded up per token
        Assert.Equal(3440.0, ModelSizing.CacheElementsPerTokenLimit(flash.Plan)); // 21 × (512 + 128) / 4 + 20 × 512 / 128

        // The residual streams (mHC) per deepseek-ai's V4 inference/model.py: per layer hc_attn/hc_ffn fn [24, 4·4096], base
        // [24] and scale [3]; the head's fn [4, 4·4096], base [4], scale [1]. Hash routing adds a buffer, no parameter.
        const long streams = 4, dim = 4096, mix = (2 + streams) * streams;
        var mhc = 43 * 2 * (mix * streams * dim + mix + 3) + (streams * streams * dim + streams + 1);
        Assert.Equal(33_884_439, mhc);
        Assert.Equal(mhc, flash.Sizes.ResidualStreamParameters);
        Assert.Equal(284_298_345_792 + mhc, flash.Sizes.Parameters);
        // The report: 284B total, 13B active; the active count less the input embedding's lookup is 13.27B.
        Assert.Equal(13_799_622_231, flash.Sizes.ActiveParameters);
        Assert.Equal(13_270_091_351, flash.Sizes.ActiveParameters - 129_280L * 4096);
        log.WriteLine($"DeepSeekV4Flash: {flash.Sizes.Parameters:N0} parameters ({mhc:N0} of them mHC), active {flash.Sizes.ActiveParameters:N0}");
    }
}
