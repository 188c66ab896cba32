namespace LlmEff.Generator.Model;

// The pipeline's models: plain values only (no ISymbol, SyntaxNode or Compilation), so the incremental
// driver can compare them between runs and skip emission when nothing that matters changed.

/// <summary>Where the generated half of the class goes.</summary>
/// <param name="Namespace">Containing namespace, empty for the global namespace.</param>
/// <param name="Name">Class name.</param>
/// <param name="ContainingTypes">Declarations of enclosing types, outermost first, e.g. "partial class Outer".</param>
internal sealed record TypeTarget(string Namespace, string Name, EquatableArray<string> ContainingTypes)
{
    public string FullName => (Namespace.Length == 0 ? "" : Namespace + ".") +
        string.Concat(System.Linq.Enumerable.Select(ContainingTypes, c => c.Substring(c.LastIndexOf(' ') + 1) + ".")) + Name;
}

/// <summary>Self-attention of every block, with defaults resolved.</summary>
/// <param name="Latent">DeepSeek's multi-head latent attention instead of per-head projections (then
/// <see cref="Projections"/> is Full and KvHeads equals Heads).</param>
/// <param name="QkNorm">Per-head RMSNorm of queries and keys before rotation.</param>
/// <param name="Compressed">DeepSeek V4's attention (then Projections is Full and KvHeads is 1: one key = value head).</param>
internal sealed record AttentionSpec(ProjectionKind Projections, int Heads, int KvHeads, int HeadDim, bool BreakSymmetry = false, int ShareKvEvery = 1,
    LatentSpec? Latent = null, bool QkNorm = false, CompressedSpec? Compressed = null)
{
    /// <summary>Layers that project keys and values themselves: the first of each group of <see cref="ShareKvEvery"/>.</summary>
    public int KvOwningLayers(int layers) => (layers + ShareKvEvery - 1) / ShareKvEvery;

    /// <summary>Whether 0-based layer <paramref name="index"/> projects its own keys and values.</summary>
    public bool OwnsKeysAndValues(int index) => index % ShareKvEvery == 0;

    /// <summary>Scores are symmetric (queries are the keys), so the positional term can apply.</summary>
    public bool HasSymmetricScores => Projections is ProjectionKind.NoQuery or ProjectionKind.Shared;

    /// <summary>Width of all query heads together: the input width of the output projection.</summary>
    public long QueryWidth => (long)Heads * HeadDim;

    /// <summary>Width of all key (or value) heads together.</summary>
    public long KvWidth => (long)KvHeads * HeadDim;

    /// <summary>W_Q exists (Full, NoKey). Otherwise queries are the keys, KvHeads heads wide.</summary>
    public bool HasQueryProjection => Projections is ProjectionKind.Full or ProjectionKind.NoKey;

    /// <summary>W_K exists separately from W_V (Full, NoQuery).</summary>
    public bool HasKeyProjection => Projections is ProjectionKind.Full or ProjectionKind.NoQuery;

    /// <summary>Streams cached per token and KV head: 2 (K and V) or 1 when keys are the values.</summary>
    public int CachedStreams => HasKeyProjection ? 2 : 1;

    /// <summary>Output width of every input projection together (what a fused projection computes).</summary>
    public long ProjectedWidth => (HasQueryProjection ? QueryWidth : 0) + KeyValueWidth;

    /// <summary>Output width of the key and value projections, which layers sharing KV do not have.</summary>
    public long KeyValueWidth => (HasKeyProjection ? KvWidth : 0) + KvWidth;
}

/// <summary>DeepSeek multi-head latent attention: keys and values are expanded from a cached vector of
/// <see cref="KvRank"/>; a rotary key of <see cref="RopeDim"/> is shared by all heads; queries optionally go
/// through a compressed vector of <see cref="QRank"/> (0: projected directly). Nope and value heads are HeadDim wide.</summary>
internal sealed record LatentSpec(int KvRank, int RopeDim, int QRank);

/// <summary>DeepSeek V4's attention ([Attention(Kind = AttentionKind.Compressed)] with [CompressedLayers]): every layer
/// attends to a sliding window of <see cref="Window"/> tokens through one key = value head; the layers in
/// <see cref="SparseLayers"/> (CSA) add the indexer's <see cref="TopK"/> of the overlapping compressed entries of
/// <see cref="SparseRatio"/> tokens each, those in <see cref="HeavyLayers"/> (HCA) every compressed entry of
/// <see cref="HeavyRatio"/> tokens. Names as the runtime's CompressedAttentionOptions.</summary>
/// <param name="RopeDim">Rotary channels at the end of queries, keys and entries.</param>
/// <param name="QRank">Width of the normalised query latent (<c>q_lora_rank</c>).</param>
/// <param name="OutputGroups">Head groups of the grouped low-rank output (<c>o_groups</c>).</param>
/// <param name="OutputRank">Rank of each group's projection (<c>o_lora_rank</c>).</param>
/// <param name="SparseLayers">0-based CSA layers, ascending.</param>
/// <param name="HeavyLayers">0-based HCA layers, ascending, none of them in <see cref="SparseLayers"/>.</param>
/// <param name="TopK">CSA: entries each query keeps (0 without CSA layers, as the indexer settings).</param>
internal sealed record CompressedSpec(int RopeDim, int QRank, int OutputGroups, int OutputRank, int Window,
    EquatableArray<int> SparseLayers, EquatableArray<int> HeavyLayers, int SparseRatio, int HeavyRatio,
    int TopK, int IndexerHeads, int IndexerDim, IndexerPrecisionKind Precision, bool Bf16Scores)
{
    /// <summary>The kind of 0-based <paramref name="layer"/>.</summary>
    public CompressedKind KindOf(int layer) =>
        System.Linq.Enumerable.Contains(SparseLayers, layer) ? CompressedKind.CompressedSparse
        : System.Linq.Enumerable.Contains(HeavyLayers, layer) ? CompressedKind.HeavilyCompressed
        : CompressedKind.SlidingWindow;

    /// <summary>Tokens per compressed entry of a layer of <paramref name="kind"/> (0: sliding window only).</summary>
    public int RatioOf(CompressedKind kind) => kind switch
    {
        CompressedKind.CompressedSparse => SparseRatio,
        CompressedKind.HeavilyCompressed => HeavyRatio,
        _ => 0,
    };
}

/// <summary>Which layers are attention in a hybrid model; the others are short-convolution blocks.</summary>
/// <param name="AttentionLayers">0-based attention layers, ascending, distinct.</param>
/// <param name="ConvKernel">Width of the causal depthwise convolution of the other layers.</param>
internal sealed record HybridSpec(EquatableArray<int> AttentionLayers, int ConvKernel)
{
    public bool IsAttention(int layer) => System.Linq.Enumerable.Contains(AttentionLayers, layer);
}

/// <summary>DeepSeek-V3.2's lightning indexer in front of every attention layer: each query attends to its
/// <see cref="TopK"/> highest-scoring past tokens.</summary>
internal sealed record SparseSpec(int IndexerHeads, int IndexerDim, int TopK);

/// <summary>DeepSeek V4's residual streams (mHC): <see cref="Streams"/> copies of the residual, mixed around every
/// attention and feed-forward block by a map whose stream-mixing matrix is made doubly stochastic by
/// <see cref="SinkhornIterations"/> Sinkhorn iterations.</summary>
internal sealed record ResidualSpec(int Streams, int SinkhornIterations);

/// <summary>Feed-forward network of every block, with defaults resolved.</summary>
/// <param name="ClampLimit">SwiGLU clamping: gate ≤ limit, up in [−limit, limit] before SiLU (DeepSeek V4); null: none.</param>
internal sealed record MlpSpec(int Hidden, ActivationKind Activation, double? ClampLimit = null);

/// <summary>Mixture of experts replacing the dense feed-forward of layers <see cref="FirstLayer"/> and on.</summary>
/// <param name="Experts">Routed experts per layer.</param>
/// <param name="Active">Routed experts per token (top-k).</param>
/// <param name="Shared">Always-on experts, fused into one feed-forward <c>Shared · ExpertHidden</c> wide.</param>
/// <param name="ExpertHidden">Hidden width of one expert.</param>
/// <param name="FirstLayer">0-based first layer with experts.</param>
/// <param name="SequenceAuxLossWeight">Weight of the sequence-wise balance loss (DeepSeek-V3); 0: none.</param>
/// <param name="HashLayers">The first this many routed layers choose experts from a fixed token→experts table (DeepSeek
/// V4's hash routing); 0: none.</param>
internal sealed record MoeSpec(int Experts, int Active, int Shared, int ExpertHidden, int FirstLayer, RouterKind Router, BalanceKind Balance,
    bool NormalizeWeights, double RoutedScale, double AuxLossWeight, double BiasUpdateRate, double SequenceAuxLossWeight = 0, int HashLayers = 0)
{
    /// <summary>Whether 0-based layer <paramref name="index"/> routes by the token→experts table.</summary>
    public bool IsHashRouted(int index) => index >= FirstLayer && index < FirstLayer + HashLayers;

    /// <summary>Layers whose feed-forward is this mixture.</summary>
    public int RoutedLayers(int layers) => layers - FirstLayer;

    /// <summary>Whether 0-based layer <paramref name="index"/> routes its tokens to experts.</summary>
    public bool IsRouted(int index) => index >= FirstLayer;

    /// <summary>Hidden width of the shared experts together (0 without them).</summary>
    public long SharedHidden => (long)Shared * ExpertHidden;
}

/// <summary>Quantization-aware training of the targeted linear weights (what [Quant] declares), defaults resolved.</summary>
/// <param name="Format">The weight format (never the alias Fp4: it reads as Mxfp4).</param>
/// <param name="Target">Which weights, the default already resolved (Experts with [MoE], else AllLinear).</param>
/// <param name="From">Fraction of the training steps after which fake quantization switches on, in [0, 1).</param>
/// <param name="Clipped">Clipped straight-through estimator.</param>
/// <param name="GroupSize">Int4 group size as declared; 0 when left at the default.</param>
internal sealed record QuantSpec(QuantFormatKind Format, QuantTargetKind Target, double From, bool Clipped, int GroupSize)
{
    /// <summary>The Int4 group size when none is declared (the runtime's Quantizer.DefaultInt4GroupSize).</summary>
    public const int DefaultInt4GroupSize = 32;

    /// <summary>Values per block scale along a weight's input dimension (the runtime's QuantFormats.BlockSize):
    /// 32 for MXFP4, 16 for NVFP4, the group size for Int4, and 0 for FP8, whose one scale covers the tensor.</summary>
    public int BlockSize => Format switch
    {
        QuantFormatKind.Mxfp4 => 32,
        QuantFormatKind.Nvfp4 => 16,
        QuantFormatKind.Fp8E4M3 => 0,
        _ => GroupSize > 0 ? GroupSize : DefaultInt4GroupSize,
    };

    /// <summary>The format as papers and vendors write it (the enum's Fp4 alias makes its own names ambiguous).</summary>
    public string FormatName => Format switch
    {
        QuantFormatKind.Mxfp4 => "MXFP4",
        QuantFormatKind.Nvfp4 => "NVFP4",
        QuantFormatKind.Fp8E4M3 => "FP8 E4M3",
        _ => "Int4",
    };

    /// <summary>Whether <paramref name="part"/> (a single flag) is among the targeted weights.</summary>
    public bool Targets(QuantTargetKind part) => (Target & part) != 0;
}

/// <summary>A whole declared model, with every default resolved.</summary>
internal sealed record ModelSpec(
    int Vocab,
    int Dim,
    int Layers,
    int Context,
    bool TiedEmbeddings,
    NormKind Norm,
    PositionKind Positions,
    bool Bias,
    double RopeTheta,
    double NormEps,
    NamingKind Naming,
    AttentionSpec Attention,
    MlpSpec Mlp,
    long KvBudgetBytes = 0,
    bool Causal = true,
    MoeSpec? Moe = null,
    QuantSpec? Quant = null,
    bool Checkpointing = false,
    HybridSpec? Hybrid = null,
    SparseSpec? Sparse = null,
    InitKind Init = InitKind.Gpt2,
    ResidualSpec? Residual = null)
{
    /// <summary>Whether 0-based <paramref name="layer"/> is an attention block (every layer unless hybrid).</summary>
    public bool IsAttentionLayer(int layer) => Hybrid is not { } h || h.IsAttention(layer);

    /// <summary>Attention blocks; the rest are short-convolution blocks.</summary>
    public int AttentionLayers => Hybrid is { } h ? h.AttentionLayers.Count : Layers;

    /// <summary>Short-convolution blocks.</summary>
    public int ConvLayers => Layers - AttentionLayers;
}

/// <summary>A spec together with where to emit it, its layout plan and its sizes; only built for declarations that validate.</summary>
internal sealed record ModelToEmit(TypeTarget Target, ModelSpec Spec, Planning.LayoutPlan Plan, ModelSizes Sizes);

/// <summary>Exact size facts, computed once by <see cref="Sizing.ModelSizing"/>.</summary>
/// <param name="ActiveParameters">Parameters one token uses: all but the routed experts it does not choose.</param>
/// <param name="MlpParameters">Every feed-forward parameter: dense MLPs, experts, routers.</param>
/// <param name="RoutedExpertParameters">The routed experts of all layers (not routers or shared experts).</param>
/// <param name="QuantizedParameters">The weights [Quant] targets (0 without it).</param>
/// <param name="QuantizedWeightBytes">Their storage in the declared format: codes, block scales and tensor scales.</param>
/// <param name="QuantizedFp32Bytes">The same weights in fp32.</param>
/// <param name="ConvParameters">Short-convolution blocks of a hybrid: projections, filters and biases.</param>
/// <param name="ConvStateElements">Decoding state of the short-convolution blocks per sequence: constant, whatever the context.</param>
/// <param name="KvCacheElementsAtContext">Compressed attention: everything its caches hold for one sequence at full context
/// (window, entries, index keys, compressor state); 0 for other models.</param>
/// <param name="ResidualStreamParameters">The residual streams' maps (mHC): hc_attn_*, hc_ffn_* of every layer and hc_head_*.</param>
/// <param name="ResidualStateElementsPerToken">With residual streams, the residual state per token between blocks: Streams · Dim
/// (an ordinary residual holds Dim); 0 without streams.</param>
internal sealed record ModelSizes(
    long Parameters,
    long ActiveParameters,
    long EmbeddingParameters,
    long AttentionParameters,
    long MlpParameters,
    long RoutedExpertParameters,
    long NormParametersPerLayer,
    long FinalNormParameters,
    long OutputHeadParameters,
    long KvCacheElementsPerToken,
    long FlopsPerToken,
    long MatmulFlopsPerToken,
    long QuantizedParameters = 0,
    long QuantizedWeightBytes = 0,
    long QuantizedFp32Bytes = 0,
    long ConvParameters = 0,
    long ConvStateElements = 0,
    long KvCacheElementsAtContext = 0,
    long ResidualStreamParameters = 0,
    long ResidualStateElementsPerToken = 0);
