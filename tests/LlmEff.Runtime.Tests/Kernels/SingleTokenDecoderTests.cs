using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Generation;
using LlmEff.Kernels;
using LlmEff.Runtime.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests.Kernels;

/// <summary>
/// The fused single-token step (<see cref="SingleTokenDecoder"/>) against the operation-by-operation path it replaces:
/// the same logits step by step, on the models whose plan chooses it and on no other, and every case it must leave to
/// that path (which then behaves, errors included, as before).
/// </summary>
public sealed class SingleTokenDecoderTests
{
    /// <summary>The declared decoders whose every block the fused step knows (<c>LayoutPlan.DecodesInOneKernel</c>): standard
    /// attention with keys of its own or the values as keys (NoKey; with QK norm in the hybrids and QkNormNoKey), short
    /// convolutions, latent attention with and without a query rank; dense SwiGLU or mixtures of experts chosen by scores
    /// (softmax; sigmoid with a selection bias and a shared expert; top-1; √softplus unnormalised and scaled, with biases).</summary>
    private static readonly string[] Fused =
    {
        "CheckpointedTwin", "FullGqa", "FullMha", "FullMqa", "HybridGqa", "HybridMoe", "HybridNoKey", "LatentDirectQuery", "LatentMla",
        "MixtureOddShapedBiased", "MultiQueryNoPositions", "NoKeyGqa", "NoKeyMha", "NoKeyMqa", "OddShapedBiased", "PlainDense", "PlainTwin", "QkNormNoKey", "SwitchTop1",
        "TinyDecoder", "TinyHybrid", "TinyLatent", "TinyMoe", "TinyMoeDeepSeek",
    };

    public static TheoryDataFor FusedModels()
    {
        var data = new TheoryDataFor();
        foreach (var name in Fused) data.Add(name);
        return data;
    }

    [Fact]
    public void The_plan_sends_exactly_the_decoders_of_known_block_kinds_to_the_fused_step()
    {
        var decoders = Zoo.SmallModels().Where(m => typeof(IDecoder).IsAssignableFrom(m.Type)).ToList();
        var fused = new List<string>();
        using var _ = no_grad();
        foreach (var declared in decoders)
        {
            manual_seed(1);
            using var model = declared.Create();
            model.eval();
            var decoder = (IDecoder)model;
            using var cache = decoder.NewCache();
            using var token = zeros(new long[] { 1, 1 }, ScalarType.Int64);
            var before = SingleTokenDecoder.StepsOnThisThread;
            decoder.forward(token, cache).Dispose();
            if (SingleTokenDecoder.StepsOnThisThread > before) fused.Add(declared.Facts.Name);
        }
        Assert.Equal(SingleTokenStep.IsSupported ? Fused : Array.Empty<string>(), fused.OrderBy(n => n, StringComparer.Ordinal).ToArray());
    }

    [Theory]
    [MemberData(nameof(FusedModels))]
    public void Every_single_token_step_equals_the_operation_by_operation_path(string name)
    {
        if (!SingleTokenStep.IsSupported) return;
        var declared = Zoo.ByName(name);
        var before = get_num_threads();
        try
        {
            foreach (var threads in new[] { 1, 2 })
            {
                set_num_threads(threads);
                manual_seed(21);
                using var model = declared.Create();
                model.eval();
                var decoder = (IDecoder)model;
                using var _ = no_grad();
                MoveOffTheirStart(model);
                var random = new Random(8);
                // Past the cache's first allocation (16 entries), so steps also write into a grown buffer, leaving room
                // for the chunk of 3 at the end.
                var length = (int)Math.Min(declared.Facts.Context - 3, 40);
                Assert.True(length > 16, $"{name}: a context of {declared.Facts.Context} does not reach a grown cache");
                var ids = Enumerable.Range(0, length).Select(_ => (long)random.Next(declared.Facts.Vocab)).ToArray();
                using var tokens = tensor(ids, new long[] { 1, ids.Length });
                // Twice: from an empty cache (the first token alone), and after a 5-token prefill that ran through libtorch.
                foreach (var prefill in new[] { 0, 5 })
                {
                    using var fusedCache = decoder.NewCache();
                    using var plainCache = decoder.NewCache();
                    if (prefill > 0)
                    {
                        decoder.forward(tokens.narrow(1, 0, prefill), fusedCache).Dispose();
                        decoder.forward(tokens.narrow(1, 0, prefill), plainCache).Dispose();
                    }
                    for (var t = prefill; t < ids.Length; t++)
                    {
                        using var token = tokens.narrow(1, t, 1);
                        var steps = SingleTokenDecoder.StepsOnThisThread;
                        using var fused = decoder.forward(token, fusedCache);
                        Assert.Equal(steps + 1, SingleTokenDecoder.StepsOnThisThread);
                        Tensor plain;
                        using (SingleTokenDecoder.Disable()) plain = decoder.forward(token, plainCache);
                        using (plain)
                        {
                            Assert.Equal(steps + 1, SingleTokenDecoder.StepsOnThisThread);
                            Assert.Equal(plain.shape, fused.shape);
                            var difference = DecodingTestMath.MaxDifference(fused, plain);
                            Assert.True(difference <= 2e-5, $"{name}, {threads} threads, position {t}: fused and plain logits differ by {difference}");
                        }
                    }
                    Assert.Equal(ids.Length, fusedCache.Position);
                    Assert.Equal(plainCache.ElementsPerBatchRow(), fusedCache.ElementsPerBatchRow());
                    // A chunk after fused steps reads the keys and values they wrote.
                    using var next = tensor(new long[] { 3, 1, 4 }, new long[] { 1, 3 });
                    using var afterFused = decoder.forward(next, fusedCache);
                    using var afterPlain = decoder.forward(next, plainCache);
                    Assert.True(DecodingTestMath.MaxDifference(afterFused, afterPlain) <= 2e-5, $"{name}: a chunk after fused steps differs");
                }
            }
        }
        finally
        {
            set_num_threads(before);
        }
    }

    /// <summary>The kernel keeps a model's resolved addresses between steps: a weight loaded in place, a weight replaced
    /// by another tensor and a model moved to another dtype and back must all be read as they are now.</summary>
    [Fact]
    public void Weights_changed_between_steps_are_read_as_they_are_now()
    {
        if (!SingleTokenStep.IsSupported) return;
        manual_seed(6);
        using var model = new OddShapedBiased();
        model.eval();
        using var _ = no_grad();
        using var token = tensor(new long[] { 7 }, new long[] { 1, 1 });
        var gate = model.named_parameters().Single(p => p.name == "model.layers.1.mlp.gate_proj.weight").parameter;
        var head = (LlmEff.Layers.Linear)model.named_children().Single(c => c.name == "lm_head").module;

        void StepsAgree(string after)
        {
            using var fusedCache = model.NewCache();
            using var plainCache = model.NewCache();
            var steps = SingleTokenDecoder.StepsOnThisThread;
            using var fused = model.forward(token, fusedCache);
            Assert.Equal(steps + 1, SingleTokenDecoder.StepsOnThisThread);
            Tensor plain;
            using (SingleTokenDecoder.Disable()) plain = model.forward(token, plainCache);
            using (plain) Assert.True(DecodingTestMath.MaxDifference(fused, plain) <= 2e-5, $"after {after}: {DecodingTestMath.MaxDifference(fused, plain)}");
        }

        StepsAgree("the first step");
        gate.copy_(randn_like(gate));
        StepsAgree("loading a weight in place");
        head.weight = new TorchSharp.Modules.Parameter(randn(head.weight.shape));
        StepsAgree("replacing the head's weight");
        model.to(ScalarType.Float64);
        using (var cache = model.NewCache())
        {
            var steps = SingleTokenDecoder.StepsOnThisThread;
            model.forward(token, cache).Dispose();
            Assert.Equal(steps, SingleTokenDecoder.StepsOnThisThread); // fp64 weights: not the kernel's
        }
        model.to(ScalarType.Float32);
        StepsAgree("a round trip through fp64");
    }

    /// <summary>Norm weights start at one, biases and routers' selection biases at zero, where reading the wrong one or
    /// none gives the same numbers: every one-dimensional fp32 parameter and buffer moves off its start (norms to 1 ± 0.2,
    /// biases to about ±0.2, which also changes which experts a biased router picks).</summary>
    private static void MoveOffTheirStart(nn.Module model)
    {
        using var _ = no_grad();
        foreach (var (_, parameter) in model.named_parameters())
            if (parameter.dim() == 1) parameter.add_(randn_like(parameter) * 0.2);
        foreach (var (_, buffer) in model.named_buffers())
            if (buffer.dim() == 1 && buffer.dtype == ScalarType.Float32) buffer.add_(randn_like(buffer) * 0.2);
    }

    /// <summary>The generated modules never pass a head bias (only PyTorch's defaults give <c>lm_head</c> one, and they
    /// leave the fused step), so the kernel's is called directly here, with the blocks the module would pass.</summary>
    [Fact]
    public void A_head_bias_is_added_to_the_logits()
    {
        if (!SingleTokenStep.IsSupported) return;
        manual_seed(7);
        using var model = new OddShapedBiased();
        model.eval();
        using var _ = no_grad();
        MoveOffTheirStart(model);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        T Module<T>(string name) where T : nn.Module => (T)modules[name];
        var blocks = Enumerable.Range(0, OddShapedBiased.Facts.Layers).Select(i => new DecoderBlockWeights(
            Module<LlmEff.Layers.RmsNorm>($"model.layers.{i}.input_layernorm"),
            new AttentionMixer(Module<LlmEff.Layers.Linear>($"model.layers.{i}.self_attn.q_proj"), Module<LlmEff.Layers.Linear>($"model.layers.{i}.self_attn.k_proj"),
                Module<LlmEff.Layers.Linear>($"model.layers.{i}.self_attn.v_proj"), Module<LlmEff.Layers.Linear>($"model.layers.{i}.self_attn.o_proj"), Heads: 4, KvHeads: 2),
            Module<LlmEff.Layers.RmsNorm>($"model.layers.{i}.post_attention_layernorm"),
            new SwiGluWeights(Module<LlmEff.Layers.Linear>($"model.layers.{i}.mlp.gate_proj"), Module<LlmEff.Layers.Linear>($"model.layers.{i}.mlp.up_proj"),
                Module<LlmEff.Layers.Linear>($"model.layers.{i}.mlp.down_proj")))).ToList();
        var head = Module<LlmEff.Layers.Linear>("lm_head");
        Assert.Null(head.bias);
        using var headBias = randn(OddShapedBiased.Facts.Vocab);
        using var token = tensor(new long[] { 5 }, new long[] { 1, 1 });
        using var fusedCache = model.NewCache();
        using var plainCache = model.NewCache();
        using var fused = SingleTokenDecoder.TryStep(token, fusedCache, OddShapedBiased.Facts.Context,
            Module<TorchSharp.Modules.Embedding>("model.embed_tokens").weight!, Module<LlmEff.Layers.RotaryEmbedding>("model.rotary_emb"),
            blocks, Module<LlmEff.Layers.RmsNorm>("model.norm"), head.weight, headBias);
        Assert.NotNull(fused);
        Tensor plain;
        using (SingleTokenDecoder.Disable()) plain = model.forward(token, plainCache);
        using (plain)
        using (var expected = plain + headBias)
            Assert.True(DecodingTestMath.MaxDifference(fused, expected) <= 2e-5, $"{DecodingTestMath.MaxDifference(fused, expected)}");
        Assert.Equal(1, fusedCache.Position);
    }

    [Fact]
    public void Batches_autograd_training_routers_other_dtypes_and_foreign_caches_take_the_operation_by_operation_path()
    {
        if (!SingleTokenStep.IsSupported) return;
        manual_seed(2);
        using var model = new LlmEff.Samples.TinyDecoder();
        model.eval();
        var steps = SingleTokenDecoder.StepsOnThisThread;

        // Two sequences at once.
        using (no_grad())
        using (var cache = model.NewCache())
        using (var pair = zeros(new long[] { 2, 1 }, ScalarType.Int64))
            model.forward(pair, cache).Dispose();
        Assert.Equal(steps, SingleTokenDecoder.StepsOnThisThread);

        // Autograd on: the kernel records no graph.
        using (var cache = model.NewCache())
        using (var token = zeros(new long[] { 1, 1 }, ScalarType.Int64))
        using (var logits = model.forward(token, cache))
            Assert.True(logits.requires_grad);
        Assert.Equal(steps, SingleTokenDecoder.StepsOnThisThread);

        // A cache a batch of two filled: its rows are not one sequence's.
        using (no_grad())
        using (var cache = model.NewCache())
        {
            using var pair = zeros(new long[] { 2, 3 }, ScalarType.Int64);
            model.forward(pair, cache).Dispose();
            using var token = zeros(new long[] { 1, 1 }, ScalarType.Int64);
            Assert.ThrowsAny<Exception>(() => model.forward(token, cache).Dispose());
            Assert.Equal(3, cache.Position);
        }
        Assert.Equal(steps, SingleTokenDecoder.StepsOnThisThread);

        // A router in training mode: it counts its load, which only its module does.
        using (no_grad())
        using (var moe = new LlmEff.Samples.TinyMoe())
        using (var cache = moe.NewCache())
        using (var token = zeros(new long[] { 1, 1 }, ScalarType.Int64))
        {
            moe.train();
            var router = LlmEff.Layers.ExpertRouter.In(moe)[0];
            var counted = router.Load.Total;
            moe.forward(token, cache).Dispose();
            Assert.Equal(counted + router.Options.Active, router.Load.Total); // one token, to Active experts
        }
        Assert.Equal(steps, SingleTokenDecoder.StepsOnThisThread);

        // bf16 weights.
        using (no_grad())
        using (var half = new LlmEff.Samples.TinyDecoder(dtype: ScalarType.BFloat16))
        using (var cache = half.NewCache())
        using (var token = zeros(new long[] { 1, 1 }, ScalarType.Int64))
        {
            half.eval();
            half.forward(token, cache).Dispose();
        }
        Assert.Equal(steps, SingleTokenDecoder.StepsOnThisThread);
    }

    [Fact]
    public void A_token_outside_the_vocabulary_and_a_full_cache_fail_as_on_the_operation_by_operation_path()
    {
        if (!SingleTokenStep.IsSupported) return;
        manual_seed(3);
        using var model = new OddShapedBiased();
        model.eval();
        using var _ = no_grad();
        using var cache = model.NewCache();
        using (var outside = tensor(new long[] { OddShapedBiased.Facts.Vocab }, new long[] { 1, 1 }))
            Assert.ThrowsAny<Exception>(() => model.forward(outside, cache).Dispose());
        Assert.Equal(0, cache.Position);

        using var token = zeros(new long[] { 1, 1 }, ScalarType.Int64);
        for (var t = 0; t < OddShapedBiased.Facts.Context; t++) model.forward(token, cache).Dispose();
        var error = Assert.Throws<ArgumentException>(() => model.forward(token, cache).Dispose());
        Assert.Contains($"exceed the declared context of {OddShapedBiased.Facts.Context}", error.Message);
        Assert.Equal(OddShapedBiased.Facts.Context, cache.Position);
    }

    [Fact]
    public void Disabling_is_per_thread_and_ends_with_its_scope()
    {
        if (!SingleTokenStep.IsSupported) return;
        manual_seed(4);
        using var model = new LlmEff.Samples.TinyDecoder();
        model.eval();
        using var _ = no_grad();
        using var cache = model.NewCache();
        using var token = zeros(new long[] { 1, 1 }, ScalarType.Int64);
        var steps = SingleTokenDecoder.StepsOnThisThread;
        var disabling = SingleTokenDecoder.Disable();
        model.forward(token, cache).Dispose();
        Assert.Equal(steps, SingleTokenDecoder.StepsOnThisThread);
        long elsewhere = 0;
        Exception? misuse = null;
        var other = new System.Threading.Thread(() =>
        {
            using var otherCache = model.NewCache();
            using var _ = no_grad();
            using var otherToken = zeros(new long[] { 1, 1 }, ScalarType.Int64);
            var before = SingleTokenDecoder.StepsOnThisThread;
            model.forward(otherToken, otherCache).Dispose();
            elsewhere = SingleTokenDecoder.StepsOnThisThread - before;
            misuse = Record.Exception(disabling.Dispose);
        });
        other.Start();
        other.Join();
        Assert.Equal(1, elsewhere);
        Assert.IsType<InvalidOperationException>(misuse); // disposed on another thread: refused, this thread stays off
        model.forward(token, cache).Dispose();
        Assert.Equal(steps, SingleTokenDecoder.StepsOnThisThread);
        disabling.Dispose();
        disabling.Dispose(); // twice is once
        model.forward(token, cache).Dispose();
        Assert.Equal(steps + 1, SingleTokenDecoder.StepsOnThisThread);
    }
}
