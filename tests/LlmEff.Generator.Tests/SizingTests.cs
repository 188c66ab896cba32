using System;
using LlmEff.Generator.Model;
using LlmEff.Generator.Sizing;

namespace LlmEff.Generator.Tests;

/// <summary>Size arithmetic against published figures (shared/REFERENCES.md §5) and hand-computed small cases.</summary>
public sealed class SizingTests
{
    private static ModelSpec Gpt2Small => new(50257, 768, 12, 1024, TiedEmbeddings: true, NormKind.LayerNorm, PositionKind.Learned, Bias: true,
        10000, 1e-5, NamingKind.Gpt2, new AttentionSpec(ProjectionKind.Full, 12, 12, 64), new MlpSpec(3072, ActivationKind.Gelu));

    private static ModelSpec Llama3_8B => new(128256, 4096, 32, 8192, TiedEmbeddings: false, NormKind.RmsNorm, PositionKind.Rope, Bias: false,
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
        var spec = Llama3_8B with { Vocab = int.MaxValue, Dim = int.MaxValue, Layers = int.MaxValue, Mlp = new MlpSpec(int.MaxValue, ActivationKind.SwiGlu) };

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
}
