using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Cli.LlamaCpp;
using LlmEff.Export;
using LlmEff.Samples;
using LlmEff.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LlmEff.Cli.Tests;

/// <summary>
/// Exported models run in llama.cpp, an engine written by other people, and compute what our TorchSharp modules
/// compute: the logits of every position of a 64-token input, and the 32 tokens greedy decoding appends.
/// </summary>
public sealed class GgufParityTests(ITestOutputHelper output)
{
    private const int PromptLength = 64;
    private const int Generated = 32;

    // Measured on this 2-core machine (2026-11-30): the largest difference over 64 × 256 logits is 4.1e-6 to 2.2e-5
    // for logits up to ~6 (see the test output), f32 rounding from summing in another order; a wrong rotary pairing,
    // tensor name or norm moves logits by whole units. 1e-3 leaves fifty times that for other CPUs' kernels (AVX-512
    // and AVX2 sum in other orders) and still catches any layout mistake.
    private const float Tolerance = 1e-3f;

    [Fact]
    public void TinyDecoder_exported_as_f32_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyDecoder>();

    [Fact]
    public void TinyGqa_exported_as_f32_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyGqa>();

    [Fact]
    public void TinyMqa_exported_as_f32_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyMqa>();

    // Aliased projections: llama.cpp gets the projection they alias written again under the other names.

    [Fact]
    public void TinyNoKey_exported_with_v_proj_as_the_keys_too_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyNoKey>();

    [Fact]
    public void TinyNoQuery_exported_with_k_proj_as_the_queries_too_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyNoQuery>();

    [Fact]
    public void TinyShared_exported_with_qkv_proj_three_times_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyShared>();

    // Queries that are the keys with fewer key heads than query heads (no sample has it): the query copy repeats each
    // key head for its group, in the order our module repeats its per-key-head results.

    [Fact]
    public void NoQuery_with_grouped_keys_exported_with_repeated_query_heads_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufNoQueryGqa>();

    [Fact]
    public void Shared_with_one_key_head_exported_with_repeated_query_heads_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufSharedMqa>();

    // Mixtures of experts: Mixtral's router as llama's experts, any other router (with a shared expert) as glm4moe.

    [Fact]
    public void TinyMoe_exported_as_llama_experts_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyMoe>();

    [Fact]
    public void TinyMoeDeepSeek_exported_as_glm4moe_with_its_selection_bias_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyMoeDeepSeek>();

    [Fact]
    public void A_softmax_router_without_renormalisation_exported_as_glm4moe_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufSoftmaxSharedMoe>();

    // Per-head query/key norms (QkNorm) as qwen3, with Mixtral's router as qwen3moe.

    [Fact]
    public void QkNorm_exported_as_qwen3_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufQkNorm>();

    [Fact]
    public void QkNorm_with_experts_exported_as_qwen3moe_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufQkNormMoe>();

    // Latent attention as deepseek2.

    [Fact]
    public void TinyLatent_exported_as_deepseek2_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyLatent>();

    [Fact]
    public void Latent_attention_without_a_query_latent_exported_as_deepseek2_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufLatentDirectQuery>();

    [Fact]
    public void Latent_attention_with_sigmoid_routed_and_shared_experts_exported_as_deepseek2_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufLatentMoe>();

    // LFM2 hybrids: short convolutions and attention by layer, dense (lfm2) or with experts (lfm2moe).

    [Fact]
    public void TinyHybrid_exported_as_lfm2_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<TinyHybrid>();

    [Fact]
    public void A_hybrid_with_sigmoid_experts_exported_as_lfm2moe_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufHybridMoe>();

    [Fact]
    public void A_hybrid_with_softmax_experts_and_a_longer_filter_exported_as_lfm2moe_gives_llama_cpp_the_same_logits_and_greedy_tokens() => Check<Models.GgufHybridSoftmaxMoe>();

    // The checks above can fail: each of these exports gets one decision wrong on purpose, and llama.cpp's logits
    // then differ from ours by far more than the tolerance.

    [Fact]
    public void An_export_that_drops_the_selection_bias_is_caught_by_the_parity_check() =>
        Caught<TinyMoeDeepSeek>(export => Mutated(export, tensors: export.Tensors.Select(t => t.Name.EndsWith("exp_probs_b.bias", StringComparison.Ordinal)
            ? t with { Transform = GgufTransform.ZeroBias }
            : t)));

    [Fact]
    public void An_export_that_leaves_the_experts_weights_unnormalised_is_caught_by_the_parity_check() =>
        Caught<Models.GgufLatentMoe>(export => Mutated(export, metadata: export.Metadata.Select(m => m.Key.EndsWith("expert_weights_norm", StringComparison.Ordinal)
            ? new KeyValuePair<string, GgufValue>(m.Key, GgufValue.Bool(false))
            : m)));

    [Fact]
    public void An_export_that_leaves_latent_rotary_rows_in_halves_is_caught_by_the_parity_check() =>
        Caught<TinyLatent>(export => Mutated(export, tensors: export.Tensors.Select(t => t with { Transform = t.Transform == GgufTransform.RotaryPairs ? GgufTransform.None : t.Transform })));

    [Fact]
    public void An_export_that_pairs_a_hybrid_s_rotary_rows_is_caught_by_the_parity_check() =>
        Caught<TinyHybrid>(export => Mutated(export, tensors: export.Tensors.Select(t => t.Name.EndsWith("attn_q.weight", StringComparison.Ordinal) || t.Name.EndsWith("attn_k.weight", StringComparison.Ordinal)
            ? t with { Transform = GgufTransform.RotaryPairs, Heads = 4 } // TinyHybrid: 4 query and 4 key heads
            : t)));

    private static GgufExport Mutated(GgufExport export, IEnumerable<KeyValuePair<string, GgufValue>>? metadata = null, IEnumerable<GgufTensorMapping>? tensors = null) =>
        GgufExport.Model(export.Architecture!, (metadata ?? export.Metadata).ToList(), (tensors ?? export.Tensors).ToList());

    private void Caught<TModel>(Func<GgufExport, GgufExport> mistake) where TModel : nn.Module<Tensor, Tensor>, IDeclaredModel<TModel>
    {
        using var temp = new TempFolder();
        var random = Seeding.Seed(20261130);
        using var model = TModel.Create();
        var (largest, _) = Compare(model, random, temp, mistake(TModel.Gguf), TModel.Facts, out var llama, out _);
        llama.Dispose();
        output.WriteLine($"{TModel.Facts.Name} exported wrongly: max |llama.cpp − TorchSharp| = {largest:E2}");
        Assert.True(largest > 100 * Tolerance, $"The wrong export differs by only {largest:E2}: the parity check would not notice it.");
    }

    // Trained weights, not only widened random ones: training moves norms, biases and routers where random draws do
    // not (a selection bias nudged by the balancing, norm weights far from one), and that is what users export.
    [Theory]
    [InlineData(typeof(TinyDecoder))]
    [InlineData(typeof(TinyNoKey))]
    [InlineData(typeof(TinyShared))]
    [InlineData(typeof(TinyMqa))]
    [InlineData(typeof(TinyMoeDeepSeek))]
    [InlineData(typeof(TinyLatent))]
    [InlineData(typeof(TinyHybrid))]
    public void A_trained_sample_exported_as_f32_gives_llama_cpp_the_same_logits_and_greedy_tokens(Type sample) =>
        typeof(GgufParityTests).GetMethod(nameof(Check), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .MakeGenericMethod(sample).Invoke(this, new object[] { true });

    private void Check<TModel>(bool trained = false) where TModel : nn.Module<Tensor, Tensor>, IDeclaredModel<TModel>
    {
        using var temp = new TempFolder();
        var random = Seeding.Seed(20261130);
        using var model = TModel.Create();
        if (trained)
        {
            // 40 steps on the embedded corpus: the loss falls by more than a nat, weights leave their start.
            var options = new TrainingOptions { Steps = 40, BatchSize = 4, SequenceLength = 64, WarmupSteps = 4, EvalBatches = 1 };
            var result = Trainer.Train(model, LlmEff.Data.TokenDataset.EmbeddedDefault(characters: 20_000), options);
            Assert.True(result.FinalTrainLoss < result.Losses[0] - 1.0, $"training did not move {TModel.Facts.Name}: {result.Losses[0]:F3} → {result.FinalTrainLoss:F3}");
        }
        var (largest, spread) = Compare(model, random, temp, TModel.Gguf, TModel.Facts, out var llama, out var prompt, widen: !trained);
        using var _ = llama;
        output.WriteLine($"{TModel.Facts.Name}{(trained ? " (trained)" : "")}: max |llama.cpp − TorchSharp| over {PromptLength}×{TModel.Facts.Vocab} logits = {largest:E2} (largest |logit| {spread:F2})");
        Assert.True(largest < Tolerance, $"llama.cpp's logits differ from ours by up to {largest:E2}, over the tolerance {Tolerance:E0}.");

        var ourTokens = Greedy(model, prompt, Generated);
        var theirTokens = llama.Greedy(prompt, Generated);
        Assert.Equal(ourTokens, theirTokens);
    }

    /// <summary>Spreads <paramref name="model"/>'s weights (drawn after seeding, before creating it), exports them with
    /// <paramref name="export"/>'s table and compares the logits of a random 64-token prompt: the largest difference
    /// and the largest logit.</summary>
    private static (float Largest, float Spread) Compare(nn.Module<Tensor, Tensor> model, Random random, TempFolder temp, GgufExport export, ModelFacts facts, out LlamaCppEngine llama, out int[] prompt, bool widen = true)
    {
        if (widen) Spread(model);
        model.eval();
        var path = temp.File(facts.Name + ".gguf");
        GgufExporter.Export(model, export, facts.Name, path, GgufTensorType.F32);

        prompt = Enumerable.Range(0, PromptLength).Select(_ => random.Next(facts.Vocab)).ToArray();
        llama = new LlamaCppEngine(path, PromptLength + Generated);
        Assert.Equal(facts.Vocab, llama.Vocab);
        var theirs = llama.Logits(prompt);
        var ours = Logits(model, prompt);

        float largest = 0, spread = 0;
        for (var position = 0; position < PromptLength; position++)
            for (var token = 0; token < facts.Vocab; token++)
            {
                largest = Math.Max(largest, Math.Abs(theirs[position][token] - ours[position, token]));
                spread = Math.Max(spread, Math.Abs(ours[position, token]));
            }
        return (largest, spread);
    }

    /// <summary>
    /// Widens the random weights so that every part of the layout shows in the logits: at the initial N(0, 0.02²)
    /// attention is nearly uniform (scores ~0.1), which would hide a wrong rotary pairing, and all norm weights are
    /// one, which would hide swapped norms. Matrices get N(0, (1.5/√inputs)²) (query-key scores of spread ~2), norms
    /// 1 + N(0, 0.1²), selection biases N(0, 0.1²).
    /// </summary>
    private static void Spread(nn.Module model)
    {
        using var _ = no_grad();
        foreach (var (_, parameter) in model.named_parameters())
        {
            if (parameter.dim() == 1) parameter.copy_(1 + 0.1 * randn_like(parameter));
            else parameter.copy_(randn_like(parameter) * (1.5 / Math.Sqrt(parameter.shape[1])));
        }
        // A selection bias as training leaves it, so that it changes which experts are chosen (it starts at zero).
        foreach (var (name, buffer) in model.named_buffers())
            if (name.EndsWith(".e_score_correction_bias", StringComparison.Ordinal)) buffer.copy_(0.1 * randn_like(buffer));
    }

    internal static float[,] Logits(nn.Module<Tensor, Tensor> model, int[] prompt)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.forward(tensor(prompt.Select(t => (long)t).ToArray()).unsqueeze(0))[0].contiguous();
        var values = logits.data<float>().ToArray();
        var result = new float[logits.shape[0], logits.shape[1]];
        Buffer.BlockCopy(values, 0, result, 0, values.Length * sizeof(float));
        return result;
    }

    internal static int[] Greedy(nn.Module<Tensor, Tensor> model, int[] prompt, int count)
    {
        var sequence = prompt.ToList();
        for (var step = 0; step < count; step++)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var logits = model.forward(tensor(sequence.Select(t => (long)t).ToArray()).unsqueeze(0))[0, -1];
            sequence.Add((int)logits.argmax().item<long>());
        }
        return sequence.Skip(prompt.Length).ToArray();
    }
}
