using System.Linq;
using LlmEff.Data;
using LlmEff.Layers;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Training;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>Issue 7's block kinds inside generated models: each trains, uses the names its source model uses, and
/// sparse attention that keeps every past token is dense attention.</summary>
public sealed class BlockKindTests
{
    private static readonly TokenDataset Data = TokenDataset.EmbeddedDefault(characters: 40_000);

    public static TheoryData<string> BlockKinds => new(
        nameof(HybridGqa), nameof(HybridNoKey), nameof(Gpt2Hybrid), nameof(QkNormShared), nameof(LatentMla),
        nameof(LatentDirectQuery), nameof(SparseGqa), nameof(SparseShared), nameof(LatentSparseMoe), nameof(HybridMoe));

    [Theory]
    [MemberData(nameof(BlockKinds))]
    public void Every_block_kind_learns_the_embedded_corpus(string name)
    {
        var options = new TrainingOptions { Steps = 25, BatchSize = 4, SequenceLength = 32, WarmupSteps = 3, EvalBatches = 2 };
        Seeding.Seed(options.Seed);
        using var model = Zoo.ByName(name).Create();
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

        var result = Trainer.Train(model, Data, options);

        Assert.True(result.FinalTrainLoss < result.Losses[0] - 1.0, $"{name}: loss {result.Losses[0]:F3} → {result.FinalTrainLoss:F3}");
        Assert.True(double.IsFinite(result.HeldOutLoss));
        // Every parameter received gradient: the indexer through its own loss, the convolutions through the residual stream.
        var frozen = model.named_parameters().Where(p => DecodingTestMath.MaxDifference(before[p.name], p.parameter.detach()) == 0).Select(p => p.name).ToList();
        Assert.True(frozen.Count == 0, $"{name}: parameters that never moved: {string.Join(", ", frozen)}");
        foreach (var tensor in before.Values) tensor.Dispose();
    }

    [Fact]
    public void Hybrid_layers_carry_LFM2s_convolution_and_query_key_norm_names()
    {
        using var model = new HybridGqa();
        var names = model.named_parameters().Select(p => p.name).ToHashSet();

        Assert.Contains("model.layers.0.conv.in_proj.weight", names);
        Assert.Contains("model.layers.0.conv.conv.weight", names);
        Assert.Contains("model.layers.0.conv.out_proj.weight", names);
        Assert.Contains("model.layers.1.self_attn.q_layernorm.weight", names);
        Assert.Contains("model.layers.1.self_attn.k_layernorm.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("model.layers.0.self_attn", System.StringComparison.Ordinal));
        Assert.DoesNotContain(names, n => n.StartsWith("model.layers.1.conv", System.StringComparison.Ordinal));
    }

    [Fact]
    public void Latent_attention_carries_DeepSeeks_names()
    {
        using var model = new LatentMla();
        var names = model.named_parameters().Where(p => p.name.StartsWith("model.layers.0.self_attn.", System.StringComparison.Ordinal))
            .Select(p => p.name["model.layers.0.self_attn.".Length..]).Order().ToArray();

        Assert.Equal(new[] { "kv_a_layernorm.weight", "kv_a_proj_with_mqa.weight", "kv_b_proj.weight", "o_proj.weight", "q_a_layernorm.weight", "q_a_proj.weight", "q_b_proj.weight" }, names);
    }

    [Fact]
    public void Sparse_attention_that_keeps_every_past_token_is_the_dense_model()
    {
        manual_seed(2);
        using var sparse = new SparseGqa(); // TopK 4
        using var dense = new FullGqa();    // the same architecture without the indexer
        var weights = sparse.state_dict().Where(p => !p.Key.Contains(".indexer.")).ToDictionary(p => p.Key, p => p.Value);
        dense.load_state_dict(weights);
        sparse.eval();
        dense.eval();
        using var _ = no_grad();

        using var four = randint(0, 256, new long[] { 2, 4 });
        using var eight = randint(0, 256, new long[] { 2, 8 });
        // Four tokens: every query sees at most 4 keys, so top-4 keeps them all.
        using var sparseFour = sparse.forward(four);
        using var denseFour = dense.forward(four);
        Assert.True(DecodingTestMath.MaxDifference(sparseFour, denseFour) < 1e-5);
        // Eight tokens: later queries lose keys, so the outputs must differ there and only there.
        using var sparseLogits = sparse.forward(eight);
        using var denseLogits = dense.forward(eight);
        Assert.True(DecodingTestMath.MaxDifference(sparseLogits.narrow(1, 0, 4), denseLogits.narrow(1, 0, 4)) < 1e-5);
        Assert.True(DecodingTestMath.MaxDifference(sparseLogits.narrow(1, 4, 4), denseLogits.narrow(1, 4, 4)) > 1e-4);
    }

    [Fact]
    public void Every_sparse_layer_has_an_indexer_the_trainer_finds()
    {
        using var model = new SparseGqa();
        Assert.Equal(2, LightningIndexer.In(model).Count);
    }

    [Fact]
    public void The_LFM2_and_DeepSeek_samples_report_their_published_caches_and_build_to_their_counts()
    {
        Assert.Equal(6 * 2 * 8 * 64, LlmEff.Samples.Lfm2MoeLike.KvCacheElementsPerToken); // 6 attention layers × K and V × 8 KV heads × 64
        Assert.Equal(18 * 2 * 2048, LlmEff.Samples.Lfm2MoeLike.ConvStateElements);
        Assert.Equal(70_272, LlmEff.Samples.DeepSeekV3Like.Facts.KvCacheBytesPerToken()); // REFERENCES.md §3: 61 · 576 elements in bf16
        Assert.Equal(8_339_929_856, LlmEff.Samples.Lfm2MoeLike.ParameterCount);

        using var lfm2 = new LlmEff.Samples.Lfm2MoeLike(META);
        Assert.Equal(LlmEff.Samples.Lfm2MoeLike.ParameterCount, Zoo.CountElements(lfm2));
        Assert.Equal(LlmEff.Samples.Lfm2MoeLike.Facts.Breakdown.Convolution,
            lfm2.named_parameters().Where(p => p.name.Contains(".conv.")).Sum(p => p.parameter.numel()));
    }

    [Fact]
    public void LFM2_5_8B_A1B_is_LFM2_8B_A1B_with_a_larger_tied_vocabulary_and_the_same_cache()
    {
        // REFERENCES §3: the same architecture with vocab 128,000; tied, so only the embedding grows (by 62,464 rows of 2,048).
        Assert.Equal(LlmEff.Samples.Lfm2MoeLike.ParameterCount + (128_000L - 65_536) * 2048, LlmEff.Samples.Lfm25_8B_A1B.ParameterCount);
        Assert.Equal(8_467_856_128, LlmEff.Samples.Lfm25_8B_A1B.ParameterCount);
        Assert.Equal(LlmEff.Samples.Lfm2MoeLike.KvCacheElementsPerToken, LlmEff.Samples.Lfm25_8B_A1B.KvCacheElementsPerToken);
        Assert.Equal(131_072, LlmEff.Samples.Lfm25_8B_A1B.Facts.Context);

        using var lfm25 = new LlmEff.Samples.Lfm25_8B_A1B(META);
        Assert.Equal(LlmEff.Samples.Lfm25_8B_A1B.ParameterCount, Zoo.CountElements(lfm25));
    }
}
