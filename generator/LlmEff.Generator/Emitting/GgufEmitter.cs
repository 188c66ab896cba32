using System.Globalization;
using System.Linq;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;

namespace LlmEff.Generator.Emitting;

/// <summary>
/// Renders a model's layout plan as llama.cpp reads it: the generated C# part exposing <c>IDeclaredModel.Gguf</c>,
/// which holds the llama.cpp architecture, the metadata keys its loader expects for that architecture, and a tensor
/// table from each state-dict name to its GGUF name with the transform it needs. A plan with a feature llama.cpp has
/// no kind for yet gets a part that carries the refusal instead (see <see cref="Refusal"/>). Decides nothing about
/// the layout: every name, width and flag comes from the plan.
/// </summary>
internal static class GgufEmitter
{
    /// <summary>llama.cpp's architecture for Llama-style decoders, dense or with Mixtral's experts.</summary>
    public const string LlamaArchitecture = "llama";

    /// <summary>llama.cpp's architecture for GLM-4.5's decoders: standard attention with halves-rotated RoPE, leading
    /// dense layers, then experts with a configurable router (softmax or sigmoid, selection bias, renormalisation,
    /// scale) and shared experts.</summary>
    public const string Glm4MoeArchitecture = "glm4moe";

    /// <summary>llama.cpp's architecture for DeepSeek-V2/V3: multi-head latent attention (with or without a query
    /// latent), leading dense layers, then experts with a configurable router and shared experts.</summary>
    public const string DeepSeek2Architecture = "deepseek2";

    /// <summary>llama.cpp's architectures for LFM2 hybrids: gated short convolutions and attention (with per-head
    /// query/key norms) in the layers it is told (head_count_kv 0 for convolution layers), dense or with experts after
    /// leading dense layers (renormalised, unscaled, no shared expert).</summary>
    public const string Lfm2Architecture = "lfm2", Lfm2MoeArchitecture = "lfm2moe";

    /// <summary>llama.cpp's architectures for Qwen3: standard attention with per-head RMSNorm of queries and keys
    /// before halves-rotated RoPE, dense or with experts whose router is Mixtral's (softmax, renormalised).</summary>
    public const string Qwen3Architecture = "qwen3", Qwen3MoeArchitecture = "qwen3moe";

    /// <summary>llama.cpp's architecture for GPT-2: learned positions added to the token embedding, LayerNorm (with
    /// bias), one fused q/k/v projection (attn_qkv, grouped key/value heads allowed), biases on every linear layer, a
    /// tanh-approximated GELU feed-forward, no rotary positions (llama.cpp's src/models/gpt2.cpp).</summary>
    public const string Gpt2Architecture = "gpt2";

    // llama.cpp's llama_expert_gating_func_type values (llama-hparams.h).
    private const int GatingSoftmax = 1, GatingSigmoid = 2;

    public static string HintName(TypeTarget target) => GeneratedPart.HintName(target, ".Gguf.g.cs");

    /// <summary>
    /// Why <paramref name="plan"/> cannot be written as GGUF yet, naming the feature; null when it can. Every feature
    /// is checked here, in one place, before anything is emitted: a kind becomes exportable by removing its check
    /// when its renderer and its parity test through llama.cpp land.
    /// </summary>
    public static string? Refusal(LayoutPlan plan)
    {
        const string Later = ": no GGUF export yet";
        if (!plan.Causal) return $"an encoder (bidirectional attention){Later}; llama.cpp's decoder architectures are causal";
        if (plan.Indexer is not null) return $"sparse attention (lightning indexer){Later}; llama.cpp has no kind for it";
        if (plan.Compressed is not null)
            return $"compressed attention (DeepSeek V4: sliding window, compressed entries, attention sink, grouped output){Later}; llama.cpp has no kind for it";
        if (plan.Streams is { } streams)
            return $"residual streams ([Residual(Streams = {streams.Streams})], DeepSeek V4's manifold-constrained hyper-connections) cannot be exported: llama.cpp has no hyper-connections, so it would compute another model";
        // llama.cpp reads a token→experts table (blk.N.ffn_gate_tid2eid) only in its deepseek4 architecture, which also
        // needs V4's whole block (hyper-connections, compressed attention) and which the llama.cpp of LLamaSharp 0.30
        // does not know; deepseek2, glm4moe, qwen3moe, lfm2moe and llama choose experts by their scores only.
        if (plan.Mixture is { HashRouted: true } hashed)
            return $"hash routing (HashLayers = {hashed.Settings.HashLayers}){Later}: llama.cpp's architectures this exporter writes choose experts by scores, and only its deepseek4 reads a token→experts table";
        if (Gpt2Like(plan)) return Gpt2Refusal(plan);
        if (QuantRefusal(plan) is { } quant) return quant;
        if (plan.Bias) return $"biases{Later}";
        if (FeedForwards(plan).FirstOrDefault(f => f.ClampLimit is not null) is { ClampLimit: { } limit })
            return $"SwiGLU clamping (ClampLimit = {limit.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}){Later}: llama.cpp does not clamp, so it would compute another model";
        // Dense layers first, then routed ones: llama.cpp's leading_dense_block_count.
        if (plan.Layers.Any(l => l.FeedForward == FeedForwardKind.Dense && l.Index >= LeadingDenseLayers(plan)))
            return $"dense layers after routed ones{Later}";
        if (plan.Hybrid && plan.Latent is not null) return $"hybrid short-convolution layers with latent attention{Later}; llama.cpp's lfm2 pairs them with standard attention";
        if (plan.Latent is { } latent)
        {
            // deepseek2 adds its shared-expert feed-forward to every routed layer's output.
            if (plan.Mixture is { Shared: null }) return $"experts without a shared expert on latent attention{Later}; llama.cpp's deepseek2 always adds one";
            var eps = plan.MixerNorm.Eps;
            if (new[] { plan.FeedForwardNorm, plan.FinalNorm, latent.LatentNorm, latent.QueryNorm }.Any(n => n is not null && n.Eps != eps))
                return $"RMSNorm epsilons that differ between norms{Later}; llama.cpp takes one";
            return null;
        }
        if (plan.Attention is not { } attention) return $"a model without standard attention{Later}";
        if (attention.SharesKeyValues) return $"cross-layer key/value sharing (ShareKvEvery = {attention.ShareKvEvery}){Later}";
        if (attention.ScoreMixer) return "the positional score term (BreakSymmetry) cannot be exported: llama.cpp has no kind for it";
        if (plan.StackRotary is not { } rotary) return $"attention without rotary positions{Later}";
        if (rotary.Dims != attention.HeadDim) return $"partial rotary ({rotary.Dims} of {attention.HeadDim} head channels){Later}";
        if (plan.Hybrid)
        {
            // lfm2's attention layers always normalise queries and keys per head (a missing weight would still normalise).
            if (attention.QueryNorm is null || attention.KeyNorm is null) return $"hybrid short-convolution layers without QkNorm{Later}; llama.cpp's lfm2 always normalises queries and keys per head";
            if (attention.Aliasing != QueryKeyAliasing.None) return $"{attention.Variant} attention in a hybrid{Later}; llama.cpp's lfm2 projects q, k and v";
            if (attention.QueryNorm.Eps != plan.MixerNorm.Eps || attention.KeyNorm.Eps != plan.MixerNorm.Eps) return $"RMSNorm epsilons that differ between norms{Later}; llama.cpp takes one";
            if (plan.Mixture is { } routed && !(routed.Settings is { NormalizeWeights: true, RoutedScale: 1.0 } && routed.Shared is null))
                return $"hybrid experts with {(routed.Shared is not null ? "a shared expert" : !routed.Settings.NormalizeWeights ? "weights not renormalised" : $"routed scale {routed.Settings.RoutedScale}")}{Later}; " +
                       "llama.cpp's lfm2moe renormalises the chosen weights, does not scale them and has no shared expert";
            return null;
        }
        if (attention.QueryNorm is not null || attention.KeyNorm is not null)
        {
            // Qwen3's layout: q_norm and k_norm over each head of separate q and k projections, before RoPE.
            if (attention.QueryNorm is null || attention.KeyNorm is null || attention.Aliasing != QueryKeyAliasing.None)
                return $"QkNorm with {attention.Variant} attention{Later}; llama.cpp's qwen3 normalises separately projected queries and keys";
            if (attention.QueryNorm.Eps != plan.MixerNorm.Eps || attention.KeyNorm.Eps != plan.MixerNorm.Eps) return $"RMSNorm epsilons that differ between norms{Later}; llama.cpp takes one";
            if (plan.Mixture is not null && !MixtralRouter(plan))
                return $"QkNorm with experts whose router is not Mixtral's (softmax, renormalised, unscaled, no selection bias, no shared expert, every layer routed){Later}; llama.cpp's qwen3moe fixes that router";
            return null;
        }
        if (plan.Mixture is { } mixture && !MixtralRouter(plan) && mixture.Shared is null)
            return $"experts without a shared expert whose router is not Mixtral's (softmax, renormalised, unscaled, no selection bias, every layer routed){Later}: " +
                   "llama.cpp's llama architecture fixes that router, and glm4moe, which takes the others, always adds a shared expert";
        return null;
    }

    /// <summary>llama.cpp's block of MXFP4 values (QK_MXFP4 in ggml-common.h): a row of an mxfp4 tensor is whole blocks.</summary>
    public const int Mxfp4Block = 32;

    /// <summary>
    /// Why the weights a <c>[Quant]</c> plan quantizes cannot go to llama.cpp as the model computes them; null when they
    /// can, or without <c>[Quant]</c>. Their fp32 values alone are not what the model computes once quantized, so they go
    /// as a ggml type holding exactly our codes and scales, or not at all. MXFP4 has one: ggml's mxfp4 (block_mxfp4 in
    /// ggml-common.h, 32 E2M1 codes and one E8M0 scale, decoded as we decode them), in every matrix product llama.cpp's
    /// CPU back end runs (mul_mat and the experts' mul_mat_id, ggml-cpu.c), provided rows are whole 32-value blocks.
    /// </summary>
    private static string? QuantRefusal(LayoutPlan plan)
    {
        if (plan.Quant is not { } quant) return null;
        var why = quant.Format switch
        {
            QuantFormatKind.Mxfp4 => null,
            // ggml-common.h: block_nvfp4 holds 64 values with four UE4M3 scales and nothing for the tensor.
            QuantFormatKind.Nvfp4 => "llama.cpp's nvfp4 blocks (64 values, four UE4M3 scales) have no per-tensor fp32 scale, which ours multiplies every E4M3 block scale by",
            // ggml.h's ggml_type has no 8-bit float.
            QuantFormatKind.Fp8E4M3 => "llama.cpp has no FP8 tensor type",
            // ggml-common.h: block_q4_0 is an f16 scale d and codes q − 8 in −8…7, d · (q − 8); ours are fp32 group scales.
            _ => $"llama.cpp's q4_0 holds an f16 scale per 32 values, not our fp32 scale per group of {quant.BlockSize}, so the weights would change",
        };
        if (why is not null) return $"[Quant] {quant.FormatName} weights: no GGUF export; {why}";
        var linears = FeedForwards(plan).SelectMany(f => f.Linears)
            .Concat(plan.Attention is { } a ? a.Projections.Concat(a.QueryOnlyProjections).Append(a.Output) : Enumerable.Empty<LinearPlan>())
            .Concat(plan.Latent?.Linears ?? Enumerable.Empty<LinearPlan>())
            .Concat(plan.Conv is { } c ? new[] { c.InProjection, c.OutProjection } : Enumerable.Empty<LinearPlan>());
        if (linears.FirstOrDefault(l => l.Quantized && l.Inputs % Mxfp4Block != 0) is { } partial)
            return $"[Quant] MXFP4 weights whose rows are not whole {Mxfp4Block}-value blocks ({partial.Name}: {partial.Inputs} inputs): no GGUF export; llama.cpp's mxfp4 rows cannot hold a padded block";
        return null;
    }

    /// <summary>Whether <paramref name="plan"/> has any of what sets GPT-2 apart from Llama-style decoders (GPT-2's
    /// naming, learned positions, LayerNorm, a GELU feed-forward): such a plan exports as llama.cpp's gpt2 or not at
    /// all, and <see cref="Gpt2Refusal"/> says what it has that gpt2 does not compute.</summary>
    private static bool Gpt2Like(LayoutPlan plan) =>
        plan.Names.FusedProjections || plan.LearnedPositions || Norms(plan).Any(n => n.Kind == NormKind.LayerNorm)
        || FeedForwards(plan).Any(f => f.Activation == ActivationKind.Gelu);

    private static NormPlan[] Norms(LayoutPlan plan) => new[] { plan.MixerNorm, plan.FeedForwardNorm, plan.FinalNorm };

    private static FeedForwardPlan[] FeedForwards(LayoutPlan plan) =>
        new[] { plan.Dense, plan.Mixture?.Expert, plan.Mixture?.Shared }.Where(f => f is not null).Select(f => f!).ToArray();

    /// <summary>
    /// Why a GPT-2-like plan (see <see cref="Gpt2Like"/>) is not what llama.cpp's gpt2 computes, naming the feature;
    /// null when it is. gpt2 (src/models/gpt2.cpp, as read) adds a learned position table (position_embd, context_length
    /// rows) to the token embedding, normalises with LayerNorm (weight and bias, one epsilon), projects q, k and v with
    /// one biased matrix whose query part is embedding_length wide (grouped key/value heads allowed), attends with
    /// scale 1/√head width and no rotary positions, projects back with a biased embedding_length × embedding_length
    /// matrix, and runs a biased up → GELU → down feed-forward; its output head has no bias. Naming is free: GPT-2's
    /// fused c_attn is written as it is, Llama-named q/k/v projections are joined into attn_qkv.
    /// </summary>
    private static string? Gpt2Refusal(LayoutPlan plan)
    {
        var features = string.Join(", ", new[]
        {
            plan.Names.FusedProjections ? "GPT-2 naming" : null,
            plan.LearnedPositions ? "learned positions" : null,
            Norms(plan).Any(n => n.Kind == NormKind.LayerNorm) ? "LayerNorm" : null,
            FeedForwards(plan).Any(f => f.Activation == ActivationKind.Gelu) ? "GELU" : null,
        }.Where(f => f is not null));
        string Refuse(string feature) =>
            $"{feature} with {features}: no GGUF export yet; llama.cpp's gpt2, the architecture for models with those, computes " +
            "learned positions, LayerNorm, biased linear layers, a GELU feed-forward and multi-head attention without rotary positions";
        // Ahead of any [Quant] export for other architectures: gpt2's export writes float weights only.
        if (plan.Quant is not null) return Refuse($"[Quant] fake-quantized weights ({plan.Quant.FormatName})");
        if (plan.Hybrid) return Refuse("short-convolution layers");
        if (plan.Latent is not null) return Refuse("latent attention");
        if (plan.Attention is not { } attention) return Refuse("a model without standard attention");
        if (plan.StackRotary is not null) return Refuse("rotary positions");
        if (!plan.LearnedPositions) return Refuse("no positions");
        if (Norms(plan).FirstOrDefault(n => n.Kind != NormKind.LayerNorm) is { } rms) return Refuse($"{rms.Kind} ({rms.Name})");
        if (Norms(plan).Select(n => n.Eps).Distinct().Count() > 1) return Refuse("LayerNorm epsilons that differ between norms (llama.cpp takes one)");
        if (!plan.Bias) return Refuse("linear layers without biases");
        if (plan.InputBias) return Refuse("a token-input bias (PyTorch's default initialisation)");
        if (plan.OutputHead is { Bias: true }) return Refuse("an output head with a bias");
        if (plan.Mixture is not null) return Refuse("experts");
        if (plan.Dense is not { Activation: ActivationKind.Gelu }) return Refuse($"the {plan.Dense?.Activation} feed-forward");
        if (attention.Aliasing != QueryKeyAliasing.None) return Refuse($"{attention.Variant} attention (aliased projections)");
        if (attention.QueryNorm is not null || attention.KeyNorm is not null) return Refuse("QkNorm");
        if (attention.SharesKeyValues) return Refuse($"cross-layer key/value sharing (ShareKvEvery = {attention.ShareKvEvery})");
        if (attention.ScoreMixer) return Refuse("the positional score term (BreakSymmetry)");
        // gpt2's attn_qkv and attn_output hold embedding_length query channels.
        if (attention.QueryWidth != plan.Dim) return Refuse($"a query width of {attention.QueryWidth} (Heads × HeadDim) other than Dim {plan.Dim}");
        return null;
    }

    /// <summary>The llama.cpp architecture an exportable <paramref name="plan"/> becomes: gpt2 for GPT-2-like plans
    /// (learned positions, LayerNorm, GELU; any naming); lfm2 or lfm2moe for hybrids;
    /// deepseek2 for latent attention; qwen3 or qwen3moe (Mixtral's router) for standard attention with QkNorm; llama
    /// for standard attention, dense or with Mixtral's router; glm4moe for standard attention with any other router
    /// (its shared experts required).</summary>
    public static string Architecture(LayoutPlan plan) =>
        Gpt2Like(plan) ? Gpt2Architecture
        : plan.Hybrid ? (plan.Mixture is null ? Lfm2Architecture : Lfm2MoeArchitecture)
        : plan.Latent is not null ? DeepSeek2Architecture
        : plan.Attention is { QueryNorm: not null } ? (plan.Mixture is null ? Qwen3Architecture : Qwen3MoeArchitecture)
        : plan.Mixture is null || MixtralRouter(plan) ? LlamaArchitecture
        : Glm4MoeArchitecture;

    /// <summary>What llama.cpp's llama architecture hard-codes for experts (build_moe_ffn with softmax, renormalised
    /// weights, no scale, no selection bias, no shared expert) in every layer.</summary>
    private static bool MixtralRouter(LayoutPlan plan) => plan.Mixture is { } m
        && m.Settings is { Router: RouterKind.Softmax, NormalizeWeights: true, RoutedScale: 1.0 }
        && !m.SelectionBias && m.Shared is null && LeadingDenseLayers(plan) == 0;

    /// <summary>The layers before the first routed one (all of them without experts).</summary>
    private static int LeadingDenseLayers(LayoutPlan plan) =>
        plan.Layers.FirstOrDefault(l => l.FeedForward == FeedForwardKind.Mixture)?.Index ?? plan.Layers.Count;

    /// <summary>The generated C# part: a <c>Gguf</c> property holding the export's description or its refusal.</summary>
    public static string Emit(ModelToEmit model)
    {
        var target = model.Target;
        var plan = model.Plan;
        return GeneratedPart.Write(target, $"{target.FullName} as llama.cpp reads it (llmeff export-gguf writes the .gguf file).", writer =>
        {
            using var part = writer.Block($"partial class {target.Name}");
            if (Refusal(plan) is { } refusal)
            {
                writer.Line("/// <summary>This declaration has no GGUF export yet; the reason says which feature.</summary>")
                    .Line($"public static global::LlmEff.GgufExport Gguf {{ get; }} = global::LlmEff.GgufExport.Refused({GeneratedPart.StringLiteral(refusal)});");
            }
            else
            {
                EmitModel(writer, target, plan, Architecture(plan));
            }
        });
    }

    private static void EmitModel(SourceWriter writer, TypeTarget target, LayoutPlan plan, string architecture)
    {
        var names = plan.Names;
        const string Value = "global::LlmEff.Export.GgufValue";
        string Key(string key) => $"{architecture}.{key}";
        var latent = plan.Latent;
        var attention = plan.Attention;
        var mixture = plan.Mixture;
        var leadingDense = LeadingDenseLayers(plan);
        // llama and deepseek2 rotate adjacent channel pairs (LLAMA_ROPE_TYPE_NORM); glm4moe, lfm2 and qwen3 rotate the
        // two halves (NEOX), as we do.
        var pairs = architecture is LlamaArchitecture or DeepSeek2Architecture;

        writer.Line($"/// <summary>The model as llama.cpp's <c>{architecture}</c> architecture: its metadata and the GGUF name of every state-dict tensor.</summary>")
            .Line($"public static global::LlmEff.GgufExport Gguf {{ get; }} = global::LlmEff.GgufExport.Model({GeneratedPart.StringLiteral(architecture)},");
        writer.Line("    new global::System.Collections.Generic.KeyValuePair<string, global::LlmEff.Export.GgufValue>[]").Line("    {");
        void Entry(string key, string value) => writer.Line($"        new({GeneratedPart.StringLiteral(key)}, {Value}.{value}),");
        Entry("general.architecture", $"String({GeneratedPart.StringLiteral(architecture)})");
        Entry("general.name", $"String({GeneratedPart.StringLiteral(target.Name)})");
        Entry(Key("vocab_size"), UInt32(plan.Vocab));
        Entry(Key("context_length"), UInt32(plan.Context));
        Entry(Key("embedding_length"), UInt32(plan.Dim));
        Entry(Key("block_count"), UInt32(plan.Layers.Count));
        // llama's experts are feed_forward_length wide; the others name the dense width there and the experts' apart.
        Entry(Key("feed_forward_length"), UInt32(plan.Dense?.Hidden ?? (architecture == LlamaArchitecture ? mixture!.Expert.Hidden : 0)));
        // gpt2 normalises with LayerNorm and reads its epsilon under another key (Refusal holds every norm to one).
        Entry(Key(architecture == Gpt2Architecture ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"), Float32(plan.MixerNorm.Eps));
        if (latent is not null)
        {
            // Without key_length_mla llama.cpp takes the path that expands every head's key and value from the latent
            // (attn_kv_b), as our full forward does: head_count_kv heads of key_length and value_length.
            Entry(Key("attention.head_count"), UInt32(latent.Heads));
            Entry(Key("attention.head_count_kv"), UInt32(latent.Heads));
            Entry(Key("attention.key_length"), UInt32(latent.HeadDim + latent.RopeDim));
            Entry(Key("attention.value_length"), UInt32(latent.HeadDim));
            Entry(Key("attention.kv_lora_rank"), UInt32(latent.KvRank));
            Entry(Key("attention.q_lora_rank"), UInt32(latent.QRank));
            Entry(Key("rope.dimension_count"), UInt32(latent.RopeDim));
            Entry(Key("rope.freq_base"), Float32(latent.RopeTheta));
            // No YaRN: DeepSeek's softmax scale is then 1/√(key_length), ours.
            Entry(Key("rope.scaling.yarn_log_multiplier"), Float32(0));
        }
        else
        {
            Entry(Key("attention.head_count"), UInt32(attention!.Heads));
            if (plan.Hybrid)
            {
                // Per layer: llama.cpp's lfm2 takes a layer with no key/value heads for a short convolution.
                var perLayer = string.Join(", ", plan.Layers.Select(l => $"{Value}.Int32({(l.Mixer == TokenMixer.Attention ? attention.KvHeads : 0)})"));
                Entry(Key("attention.head_count_kv"), $"Array(global::LlmEff.Export.GgufValueType.Int32, new[] {{ {perLayer} }})");
                Entry(Key("shortconv.l_cache"), UInt32(plan.Conv!.Kernel));
            }
            else Entry(Key("attention.head_count_kv"), UInt32(attention.KvHeads));
            Entry(Key("attention.key_length"), UInt32(attention.HeadDim));
            Entry(Key("attention.value_length"), UInt32(attention.HeadDim));
            if (plan.StackRotary is { } rotary)
            {
                Entry(Key("rope.dimension_count"), UInt32(rotary.Dims));
                Entry(Key("rope.freq_base"), Float32(rotary.Theta));
            }
        }
        if (mixture is not null)
        {
            var m = mixture.Settings;
            Entry(Key("expert_count"), UInt32(m.Experts));
            Entry(Key("expert_used_count"), UInt32(m.Active));
            if (architecture == Qwen3MoeArchitecture) Entry(Key("expert_feed_forward_length"), UInt32(mixture.Expert.Hidden));
            else if (architecture != LlamaArchitecture)
            {
                Entry(Key("expert_feed_forward_length"), UInt32(mixture.Expert.Hidden));
                Entry(Key("leading_dense_block_count"), UInt32(leadingDense));
                Entry(Key("expert_gating_func"), UInt32(m.Router == RouterKind.Softmax ? GatingSoftmax : GatingSigmoid));
            }
            // lfm2moe fixes renormalised, unscaled weights without shared experts (Refusal holds it to them).
            if (architecture is Glm4MoeArchitecture or DeepSeek2Architecture)
            {
                Entry(Key("expert_shared_count"), UInt32(m.Shared));
                Entry(Key("expert_weights_norm"), $"Bool({(m.NormalizeWeights ? "true" : "false")})");
                Entry(Key("expert_weights_scale"), Float32(m.RoutedScale));
            }
            if (architecture == Glm4MoeArchitecture) Entry(Key("nextn_predict_layers"), UInt32(0));
        }
        else if (architecture == DeepSeek2Architecture)
        {
            // deepseek2 without experts: every layer is one of its leading dense layers.
            Entry(Key("leading_dense_block_count"), UInt32(plan.Layers.Count));
            Entry(Key("expert_feed_forward_length"), UInt32(0));
            Entry(Key("expert_shared_count"), UInt32(0));
            Entry(Key("expert_weights_scale"), Float32(1));
        }
        // Token ids go in directly: "no_vocab" makes llama.cpp size its vocabulary from vocab_size and tokenize nothing.
        Entry("tokenizer.ggml.model", "String(\"no_vocab\")");
        writer.Line("    },");
        if ((attention is not null ? AliasNote(plan) : LatentNote(plan)) is { } note) writer.Line("    GgufTensorTable(),").Line($"    {GeneratedPart.StringLiteral(note)});").Line();
        else writer.Line("    GgufTensorTable());").Line();

        var stack = names.Stack + ".";
        var layer = $"{stack}{names.Layers}.{{i}}.";
        const string Mapping = "global::LlmEff.Export.GgufTensorMapping";
        const string Transform = "global::LlmEff.Export.GgufTransform";
        writer.Line("/// <summary>Each state-dict tensor and the GGUF tensor it becomes, in file order.</summary>");
        using (writer.Block($"private static global::System.Collections.Generic.IEnumerable<{Mapping}> GgufTensorTable()"))
        {
            writer.Line($"yield return new({GeneratedPart.StringLiteral(stack + names.TokenEmbedding + ".weight")}, \"token_embd.weight\");");
            // Learned positions (only gpt2 takes them: Refusal): [Context, Dim], as gpt2's position_embd.
            if (plan.LearnedPositions) writer.Line($"yield return new({GeneratedPart.StringLiteral(stack + names.PositionEmbedding + ".weight")}, \"position_embd.weight\");");
            using (writer.Block($"for (var i = 0; i < {plan.Layers.Count}; i++)"))
            {
                void Row(string source, string gguf, string transform = "", string suffix = "weight") =>
                    writer.Line($"yield return new($\"{layer}{source}.{suffix}\", $\"blk.{{i}}.{gguf}.{suffix}\"{transform});");
                // Rotated rows go from our half-split pairs to llama.cpp's adjacent ones where it rotates adjacent pairs.
                string Pairs(int heads, int rotaryRows = 0) => pairs
                    ? $", {Transform}.RotaryPairs, Heads: {heads}{(rotaryRows > 0 ? $", RotaryRows: {rotaryRows}" : "")}"
                    : "";
                // LayerNorm's bias goes with its weight (llama.cpp's gpt2 requires both).
                void Norm(NormPlan norm, string gguf)
                {
                    Row(norm.Name, gguf);
                    if (norm.Kind == NormKind.LayerNorm) Row(norm.Name, gguf, suffix: "bias");
                }
                // A linear layer with its bias, its weight turned output × input where the plan stores it transposed, and
                // written MXFP4 where the plan quantizes it (Refusal lets no other format, and no transposed weight, through).
                void Linear(string prefix, LinearPlan linear, string gguf, string transform = "")
                {
                    Row(prefix + linear.Name, gguf, (linear.Transposed ? $", {Transform}.Transposed" : "") + transform + Quantized(linear));
                    if (linear.Bias) Row(prefix + linear.Name, gguf, suffix: "bias");
                }
                Norm(plan.MixerNorm, "attn_norm");
                var attentionPrefix = names.Attention + ".";
                if (architecture == Gpt2Architecture)
                {
                    // gpt2 reads one q/k/v projection, rows [q | k | v]: GPT-2's c_attn is that (its columns, transposed),
                    // separate projections are joined in that order.
                    var projections = attention!.Projections;
                    if (projections.Count == 1) Linear(attentionPrefix, projections[0], "attn_qkv");
                    else
                    {
                        foreach (var suffix in projections[0].Bias ? new[] { "weight", "bias" } : new[] { "weight" })
                        {
                            var parts = string.Join(", ", projections.Select(p => $"$\"{layer}{attentionPrefix}{p.Name}.{suffix}\""));
                            writer.Line($"yield return new($\"{layer}{attentionPrefix}{projections[0].Name}.{suffix}\", $\"blk.{{i}}.attn_qkv.{suffix}\", {Transform}.Concatenated, Stacked: new[] {{ {parts} }});");
                        }
                    }
                    Linear(attentionPrefix, attention.Output, "attn_output");
                }
                else if (latent is not null)
                {
                    // Each head's query is [position-free | rotary] as llama.cpp splits it; the latent projection is
                    // [latent | shared rotary key]; only the rotary rows are rotated.
                    if (latent.QueryDown is { } down)
                    {
                        Linear(attentionPrefix, down, "attn_q_a");
                        Row(attentionPrefix + latent.QueryNorm!.Name, "attn_q_a_norm");
                        Linear(attentionPrefix, latent.QueryUp, "attn_q_b", Pairs(latent.Heads, latent.RopeDim));
                    }
                    else Linear(attentionPrefix, latent.QueryUp, "attn_q", Pairs(latent.Heads, latent.RopeDim));
                    Linear(attentionPrefix, latent.LatentDown, "attn_kv_a_mqa", Pairs(1, latent.RopeDim));
                    Row(attentionPrefix + latent.LatentNorm.Name, "attn_kv_a_norm");
                    // Rows per head [k_nope | v], as llama.cpp's attn_kv_b splits them.
                    Linear(attentionPrefix, latent.LatentUp, "attn_kv_b");
                    Linear(attentionPrefix, latent.Output, "attn_output");
                }
                else if (plan.Conv is { } conv)
                {
                    var attentionLayers = plan.Layers.Where(l => l.Mixer == TokenMixer.Attention).Select(l => $"i == {l.Index}").ToList();
                    using (writer.Block($"if ({(attentionLayers.Count == 0 ? "false" : string.Join(" || ", attentionLayers))})"))
                    {
                        Linear(attentionPrefix, attention!.Projections[0], "attn_q");
                        Linear(attentionPrefix, attention.Projections[1], "attn_k");
                        Linear(attentionPrefix, attention.Projections[2], "attn_v");
                        Linear(attentionPrefix, attention.Output, "attn_output");
                        Row(attentionPrefix + attention.QueryNorm!.Name, "attn_q_norm");
                        Row(attentionPrefix + attention.KeyNorm!.Name, "attn_k_norm");
                    }
                    using (writer.Block("else"))
                    {
                        var block = ConvPlan.BlockName + ".";
                        Linear(block, conv.InProjection, "shortconv.in_proj");
                        Row(block + ConvPlan.FilterName, "shortconv.conv", $", {Transform}.DepthwiseFilter");
                        Linear(block, conv.OutProjection, "shortconv.out_proj");
                    }
                }
                else
                {
                    // llama.cpp has no kind for aliased projections: the one a tensor is aliased to is written again under
                    // its name (same numbers, and the same pairing where it is rotated as queries or keys are).
                    var source = Aliases(attention!);
                    var repeats = attention!.RepeatedQueries ? $", Repeats: {attention.Heads / attention.KvHeads}" : ""; // query head h is key head h / Repeats
                    var queryHeads = attention.RepeatedQueries ? attention.KvHeads : attention.Heads;
                    Linear(attentionPrefix, source["q"], "attn_q", pairs ? Pairs(queryHeads) + repeats : repeats.Length > 0 ? $", Heads: {queryHeads}{repeats}" : "");
                    Linear(attentionPrefix, source["k"], "attn_k", Pairs(attention.KvHeads));
                    Linear(attentionPrefix, source["v"], "attn_v");
                    Linear(attentionPrefix, attention.Output, "attn_output");
                    if (attention.QueryNorm is { } queryNorm)
                    {
                        Row(attentionPrefix + queryNorm.Name, "attn_q_norm");
                        Row(attentionPrefix + attention.KeyNorm!.Name, "attn_k_norm");
                    }
                }
                // glm4moe names the norm before the feed-forward after the attention it follows.
                Norm(plan.FeedForwardNorm, architecture == Glm4MoeArchitecture ? "post_attention_norm" : "ffn_norm");
                var mlpPrefix = names.Mlp + ".";
                void Dense(FeedForwardPlan dense, string prefix, string tag)
                {
                    var linears = dense.Linears;
                    Linear(prefix, linears[0], "ffn_gate" + tag);
                    Linear(prefix, linears[1], "ffn_up" + tag);
                    Linear(prefix, linears[2], "ffn_down" + tag);
                }
                if (plan.Dense is { Activation: ActivationKind.Gelu } gelu)
                {
                    // up → GELU → down, gpt2's feed-forward.
                    Linear(mlpPrefix, gelu.Linears[0], "ffn_up");
                    Linear(mlpPrefix, gelu.Output, "ffn_down");
                }
                else if (mixture is null) Dense(plan.Dense!, mlpPrefix, "");
                else
                {
                    System.IDisposable? routedBlock = null;
                    if (leadingDense > 0)
                    {
                        using (writer.Block($"if (i < {leadingDense})")) Dense(plan.Dense!, mlpPrefix, "");
                        routedBlock = writer.Block("else");
                    }
                    var router = $"{mlpPrefix}{MixturePlan.RouterName}";
                    writer.Line($"yield return new($\"{layer}{router}.weight\", $\"blk.{{i}}.ffn_gate_inp.weight\");");
                    // The selection bias shifts which experts are chosen, never their weights: llama.cpp's exp_probs_b.
                    // glm4moe's loader requires one and lfm2moe's is written one too (LFM2 always has it): a model without
                    // a selection bias gets zeros, which choose as no bias does.
                    if (mixture.SelectionBias)
                        writer.Line($"yield return new($\"{layer}{router}.{MixturePlan.SelectionBiasName}\", $\"blk.{{i}}.exp_probs_b.bias\");");
                    else if (architecture is Glm4MoeArchitecture or Lfm2MoeArchitecture)
                        writer.Line($"yield return new($\"{layer}{router}.weight\", $\"blk.{{i}}.exp_probs_b.bias\", {Transform}.ZeroBias);");
                    // Each routed expert's matrices stacked into one tensor per kind: [experts, rows, columns].
                    var expertLinears = mixture.Expert.Linears;
                    foreach (var (linear, gguf) in new[] { (expertLinears[0], "ffn_gate_exps"), (expertLinears[1], "ffn_up_exps"), (expertLinears[2], "ffn_down_exps") })
                    {
                        const string Linq = "global::System.Linq.Enumerable";
                        var experts = $"{Linq}.ToArray({Linq}.Select({Linq}.Range(0, {mixture.Settings.Experts}), e => $\"{layer}{mlpPrefix}{MixturePlan.ExpertsName}.{{e}}.{linear.Name}.weight\"))";
                        writer.Line($"var {gguf} = {experts};");
                        writer.Line($"yield return new({gguf}[0], $\"blk.{{i}}.{gguf}.weight\", Stacked: {gguf}{Quantized(linear)});");
                    }
                    if (mixture.Shared is { } shared) Dense(shared, $"{mlpPrefix}{MixturePlan.SharedName}.", "_shexp");
                    routedBlock?.Dispose();
                }
            }
            // lfm2 takes the final norm under Hugging Face Lfm2's name for it, embedding_norm.
            var finalNorm = architecture is Lfm2Architecture or Lfm2MoeArchitecture ? "token_embd_norm" : "output_norm";
            writer.Line($"yield return new({GeneratedPart.StringLiteral(stack + plan.FinalNorm.Name + ".weight")}, \"{finalNorm}.weight\");");
            if (plan.FinalNorm.Kind == NormKind.LayerNorm) writer.Line($"yield return new({GeneratedPart.StringLiteral(stack + plan.FinalNorm.Name + ".bias")}, \"{finalNorm}.bias\");");
            // Without output.weight llama.cpp reuses token_embd.weight: the tied head.
            if (plan.OutputHead is { } head) writer.Line($"yield return new({GeneratedPart.StringLiteral(head.Name + ".weight")}, \"output.weight\");");
        }
    }

    /// <summary>The linear layer whose weight llama.cpp gets as each of q, k and v: a projection of its own, or the one
    /// the plan aliases it to (q := k, k := v, q := k := v).</summary>
    private static System.Collections.Generic.Dictionary<string, LinearPlan> Aliases(AttentionPlan attention)
    {
        var linear = attention.Parts.Zip(attention.Projections, (p, l) => (p.Name, l)).ToDictionary(p => p.Item1, p => p.Item2);
        var v = linear.TryGetValue("qkv", out var shared) ? shared : linear["v"];
        var k = attention.KeysAreValues ? v : linear["k"];
        var q = attention.QueriesAreKeys ? k : linear["q"];
        return new() { ["q"] = q, ["k"] = k, ["v"] = v };
    }

    /// <summary>
    /// For a plan with aliased projections, one line saying what llama.cpp gets instead and what it costs its cache:
    /// it caches keys and values separately (head_count_kv × (key_length + value_length) per layer) where our cached
    /// decoding keeps the plan's cache streams; bytes at f16, llama.cpp's default cache type. Null without aliasing.
    /// </summary>
    internal static string? AliasNote(LayoutPlan plan)
    {
        var attention = plan.Attention!;
        if (attention.Aliasing == QueryKeyAliasing.None) return null;
        var source = Aliases(attention);
        var (what, written) = attention.Aliasing switch
        {
            QueryKeyAliasing.KeysAreValues => ("keys that are the values", $"{source["v"].Name} is written twice (as attn_v and attn_k"),
            QueryKeyAliasing.QueriesAreKeys => ("queries that are the keys", $"{source["k"].Name} is written twice (as attn_k and attn_q"),
            _ => ("one projection for queries, keys and values", $"{source["v"].Name} is written three times (as attn_q, attn_k and attn_v"),
        };
        var repeated = attention.RepeatedQueries
            ? $", the attn_q copy repeating each of its {attention.KvHeads} heads for the {attention.Heads / attention.KvHeads} query heads of its group"
            : "";
        // f16, llama.cpp's default cache type, is 2 bytes like bf16, which our sizes are quoted in.
        var ours = Sizing.ModelSizing.InBf16(plan.Layers.Sum(l => l.Cache.Sum(c => c.ElementsPerToken)));
        const int KeysAndValues = 2;
        var theirs = Sizing.ModelSizing.InBf16(plan.Layers.Count * KeysAndValues * attention.KvWidth);
        var cost = ours < theirs
            ? $"{Bytes(theirs)} bytes per token at f16 where our cached decoding keeps {Bytes(ours)}: no KV-cache saving there"
            : $"{Bytes(theirs)} bytes per token at f16, as our cached decoding does";
        return $"{attention.Variant} attention: llama.cpp has no kind for {what}, so {written}, same numbers{repeated}) " +
               $"and llama.cpp caches keys and values separately, {cost}.";
    }

    /// <summary>
    /// For latent attention, one line saying what llama.cpp's cache holds: on the path this export takes (attn_kv_b,
    /// without key_length_mla) it caches every head's expanded key (HeadDim + RopeDim) and value (HeadDim) where our
    /// cached decoding keeps the latent and the shared rotary key; bytes at f16. Null for other plans.
    /// </summary>
    internal static string? LatentNote(LayoutPlan plan)
    {
        if (plan.Latent is not { } latent) return null;
        var ours = Sizing.ModelSizing.InBf16(plan.Layers.Sum(l => l.Cache.Sum(c => c.ElementsPerToken)));
        var theirs = Sizing.ModelSizing.InBf16(checked((long)plan.Layers.Count * latent.Heads * (2L * latent.HeadDim + latent.RopeDim)));
        return $"latent attention: llama.cpp expands every head's key and value from the latent (attn_kv_b) and caches them, " +
               $"{Bytes(theirs)} bytes per token at f16 where our cached decoding keeps the latent and the rotary key, {Bytes(ours)}: same numbers, no cache saving there.";
    }

    /// <summary>The table row's type argument for a linear layer's weight: MXFP4 where the plan quantizes it.</summary>
    private static string Quantized(LinearPlan linear) => linear.Quantized ? ", Type: global::LlmEff.Export.GgufTensorType.MXFP4" : "";

    private static string Bytes(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string UInt32(long value) => $"UInt32({value.ToString(CultureInfo.InvariantCulture)})";

    private static string Float32(double value) => $"Float32({((float)value).ToString("R", CultureInfo.InvariantCulture)}f)";

}
