using System.Linq;
using System.Text.RegularExpressions;
using LlmEff.Generator.Emitting;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;

namespace LlmEff.Generator.Tests;

/// <summary>The GGUF part renders the layout plan: the Llama layout gets llama.cpp's metadata and a tensor table
/// covering exactly the planned tensors; every other feature is refused by name, in the generated part.</summary>
public sealed class GgufEmitterTests
{
    private static readonly ModelSpec Plain = new(Vocab: 64, Dim: 64, Layers: 3, Context: 16, TiedEmbeddings: false, Norm: NormKind.RmsNorm,
        Positions: PositionKind.Rope, Bias: false, RopeTheta: 500000, NormEps: 1e-6, Naming: NamingKind.Llama,
        Attention: new AttentionSpec(ProjectionKind.Full, Heads: 4, KvHeads: 2, HeadDim: 16), Mlp: new MlpSpec(192, ActivationKind.SwiGlu));

    private static readonly ModelSizes NoSizes = new(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    private static ModelToEmit Model(ModelSpec spec) => new(new TypeTarget("Demo", "Odd", EquatableArray<string>.Empty), spec, LayoutPlanner.Plan(spec), NoSizes);

    [Fact]
    public void The_table_maps_every_planned_tensor_once_and_rotary_projections_are_permuted_per_head()
    {
        var part = GgufEmitter.Emit(Model(Plain));

        Assert.Null(GgufEmitter.Refusal(LayoutPlanner.Plan(Plain)));
        // Expand the one-layer template the part writes inside its loop into every layer, as the loop would.
        var rows = Regex.Matches(part, "yield return new\\(\\$?\"([^\"]+)\", \\$?\"([^\"]+)\"").Select(m => (Source: m.Groups[1].Value, Name: m.Groups[2].Value)).ToList();
        var sources = rows.SelectMany(r => r.Source.Contains("{i}") ? Enumerable.Range(0, Plain.Layers).Select(i => r.Source.Replace("{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture))) : new[] { r.Source });
        Assert.Equal(PlannedTensors.Of(LayoutPlanner.Plan(Plain)).Select(t => t.Name).OrderBy(n => n), sources.OrderBy(n => n));
        Assert.Contains("(\"lm_head.weight\", \"output.weight\")", part);
        Assert.Contains("$\"blk.{i}.attn_q.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 4)", part);
        Assert.Contains("$\"blk.{i}.attn_k.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 2)", part);
        Assert.Contains("$\"blk.{i}.attn_v.weight\");", part);
        Assert.Contains("new(\"llama.rope.freq_base\", global::LlmEff.Export.GgufValue.Float32(500000f))", part);
        Assert.Contains("new(\"llama.attention.layer_norm_rms_epsilon\", global::LlmEff.Export.GgufValue.Float32(1E-06f))", part);
        Assert.Contains("new(\"llama.attention.head_count_kv\", global::LlmEff.Export.GgufValue.UInt32(2))", part);
    }

    [Theory]
    [InlineData("NoKey", "v_proj", "v_proj", "v_proj", "q_proj", ", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 4)")]
    [InlineData("NoQuery", "k_proj", "k_proj", "v_proj", "k_proj", ", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 2, Repeats: 2)")]
    [InlineData("Shared", "qkv_proj", "qkv_proj", "qkv_proj", "qkv_proj", ", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 2, Repeats: 2)")]
    public void Aliased_projections_are_written_under_every_name_they_stand_for_keys_and_queries_paired_and_queries_repeated_per_group(
        string kind, string shared, string keySource, string valueSource, string querySource, string queryTransform)
    {
        // Plain has 4 query heads and 2 key/value heads: queries that are the keys repeat each key head twice.
        var spec = Plain with { Attention = Plain.Attention with { Projections = System.Enum.Parse<ProjectionKind>(kind) } };
        var plan = LayoutPlanner.Plan(spec);
        var part = GgufEmitter.Emit(Model(spec));

        Assert.Null(GgufEmitter.Refusal(plan));
        Assert.Contains($"model.layers.0.self_attn.{shared}.weight", PlannedTensors.Of(plan).Select(t => t.Name));
        Assert.Contains($"yield return new($\"model.layers.{{i}}.self_attn.{querySource}.weight\", $\"blk.{{i}}.attn_q.weight\"{queryTransform};", part);
        Assert.Contains($"yield return new($\"model.layers.{{i}}.self_attn.{keySource}.weight\", $\"blk.{{i}}.attn_k.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 2);", part);
        Assert.Contains($"yield return new($\"model.layers.{{i}}.self_attn.{valueSource}.weight\", $\"blk.{{i}}.attn_v.weight\");", part);
        Assert.Contains("llama.cpp caches keys and values separately", GgufEmitter.AliasNote(plan));
        Assert.Contains(GgufEmitter.AliasNote(plan)!, part); // the note has no quotes to escape
    }

    [Theory]
    [InlineData("cross-layer key/value sharing (ShareKvEvery = 2): no GGUF export yet")]
    [InlineData("biases: no GGUF export yet")]
    [InlineData("an encoder")]
    [InlineData("compressed attention (DeepSeek V4: sliding window, compressed entries, attention sink, grouped output): no GGUF export yet; llama.cpp has no kind for it")]
    public void A_feature_llama_cpp_cannot_run_yet_is_refused_by_name_in_the_generated_part(string feature)
    {
        var spec = feature switch
        {
            "an encoder" => Plain with { Causal = false },
            _ when feature.StartsWith("compressed", System.StringComparison.Ordinal) => Plain with
            {
                Attention = Plain.Attention with
                {
                    KvHeads = 1,
                    Compressed = new CompressedSpec(RopeDim: 8, QRank: 32, OutputGroups: 2, OutputRank: 16, Window: 4, SparseLayers: new[] { 1 }.ToEquatableArray(),
                        HeavyLayers: new[] { 2 }.ToEquatableArray(), SparseRatio: 2, HeavyRatio: 4, TopK: 2, IndexerHeads: 2, IndexerDim: 32, IndexerPrecisionKind.Fp4, Bf16Scores: false),
                },
            },
            _ when feature.StartsWith("biases", System.StringComparison.Ordinal) => Plain with { Bias = true },
            _ => Plain with { Attention = Plain.Attention with { ShareKvEvery = 2 } },
        };

        var refusal = GgufEmitter.Refusal(LayoutPlanner.Plan(spec));
        var part = GgufEmitter.Emit(Model(spec));

        Assert.NotNull(refusal);
        Assert.Contains(feature, refusal);
        Assert.Contains("global::LlmEff.GgufExport.Refused(\"", part);
        Assert.DoesNotContain("GgufTensorTable", part);
    }

    private static MoeSpec Experts(RouterKind router = RouterKind.Softmax, int shared = 0, int firstLayer = 0, bool normalize = true, double scale = 1.0,
        BalanceKind balance = BalanceKind.AuxLoss) => new(4, 2, shared, 32, firstLayer, router, balance, normalize, scale, 0.01, 0.001);

    private static readonly ModelSpec Latent = Plain with { Attention = Plain.Attention with { KvHeads = 4, Latent = new LatentSpec(KvRank: 24, RopeDim: 8, QRank: 32) } };

    private static readonly ModelSpec Hybrid = Plain with
    {
        Attention = Plain.Attention with { QkNorm = true },
        Hybrid = new HybridSpec(new[] { 1 }.ToEquatableArray(), ConvKernel: 3),
    };

    [Theory]
    [InlineData("dense", "llama")]
    [InlineData("Mixtral's router", "llama")]
    [InlineData("a sigmoid router with a shared expert", "glm4moe")]
    [InlineData("an unnormalised softmax router with a shared expert", "glm4moe")]
    [InlineData("leading dense layers with a shared expert", "glm4moe")]
    [InlineData("latent attention", "deepseek2")]
    [InlineData("latent attention without a query latent", "deepseek2")]
    [InlineData("latent attention with experts", "deepseek2")]
    [InlineData("QkNorm", "qwen3")]
    [InlineData("QkNorm with Mixtral's router", "qwen3moe")]
    [InlineData("a hybrid", "lfm2")]
    [InlineData("a hybrid with experts", "lfm2moe")]
    [InlineData("GPT-2", "gpt2")]
    [InlineData("GPT-2's computation under Llama names", "gpt2")]
    public void Each_exportable_kind_becomes_the_llama_cpp_architecture_that_computes_it(string kind, string architecture)
    {
        var spec = kind switch
        {
            "dense" => Plain,
            "Mixtral's router" => Plain with { Moe = Experts() },
            "a sigmoid router with a shared expert" => Plain with { Moe = Experts(RouterKind.Sigmoid, shared: 1, scale: 2.5, balance: BalanceKind.AuxLossFree) },
            "an unnormalised softmax router with a shared expert" => Plain with { Moe = Experts(shared: 1, normalize: false) },
            "leading dense layers with a shared expert" => Plain with { Moe = Experts(shared: 1, firstLayer: 1) },
            "latent attention" => Latent,
            "latent attention without a query latent" => Latent with { Attention = Latent.Attention with { Latent = new LatentSpec(24, 8, 0) } },
            "latent attention with experts" => Latent with { Moe = Experts(RouterKind.Sigmoid, shared: 1, firstLayer: 1, balance: BalanceKind.AuxLossFree) },
            "QkNorm" => Plain with { Attention = Plain.Attention with { QkNorm = true } },
            "QkNorm with Mixtral's router" => Plain with { Attention = Plain.Attention with { QkNorm = true }, Moe = Experts() },
            "a hybrid" => Hybrid,
            "GPT-2" => Gpt2,
            "GPT-2's computation under Llama names" => Gpt2 with { Naming = NamingKind.Llama },
            _ => Hybrid with { Moe = Experts(RouterKind.Sigmoid, firstLayer: 1, balance: BalanceKind.AuxLossFree) },
        };
        var plan = LayoutPlanner.Plan(spec);

        Assert.Null(GgufEmitter.Refusal(plan));
        Assert.Equal(architecture, GgufEmitter.Architecture(plan));
        Assert.Contains($"global::LlmEff.GgufExport.Model(\"{architecture}\",", GgufEmitter.Emit(Model(spec)));
    }

    [Fact]
    public void Experts_are_stacked_per_kind_with_the_router_settings_llama_cpp_reads_and_dense_layers_first()
    {
        var spec = Plain with { Moe = Experts(RouterKind.Sigmoid, shared: 1, firstLayer: 1, scale: 2.5, balance: BalanceKind.AuxLossFree) };
        var part = GgufEmitter.Emit(Model(spec));

        Assert.Contains("if (i < 1)", part);
        Assert.Contains("$\"model.layers.{i}.mlp.experts.{e}.gate_proj.weight\"", part);
        Assert.Contains("yield return new(ffn_gate_exps[0], $\"blk.{i}.ffn_gate_exps.weight\", Stacked: ffn_gate_exps);", part);
        Assert.Contains("$\"model.layers.{i}.mlp.gate.e_score_correction_bias\", $\"blk.{i}.exp_probs_b.bias\"", part);
        Assert.Contains("$\"model.layers.{i}.mlp.shared_experts.down_proj.weight\", $\"blk.{i}.ffn_down_shexp.weight\"", part);
        Assert.Contains("new(\"glm4moe.expert_gating_func\", global::LlmEff.Export.GgufValue.UInt32(2))", part);
        Assert.Contains("new(\"glm4moe.expert_weights_scale\", global::LlmEff.Export.GgufValue.Float32(2.5f))", part);
        Assert.Contains("new(\"glm4moe.leading_dense_block_count\", global::LlmEff.Export.GgufValue.UInt32(1))", part);
        // glm4moe rotates halves, as we do: no pairing.
        Assert.DoesNotContain("RotaryPairs", part);
    }

    [Fact]
    public void Latent_attention_pairs_only_the_rotary_rows_of_its_queries_and_of_its_latent_projection()
    {
        var part = GgufEmitter.Emit(Model(Latent));

        Assert.Contains("$\"blk.{i}.attn_q_b.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 4, RotaryRows: 8)", part);
        Assert.Contains("$\"blk.{i}.attn_kv_a_mqa.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 1, RotaryRows: 8)", part);
        Assert.Contains("$\"model.layers.{i}.self_attn.kv_b_proj.weight\", $\"blk.{i}.attn_kv_b.weight\");", part);
        Assert.Contains("new(\"deepseek2.attention.key_length\", global::LlmEff.Export.GgufValue.UInt32(24))", part);
        Assert.Contains("new(\"deepseek2.attention.kv_lora_rank\", global::LlmEff.Export.GgufValue.UInt32(24))", part);
        // 3 layers × 4 heads × (16 + 8 + 16) elements at 2 bytes, against 3 × (24 + 8) × 2 for our latent cache.
        Assert.Contains("960 bytes per token at f16 where our cached decoding keeps the latent and the rotary key, 192", GgufEmitter.LatentNote(LayoutPlanner.Plan(Latent)));
        Assert.Contains(GgufEmitter.LatentNote(LayoutPlanner.Plan(Latent))!, part);
    }

    [Fact]
    public void A_hybrid_names_its_attention_layers_by_key_value_heads_and_writes_its_filters_as_two_dimensional()
    {
        var part = GgufEmitter.Emit(Model(Hybrid));

        Assert.Contains("new(\"lfm2.attention.head_count_kv\", global::LlmEff.Export.GgufValue.Array(global::LlmEff.Export.GgufValueType.Int32, new[] { " +
                        "global::LlmEff.Export.GgufValue.Int32(0), global::LlmEff.Export.GgufValue.Int32(2), global::LlmEff.Export.GgufValue.Int32(0) }))", part);
        Assert.Contains("if (i == 1)", part);
        Assert.Contains("$\"model.layers.{i}.conv.conv.weight\", $\"blk.{i}.shortconv.conv.weight\", global::LlmEff.Export.GgufTransform.DepthwiseFilter);", part);
        Assert.Contains("\"token_embd_norm.weight\"", part);
    }

    [Theory]
    [InlineData("experts without a shared expert whose router is not Mixtral's")]
    [InlineData("experts without a shared expert on latent attention")]
    [InlineData("hybrid short-convolution layers without QkNorm")]
    [InlineData("hybrid experts with a shared expert")]
    [InlineData("hybrid experts with weights not renormalised")]
    [InlineData("NoKey attention in a hybrid")]
    [InlineData("QkNorm with NoKey attention")]
    [InlineData("QkNorm with experts whose router is not Mixtral's")]
    public void A_kind_llama_cpp_computes_differently_is_refused_by_name(string feature)
    {
        var spec = feature switch
        {
            "experts without a shared expert whose router is not Mixtral's" => Plain with { Moe = Experts(RouterKind.Sigmoid) },
            "experts without a shared expert on latent attention" => Latent with { Moe = Experts() },
            "hybrid short-convolution layers without QkNorm" => Hybrid with { Attention = Hybrid.Attention with { QkNorm = false } },
            "hybrid experts with a shared expert" => Hybrid with { Moe = Experts(shared: 1) },
            "hybrid experts with weights not renormalised" => Hybrid with { Moe = Experts(normalize: false) },
            "NoKey attention in a hybrid" => Hybrid with { Attention = Hybrid.Attention with { Projections = ProjectionKind.NoKey } },
            "QkNorm with NoKey attention" => Plain with { Attention = Plain.Attention with { QkNorm = true, Projections = ProjectionKind.NoKey } },
            _ => Plain with { Attention = Plain.Attention with { QkNorm = true }, Moe = Experts(shared: 1) },
        };

        var refusal = GgufEmitter.Refusal(LayoutPlanner.Plan(spec));

        Assert.NotNull(refusal);
        Assert.Contains(feature, refusal);
    }

    private static QuantSpec Quant(QuantFormatKind format, QuantTargetKind target = QuantTargetKind.AllLinear) => new(format, target, From: 0.8, Clipped: false, GroupSize: 0);

    [Fact]
    public void Mxfp4_weights_are_written_as_mxfp4_and_only_the_weights_the_plan_quantizes()
    {
        var dense = Plain with { Quant = Quant(QuantFormatKind.Mxfp4) };
        var experts = Plain with { Moe = Experts(), Quant = Quant(QuantFormatKind.Mxfp4, QuantTargetKind.Experts) };
        const string Mxfp4 = ", Type: global::LlmEff.Export.GgufTensorType.MXFP4);";

        Assert.Null(GgufEmitter.Refusal(LayoutPlanner.Plan(dense)));
        Assert.Null(GgufEmitter.Refusal(LayoutPlanner.Plan(experts)));
        var densePart = GgufEmitter.Emit(Model(dense));
        var expertPart = GgufEmitter.Emit(Model(experts));

        // Every attention and MLP matrix, the rotary pairing kept; embeddings, norms and the head as --type says.
        Assert.Contains("$\"blk.{i}.attn_q.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 4" + Mxfp4, densePart);
        foreach (var name in new[] { "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down" })
            Assert.Contains($"$\"blk.{{i}}.{name}.weight\"{Mxfp4}", densePart);
        Assert.Equal(7, Regex.Matches(densePart, "MXFP4").Count);
        Assert.Contains("(\"lm_head.weight\", \"output.weight\");", densePart);
        // Experts only: the stacked experts, not attention or the router.
        Assert.Contains("Stacked: ffn_gate_exps" + Mxfp4, expertPart);
        Assert.Contains("Stacked: ffn_down_exps" + Mxfp4, expertPart);
        Assert.Equal(3, Regex.Matches(expertPart, "MXFP4").Count);
        Assert.Contains("$\"blk.{i}.ffn_gate_inp.weight\");", expertPart);
    }

    [Theory]
    [InlineData("Nvfp4", "[Quant] NVFP4 weights: no GGUF export; llama.cpp's nvfp4 blocks (64 values, four UE4M3 scales) have no per-tensor fp32 scale")]
    [InlineData("Fp8E4M3", "[Quant] FP8 E4M3 weights: no GGUF export; llama.cpp has no FP8 tensor type")]
    [InlineData("Int4", "[Quant] Int4 weights: no GGUF export; llama.cpp's q4_0 holds an f16 scale per 32 values, not our fp32 scale per group of 32")]
    public void A_quant_format_llama_cpp_has_no_tensor_type_for_is_refused_naming_the_format(string format, string reason)
    {
        var spec = Plain with { Quant = Quant(System.Enum.Parse<QuantFormatKind>(format)) };

        Assert.StartsWith(reason, GgufEmitter.Refusal(LayoutPlanner.Plan(spec)), System.StringComparison.Ordinal);
        Assert.Contains("global::LlmEff.GgufExport.Refused(\"[Quant] ", GgufEmitter.Emit(Model(spec)));
    }

    [Fact]
    public void Mxfp4_weights_whose_rows_are_not_whole_blocks_are_refused_naming_the_layer()
    {
        // 200 hidden units: down_proj's rows are 200 inputs, six blocks and a partial one (LLM016 flags it too).
        var spec = Plain with { Mlp = new MlpSpec(200, ActivationKind.SwiGlu), Quant = Quant(QuantFormatKind.Mxfp4, QuantTargetKind.Mlp) };

        Assert.Equal("[Quant] MXFP4 weights whose rows are not whole 32-value blocks (down_proj: 200 inputs): no GGUF export; llama.cpp's mxfp4 rows cannot hold a padded block",
            GgufEmitter.Refusal(LayoutPlanner.Plan(spec)));
    }

    /// <summary>GPT-2's computation: learned positions, LayerNorm, biases, GELU, multi-head attention (4 heads of 16 =
    /// Dim) with 2 key/value heads, an untied head, under GPT-2's names.</summary>
    private static readonly ModelSpec Gpt2 = Plain with
    {
        Naming = NamingKind.Gpt2, Norm = NormKind.LayerNorm, Positions = PositionKind.Learned, Bias = true, NormEps = 1e-5,
        Mlp = new MlpSpec(192, ActivationKind.Gelu),
    };

    [Fact]
    public void GPT_2_maps_every_planned_tensor_once_with_its_input_by_output_weights_transposed_and_its_norm_biases()
    {
        var plan = LayoutPlanner.Plan(Gpt2);
        var part = GgufEmitter.Emit(Model(Gpt2));

        Assert.Null(GgufEmitter.Refusal(plan));
        var rows = Regex.Matches(part, "yield return new\\(\\$?\"([^\"]+)\", \\$?\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        var sources = rows.SelectMany(r => r.Contains("{i}") ? Enumerable.Range(0, Gpt2.Layers).Select(i => r.Replace("{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture))) : new[] { r });
        Assert.Equal(PlannedTensors.Of(plan).Select(t => t.Name).OrderBy(n => n), sources.OrderBy(n => n));
        const string Transposed = "global::LlmEff.Export.GgufTransform.Transposed";
        Assert.Contains("(\"transformer.wpe.weight\", \"position_embd.weight\")", part);
        Assert.Contains($"($\"transformer.h.{{i}}.attn.c_attn.weight\", $\"blk.{{i}}.attn_qkv.weight\", {Transposed})", part);
        Assert.Contains("($\"transformer.h.{i}.attn.c_attn.bias\", $\"blk.{i}.attn_qkv.bias\")", part);
        Assert.Contains($"($\"transformer.h.{{i}}.attn.c_proj.weight\", $\"blk.{{i}}.attn_output.weight\", {Transposed})", part);
        Assert.Contains($"($\"transformer.h.{{i}}.mlp.c_fc.weight\", $\"blk.{{i}}.ffn_up.weight\", {Transposed})", part);
        Assert.Contains($"($\"transformer.h.{{i}}.mlp.c_proj.weight\", $\"blk.{{i}}.ffn_down.weight\", {Transposed})", part);
        Assert.Contains("($\"transformer.h.{i}.ln_2.bias\", $\"blk.{i}.ffn_norm.bias\")", part);
        Assert.Contains("(\"transformer.ln_f.bias\", \"output_norm.bias\")", part);
        Assert.Contains("(\"lm_head.weight\", \"output.weight\")", part); // nn.Linear's layout already
        Assert.Contains("new(\"gpt2.attention.layer_norm_epsilon\", global::LlmEff.Export.GgufValue.Float32(1E-05f))", part);
        Assert.Contains("new(\"gpt2.attention.head_count_kv\", global::LlmEff.Export.GgufValue.UInt32(2))", part);
        Assert.DoesNotContain("rope", part);
        Assert.DoesNotContain("layer_norm_rms_epsilon", part);
    }

    [Fact]
    public void GPT_2_s_computation_under_Llama_names_joins_q_k_and_v_into_one_attn_qkv_weight_and_bias()
    {
        var part = GgufEmitter.Emit(Model(Gpt2 with { Naming = NamingKind.Llama }));

        foreach (var suffix in new[] { "weight", "bias" })
            Assert.Contains($"($\"model.layers.{{i}}.self_attn.q_proj.{suffix}\", $\"blk.{{i}}.attn_qkv.{suffix}\", global::LlmEff.Export.GgufTransform.Concatenated, Stacked: new[] {{ " +
                            $"$\"model.layers.{{i}}.self_attn.q_proj.{suffix}\", $\"model.layers.{{i}}.self_attn.k_proj.{suffix}\", $\"model.layers.{{i}}.self_attn.v_proj.{suffix}\" }})", part);
        Assert.Contains("($\"model.layers.{i}.mlp.up_proj.weight\", $\"blk.{i}.ffn_up.weight\")", part);
        Assert.Contains("(\"model.embed_positions.weight\", \"position_embd.weight\")", part);
        Assert.DoesNotContain("Transposed", part);
    }

    [Theory]
    [InlineData("rotary positions with GPT-2 naming, LayerNorm, GELU")]
    [InlineData("rotary positions with LayerNorm")]
    [InlineData("no positions with GPT-2 naming")]
    [InlineData("RmsNorm (ln_1) with GPT-2 naming, learned positions, GELU")]
    [InlineData("linear layers without biases")]
    [InlineData("the SwiGlu feed-forward")]
    [InlineData("experts")]
    [InlineData("NoKey attention (aliased projections)")]
    [InlineData("Shared attention (aliased projections)")]
    [InlineData("QkNorm")]
    [InlineData("cross-layer key/value sharing (ShareKvEvery = 2)")]
    [InlineData("a query width of 96 (Heads × HeadDim) other than Dim 64")]
    public void A_GPT_2_like_kind_that_llama_cpp_s_gpt2_computes_differently_is_refused_by_name(string feature)
    {
        var spec = feature switch
        {
            "rotary positions with GPT-2 naming, LayerNorm, GELU" => Gpt2 with { Positions = PositionKind.Rope },
            "rotary positions with LayerNorm" => Plain with { Norm = NormKind.LayerNorm },
            "no positions with GPT-2 naming" => Gpt2 with { Positions = PositionKind.None },
            "RmsNorm (ln_1) with GPT-2 naming, learned positions, GELU" => Gpt2 with { Norm = NormKind.RmsNorm },
            "linear layers without biases" => Gpt2 with { Bias = false },
            "the SwiGlu feed-forward" => Gpt2 with { Mlp = new MlpSpec(192, ActivationKind.SwiGlu) },
            "experts" => Gpt2 with { Moe = Experts() },
            "NoKey attention (aliased projections)" => Gpt2 with { Attention = Gpt2.Attention with { Projections = ProjectionKind.NoKey } },
            "Shared attention (aliased projections)" => Gpt2 with { Attention = Gpt2.Attention with { Projections = ProjectionKind.Shared } },
            "QkNorm" => Gpt2 with { Attention = Gpt2.Attention with { QkNorm = true } },
            "cross-layer key/value sharing (ShareKvEvery = 2)" => Gpt2 with { Attention = Gpt2.Attention with { ShareKvEvery = 2 } },
            _ => Gpt2 with { Attention = Gpt2.Attention with { HeadDim = 24 } },
        };
        var plan = LayoutPlanner.Plan(spec);

        var refusal = GgufEmitter.Refusal(plan);

        Assert.NotNull(refusal);
        Assert.Contains(feature, refusal);
        Assert.Contains("llama.cpp's gpt2", refusal);
        Assert.Contains("global::LlmEff.GgufExport.Refused(\"", GgufEmitter.Emit(Model(spec)));
    }
}
