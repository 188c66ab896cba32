using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;

namespace LlmEff.Generator.Sizing;

/// <summary>Identical linear weights of one kind across the model: <see cref="Count"/> matrices of
/// <see cref="Outputs"/> × <see cref="Inputs"/>.</summary>
/// <param name="Role">What they are, for messages ("MLP down projection").</param>
/// <param name="Target">The [Quant] target they belong to.</param>
/// <param name="InputName">The declared size their input width comes from ("Hidden"), for messages.</param>
internal readonly record struct LinearWeights(string Role, QuantTargetKind Target, string InputName, long Inputs, long Outputs, long Count);

/// <summary>
/// Exact size facts of a declared model, added up from its <see cref="LayoutPlan"/>: the one place this arithmetic
/// lives. Every product is checked, so a declaration too large for 64 bits throws <see cref="OverflowException"/>
/// instead of reporting a wrapped number. Tests compare these against published counts and the live modules.
/// </summary>
/// <remarks>
/// FLOPs per token count the forward pass of one token at position <c>Context</c> (attending to the whole
/// context): 2 FLOPs per multiply-accumulate of every weight matrix it touches (projections, MLP, output
/// head; not the embedding lookup, norms, biases or activations) plus 2·Context·HeadDim for the scores
/// and 2·Context·HeadDim for the weighted sum, per query head and layer. In mixture-of-experts layers a
/// token touches the router, its Active routed experts and the shared experts. Hybrid models count attention
/// only in attention layers; short-convolution blocks count their projections and filter taps as weights. Latent
/// attention scores over HeadDim + RopeDim per head; sparse attention mixes only TopK keys and adds the indexer's
/// 2·Context·IndexerHeads·(IndexerDim + 1). Residual streams (mHC) add their maps as weights and 2·(2 + n)·n·Dim per
/// block for mixing the streams (2·n·Dim for the final collapse).
/// </remarks>
internal static class ModelSizing
{
    /// <summary>Bytes of one bf16 value: what cache and weight sizes are quoted in.</summary>
    public const long Bf16Bytes = 2;

    /// <summary>Bytes of one fp32 value.</summary>
    public const long Fp32Bytes = 4;

    public static ModelSizes Compute(ModelSpec spec) => Compute(LayoutPlanner.Plan(spec));

    /// <summary>The sizes of a hypothetical variant of a valid model (what an analyzer suggests), or null when they do
    /// not fit 64 bits: a suggestion is dropped rather than reported with wrapped numbers.</summary>
    public static ModelSizes? TryCompute(ModelSpec spec)
    {
        try
        {
            return Compute(spec);
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    public static ModelSizes Compute(LayoutPlan plan)
    {
        checked
        {
            long dim = plan.Dim;
            var embeddings = (long)plan.Vocab * dim + (plan.LearnedPositions ? (long)plan.Context * dim : 0) + (plan.InputBias ? dim : 0);
            var keysPerQuery = plan.Indexer is { } ix ? Math.Min(ix.TopK, plan.Context) : plan.Context;

            long attentionParameters = 0, attentionWeights = 0, mixing = 0, kvCache = 0;
            long convParameters = 0, convWeights = 0, convState = 0, compressedCache = 0;
            long mlpParameters = 0, mlpWeightsPerToken = 0, routedExperts = 0, unchosenExperts = 0;
            foreach (var layer in plan.Layers)
            {
                switch (layer.Mixer)
                {
                    case TokenMixer.Attention:
                        var a = plan.Attention!;
                        var projections = layer.OwnsKeysAndValues ? a.Projections : a.QueryOnlyProjections;
                        attentionWeights += projections.Sum(l => l.Weights) + a.Output.Weights;
                        attentionParameters += projections.Sum(l => l.Parameters) + a.Output.Parameters
                            + (a.ScoreMixer ? AttentionPlan.ScoreMixerParameters : 0) + (a.QueryNorm?.Parameters ?? 0) + (a.KeyNorm?.Parameters ?? 0);
                        mixing += 4L * a.Heads * a.HeadDim * keysPerQuery;
                        break;
                    case TokenMixer.LatentAttention:
                        var l = plan.Latent!;
                        attentionWeights += l.Linears.Sum(x => x.Weights);
                        attentionParameters += l.Parameters;
                        mixing += 2L * l.Heads * keysPerQuery * (l.HeadDim + l.RopeDim + l.HeadDim);
                        break;
                    case TokenMixer.CompressedAttention:
                        var cp = plan.Compressed!;
                        var kind = layer.Compressed!;
                        var sparse = kind.Kind == CompressedKind.CompressedSparse;
                        attentionWeights += cp.Weights(kind, dim);
                        attentionParameters += CompressedAttentionSizing.Parameters(Shape(plan), kind.Ratio, sparse);
                        mixing += CompressedMixing(plan, kind);
                        compressedCache += CompressedAttentionSizing.Cache(Shape(plan), kind.Ratio, sparse, plan.Context).Elements;
                        break;
                    case TokenMixer.ShortConvolution:
                        var c = plan.Conv!;
                        convWeights += c.InProjection.Weights + c.OutProjection.Weights + c.FilterWeights;
                        convParameters += c.Parameters;
                        convState += c.StateElements;
                        break;
                }
                if (layer.Mixer != TokenMixer.ShortConvolution && plan.Indexer is { } indexer)
                {
                    // The indexer's weights, and 2 FLOPs per head and past token for Σ_j w_j·ReLU(q_j·k).
                    attentionWeights += indexer.Linears.Sum(x => x.Weights);
                    attentionParameters += indexer.Parameters;
                    mixing += 2L * plan.Context * indexer.Heads * (indexer.Dim + 1);
                }
                kvCache += layer.Cache.Where(s => s.PerToken).Sum(s => s.ElementsPerToken);

                if (layer.FeedForward == FeedForwardKind.Dense)
                {
                    mlpParameters += plan.Dense!.Parameters;
                    mlpWeightsPerToken += plan.Dense.Weights;
                }
                else
                {
                    var m = plan.Mixture!;
                    mlpParameters += m.Parameters;
                    mlpWeightsPerToken += m.RouterWeights + m.Settings.Active * m.Expert.Weights + (m.Shared?.Weights ?? 0);
                    routedExperts += m.Settings.Experts * m.Expert.Parameters;
                    unchosenExperts += (m.Settings.Experts - m.Settings.Active) * m.Expert.Parameters;
                }
            }

            var normsPerLayer = plan.MixerNorm.Parameters + plan.FeedForwardNorm.Parameters;
            var outputHead = plan.OutputHead?.Parameters ?? 0;
            // Residual streams: two maps per layer and the head's collapse. Their matrices multiply every token like
            // linear weights. Mixing the streams is counted like attention's weighted sum: per block n·Dim
            // multiply-accumulates for pre, n·Dim for post and n²·Dim for combᵀ·streams, (2 + n)·n·Dim in all; the head's
            // collapse n·Dim. Sinkhorn, sigmoids and the RMS scale are elementwise and not counted, as norms are not.
            long streamParameters = 0, streamWeights = 0;
            if (plan.Streams is { } streams)
            {
                streamParameters = plan.Layers.Count * 2 * streams.MapParameters + streams.HeadParameters;
                streamWeights = plan.Layers.Count * 2 * streams.MapWeights + streams.HeadWeights;
                mixing += 2 * (plan.Layers.Count * 2 * streams.MixRows * dim + streams.Width);
            }
            var parameters = embeddings + attentionParameters + convParameters + mlpParameters
                + plan.Layers.Count * normsPerLayer + plan.FinalNorm.Parameters + outputHead + streamParameters;

            long quantized = 0, quantizedBytes = 0;
            if (plan.Quant is { } quant)
            {
                foreach (var (linear, count) in LinearsWithCounts(plan).Where(x => x.Linear.Quantized))
                {
                    quantized += count * linear.Weights;
                    quantizedBytes += count * QuantizedBytes(quant, linear.Outputs, linear.Inputs);
                }
            }

            // Compressed attention's cache is no multiple of the tokens (a bounded window, an entry per window, fixed state):
            // per token it states the cache at full context spread over the context, rounded up.
            if (plan.Compressed is not null) kvCache += (compressedCache + plan.Context - 1) / plan.Context;

            // The output head's matrix multiplies every token, tied or not.
            var matmulWeightsPerToken = attentionWeights + convWeights + mlpWeightsPerToken + (long)plan.Vocab * dim + streamWeights;

            return new ModelSizes(
                Parameters: parameters,
                ActiveParameters: parameters - unchosenExperts,
                EmbeddingParameters: embeddings,
                AttentionParameters: attentionParameters,
                MlpParameters: mlpParameters,
                RoutedExpertParameters: routedExperts,
                NormParametersPerLayer: normsPerLayer,
                FinalNormParameters: plan.FinalNorm.Parameters,
                OutputHeadParameters: outputHead,
                KvCacheElementsPerToken: kvCache,
                FlopsPerToken: 2 * matmulWeightsPerToken + mixing,
                MatmulFlopsPerToken: 2 * matmulWeightsPerToken,
                QuantizedParameters: quantized,
                QuantizedWeightBytes: quantizedBytes,
                QuantizedFp32Bytes: quantized * Fp32Bytes,
                ConvParameters: convParameters,
                ConvStateElements: convState,
                KvCacheElementsAtContext: compressedCache,
                ResidualStreamParameters: streamParameters,
                ResidualStateElementsPerToken: plan.Streams?.Width ?? 0);
        }
    }

    /// <summary>The shape of a plan's compressed attention, as <see cref="CompressedAttentionSizing"/> takes it.</summary>
    internal static CompressedAttentionShape Shape(LayoutPlan plan)
    {
        var c = plan.Compressed!;
        return new CompressedAttentionShape(plan.Dim, c.Heads, c.HeadDim, c.RopeDim, c.QueryRank, c.OutputGroups, c.OutputRank, c.Window,
            c.IndexerHeads, c.IndexerDim);
    }

    /// <summary>Attention FLOPs of one compressed-attention token at position Context: 4·HeadDim per query head and key
    /// seen (the window, and the visible entries: all of them in HCA, the top k in CSA), plus the CSA indexer's
    /// 2·IndexerHeads·(IndexerDim + 1) per visible entry.</summary>
    private static long CompressedMixing(LayoutPlan plan, CompressedLayer layer)
    {
        checked
        {
            var c = plan.Compressed!;
            long entries = layer.Ratio == 0 ? 0 : plan.Context / layer.Ratio;
            var keys = Math.Min(c.Window, plan.Context) + (layer.Kind == CompressedKind.CompressedSparse ? Math.Min(c.TopK, entries) : entries);
            var indexer = layer.Kind == CompressedKind.CompressedSparse ? 2L * entries * c.IndexerHeads * (c.IndexerDim + 1) : 0;
            return 4L * c.Heads * c.HeadDim * keys + indexer;
        }
    }

    /// <summary>Elements one sequence's decoding cache holds after <paramref name="tokens"/> tokens, every layer and
    /// stream, fixed states included (the convolutions' windows, the compressors' unfinished windows).</summary>
    public static long CacheElements(LayoutPlan plan, long tokens)
    {
        if (tokens < 0) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "A token count cannot be negative.");
        return plan.Layers.Sum(l => l.Cache.Sum(s => s.Elements(tokens)));
    }

    /// <summary>What the cache grows by per token once the context is long: the unbounded streams' elements per token
    /// (compressed entries count a fraction per token); windows and fixed states add nothing more.</summary>
    public static double CacheElementsPerTokenLimit(LayoutPlan plan) =>
        plan.Layers.Sum(l => l.Cache.Where(s => s.MostEntries == 0 && s.StateElements == 0).Sum(s => (double)s.ElementsPerToken / s.TokensPerEntry));

    /// <summary>
    /// Every linear weight [Quant] can target (attention and feed-forward networks; not embeddings, head, routers,
    /// indexers or short convolutions), grouped by kind, with the [Quant] target each belongs to.
    /// </summary>
    public static IEnumerable<LinearWeights> Linears(ModelSpec spec) =>
        LinearsWithCounts(LayoutPlanner.Plan(spec))
            .GroupBy(x => (x.Linear.Role, x.Linear.Target, x.Linear.InputName, x.Linear.Inputs, x.Linear.Outputs))
            .Select(g => new LinearWeights(g.Key.Role, g.Key.Target, g.Key.InputName, g.Key.Inputs, g.Key.Outputs, checked(g.Sum(x => x.Count))))
            .Where(w => w.Count > 0);

    /// <summary>The plan's quantizable linear layers, each with how many of it the model has.</summary>
    private static IEnumerable<(LinearPlan Linear, long Count)> LinearsWithCounts(LayoutPlan plan)
    {
        long Layers(Func<LayerPlan, bool> which) => plan.Layers.Count(which);
        if (plan.Attention is { } a)
        {
            var owners = Layers(l => l.Mixer == TokenMixer.Attention && l.OwnsKeysAndValues);
            var reusers = Layers(l => l.Mixer == TokenMixer.Attention && !l.OwnsKeysAndValues);
            foreach (var linear in a.Projections) yield return (linear, owners);
            foreach (var linear in a.QueryOnlyProjections) yield return (linear, reusers);
            yield return (a.Output, owners + reusers);
        }
        if (plan.Latent is { } latent)
            foreach (var linear in latent.Linears) yield return (linear, Layers(l => l.Mixer == TokenMixer.LatentAttention));
        if (plan.Dense is { } dense)
            foreach (var linear in dense.Linears) yield return (linear, Layers(l => l.FeedForward == FeedForwardKind.Dense));
        if (plan.Mixture is { } m)
        {
            var routed = Layers(l => l.FeedForward == FeedForwardKind.Mixture);
            if (m.Shared is { } shared)
                foreach (var linear in shared.Linears) yield return (linear, routed);
            foreach (var linear in m.Expert.Linears) yield return (linear, checked(routed * m.Settings.Experts));
        }
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
            const long TensorScaleBytes = Fp32Bytes;
            var block = quant.BlockSize;
            if (block == 0) return rows * inputs + TensorScaleBytes;
            var padded = (inputs + block - 1) / block * block;
            var codes = rows * padded / 2;
            var blocks = rows * (padded / block);
            return quant.Format switch
            {
                QuantFormatKind.Mxfp4 => codes + blocks,
                QuantFormatKind.Nvfp4 => codes + blocks + TensorScaleBytes,
                _ => codes + blocks * Fp32Bytes,
            };
        }
    }

    /// <summary>Bytes of <paramref name="elements"/> values in bf16 (how caches and weights are quoted).</summary>
    public static long InBf16(long elements) => checked(elements * Bf16Bytes);
}
