using System;
using System.Linq;
using LlmEff.Data;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Layers;
using LlmEff.Training;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>Each projection variant holds only the projections it keeps, caches what it must, and learns.</summary>
public sealed class AttentionVariantTests
{
    private static readonly TokenDataset Data = TokenDataset.EmbeddedDefault(characters: 40_000);

    public static TheoryData<string, string, int> Variants => new()
    {
        { nameof(FullMha), "q_proj k_proj v_proj", 2 }, { nameof(FullGqa), "q_proj k_proj v_proj", 2 }, { nameof(FullMqa), "q_proj k_proj v_proj", 2 },
        { nameof(NoKeyMha), "q_proj v_proj", 1 }, { nameof(NoKeyGqa), "q_proj v_proj", 1 }, { nameof(NoKeyMqa), "q_proj v_proj", 1 },
        { nameof(NoQueryMha), "k_proj v_proj", 2 }, { nameof(NoQueryGqa), "k_proj v_proj", 2 }, { nameof(NoQueryMqa), "k_proj v_proj", 2 },
        { nameof(SharedMha), "qkv_proj", 1 }, { nameof(SharedGqa), "qkv_proj", 1 }, { nameof(SharedMqa), "qkv_proj", 1 },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void A_variant_has_only_its_projections_and_caches_its_streams(string name, string projections, int cachedStreams)
    {
        var declared = Zoo.ByName(name);
        using var model = declared.Create();

        var present = model.named_parameters()
            .Select(p => p.name.Split('.'))
            .Where(parts => parts.Length == 6 && parts[2] == "0" && parts[3] == "self_attn" && parts[4] != "o_proj")
            .Select(parts => parts[4]);
        Assert.Equal(projections.Split(' ').Order(), present.Order());

        var kvHeads = name.EndsWith("Mha") ? 4 : name.EndsWith("Gqa") ? 2 : 1;
        Assert.Equal(2L * cachedStreams * kvHeads * 16, declared.Facts.KvCacheElementsPerToken); // 2 layers, head width 16
    }

    public static TheoryData<string> VariantNames =>
        new(Variants.Select(row => (string)row[0]).Concat(new[] { nameof(NoQueryPlusMha), nameof(SharedPlusGqa), nameof(FullShareKv), nameof(Gpt2NamesNoKeyShareKv) }));

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void Every_variant_learns_the_embedded_corpus(string name)
    {
        var options = new TrainingOptions { Steps = 25, BatchSize = 4, SequenceLength = 32, WarmupSteps = 3, EvalBatches = 2 };
        Seeding.Seed(options.Seed);
        using var model = Zoo.ByName(name).Create();

        var result = Trainer.Train(model, Data, options);

        Assert.True(result.FinalTrainLoss < result.Losses[0] - 1.0, $"{name}: loss {result.Losses[0]:F3} → {result.FinalTrainLoss:F3}");
        Assert.True(double.IsFinite(result.HeldOutLoss));
    }

    [Fact]
    public void The_positional_term_breaks_the_symmetry_of_query_equals_key_scores()
    {
        manual_seed(5);
        using var mixer = new PositionalScoreMixer(dtype: ScalarType.Float64);
        using var k = randn(1, 2, 6, 8, dtype: ScalarType.Float64);

        using var raw = k.matmul(k.transpose(-2, -1));
        using var mixed = mixer.Scores(k, k);

        Assert.True((raw - raw.transpose(-2, -1)).abs().max().item<double>() < 1e-12);
        Assert.True((mixed - mixed.transpose(-2, -1)).abs().mean().item<double>() > 1e-3);
    }

    [Fact]
    public void Mixed_attention_equals_the_softmax_of_the_masked_mixed_scores()
    {
        manual_seed(6);
        using var mixer = new PositionalScoreMixer(dtype: ScalarType.Float64);
        using (no_grad()) mixer.Weight.copy_(randn(1, PositionalScoreMixer.Channels, 1, 1, dtype: ScalarType.Float64));
        using var q = randn(1, 2, 5, 8, dtype: ScalarType.Float64);
        using var k = randn(1, 2, 5, 8, dtype: ScalarType.Float64);
        using var v = randn(1, 2, 5, 8, dtype: ScalarType.Float64);

        using var actual = mixer.Attend(q, k, v);

        using var mask = ones(5, 5, dtype: ScalarType.Bool).triu(1);
        using var expected = mixer.Scores(q, k).masked_fill(mask, double.NegativeInfinity).softmax(-1).matmul(v);
        Assert.True((actual - expected).abs().max().item<double>() < 1e-10);
    }

    [Fact]
    public void Layers_that_share_keys_and_values_have_no_projections_for_them()
    {
        using var model = new FullShareKv();
        var names = model.named_parameters().Select(p => p.name).ToHashSet();

        Assert.Contains("model.layers.0.self_attn.k_proj.weight", names);
        Assert.DoesNotContain("model.layers.1.self_attn.k_proj.weight", names);
        Assert.DoesNotContain("model.layers.1.self_attn.v_proj.weight", names);
        Assert.Contains("model.layers.1.self_attn.q_proj.weight", names);
        Assert.Contains("model.layers.2.self_attn.v_proj.weight", names);
        Assert.Equal(2L * 2 * 2 * 16, FullShareKv.KvCacheElementsPerToken); // 2 owning layers · K and V · 2 KV heads · 16

        using var gpt2 = new Gpt2NamesNoKeyShareKv();
        var shapes = gpt2.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(new long[] { 64, 64 + 64 }, shapes["transformer.h.0.attn.c_attn.weight"]); // Q and V
        Assert.Equal(new long[] { 64, 64 }, shapes["transformer.h.1.attn.c_attn.weight"]);      // Q only
    }

    [Fact]
    public void A_reusing_layer_attends_with_its_group_leaders_keys_and_values()
    {
        // Zeroing layer 0's value projection must change layer 1's output too (it reuses those values).
        manual_seed(4);
        using var model = new FullShareKv();
        model.eval();
        using var tokens = tensor(new long[] { 1, 2, 3, 4, 5, 6 }).unsqueeze(0);
        using var _ = no_grad();
        using var before = model.forward(tokens);
        var v0 = model.named_parameters().Single(p => p.name == "model.layers.0.self_attn.v_proj.weight").parameter;
        v0.zero_();
        using var after = model.forward(tokens);

        Assert.True((before - after).abs().max().item<float>() > 1e-4);
    }

    [Theory]
    [InlineData(nameof(EncoderNoQuery), true)]
    [InlineData(nameof(EncoderSharedPlus), false)]
    [InlineData(nameof(EncoderFull), false)]
    [InlineData(nameof(NoQueryMha), true)]
    public void Score_maps_are_symmetric_exactly_when_queries_are_keys_without_the_positional_term(string name, bool symmetric)
    {
        manual_seed(12);
        using var model = Zoo.ByName(name).Create(dtype: ScalarType.Float64);
        using var tokens = randint(0, 10, new long[] { 2, 12 });

        using var _ = no_grad();
        foreach (var layer in new[] { 0, 1 })
        {
            using var scores = ((IAttentionScores)model).AttentionScores(tokens, layer);
            var asymmetry = (scores - scores.transpose(-2, -1)).abs().mean().item<double>();
            if (symmetric) Assert.True(asymmetry < 1e-12, $"{name} layer {layer}: mean |S - Sᵀ| = {asymmetry}");
            else Assert.True(asymmetry > 1e-4, $"{name} layer {layer}: mean |S - Sᵀ| = {asymmetry}");
        }
    }
}
