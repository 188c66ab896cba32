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
internal sealed record AttentionSpec(ProjectionKind Projections, int Heads, int KvHeads, int HeadDim, bool BreakSymmetry = false, int ShareKvEvery = 1)
{
    /// <summary>Layers that project keys and values themselves: the first of each group of <see cref="ShareKvEvery"/>.</summary>
    public int KvOwningLayers(int layers) => (layers + ShareKvEvery - 1) / ShareKvEvery;

    /// <summary>Whether 0-based layer <paramref name="index"/> projects its own keys and values.</summary>
    public bool OwnsKeysAndValues(int index) => index % ShareKvEvery == 0;

    /// <summary>Parameters of the runtime's PositionalScoreMixer: a 1×1 convolution from 10 channels to 1, with bias.</summary>
    public const int ScoreMixerParameters = 10 + 1;

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

/// <summary>Feed-forward network of every block, with defaults resolved.</summary>
internal sealed record MlpSpec(int Hidden, ActivationKind Activation);

/// <summary>Mixture of experts replacing the dense feed-forward of layers <see cref="FirstLayer"/> and on.</summary>
/// <param name="Experts">Routed experts per layer.</param>
/// <param name="Active">Routed experts per token (top-k).</param>
/// <param name="Shared">Always-on experts, fused into one feed-forward <c>Shared · ExpertHidden</c> wide.</param>
/// <param name="ExpertHidden">Hidden width of one expert.</param>
/// <param name="FirstLayer">0-based first layer with experts.</param>
internal sealed record MoeSpec(int Experts, int Active, int Shared, int ExpertHidden, int FirstLayer, RouterKind Router, BalanceKind Balance,
    bool NormalizeWeights, double RoutedScale, double AuxLossWeight, double BiasUpdateRate)
{
    /// <summary>Layers whose feed-forward is this mixture.</summary>
    public int RoutedLayers(int layers) => layers - FirstLayer;

    /// <summary>Whether 0-based layer <paramref name="index"/> routes its tokens to experts.</summary>
    public bool IsRouted(int index) => index >= FirstLayer;

    /// <summary>Hidden width of the shared experts together (0 without them).</summary>
    public long SharedHidden => (long)Shared * ExpertHidden;
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
    bool Checkpointing = false);

/// <summary>A spec together with where to emit it; only built for declarations that validate.</summary>
internal sealed record ModelToEmit(TypeTarget Target, ModelSpec Spec, ModelSizes Sizes);

/// <summary>Exact size facts, computed once by <see cref="Sizing.ModelSizing"/>.</summary>
/// <param name="ActiveParameters">Parameters one token uses: all but the routed experts it does not choose.</param>
/// <param name="MlpParameters">Every feed-forward parameter: dense MLPs, experts, routers.</param>
/// <param name="RoutedExpertParameters">The routed experts of all layers (not routers or shared experts).</param>
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
    long MatmulFlopsPerToken);
