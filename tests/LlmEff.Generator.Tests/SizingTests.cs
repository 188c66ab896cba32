using System;
using System.Linq;
using LlmEff.Generator.Model;
using LlmEff.Generator.Sizing;

namespace LlmEff.Generator.Tests;

/// <summary>Size arithmetic against published figures (shared/REFERENCES.md §5) and hand-computed small cases.</summary>
public sealed class SizingTests
{
    private static ModelSpec Gpt2Small => new(50257, 768, 12, 1024, TiedEmbeddings: true, NormKind.LayerNorm, PositionKind.Learned, Bias: true,
        10000, 1e-5, NamingKind.Gpt2, new AttentionSpec(ProjectionKind.Full, 12, 12, 64), new MlpSpec(3072, ActivationKind.Gelu));

    internal static ModelSpec Llama3_8B => new(128256, 4096, 32, 8192, TiedEmbeddings: false, NormKind.RmsNorm, PositionKind.Rope, Bias: false,
        500000, 1e-5, NamingKind.Llama, new AttentionSpec(ProjectionKind.Full, 32, 8, 128), new MlpSpec(14336, ActivationKind.SwiGlu));

    [Fact]
    public void Gpt2_small_has_its_published_parameter_count() =>
        Assert.Equal(124_439_808, ModelSizing.Compute(Gpt2Small).Parameters);

    [Fact]
    public void Llama3_8B_has_its_published_parameter_count_and_KV_cache()
    {
        var sizes = ModelSizing.Compute(Llama3_8B);

        Assert.Equal(8_030_261_248, sizes.Parameters);
        Assert.Equal(131_072, sizes.KvCacheElementsPerToken * 2); // bf16 bytes: 2 · 32 layers · 8 KV heads · 128 · 2 B
    }

    private static MoeSpec Experts(int experts, int active, int shared = 0, int hidden = 14336, int firstLayer = 0) =>
        new(experts, active, shared, hidden, firstLayer, RouterKind.Softmax, BalanceKind.AuxLoss, true, 1.0, 0.01, 0.001);

    [Fact]
    public void Mixtral_8x7B_has_its_published_total_and_active_counts()
    {
        var mixtral = new ModelSpec(32000, 4096, 32, 32768, TiedEmbeddings: false, NormKind.RmsNorm, PositionKind.Rope, Bias: false,
            1e6, 1e-5, NamingKind.Llama, new AttentionSpec(ProjectionKind.Full, 32, 8, 128), new MlpSpec(14336, ActivationKind.SwiGlu), Moe: Experts(8, 2));
        var sizes = ModelSizing.Compute(mixtral);

        Assert.Equal(46_702_792_704, sizes.Parameters);
        Assert.Equal(46_702_792_704 - 32L * 6 * 3 * 4096 * 14336, sizes.ActiveParameters); // six unchosen experts per layer
        Assert.Equal(32L * 8 * 3 * 4096 * 14336, sizes.RoutedExpertParameters);
    }

    [Fact]
    public void Expert_layers_count_router_chosen_and_shared_experts_in_flops_and_dense_layers_their_mlp()
    {
        // d 8, 2 layers (layer 0 dense SwiGLU 16), then 4 experts of 6, 2 active, 1 shared; 2 heads of 4; vocab 10; context 5.
        var spec = new ModelSpec(10, 8, 2, 5, true, NormKind.RmsNorm, PositionKind.Rope, false, 10000, 1e-5, NamingKind.Llama,
            new AttentionSpec(ProjectionKind.Full, 2, 2, 4), new MlpSpec(16, ActivationKind.SwiGlu), Moe: Experts(4, 2, shared: 1, hidden: 6, firstLayer: 1));
        var sizes = ModelSizing.Compute(spec);
        const int expert = 3 * 8 * 6, router = 4 * 8, dense = 3 * 8 * 16, attention = 4 * 8 * 8;

        Assert.Equal(dense + router + 4 * expert + expert, sizes.MlpParameters);
        Assert.Equal(10 * 8 + 2 * attention + sizes.MlpParameters + 2 * 2 * 8 + 8, sizes.Parameters);
        Assert.Equal(sizes.Parameters - 2 * expert, sizes.ActiveParameters);
        Assert.Equal(2 * (2 * attention + dense + router + 2 * expert + expert + 10 * 8) + 2 * 4 * 2 * 4 * 5, sizes.FlopsPerToken);
    }

    // DeepSeek-V4-Flash's routed part (REFERENCES.md §3): vocab 129,280, d 4096, 43 layers, 256 experts of 2048 + 1 shared,
    // top-6, its first 3 layers hash-routed. Its attention is not declarable yet, so plain GQA stands in; only the mixture's
    // tensors are compared. Hash layers keep their gate weight (V4's hash Gate has one), so parameters do not change.
    [Fact]
    public void Hash_routing_adds_a_token_table_buffer_per_hash_layer_and_no_parameters()
    {
        ModelSpec Flash(int hashLayers) => new(129280, 4096, 43, 4096, TiedEmbeddings: false, NormKind.RmsNorm, PositionKind.Rope, Bias: false,
            10000, 1e-6, NamingKind.Llama, new AttentionSpec(ProjectionKind.Full, 64, 1, 64), new MlpSpec(2048, ActivationKind.SwiGlu),
            Moe: new MoeSpec(256, 6, 1, 2048, 0, RouterKind.SqrtSoftplus, BalanceKind.AuxLossFree, true, 1.5, 0.01, 0.001, HashLayers: hashLayers));
        var hashed = Planning.PlannedTensors.Of(Planning.LayoutPlanner.Plan(Flash(3))).ToList();
        var scored = Planning.PlannedTensors.Of(Planning.LayoutPlanner.Plan(Flash(0))).ToList();

        var tables = hashed.Where(t => t.Name.EndsWith(".mlp.gate.tid2eid", StringComparison.Ordinal)).ToList();
        Assert.Equal(new[] { 0, 1, 2 }, tables.Select(t => int.Parse(t.Name.Split('.')[2])));
        Assert.All(tables, t => Assert.Equal(new long[] { 129280, 6 }, t.Shape));
        Assert.All(tables, t => Assert.False(t.Trainable));
        Assert.Equal(2_327_040, tables.Sum(t => t.Elements)); // 3 · 129,280 · 6: 18,616,320 bytes as int64
        // The hash layers have no selection bias (V4's hash Gate: bias = None); the other 40 keep theirs.
        Assert.Equal(40, hashed.Count(t => t.Name.EndsWith("e_score_correction_bias", StringComparison.Ordinal)));
        Assert.Equal(43, scored.Count(t => t.Name.EndsWith("e_score_correction_bias", StringComparison.Ordinal)));
        Assert.Equal(scored.Where(t => t.Trainable).Sum(t => t.Elements), hashed.Where(t => t.Trainable).Sum(t => t.Elements));
        Assert.Equal(ModelSizing.Compute(Flash(0)).Parameters, ModelSizing.Compute(Flash(3)).Parameters);
        Assert.Equal(ModelSizing.Compute(Flash(0)).ActiveParameters, ModelSizing.Compute(Flash(3)).ActiveParameters);
    }

    [Fact]
    public void Flops_count_every_weight_matmul_and_attention_at_full_context()
    {
        // One layer, d = 8, 2 heads of 4, SwiGLU 16, vocab 10, context 5, tied.
        var spec = new ModelSpec(10, 8, 1, 5, true, NormKind.RmsNorm, PositionKind.Rope, false, 10000, 1e-5, NamingKind.Llama,
            new AttentionSpec(ProjectionKind.Full, 2, 2, 4), new MlpSpec(16, ActivationKind.SwiGlu));
        var weights = 4 * 8 * 8 + 3 * 8 * 16 + 10 * 8; // projections, MLP, output head
        var attention = 4 * 2 * 4 * 5;                  // scores and mixing: 4 · heads · headDim · context

        Assert.Equal(2 * weights + attention, ModelSizing.Compute(spec).FlopsPerToken);
    }

    [Fact]
    public void A_trillion_parameter_declaration_is_counted_exactly()
    {
        var spec = Llama3_8B with { Dim = 65536, Layers = 128, Attention = new AttentionSpec(ProjectionKind.Full, 512, 64, 128), Mlp = new MlpSpec(262144, ActivationKind.SwiGlu) };

        var parameters = ModelSizing.Compute(spec).Parameters;

        var perLayer = 65536L * 65536 * 2 + 2L * 65536 * 8192 + 3L * 65536 * 262144 + 2 * 65536;
        Assert.Equal(2L * 128256 * 65536 + 128 * perLayer + 65536, parameters);
        Assert.True(parameters > 1_000_000_000_000);
    }

    [Fact]
    public void Sizes_that_do_not_fit_64_bits_throw_instead_of_wrapping()
    {
        var spec = Llama3_8B with { Vocab = int.MaxValue, Dim = int.MaxValue, Layers = 1000, Mlp = new MlpSpec(int.MaxValue, ActivationKind.SwiGlu) };

        Assert.Throws<OverflowException>(() => ModelSizing.Compute(spec));
    }

    [Theory]
    [InlineData(0 /* Full */, 64 * (64 + 32 + 32), 2)]
    [InlineData(1 /* NoKey */, 64 * (64 + 32), 1)]
    [InlineData(2 /* NoQuery */, 64 * (32 + 32), 2)]
    [InlineData(3 /* Shared */, 64 * 32, 1)]
    public void Each_projection_variant_counts_only_the_projections_it_keeps(int projections, long inputProjectionWeights, int cachedStreams)
    {
        // d = 64, 4 query heads and 2 KV heads of 16, SwiGLU 128, one layer, vocab 10, tied.
        var spec = new ModelSpec(10, 64, 1, 8, true, NormKind.RmsNorm, PositionKind.Rope, false, 10000, 1e-5, NamingKind.Llama,
            new AttentionSpec((ProjectionKind)projections, 4, 2, 16), new MlpSpec(128, ActivationKind.SwiGlu));

        var sizes = ModelSizing.Compute(spec);

        Assert.Equal(inputProjectionWeights + 64 * 64, sizes.AttentionParameters);
        Assert.Equal(10 * 64 + inputProjectionWeights + 64 * 64 + 3 * 64 * 128 + 2 * 64 + 64, sizes.Parameters);
        Assert.Equal(cachedStreams * 2 * 16, sizes.KvCacheElementsPerToken);
        Assert.Equal(2 * (inputProjectionWeights + 64 * 64 + 3 * 64 * 128 + 10 * 64) + 4 * 4 * 16 * 8, sizes.FlopsPerToken);
    }

    [Fact]
    public void Layers_sharing_keys_and_values_count_only_their_query_and_output_projections()
    {
        // 3 layers sharing KV in groups of 2: layers 0 and 2 own K/V. d 64, 4 heads and 2 KV heads of 16, biases.
        var spec = new ModelSpec(10, 64, 3, 8, true, NormKind.RmsNorm, PositionKind.Rope, true, 10000, 1e-5, NamingKind.Llama,
            new AttentionSpec(ProjectionKind.Full, 4, 2, 16, ShareKvEvery: 2), new MlpSpec(128, ActivationKind.SwiGlu));

        var sizes = ModelSizing.Compute(spec);

        var queryAndOutput = 64 * 64 + 64 + 64 * 64 + 64;      // q_proj and o_proj with biases, every layer
        var keysAndValues = 2 * (64 * 32 + 32);                // k_proj and v_proj with biases, owning layers
        Assert.Equal(3 * queryAndOutput + 2 * keysAndValues, sizes.AttentionParameters);
        Assert.Equal(2 * 2 * 32, sizes.KvCacheElementsPerToken);
    }

    // d 64, one layer, 4 heads, SwiGLU 128, tied: 4 attention matrices of 64×64 and 3 MLP matrices of 64×128 (7 tensors).
    private static ModelSpec SmallDense(QuantSpec quant) => new(10, 64, 1, 8, true, NormKind.RmsNorm, PositionKind.Rope, false, 10000, 1e-5, NamingKind.Llama,
        new AttentionSpec(ProjectionKind.Full, 4, 4, 16), new MlpSpec(128, ActivationKind.SwiGlu), Quant: quant);

    [Theory]
    [InlineData(0 /* Mxfp4 */, 0, 40960 / 2 + 40960 / 32)]                 // 4.25 bits: an E8M0 byte per 32 values
    [InlineData(1 /* Nvfp4 */, 0, 40960 / 2 + 40960 / 16 + 7 * 4)]         // 4.5 bits and an fp32 tensor scale per matrix
    [InlineData(2 /* Fp8E4M3 */, 0, 40960 + 7 * 4)]                        // a byte per value and the tensor scales
    [InlineData(3 /* Int4 */, 0, 40960 / 2 + 40960 / 32 * 4)]              // an fp32 scale per group of 32
    [InlineData(3 /* Int4 */, 64, 40960 / 2 + 40960 / 64 * 4)]
    public void Quantized_bytes_are_codes_plus_block_and_tensor_scales_of_every_targeted_matrix(int format, int groupSize, long bytes)
    {
        var sizes = ModelSizing.Compute(SmallDense(new QuantSpec((QuantFormatKind)format, QuantTargetKind.AllLinear, 0.5, false, groupSize)));

        Assert.Equal(4 * 64 * 64 + 3 * 64 * 128, sizes.QuantizedParameters);
        Assert.Equal(bytes, sizes.QuantizedWeightBytes);
        Assert.Equal(4L * sizes.QuantizedParameters, sizes.QuantizedFp32Bytes);
    }

    [Fact]
    public void Each_target_counts_its_own_matrices_and_all_of_them_add_up_to_every_linear_weight()
    {
        // A mixture with a dense first layer and a shared expert, so every target has matrices; no biases.
        var spec = new ModelSpec(10, 64, 3, 8, true, NormKind.RmsNorm, PositionKind.Rope, false, 10000, 1e-5, NamingKind.Llama,
            new AttentionSpec(ProjectionKind.Full, 4, 2, 16), new MlpSpec(128, ActivationKind.SwiGlu), Moe: Experts(4, 2, shared: 1, hidden: 32, firstLayer: 1));
        long Quantized(QuantTargetKind target) => ModelSizing.Compute(spec with { Quant = new QuantSpec(QuantFormatKind.Mxfp4, target, 0, false, 0) }).QuantizedParameters;
        var sizes = ModelSizing.Compute(spec);
        const long routers = 2 * 4 * 64;

        Assert.Equal(sizes.RoutedExpertParameters, Quantized(QuantTargetKind.Experts));
        Assert.Equal(sizes.AttentionParameters, Quantized(QuantTargetKind.Attention));
        Assert.Equal(3 * 64 * 128 + 2 * 3 * 64 * 32, Quantized(QuantTargetKind.Mlp)); // the dense layer and two shared experts
        Assert.Equal(sizes.AttentionParameters + sizes.MlpParameters - routers, Quantized(QuantTargetKind.AllLinear));
    }

    [Fact]
    public void Gpt2_fused_projections_of_layers_sharing_keys_and_values_are_query_wide()
    {
        // c_attn is Q+K+V wide in KV-owning layers and Q wide in the others; blocks run along the 64 inputs.
        var spec = new ModelSpec(10, 64, 3, 8, true, NormKind.LayerNorm, PositionKind.Learned, false, 10000, 1e-5, NamingKind.Gpt2,
            new AttentionSpec(ProjectionKind.Full, 4, 2, 16, ShareKvEvery: 2), new MlpSpec(128, ActivationKind.Gelu),
            Quant: new QuantSpec(QuantFormatKind.Mxfp4, QuantTargetKind.Attention, 0, false, 0));

        var sizes = ModelSizing.Compute(spec);

        var weights = 2 * 64 * (64 + 32 + 32) + 1 * 64 * 64 + 3 * 64 * 64; // owning c_attn, the other c_attn, c_proj
        Assert.Equal(sizes.AttentionParameters, sizes.QuantizedParameters);
        Assert.Equal(weights, sizes.QuantizedParameters);
        Assert.Equal(weights / 2 + weights / 32, sizes.QuantizedWeightBytes);
    }

    private static ModelSpec DeepSeekV3 => new(129280, 7168, 61, 4096, TiedEmbeddings: false, NormKind.RmsNorm, PositionKind.Rope, Bias: false,
        10000, 1e-6, NamingKind.Llama, new AttentionSpec(ProjectionKind.Full, 128, 128, 128, Latent: new LatentSpec(KvRank: 512, RopeDim: 64, QRank: 1536)),
        new MlpSpec(18432, ActivationKind.SwiGlu),
        Moe: new MoeSpec(256, 8, 1, 2048, 3, RouterKind.Sigmoid, BalanceKind.AuxLossFree, true, 2.5, 0.01, 0.001));

    private static ModelSpec Lfm2_8B_A1B => new(65536, 2048, 24, 32768, TiedEmbeddings: true, NormKind.RmsNorm, PositionKind.Rope, Bias: false,
        1e6, 1e-5, NamingKind.Llama, new AttentionSpec(ProjectionKind.Full, 32, 8, 64, QkNorm: true), new MlpSpec(7168, ActivationKind.SwiGlu),
        Moe: new MoeSpec(32, 4, 0, 1792, 2, RouterKind.Sigmoid, BalanceKind.AuxLossFree, true, 1.0, 0.01, 0.001),
        Hybrid: new HybridSpec(new[] { 2, 6, 10, 14, 18, 21 }.ToEquatableArray(), ConvKernel: 3));

    [Fact]
    public void DeepSeek_V3_caches_the_latent_and_rotary_key_of_every_layer_and_totals_671B()
    {
        var sizes = ModelSizing.Compute(DeepSeekV3);

        Assert.Equal(61 * 576, sizes.KvCacheElementsPerToken);
        Assert.Equal(70_272, sizes.KvCacheElementsPerToken * 2); // REFERENCES.md §3: bytes per token in bf16
        // Per layer: q_a 7168·1536 + norm 1536 + q_b 1536·128·192 + kv_a 7168·576 + norm 512 + kv_b 512·128·256 + o 128·128·7168.
        const long latentAttention = 7168L * 1536 + 1536 + 1536L * 128 * 192 + 7168L * 576 + 512 + 512L * 128 * 256 + 128L * 128 * 7168;
        Assert.Equal(61 * latentAttention, sizes.AttentionParameters);
        Assert.Equal(671_026_404_352, sizes.Parameters); // "671B" (the selection biases are buffers here, not parameters)
        // Published as "37B active": all but 248 of the 256 routed experts in 58 layers.
        Assert.Equal(671_026_404_352 - 58L * 248 * 3 * 7168 * 2048, sizes.ActiveParameters);
        Assert.Equal(37.6, Math.Round(sizes.ActiveParameters / 1e9, 1));
    }

    [Fact]
    public void Lfm2_8B_A1B_caches_only_its_six_attention_layers_and_totals_8_3B()
    {
        var sizes = ModelSizing.Compute(Lfm2_8B_A1B);

        Assert.Equal(6 * 2 * 8 * 64, sizes.KvCacheElementsPerToken);
        Assert.Equal(18 * 2048 * 2, sizes.ConvStateElements); // the last kernel − 1 = 2 inputs of 18 convolution blocks
        Assert.Equal(18 * (4L * 2048 * 2048 + 2048 * 3), sizes.ConvParameters);
        Assert.Equal(6 * (2048L * 2048 * 2 + 2048L * 512 * 2 + 2 * 64), sizes.AttentionParameters);
        Assert.Equal(8_339_929_856, sizes.Parameters); // "8.3B total"
        Assert.Equal(1_557_740_288, sizes.ActiveParameters); // "~1.5B active": 28 unchosen experts in 22 layers excluded
    }

    [Fact]
    public void A_hybrid_counts_attention_flops_and_cache_only_in_attention_layers()
    {
        // d 8, 4 layers, attention in layer 1 (2 heads of 4), convolutions of kernel 3 elsewhere; GELU MLP 16; vocab 10; context 5.
        var spec = new ModelSpec(10, 8, 4, 5, true, NormKind.RmsNorm, PositionKind.Rope, false, 10000, 1e-5, NamingKind.Llama,
            new AttentionSpec(ProjectionKind.Full, 2, 2, 4), new MlpSpec(16, ActivationKind.Gelu), Hybrid: new HybridSpec(new[] { 1 }.ToEquatableArray(), 3));
        var sizes = ModelSizing.Compute(spec);
        const int attention = 4 * 8 * 8, conv = 4 * 8 * 8 + 8 * 3, mlp = 2 * 8 * 16;

        Assert.Equal(attention, sizes.AttentionParameters);
        Assert.Equal(3 * conv, sizes.ConvParameters);
        Assert.Equal(10 * 8 + attention + 3 * conv + 4 * mlp + 4 * 2 * 8 + 8, sizes.Parameters);
        Assert.Equal(2 * 2 * 4, sizes.KvCacheElementsPerToken);
        Assert.Equal(3 * 8 * 2, sizes.ConvStateElements);
        Assert.Equal(2 * (attention + 3 * conv + 4 * mlp + 10 * 8) + 4 * 2 * 4 * 5, sizes.FlopsPerToken);
    }

    [Fact]
    public void Sparse_attention_adds_the_indexer_and_its_key_and_mixes_only_top_k_tokens()
    {
        // d 8, 1 layer, 2 heads of 4; indexer 3 heads of 2, top-2 of a context of 5.
        var spec = new ModelSpec(10, 8, 1, 5, true, NormKind.RmsNorm, PositionKind.Rope, false, 10000, 1e-5, NamingKind.Llama,
            new AttentionSpec(ProjectionKind.Full, 2, 2, 4), new MlpSpec(16, ActivationKind.Gelu), Sparse: new SparseSpec(3, 2, TopK: 2));
        var sizes = ModelSizing.Compute(spec);
        const int indexer = 8 * (3 * 2 + 2 + 3), attention = 4 * 8 * 8;

        Assert.Equal(attention + indexer, sizes.AttentionParameters);
        Assert.Equal(2 * 2 * 4 + 2, sizes.KvCacheElementsPerToken);
        Assert.Equal(2 * (attention + indexer + 2 * 8 * 16 + 10 * 8) + 4 * 2 * 4 * 2 + 2 * 5 * 3 * (2 + 1), sizes.FlopsPerToken);
    }

    [Fact]
    public void Query_key_norm_adds_one_head_width_per_normalised_tensor()
    {
        ModelSpec With(ProjectionKind projections) => new(10, 8, 3, 5, true, NormKind.RmsNorm, PositionKind.Rope, false, 10000, 1e-5, NamingKind.Llama,
            new AttentionSpec(projections, 2, 2, 4, QkNorm: true), new MlpSpec(16, ActivationKind.Gelu));
        long Extra(ProjectionKind p) => ModelSizing.Compute(With(p)).Parameters - ModelSizing.Compute(With(p) with { Attention = With(p).Attention with { QkNorm = false } }).Parameters;

        Assert.Equal(3 * 2 * 4, Extra(ProjectionKind.Full));
        Assert.Equal(3 * 2 * 4, Extra(ProjectionKind.NoKey));
        Assert.Equal(3 * 4, Extra(ProjectionKind.NoQuery)); // queries are the keys: one norm
        Assert.Equal(3 * 4, Extra(ProjectionKind.Shared));
    }
}
