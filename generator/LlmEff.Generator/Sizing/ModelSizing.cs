using System;
using System.Collections.Generic;
using LlmEff.Generator.Model;

namespace LlmEff.Generator.Sizing;

/// <summary>Identical linear weights of one kind across the model: <see cref="Count"/> matrices of
/// <see cref="Outputs"/> × <see cref="Inputs"/>.</summary>
/// <param name="Role">What they are, for messages ("MLP down projection").</param>
/// <param name="Target">The [Quant] target they belong to.</param>
/// <param name="InputName">The declared size their input width comes from ("Hidden"), for messages.</param>
internal readonly record struct LinearWeights(string Role, QuantTargetKind Target, string InputName, long Inputs, long Outputs, long Count);

/// <summary>
/// Exact size facts of a declared model: the one place this arithmetic lives. Every product is checked,
/// so a declaration too large for 64 bits throws <see cref="System.OverflowException"/> instead of
/// reporting a wrapped number. Tests compare these against the live TorchSharp module.
/// </summary>
/// <remarks>
/// FLOPs per token count the forward pass of one token at position <c>Context</c> (attending to the whole
/// context): 2 FLOPs per multiply-accumulate of every weight matrix it touches (projections, MLP, output
/// head; not the embedding lookup, norms, biases or activations) plus 2·Context·HeadDim for the scores
/// and 2·Context·HeadDim for the weighted sum, per query head and layer. In mixture-of-experts layers a
/// token touches the router, its Active routed experts and the shared experts. Hybrid models count attention
/// only in attention layers; short-convolution blocks count their projections and filter taps as weights. Latent
/// attention scores over HeadDim + RopeDim per head; sparse attention mixes only TopK keys and adds the indexer's
/// 2·Context·IndexerHeads·(IndexerDim + 1).
/// </remarks>
internal static class ModelSizing
{
    public static ModelSizes Compute(ModelSpec spec)
    {
        checked
        {
            long dim = spec.Dim;
            var attention = spec.Attention;

            var embeddings = (long)spec.Vocab * dim
                + (spec.Positions == PositionKind.Learned ? (long)spec.Context * dim : 0);

            // Token mixing: attention layers (all of them unless hybrid), then the short-convolution blocks of a hybrid.
            var attentionLayers = (long)spec.AttentionLayers;
            long attentionWeights, attentionExtras, kvCache, attentionMixing;
            var keysPerQuery = spec.Sparse is { } sp ? Math.Min(sp.TopK, spec.Context) : spec.Context;
            if (attention.Latent is { } latent)
            {
                long heads = attention.Heads, headDim = attention.HeadDim, rope = latent.RopeDim;
                var queries = latent.QRank > 0 ? dim * latent.QRank + latent.QRank * heads * (headDim + rope) : dim * heads * (headDim + rope);
                var keysAndValues = dim * (latent.KvRank + rope) + latent.KvRank * heads * 2 * headDim;
                attentionWeights = attentionLayers * (queries + keysAndValues + heads * headDim * dim);
                // Norms of the latent vectors (q_a_layernorm, kv_a_layernorm).
                attentionExtras = attentionLayers * (latent.QRank + latent.KvRank);
                kvCache = attentionLayers * latent.CachedElements;
                attentionMixing = attentionLayers * 2L * heads * keysPerQuery * (headDim + rope + headDim);
            }
            else
            {
                // Layers that share keys and values (ShareKvEvery > 1) lack K/V projections and their biases.
                var owners = (long)attention.KvOwningLayers((int)attentionLayers);
                var queryOnlyWidth = attention.ProjectedWidth - attention.KeyValueWidth;
                attentionWeights = attentionLayers * (queryOnlyWidth + attention.QueryWidth) * dim + owners * attention.KeyValueWidth * dim;
                // Parameters of attention outside its matrices: biases, the symmetry-breaking score mixer, Q/K norms.
                attentionExtras = attentionLayers * ((spec.Bias ? queryOnlyWidth + dim : 0) + (attention.BreakSymmetry ? AttentionSpec.ScoreMixerParameters : 0) + attention.QkNormParameters)
                    + (spec.Bias ? owners * attention.KeyValueWidth : 0);
                kvCache = owners * attention.CachedStreams * attention.KvWidth;
                attentionMixing = attentionLayers * 4L * attention.Heads * attention.HeadDim * keysPerQuery;
            }
            if (spec.Sparse is { } sparse)
            {
                // The indexer's weights, its cached key per token, and 2 FLOPs per head and past token for Σ_j w_j·ReLU(q_j·k).
                attentionWeights += attentionLayers * sparse.Parameters(dim);
                kvCache += attentionLayers * sparse.IndexerDim;
                attentionMixing += attentionLayers * 2L * spec.Context * sparse.IndexerHeads * (sparse.IndexerDim + 1);
            }

            long convWeights = 0, convParameters = 0, convState = 0;
            if (spec.Hybrid is { } hybrid)
            {
                // in_proj (Dim → 3·Dim), out_proj (Dim → Dim) and one depthwise filter of Kernel taps per channel.
                long convLayers = spec.ConvLayers;
                convWeights = convLayers * (4 * dim * dim + dim * hybrid.ConvKernel);
                convParameters = convWeights + (spec.Bias ? convLayers * 5 * dim : 0);
                convState = convLayers * dim * (hybrid.ConvKernel - 1);
            }

            // Feed-forward: dense layers, then (with [MoE]) routed layers of router + experts + shared experts.
            var denseLayers = spec.Moe is { } m ? m.FirstLayer : spec.Layers;
            var dense = FeedForward(spec, spec.Mlp.Hidden);
            var mlpParameters = denseLayers * dense.Parameters;
            var mlpMatmulWeights = denseLayers * dense.Weights;
            long routedExperts = 0, unchosenExperts = 0;
            if (spec.Moe is { } moe)
            {
                var routed = (long)moe.RoutedLayers(spec.Layers);
                var expert = FeedForward(spec, moe.ExpertHidden);
                var shared = moe.Shared > 0 ? FeedForward(spec, moe.SharedHidden) : (Weights: 0L, Parameters: 0L);
                var router = (long)moe.Experts * dim;
                mlpParameters += routed * (router + moe.Experts * expert.Parameters + shared.Parameters);
                mlpMatmulWeights += routed * (router + moe.Active * expert.Weights + shared.Weights);
                routedExperts = routed * moe.Experts * expert.Parameters;
                unchosenExperts = routed * (moe.Experts - moe.Active) * expert.Parameters;
            }

            var normParameters = spec.Norm == NormKind.LayerNorm ? 2 * dim : dim;
            var outputHead = spec.TiedEmbeddings ? 0 : (long)spec.Vocab * dim;

            var parameters = embeddings + attentionWeights + attentionExtras + convParameters + mlpParameters + spec.Layers * 2 * normParameters + normParameters + outputHead;

            long quantized = 0, quantizedBytes = 0;
            if (spec.Quant is { } quant)
            {
                foreach (var weights in Linears(spec))
                {
                    if (!quant.Targets(weights.Target)) continue;
                    quantized += weights.Count * weights.Inputs * weights.Outputs;
                    quantizedBytes += weights.Count * QuantizedBytes(quant, weights.Outputs, weights.Inputs);
                }
            }

            var matmulWeightsPerToken = attentionWeights + convWeights + mlpMatmulWeights + (long)spec.Vocab * dim;
            var flops = 2 * matmulWeightsPerToken + attentionMixing;

            return new ModelSizes(
                Parameters: parameters,
                ActiveParameters: parameters - unchosenExperts,
                EmbeddingParameters: embeddings,
                AttentionParameters: attentionWeights + attentionExtras,
                MlpParameters: mlpParameters,
                RoutedExpertParameters: routedExperts,
                NormParametersPerLayer: 2 * normParameters,
                FinalNormParameters: normParameters,
                OutputHeadParameters: outputHead,
                KvCacheElementsPerToken: kvCache,
                FlopsPerToken: flops,
                MatmulFlopsPerToken: 2 * matmulWeightsPerToken,
                QuantizedParameters: quantized,
                QuantizedWeightBytes: quantizedBytes,
                QuantizedFp32Bytes: quantized * 4,
                ConvParameters: convParameters,
                ConvStateElements: convState);
        }
    }

    /// <summary>
    /// Every linear weight of attention and feed-forward networks (not embeddings, head or routers), grouped by kind,
    /// with the [Quant] target each belongs to. Their elements add up to the attention matrices plus every
    /// feed-forward matrix.
    /// </summary>
    public static IEnumerable<LinearWeights> Linears(ModelSpec spec)
    {
        var a = spec.Attention;
        long dim = spec.Dim, layers = spec.AttentionLayers, owners = a.KvOwningLayers(spec.AttentionLayers);
        const QuantTargetKind attention = QuantTargetKind.Attention;
        if (a.Latent is { } latent)
        {
            long headWidth = a.HeadDim + latent.RopeDim;
            if (latent.QRank > 0)
            {
                yield return new("query down projection (q_a_proj)", attention, "Dim", dim, latent.QRank, layers);
                yield return new("query up projection (q_b_proj)", attention, "QRank", latent.QRank, a.Heads * headWidth, layers);
            }
            else yield return new("query projection", attention, "Dim", dim, a.Heads * headWidth, layers);
            yield return new("latent key/value projection (kv_a_proj_with_mqa)", attention, "Dim", dim, latent.KvRank + latent.RopeDim, layers);
            yield return new("key/value up projection (kv_b_proj)", attention, "KvRank", latent.KvRank, a.Heads * 2L * a.HeadDim, layers);
        }
        else if (spec.Naming == NamingKind.Gpt2)
        {
            yield return new("fused attention projection (c_attn)", attention, "Dim", dim, a.ProjectedWidth, owners);
            if (owners < layers) yield return new("fused query projection (c_attn)", attention, "Dim", dim, a.ProjectedWidth - a.KeyValueWidth, layers - owners);
        }
        else
        {
            if (a.HasQueryProjection) yield return new("query projection", attention, "Dim", dim, a.QueryWidth, layers);
            if (a.HasKeyProjection) yield return new("key projection", attention, "Dim", dim, a.KvWidth, owners);
            yield return new(a.Projections == ProjectionKind.Shared ? "shared QKV projection" : "value projection", attention, "Dim", dim, a.KvWidth, owners);
        }
        yield return new("attention output projection", attention, "Heads × HeadDim", a.QueryWidth, dim, layers);

        var denseLayers = spec.Moe is { } m ? m.FirstLayer : spec.Layers;
        foreach (var weights in FeedForwardLinears(spec, "MLP", QuantTargetKind.Mlp, "Hidden", spec.Mlp.Hidden, denseLayers)) yield return weights;
        if (spec.Moe is not { } moe) yield break;
        long routed = moe.RoutedLayers(spec.Layers);
        if (moe.Shared > 0)
            foreach (var weights in FeedForwardLinears(spec, "shared-expert", QuantTargetKind.Mlp, "Shared × ExpertHidden", moe.SharedHidden, routed)) yield return weights;
        foreach (var weights in FeedForwardLinears(spec, "expert", QuantTargetKind.Experts, "ExpertHidden", moe.ExpertHidden, routed * moe.Experts)) yield return weights;
    }

    private static IEnumerable<LinearWeights> FeedForwardLinears(ModelSpec spec, string kind, QuantTargetKind target, string hiddenName, long hidden, long count)
    {
        if (count == 0) yield break;
        var swiGlu = spec.Mlp.Activation == ActivationKind.SwiGlu;
        if (spec.Naming == NamingKind.Gpt2)
            yield return new($"{kind} input projection (c_fc)", target, "Dim", spec.Dim, swiGlu ? 2 * hidden : hidden, count);
        else
        {
            if (swiGlu) yield return new($"{kind} gate projection", target, "Dim", spec.Dim, hidden, count);
            yield return new($"{kind} up projection", target, "Dim", spec.Dim, hidden, count);
        }
        yield return new($"{kind} down projection", target, hiddenName, hidden, spec.Dim, count);
    }

    /// <summary>
    /// Bytes of one <paramref name="rows"/> × <paramref name="inputs"/> weight in the declared format, exactly as the
    /// runtime packs it (blocks along the input, padded to whole blocks): MXFP4 half a byte per value plus an E8M0 byte
    /// per 32 (4.25 bits per value); NVFP4 half a byte plus an E4M3 byte per 16, and a 4-byte fp32 tensor scale; FP8 a
    /// byte per value and the tensor scale; Int4 half a byte plus an fp32 scale per group.
    /// </summary>
    public static long QuantizedBytes(QuantSpec quant, long rows, long inputs)
    {
        checked
        {
            const long TensorScaleBytes = 4;
            var block = quant.BlockSize;
            if (block == 0) return rows * inputs + TensorScaleBytes;
            var padded = (inputs + block - 1) / block * block;
            var codes = rows * padded / 2;
            var blocks = rows * (padded / block);
            return quant.Format switch
            {
                QuantFormatKind.Mxfp4 => codes + blocks,
                QuantFormatKind.Nvfp4 => codes + blocks + TensorScaleBytes,
                _ => codes + blocks * 4,
            };
        }
    }

    /// <summary>One feed-forward network <paramref name="hidden"/> wide: its matrix weights, and all its parameters (biases too).</summary>
    private static (long Weights, long Parameters) FeedForward(ModelSpec spec, long hidden)
    {
        checked
        {
            var matrices = spec.Mlp.Activation == ActivationKind.SwiGlu ? 3L : 2L;
            var weights = matrices * spec.Dim * hidden;
            var biases = spec.Bias ? (matrices - 1) * hidden + spec.Dim : 0;
            return (weights, weights + biases);
        }
    }
}
