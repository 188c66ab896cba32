using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Data;
using LlmEff.Layers;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Samples;
using LlmEff.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>Routed experts: exact sizes (total and active), sparse dispatch, balancing, training.</summary>
public sealed class MixtureOfExpertsTests
{
    public static TheoryDataFor ExpertModels => Zoo.NamesWhere(f => f.ActiveParameterCount < f.ParameterCount);

    [Theory]
    [MemberData(nameof(ExpertModels))]
    public void Active_parameters_equal_the_live_module_without_the_unchosen_experts(string name)
    {
        var declared = Zoo.ByName(name);
        using var model = declared.Create();

        Assert.Equal(declared.Facts.ActiveParameterCount, ActiveParameters(model));
    }

    [Fact]
    public void Mixtral_8x7B_built_on_meta_matches_its_published_count()
    {
        using var model = new Mixtral8x7B(META);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        Assert.Equal(46_702_792_704, Mixtral8x7B.ParameterCount);
        Assert.Equal(Mixtral8x7B.ParameterCount, Zoo.CountElements(model));
        Assert.Equal(12_879_925_248, Mixtral8x7B.ActiveParameterCount);
        Assert.Equal(Mixtral8x7B.ActiveParameterCount, ActiveParameters(model));
        Assert.Equal(new long[] { 8, 4096 }, shapes["model.layers.31.mlp.gate.weight"]);
        Assert.Equal(new long[] { 14336, 4096 }, shapes["model.layers.0.mlp.experts.7.gate_proj.weight"]);
    }

    [Fact]
    public void DeepSeek_V3_and_LFM2_expert_stacks_have_their_published_sizes()
    {
        // DeepSeek-V3: 3 dense layers (3·7168·18432 each) + 58 layers of router, 256 experts and one shared (3·7168·2048 each).
        const long deepSeekExpert = 3L * 7168 * 2048;
        Assert.Equal(3 * 3L * 7168 * 18432 + 58 * (256L * 7168 + 257 * deepSeekExpert), DeepSeekV3Like.Facts.Breakdown.Mlp);
        Assert.Equal(DeepSeekV3Like.ParameterCount - 58 * 248 * deepSeekExpert, DeepSeekV3Like.ActiveParameterCount);
        // LFM2-8B-A1B: 2 dense layers of 7168, then 22 layers of 32 experts of 1792 with a 32-way router.
        Assert.Equal(2 * 3L * 2048 * 7168 + 22 * (32L * 2048 + 32 * 3L * 2048 * 1792), Lfm2MoeLike.Facts.Breakdown.Mlp);

        using var deepSeek = new DeepSeekV3Like(META);
        Assert.Equal(DeepSeekV3Like.ParameterCount, Zoo.CountElements(deepSeek));
        Assert.Equal(DeepSeekV3Like.ActiveParameterCount, ActiveParameters(deepSeek));
    }

    [Fact]
    public void Dispatch_equals_the_dense_reference_and_leaves_unchosen_experts_without_gradient()
    {
        using var _ = NewDisposeScope();
        random.manual_seed(1);
        var experts = Enumerable.Range(0, 16).Select(_ => nn.Linear(8, 8)).ToList();
        using var router = new ExpertRouter(new RouterOptions(Dim: 8, Experts: 16, Active: 2, Balance: ExpertBalance.None));
        var tokens = randn(3, 8); // 3 tokens × 2 choices reach at most 6 of the 16 experts
        var routing = router.Route(tokens);

        var output = ExpertDispatch.Combine(tokens, routing, experts);
        output.sum().backward();

        // Reference: every expert on every token, weighted by a dense [tokens, experts] matrix of routing weights.
        var dense = zeros(3, 16);
        var expertOfSlot = Enumerable.Range(0, 16).SelectMany(e => Enumerable.Repeat((long)e, (int)routing.TokensPerExpert[e])).ToArray();
        dense.index_put_(routing.WeightOfSlot.detach(), routing.TokenOfSlot, tensor(expertOfSlot));
        var reference = stack(experts.Select(e => e.forward(tokens)).ToArray(), 1) * dense.unsqueeze(-1);
        Assert.True(allclose(reference.sum(1), output, rtol: 1e-5, atol: 1e-6));

        var chosen = routing.TokensPerExpert.Select(c => c > 0).ToArray();
        Assert.InRange(chosen.Count(c => c), 2, 6);
        for (var e = 0; e < 16; e++)
            Assert.Equal(chosen[e], experts[e].weight.grad is not null);
        Assert.All(routing.TokensPerExpert, c => Assert.InRange(c, 0, 3));
        Assert.Equal(6, routing.TokensPerExpert.Sum());
    }

    [Theory]
    [InlineData(RouterScoring.Softmax)]
    [InlineData(RouterScoring.Sigmoid)]
    [InlineData(RouterScoring.SqrtSoftplus)]
    public void Chosen_weights_are_the_normalised_unbiased_scores_times_the_routed_scale(RouterScoring scoring)
    {
        using var _ = NewDisposeScope();
        random.manual_seed(2);
        using var router = new ExpertRouter(new RouterOptions(Dim: 8, Experts: 4, Active: 2, Scoring: scoring, Balance: ExpertBalance.AuxLossFree, RoutedScale: 2.5));
        using (no_grad()) router.e_score_correction_bias!.copy_(tensor(new[] { 0f, 0f, 0f, 10f })); // forces expert 3 into every choice
        var routing = router.Route(randn(5, 8));

        Assert.Equal(5, routing.TokensPerExpert[3]);
        var perToken = zeros(5).index_add_(0, routing.TokenOfSlot, routing.WeightOfSlot, 1);
        Assert.True(allclose(full(5, 2.5f), perToken, rtol: 1e-5, atol: 1e-6)); // weights sum to one per token, then × 2.5
        Assert.All(routing.WeightOfSlot.data<float>().ToArray(), w => Assert.InRange(w, 0f, 2.5f)); // the bias adds nothing to them
    }

    [Fact]
    public void Sqrt_softplus_scores_are_the_square_root_of_softplus_and_do_not_saturate_like_the_sigmoid()
    {
        using var _ = NewDisposeScope();
        var logits = tensor(new[] { -20f, -1f, 0f, 1f, 20f, 100f });
        var expected = logits.data<float>().ToArray().Select(x => (float)Math.Sqrt(Math.Log(1 + Math.Exp(Math.Min(x, 80))) + Math.Max(0, x - 80))).ToArray();

        var scores = ExpertRouter.Score(logits, RouterScoring.SqrtSoftplus).data<float>().ToArray();

        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], scores[i], 1e-5f);
        Assert.Equal(10f, scores[^1], 1e-4f); // √100: a confident expert keeps rising where the sigmoid is stuck at 1
        Assert.Equal(1f, ExpertRouter.Score(logits, RouterScoring.Sigmoid).data<float>()[5], 1e-6f);
    }

    [Fact]
    public void Auxiliary_loss_free_balancing_evens_out_a_skewed_load()
    {
        // Tokens that all lean the same way: a fixed router sends most of them to the same few experts.
        using var _ = NewDisposeScope();
        random.manual_seed(3);
        var options = new RouterOptions(Dim: 16, Experts: 8, Active: 2, Scoring: RouterScoring.Sigmoid, Balance: ExpertBalance.AuxLossFree, BiasUpdateRate: 0.003);
        using var balanced = new ExpertRouter(options);
        using var unbalanced = new ExpertRouter(options with { Balance = ExpertBalance.None });
        using (no_grad()) unbalanced.weight.copy_(balanced.weight);
        var direction = randn(16);

        double Imbalance(ExpertRouter router, bool update)
        {
            router.ResetLoad();
            random.manual_seed(30); // every phase sees the same batches
            for (var step = 0; step < 300; step++)
            {
                using var scope = NewDisposeScope();
                router.Route(randn(64, 16) * 0.5 + direction * 2);
                if (update) router.UpdateSelectionBias();
            }
            return router.Load.Imbalance;
        }

        var before = Imbalance(balanced, update: false);
        Imbalance(balanced, update: true); // the bias settles
        var during = Imbalance(balanced, update: true);
        var untouched = Imbalance(unbalanced, update: true);

        Assert.True(before > 3.0, $"the input should be skewed: imbalance {before:F2}");
        Assert.True(during < 1.2, $"balancing should even the load while training: {before:F2} → {during:F2}");
        Assert.Equal(before, untouched, 3); // without balancing UpdateSelectionBias does nothing
        Assert.Equal(1.0, unbalanced.Load.Fractions.Sum(), 9);
    }

    [Fact]
    public void Sequence_wise_balance_loss_equals_deepseek_v3s_formula_computed_by_hand_per_sequence()
    {
        using var _ = NewDisposeScope();
        random.manual_seed(6);
        const int experts = 6, active = 2, sequences = 3, length = 5;
        const double alpha = 0.25;
        using var router = new ExpertRouter(new RouterOptions(Dim: 8, Experts: experts, Active: active, Scoring: RouterScoring.Sigmoid,
            Balance: ExpertBalance.AuxLossFree, SequenceAuxLossWeight: alpha));
        using (no_grad()) router.e_score_correction_bias!.copy_(tensor(new[] { 0.3f, -0.2f, 0f, 0.1f, 0f, -0.1f }));
        var tokens = randn(sequences * length, 8);
        router.train();

        router.Route(tokens, sequenceLength: length);
        var loss = router.TakeAuxiliaryLoss()!.item<float>();

        // V3 report eqs. 17-20, in doubles: per sequence, f_e = E/(K·T)·#{t: e chosen at t (by score + bias)},
        // P_e = mean over t of s_e,t / Σ_j s_j,t; the loss is α·Σ_e f_e·P_e, averaged over the sequences.
        var w = router.weight.detach().to(ScalarType.Float64).data<double>().ToArray();
        var bias = router.e_score_correction_bias!.to(ScalarType.Float64).data<double>().ToArray();
        var x = tokens.to(ScalarType.Float64).data<double>().ToArray();
        var expected = 0.0;
        for (var sequence = 0; sequence < sequences; sequence++)
        {
            var (f, p) = (new double[experts], new double[experts]);
            for (var t = 0; t < length; t++)
            {
                var row = sequence * length + t;
                var scores = Enumerable.Range(0, experts)
                    .Select(e => 1 / (1 + Math.Exp(-Enumerable.Range(0, 8).Sum(d => x[row * 8 + d] * w[e * 8 + d])))).ToArray();
                foreach (var e in Enumerable.Range(0, experts).OrderByDescending(e => scores[e] + bias[e]).Take(active))
                    f[e] += experts / (double)(active * length);
                for (var e = 0; e < experts; e++) p[e] += scores[e] / scores.Sum() / length;
            }
            expected += alpha * Enumerable.Range(0, experts).Sum(e => f[e] * p[e]) / sequences;
        }
        Assert.Equal(expected, loss, 5);
    }

    [Fact]
    public void Sequence_wise_balance_loss_adds_to_the_batch_loss_and_needs_whole_sequences_of_a_given_length()
    {
        using var _ = NewDisposeScope();
        random.manual_seed(7);
        var tokens = randn(12, 8);
        ExpertRouter Router(double sequenceWeight) => new(new RouterOptions(Dim: 8, Experts: 4, Active: 2, AuxLossWeight: 0.5, SequenceAuxLossWeight: sequenceWeight));
        using var batchOnly = Router(0);
        using var both = Router(0.5);
        using (no_grad()) both.weight.copy_(batchOnly.weight);
        batchOnly.train();
        both.train();

        batchOnly.Route(tokens);
        both.Route(tokens, sequenceLength: 12); // one sequence: its loss is the batch loss again
        var batchLoss = batchOnly.TakeAuxiliaryLoss()!.item<float>();
        Assert.Equal(2 * batchLoss, both.TakeAuxiliaryLoss()!.item<float>(), 5);

        var missing = Assert.Throws<ArgumentException>(() => both.Route(tokens));
        Assert.Contains("whole sequences", missing.Message);
        Assert.Throws<ArgumentException>(() => both.Route(tokens, sequenceLength: 5));
        both.eval();
        both.Route(tokens); // inference leaves no loss, so it needs no sequence length
        Assert.Null(both.TakeAuxiliaryLoss());
        Assert.Throws<ArgumentOutOfRangeException>(() => Router(-1));
    }

    [Fact]
    public void Auxiliary_loss_is_left_in_training_only_and_pushes_toward_even_load()
    {
        using var _ = NewDisposeScope();
        random.manual_seed(4);
        using var router = new ExpertRouter(new RouterOptions(Dim: 16, Experts: 8, Active: 2, AuxLossWeight: 1.0));
        var direction = randn(16);
        Tensor Batch() => randn(256, 16) + direction;

        router.eval();
        router.Route(Batch());
        Assert.Null(router.TakeAuxiliaryLoss());
        Assert.Equal(0, router.Load.Total);

        router.train();
        var optimizer = optim.SGD(router.parameters(), 0.03); // larger steps overshoot: the load flips to other experts
        router.ResetLoad();
        router.Route(Batch());
        var first = router.Load.Imbalance;
        using (var loss = router.TakeAuxiliaryLoss()!)
            Assert.InRange(loss.item<float>(), 1.0f, 8.0f); // Experts · Σ f·P ≥ 1, with equality only when even
        Assert.Null(router.TakeAuxiliaryLoss()); // taken once

        for (var step = 0; step < 100; step++)
        {
            using var scope = NewDisposeScope();
            router.Route(Batch());
            optimizer.zero_grad();
            router.TakeAuxiliaryLoss()!.backward();
            optimizer.step();
        }
        router.ResetLoad();
        router.Route(Batch());
        Assert.True(router.Load.Imbalance < first * 0.7, $"the auxiliary loss alone should spread the load: {first:F2} → {router.Load.Imbalance:F2}");
    }

    [Fact]
    public void Tiny_moe_trains_with_its_balancing_and_reports_expert_load()
    {
        foreach (var create in new Func<nn.Module<Tensor, Tensor>>[] { () => new TinyMoe(), () => new TinyMoeDeepSeek() })
        {
            random.manual_seed(5);
            using var model = create();
            var routers = ExpertRouter.In(model);
            var options = new TrainingOptions { Steps = 30, BatchSize = 4, SequenceLength = 32, LearningRate = 3e-3, WarmupSteps = 3, EvalEvery = 0, EvalBatches = 1 };
            var result = Trainer.Train(model, TokenDataset.EmbeddedDefault(100_000), options);

            Assert.True(result.Losses.Take(3).Average() - result.Losses.Skip(27).Average() > 1.0, $"{model.GetName()}: {result.Losses[0]:F2} → {result.Losses[^1]:F2}");
            Assert.Equal(model is TinyMoe ? 4 : 3, routers.Count);
            Assert.All(routers, r => Assert.Equal(30L * 4 * 32 * r.Options.Active, r.Load.Total));
            if (model is TinyMoeDeepSeek)
                Assert.All(routers, r => Assert.NotEqual(0f, r.e_score_correction_bias!.abs().sum().item<float>()));
        }
    }

    [Fact]
    public void Selection_bias_is_saved_with_the_weights()
    {
        using var model = new TinyMoeDeepSeek();
        var names = model.state_dict().Keys.ToList();

        Assert.Contains("model.layers.1.mlp.gate.e_score_correction_bias", names);
        Assert.Contains("model.layers.0.mlp.down_proj.weight", names); // layer 0 stays dense
        Assert.Contains("model.layers.3.mlp.shared_experts.up_proj.weight", names);
        Assert.DoesNotContain("model.layers.1.mlp.gate.e_score_correction_bias", model.named_parameters().Select(p => p.name));
    }

    [Theory]
    [InlineData(8, 9, "Active")]
    [InlineData(0, 1, "Experts")]
    [InlineData(4, 0, "Active")]
    public void Router_refuses_impossible_settings_by_name(int experts, int active, string name)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ExpertRouter(new RouterOptions(Dim: 8, Experts: experts, Active: active)));
        Assert.Equal(name, error.ParamName);
    }

    [Fact]
    public void A_hash_routers_table_comes_from_the_seed_with_distinct_experts_per_row_and_is_a_buffer()
    {
        ExpertRouter Build(int seed)
        {
            random.manual_seed(seed);
            return new ExpertRouter(new RouterOptions(Dim: 8, Experts: 6, Active: 3, Balance: ExpertBalance.AuxLossFree, HashVocab: 50));
        }
        using var a = Build(7);
        using var b = Build(7);
        using var c = Build(8);

        var table = a.tid2eid!;
        Assert.Equal(ScalarType.Int64, table.dtype);
        Assert.Equal(new long[] { 50, 3 }, table.shape);
        Assert.True(table.equal(b.tid2eid!).all().item<bool>());
        Assert.False(table.equal(c.tid2eid!).all().item<bool>());
        var rows = table.data<long>().ToArray().Chunk(3).ToList();
        Assert.All(rows, row => Assert.Equal(3, row.Distinct().Count()));
        Assert.All(rows.SelectMany(r => r), e => Assert.InRange(e, 0, 5));
        Assert.Equal(6, rows.SelectMany(r => r).Distinct().Count()); // 150 draws reach every expert
        Assert.Null(a.e_score_correction_bias); // V4's hash gate has no bias, whatever the other layers balance with
        Assert.Equal(new[] { "weight", "tid2eid" }, a.state_dict().Keys.OrderBy(k => k == "tid2eid"));
        Assert.Equal(new[] { "weight" }, a.named_parameters().Select(p => p.name));
    }

    [Fact]
    public void A_hash_router_sends_each_token_to_its_table_row_whatever_the_scores()
    {
        using var _ = NewDisposeScope();
        random.manual_seed(3);
        using var router = new ExpertRouter(new RouterOptions(Dim: 8, Experts: 6, Active: 2, Scoring: RouterScoring.SqrtSoftplus, HashVocab: 20));
        using (no_grad()) router.weight[5].fill_(5f); // expert 5 would win every token's top-2 by its scores
        var ids = tensor(new long[] { 4, 4, 11, 0, 19, 7, 11 });
        var x = randn(7, 8).abs();

        var routing = router.Route(x, tokenIds: ids);

        var table = router.tid2eid!.data<long>().ToArray();
        var chosen = Enumerable.Range(0, 7).Select(_ => new SortedSet<long>()).ToArray();
        var tokenOfSlot = routing.TokenOfSlot.data<long>().ToArray();
        long slot = 0;
        for (var e = 0; e < routing.TokensPerExpert.Length; e++)
            for (var k = 0; k < routing.TokensPerExpert[e]; k++) chosen[tokenOfSlot[slot++]].Add(e);
        var idArray = ids.data<long>().ToArray();
        for (var t = 0; t < 7; t++)
            Assert.Equal(new SortedSet<long> { table[2 * idArray[t]], table[2 * idArray[t] + 1] }, chosen[t]);
    }

    [Fact]
    public void Hash_weights_are_the_gates_scores_at_the_tables_experts_as_computed_by_hand()
    {
        using var _ = NewDisposeScope();
        using var router = new ExpertRouter(new RouterOptions(Dim: 2, Experts: 3, Active: 2, Scoring: RouterScoring.SqrtSoftplus, RoutedScale: 1.5, HashVocab: 4));
        using (no_grad())
        {
            router.weight.copy_(tensor(new[] { 1f, 0f, 0f, 1f, 1f, 1f }).view(3, 2));
            router.tid2eid!.copy_(tensor(new long[] { 2, 0, 1, 2, 0, 1, 1, 0 }).view(4, 2));
        }
        // Token id 0 goes to experts 2 and 0. x = (1, 2): logits 1, 2, 3; √softplus(3) and √softplus(1), renormalised, × 1.5.
        var routing = router.Route(tensor(new[] { 1f, 2f }).view(1, 2), tokenIds: tensor(new long[] { 0 }));

        double Score(double logit) => Math.Sqrt(Math.Log(1 + Math.Exp(logit)));
        var (s0, s2) = (Score(1), Score(3));
        Assert.Equal(new long[] { 1, 0, 1 }, routing.TokensPerExpert);
        var weights = routing.WeightOfSlot.data<float>().ToArray(); // slots sorted by expert: expert 0, then expert 2
        Assert.Equal(1.5 * s0 / (s0 + s2), weights[0], 5);
        Assert.Equal(1.5 * s2 / (s0 + s2), weights[1], 5);
    }

    [Fact]
    public void A_hash_router_leaves_no_balancing_loss_and_keeps_no_bias_but_counts_its_load()
    {
        using var _ = NewDisposeScope();
        random.manual_seed(4);
        using var router = new ExpertRouter(new RouterOptions(Dim: 8, Experts: 4, Active: 2, Balance: ExpertBalance.AuxLoss, AuxLossWeight: 0.1,
            SequenceAuxLossWeight: 0.1, HashVocab: 10));
        router.train();

        router.Route(randn(12, 8), sequenceLength: 6, tokenIds: randint(10, new long[] { 12 }));

        Assert.Null(router.TakeAuxiliaryLoss()); // the table, not the scores, decides the load: a loss could not move it
        Assert.Equal(24L, router.Load.Total);
        router.UpdateSelectionBias(); // nothing to update
        Assert.Null(router.e_score_correction_bias);
    }

    [Fact]
    public void A_hash_router_refuses_to_route_without_one_token_id_per_row()
    {
        using var router = new ExpertRouter(new RouterOptions(Dim: 8, Experts: 4, Active: 2, HashVocab: 10));
        using var x = randn(3, 8);

        var missing = Assert.Throws<ArgumentException>(() => router.Route(x));
        var short_ = Assert.Throws<ArgumentException>(() => router.Route(x, tokenIds: tensor(new long[] { 1, 2 })));

        Assert.Equal("tokenIds", missing.ParamName);
        Assert.Contains("2 ids for 3 rows", short_.Message);
        Assert.Equal("HashVocab", Assert.Throws<ArgumentOutOfRangeException>(() => new ExpertRouter(new RouterOptions(Dim: 8, Experts: 4, Active: 2, HashVocab: -1))).ParamName);
    }

    [Fact]
    public void Tiny_moe_hash_routes_its_first_layer_by_the_table_and_trains()
    {
        random.manual_seed(5);
        using var model = new TinyMoeHash();
        var routers = ExpertRouter.In(model);
        var options = new TrainingOptions { Steps = 20, BatchSize = 4, SequenceLength = 32, LearningRate = 3e-3, WarmupSteps = 3, EvalEvery = 0, EvalBatches = 1 };
        var table = routers[0].tid2eid!.clone();

        var result = Trainer.Train(model, TokenDataset.EmbeddedDefault(100_000), options);

        Assert.True(result.Losses.Take(3).Average() - result.Losses.Skip(17).Average() > 0.5, $"{result.Losses[0]:F2} → {result.Losses[^1]:F2}");
        Assert.Equal(new[] { true, false, false, false }, routers.Select(r => r.tid2eid is not null));
        Assert.True(table.equal(routers[0].tid2eid!).all().item<bool>()); // training never touches the table
        Assert.All(routers, r => Assert.Equal(20L * 4 * 32 * 2, r.Load.Total));
        Assert.Contains("model.layers.0.mlp.gate.tid2eid", model.state_dict().Keys);
        Assert.DoesNotContain("model.layers.1.mlp.gate.tid2eid", model.state_dict().Keys);
    }

    /// <summary>Live parameters minus, in every mixture layer, the experts a token does not choose.</summary>
    private static long ActiveParameters(nn.Module model)
    {
        var unchosen = 0L;
        foreach (var (name, module) in model.named_modules())
        {
            if (module is not ExpertRouter router) continue;
            var prefix = name[..name.LastIndexOf('.')] + ".experts.0.";
            var expert = model.named_parameters().Where(p => p.name.StartsWith(prefix, StringComparison.Ordinal)).Sum(p => p.parameter.numel());
            unchosen += (router.Options.Experts - router.Options.Active) * expert;
        }
        return Zoo.CountElements(model) - unchosen;
    }
}
