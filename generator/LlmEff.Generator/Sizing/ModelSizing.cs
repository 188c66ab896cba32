using LlmEff.Generator.Model;

namespace LlmEff.Generator.Sizing;

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
/// token touches the router, its Active routed experts and the shared experts.
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

            // Layers that share keys and values (ShareKvEvery > 1) lack K/V projections and their biases.
            var owners = (long)attention.KvOwningLayers(spec.Layers);
            var queryOnlyWidth = attention.ProjectedWidth - attention.KeyValueWidth;
            var attentionWeights = spec.Layers * (queryOnlyWidth + attention.QueryWidth) * dim + owners * attention.KeyValueWidth * dim;
            // Parameters of attention outside its matrices: biases and the symmetry-breaking score mixer.
            var attentionExtras = spec.Layers * ((spec.Bias ? queryOnlyWidth + dim : 0) + (attention.BreakSymmetry ? AttentionSpec.ScoreMixerParameters : 0))
                + (spec.Bias ? owners * attention.KeyValueWidth : 0);

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

            var parameters = embeddings + attentionWeights + attentionExtras + mlpParameters + spec.Layers * 2 * normParameters + normParameters + outputHead;

            var kvCache = owners * attention.CachedStreams * attention.KvWidth;

            var matmulWeightsPerToken = attentionWeights + mlpMatmulWeights + (long)spec.Vocab * dim;
            var attentionMixing = spec.Layers * 4L * attention.Heads * attention.HeadDim * spec.Context;
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
                MatmulFlopsPerToken: 2 * matmulWeightsPerToken);
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
