using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Generation;
using LlmEff.Runtime.Tests.Models;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>
/// Cached decoding of every generated decoder: logits from feeding tokens in pieces (a prefill, single tokens, a chunk)
/// equal the full forward's, the cache holds exactly the compile-time KV elements per token, and generation with
/// the cache picks the same tokens as recomputing the window.
/// </summary>
public sealed class DecodingTests
{
    public static TheoryDataFor CachedDecoders => Zoo.NamesWhere(f => f.Causal && Decodes(f.Name));

    private static bool Decodes(string name) => typeof(IDecoder).IsAssignableFrom(Zoo.ByName(name).Type);

    [Fact]
    public void Every_decoder_decodes_with_a_cache_except_those_whose_scores_need_the_whole_map()
    {
        var without = Zoo.SmallModels().Where(m => m.Facts.Causal && !Decodes(m.Facts.Name)).Select(m => m.Facts.Name).OrderBy(n => n).ToArray();
        // The symmetry-breaking positional term mixes whole score maps; encoders see the future.
        Assert.Equal(new[] { "NoQueryPlusMha", "SharedPlusGqa" }, without);
        Assert.DoesNotContain(Zoo.SmallModels(), m => !m.Facts.Causal && Decodes(m.Facts.Name));
    }

    [Theory]
    [MemberData(nameof(CachedDecoders))]
    public void Incremental_logits_equal_the_full_forward(string name)
    {
        var declared = Zoo.ByName(name);
        manual_seed(11);
        using var model = declared.Create();
        model.eval();
        const int time = 14;
        var random = new Random(5);
        var ids = Enumerable.Range(0, 2 * time).Select(_ => (long)random.Next(declared.Facts.Vocab)).ToArray();
        using var _ = no_grad();
        using var tokens = tensor(ids, new long[] { 2, time });
        using var full = model.forward(tokens);

        var decoder = (IDecoder)model;
        using var cache = decoder.NewCache();
        var pieces = new List<Tensor>();
        // A prefill of 5, four single tokens, a chunk of 3, then single tokens to the end.
        foreach (var (start, length) in new[] { (0, 5), (5, 1), (6, 1), (7, 1), (8, 1), (9, 3), (12, 1), (13, 1) })
            pieces.Add(decoder.forward(tokens.narrow(1, start, length), cache));
        using var incremental = cat(pieces, dim: 1);
        foreach (var piece in pieces) piece.Dispose();

        Assert.Equal(time, cache.Position);
        var difference = DecodingTestMath.MaxDifference(incremental, full);
        Assert.True(difference <= 1e-4, $"{name}: incremental logits differ from the full forward by {difference}");
    }

    /// <summary>One sequence at two threads: its single-token steps are where the kernels run (one-row products,
    /// one query's attention, libtorch's threads handed over), which a batch of two never reaches.</summary>
    [Theory]
    [MemberData(nameof(CachedDecoders))]
    public void One_sequence_decoded_token_by_token_on_two_threads_equals_the_full_forward(string name)
    {
        var declared = Zoo.ByName(name);
        var before = get_num_threads();
        try
        {
            set_num_threads(2);
            manual_seed(12);
            using var model = declared.Create();
            model.eval();
            const int time = 12;
            var random = new Random(6);
            var ids = Enumerable.Range(0, time).Select(_ => (long)random.Next(declared.Facts.Vocab)).ToArray();
            using var _ = no_grad();
            using var tokens = tensor(ids, new long[] { 1, time });
            using var full = model.forward(tokens);
            var decoder = (IDecoder)model;
            using var cache = decoder.NewCache();
            var pieces = new List<Tensor> { decoder.forward(tokens.narrow(1, 0, 4), cache) };
            for (var t = 4; t < time; t++)
            {
                pieces.Add(decoder.forward(tokens.narrow(1, t, 1), cache));
                Assert.Equal(2, get_num_threads()); // handed back after every step
            }
            using var incremental = cat(pieces, dim: 1);
            foreach (var piece in pieces) piece.Dispose();
            var difference = DecodingTestMath.MaxDifference(incremental, full);
            Assert.True(difference <= 1e-4, $"{name}: token-by-token logits differ from the full forward by {difference}");
        }
        finally
        {
            set_num_threads(before);
        }
    }

    [Theory]
    [MemberData(nameof(CachedDecoders))]
    public void The_cache_holds_exactly_the_declared_elements_per_token(string name)
    {
        var declared = Zoo.ByName(name);
        using var model = declared.Create();
        model.eval();
        using var _ = no_grad();
        var decoder = (IDecoder)model;
        using var cache = decoder.NewCache();
        using var tokens = zeros(new long[] { 1, 7 }, ScalarType.Int64);
        decoder.forward(tokens, cache).Dispose();

        // Compressed attention's cache is no constant per token (a bounded window, an entry per window, fixed state):
        // the facts state it per length.
        Assert.Equal(declared.Facts.KvCacheElementsAt(7), cache.ElementsPerBatchRow());
    }

    [Theory]
    [InlineData("TinyDecoder")]
    [InlineData("TinyHybrid")]
    [InlineData("TinyLatent")]
    [InlineData("TinySparse")]
    [InlineData("NoKeyGqa")]
    public void Generation_with_the_cache_picks_the_tokens_of_recomputing_the_window(string name)
    {
        manual_seed(3);
        using var model = Zoo.ByName(name).Create();
        var prompt = new long[] { 72, 101, 108, 108, 111 };
        var greedy = new SamplingOptions(Temperature: 0);
        var sampled = new SamplingOptions(Temperature: 1.0, TopP: 0.9, Seed: 4);
        // A window of 12 forces the cached path to refill once it is full.
        foreach (var sampling in new[] { greedy, sampled })
            Assert.Equal(TextGenerator.Generate(model, prompt, 20, context: 12, sampling, useCache: false),
                         TextGenerator.Generate(model, prompt, 20, context: 12, sampling));
    }

    [Fact]
    public void Decoding_past_the_context_is_refused_with_the_numbers()
    {
        using var model = new LlmEff.Samples.TinyHybrid();
        using var cache = model.NewCache();
        using var _ = no_grad();
        using var tokens = zeros(new long[] { 1, 200 }, ScalarType.Int64);
        model.forward(tokens, cache).Dispose();
        var error = Assert.Throws<ArgumentException>(() => model.forward(tokens, cache));
        Assert.Contains("400 tokens exceed the declared context of 256", error.Message);
    }
}
