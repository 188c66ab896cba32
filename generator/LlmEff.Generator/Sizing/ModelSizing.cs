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
/// and 2·Context·HeadDim for the weighted sum, per query head and layer.
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

            var mlpMatrices = spec.Mlp.Activation == ActivationKind.SwiGlu ? 3L : 2L;
            var mlpWeights = mlpMatrices * dim * spec.Mlp.Hidden;
            var mlpBiases = spec.Bias ? (mlpMatrices - 1) * spec.Mlp.Hidden + dim : 0;

            var normParameters = spec.Norm == NormKind.LayerNorm ? 2 * dim : dim;
            var outputHead = spec.TiedEmbeddings ? 0 : (long)spec.Vocab * dim;

            var perLayer = mlpWeights + mlpBiases + 2 * normParameters;
            var parameters = embeddings + attentionWeights + attentionExtras + spec.Layers * perLayer + normParameters + outputHead;

            var kvCache = owners * attention.CachedStreams * attention.KvWidth;

            var matmulWeightsPerToken = attentionWeights + spec.Layers * mlpWeights + (long)spec.Vocab * dim;
            var attentionMixing = spec.Layers * 4L * attention.Heads * attention.HeadDim * spec.Context;
            var flops = 2 * matmulWeightsPerToken + attentionMixing;

            return new ModelSizes(
                Parameters: parameters,
                EmbeddingParameters: embeddings,
                AttentionParameters: attentionWeights + attentionExtras,
                MlpParametersPerLayer: mlpWeights + mlpBiases,
                NormParametersPerLayer: 2 * normParameters,
                FinalNormParameters: normParameters,
                OutputHeadParameters: outputHead,
                KvCacheElementsPerToken: kvCache,
                FlopsPerToken: flops);
        }
    }
}
