using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Data;
using LlmEff.Generation;
using LlmEff.Layers;
using LlmEff.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static LlmEff.Runtime.Tests.DecodingTestMath;

namespace LlmEff.Runtime.Tests;

/// <summary>Multi-head latent attention: DeepSeek names and sizes, decoding from the latent cache, training with an indexer.</summary>
public sealed class LatentAttentionTests
{
    private static LatentAttentionOptions Small(int qRank, bool bias = false) =>
        new(Dim: 32, Heads: 4, HeadDim: 8, KvRank: 16, RopeDim: 4, QRank: qRank, Context: 32, RopeTheta: 10000, NormEps: 1e-6, Layers: 2, Bias: bias);

    [Theory]
    [InlineData(12, false)]
    [InlineData(0, false)]
    [InlineData(12, true)]
    [InlineData(0, true)]
    public void Latent_attention_has_DeepSeek_names_shapes_and_size(int qRank, bool bias)
    {
        var options = Small(qRank, bias);
        using var layer = new LatentAttention(options, new LightningIndexer(32, 2, 6, 4));

        var expected = new Dictionary<string, long[]>
        {
            ["kv_a_proj_with_mqa.weight"] = new long[] { 16 + 4, 32 },
            ["kv_a_layernorm.weight"] = new long[] { 16 },
            ["kv_b_proj.weight"] = new long[] { 4 * (8 + 8), 16 },
            ["o_proj.weight"] = new long[] { 32, 4 * 8 },
            ["indexer.wq.weight"] = new long[] { 2 * 6, 32 },
            ["indexer.wk.weight"] = new long[] { 6, 32 },
            ["indexer.weights_proj.weight"] = new long[] { 2, 32 },
        };
        if (qRank > 0)
        {
            expected["q_a_proj.weight"] = new long[] { 12, 32 };
            expected["q_a_layernorm.weight"] = new long[] { 12 };
            expected["q_b_proj.weight"] = new long[] { 4 * (8 + 4), 12 };
        }
        else expected["q_proj.weight"] = new long[] { 4 * (8 + 4), 32 };
        if (bias)
        {
            // Where DeepSeek's attention_bias puts biases: never on q_b_proj or kv_b_proj.
            expected[qRank > 0 ? "q_a_proj.bias" : "q_proj.bias"] = new long[] { qRank > 0 ? 12 : 4 * (8 + 4) };
            expected["kv_a_proj_with_mqa.bias"] = new long[] { 16 + 4 };
            expected["o_proj.bias"] = new long[] { 32 };
        }
        Assert.Equal(expected.OrderBy(e => e.Key), Shapes(layer).OrderBy(e => e.Key));
        Assert.Equal(expected.Values.Sum(shape => shape.Aggregate(1L, (product, size) => product * size)), layer.parameters().Sum(p => p.numel()));
        Assert.Equal(16 + 4 + 6, layer.CacheElementsPerToken);
    }

    [Fact]
    public void Latent_attention_of_DeepSeek_V3_has_its_published_size()
    {
        // One V3 attention layer: q_a 7168·1536, norm 1536, q_b 1536·128·192, kv_a 7168·576, norm 512,
        // kv_b 512·128·256, o 128·128·7168.
        var v3 = new LatentAttentionOptions(7168, 128, 128, 512, 64, 1536, 16, 10000, 1e-6, 61);
        using var layer = new LatentAttention(v3, device: META);

        Assert.Equal(187_107_328L, layer.parameters().Sum(p => p.numel()));
        Assert.Equal(576, layer.CacheElementsPerToken);
    }

    public static IEnumerable<object[]> DecodingCases() =>
        from qRank in new[] { 12, 0 }
        from topK in new[] { 0, 3, 64 } // 0: no indexer
        select new object[] { qRank, topK };

    [Theory]
    [MemberData(nameof(DecodingCases))]
    public void Latent_attention_decodes_like_the_full_forward_and_caches_only_the_latent(int qRank, int topK)
    {
        manual_seed(11);
        using var layer = new LatentAttention(Small(qRank), topK > 0 ? new LightningIndexer(32, 2, 6, topK) : null);
        layer.eval();
        using var x = randn(2, 14, 32);
        using var _ = no_grad();
        using var full = layer.forward(x);

        foreach (var chunks in new[] { new[] { 5, 1, 1, 1, 3, 3 }, new[] { 1, 1, 4, 8 } })
        {
            using var cache = new DecodingCache(1, capacity: 32);
            using var scope = NewDisposeScope();
            foreach (var n in chunks)
            {
                var step = layer.forward(x.narrow(1, cache.Position, n), cache[0], cache.Position);
                Assert.True(MaxDifference(step, full.narrow(1, cache.Position, n)) <= 1e-5, $"chunks {string.Join(",", chunks)} at {cache.Position}");
                cache.Advance(n);
                Assert.Equal(layer.CacheElementsPerToken * cache.Position * 2, cache[0].Elements);
                Assert.Equal(layer.CacheElementsPerToken * cache.Position, cache.ElementsPerBatchRow());
            }
        }
        Assert.Equal(16 + 4 + (topK > 0 ? 6 : 0), layer.CacheElementsPerToken);
    }

    [Fact]
    public void Latent_attention_with_a_small_top_k_differs_from_dense()
    {
        manual_seed(12);
        using var dense = new LatentAttention(Small(0));
        using var sparse = new LatentAttention(Small(0), new LightningIndexer(32, 2, 6, topK: 2));
        sparse.load_state_dict(dense.state_dict(), strict: false);
        using var x = randn(1, 10, 32);
        using var _ = no_grad();

        using var a = dense.forward(x);
        using var b = sparse.forward(x);

        // The first two positions see at most two keys: identical there, different afterwards.
        Assert.True(MaxDifference(a.narrow(1, 0, 2), b.narrow(1, 0, 2)) <= 1e-6);
        Assert.True(MaxDifference(a.narrow(1, 2, 8), b.narrow(1, 2, 8)) > 1e-4);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Latent_attention_trains(bool withIndexer)
    {
        manual_seed(13);
        using var layer = new LatentAttention(Small(12), withIndexer ? new LightningIndexer(32, 2, 6, topK: 3) : null);
        layer.train();
        using var x = randn(2, 8, 32).requires_grad_();
        using var scope = NewDisposeScope();

        layer.forward(x).square().sum().backward();

        var indexerParameters = layer.named_parameters().Where(p => p.name.StartsWith("indexer.")).ToList();
        Assert.All(layer.named_parameters().Where(p => !p.name.StartsWith("indexer.")), p => Assert.True(p.parameter.grad is not null, p.name));
        Assert.True(x.grad is { } g && g.abs().max().item<float>() > 0);
        // Selection passes no gradient; the indexer learns from its own loss only.
        Assert.All(indexerParameters, p => Assert.True(p.parameter.grad is null, p.name));
        var auxiliary = layer.Indexer?.TakeAuxiliaryLoss();
        Assert.Equal(withIndexer, auxiliary is not null);
        if (auxiliary is null) return;
        using (auxiliary) auxiliary.backward();
        Assert.All(indexerParameters, p => Assert.True(p.parameter.grad is not null, p.name));
    }

    [Fact]
    public void Bidirectional_latent_attention_sees_later_tokens_and_refuses_to_decode()
    {
        manual_seed(14);
        using var layer = new LatentAttention(Small(0) with { Causal = false });
        using var x = randn(1, 6, 32);
        using var changed = x.clone();
        using var _ = no_grad();
        changed[TensorIndex.Colon, 5].add_(1);

        using var a = layer.forward(x);
        using var b = layer.forward(changed);

        Assert.True(MaxDifference(a.narrow(1, 0, 1), b.narrow(1, 0, 1)) > 1e-6);
        using var cache = new DecodingCache(1, 8);
        Assert.Throws<InvalidOperationException>(() => layer.forward(x, cache[0], 0));
        Assert.Throws<ArgumentException>(() => new LatentAttention(Small(0) with { Causal = false }, new LightningIndexer(32, 2, 6, 3)));
    }

    [Fact]
    public void Decoding_leaks_no_tensors()
    {
        static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using var conv = new ShortConv(dim: 8, kernel: 3, bias: true, layers: 2);
        using var attention = new LatentAttention(new LatentAttentionOptions(16, 2, 4, 8, 4, 0, 32, 10000, 1e-6, 2), new LightningIndexer(16, 2, 4, 3));
        using var input8 = randn(1, 3, 8);
        using var input16 = randn(1, 3, 16);
        using var _ = no_grad();
        var before = Live();
        for (var round = 0; round < 2; round++)
        {
            using var cache = new DecodingCache(layers: 2, capacity: 40);
            for (var step = 0; step < 10; step++)
            {
                using var scope = NewDisposeScope();
                conv.forward(input8, cache[0]);
                attention.forward(input16, cache[1], cache.Position);
                cache.Advance(3);
            }
        }
        Assert.Equal(before, Live());
    }

    [Fact]
    public void Training_adds_the_indexer_loss()
    {
        var data = TokenDataset.EmbeddedDefault(characters: 5_000);
        var options = new TrainingOptions { Steps = 1, BatchSize = 2, SequenceLength = 8, WarmupSteps = 1, EvalBatches = 1, WeightDecay = 0 };
        Seeding.Seed(1);
        using var model = new IndexedModel(data.Vocab);
        using var before = model.named_parameters().Single(p => p.name.EndsWith("indexer.wq.weight")).parameter.detach().clone();
        using var run = new TrainingRun(model, data, options);

        run.Step();

        // The indexer's input is detached, so only its own loss can have moved its weights.
        var after = model.named_parameters().Single(p => p.name.EndsWith("indexer.wq.weight")).parameter;
        Assert.True(MaxDifference(before, after) > 0);
    }

    private sealed class IndexedModel : nn.Module<Tensor, Tensor>
    {
        private readonly Embedding embed;
        private readonly LatentAttention attention;
        private readonly TorchSharp.Modules.Linear head;

        public IndexedModel(int vocab) : base(nameof(IndexedModel))
        {
            embed = nn.Embedding(vocab, 16);
            attention = new LatentAttention(new LatentAttentionOptions(16, 2, 4, 8, 4, 0, 16, 10000, 1e-6, 1), new LightningIndexer(16, 2, 4, 3));
            head = nn.Linear(16, vocab);
            RegisterComponents();
        }

        public override Tensor forward(Tensor tokens)
        {
            using var scope = NewDisposeScope();
            var h = embed.forward(tokens);
            return head.forward(h + attention.forward(h)).MoveToOuterDisposeScope();
        }
    }
}
