using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using LlmEff.Generator.Diagnostics;
using LlmEff.Generator.Model;
using LlmEff.Generator.Parsing;
using LlmEff.Generator.Planning;
using LlmEff.Generator.Sizing;
using LlmEff.Generator.Validation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace LlmEff.Generator.Analyzers;

/// <summary>
/// Parameters and cache a valid declaration spends for nothing, or could trade away, with this model's own
/// numbers: NoKey savings (LLM010), collapsing projection pairs (LLM011), a large untied head (LLM012), a
/// KV cache over budget (LLM014), what a mixture of experts stores against what it runs (LLM015), and what residual
/// streams cost (LLM026). Invalid declarations are left to <see cref="ModelDeclarationAnalyzer"/>.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ParameterWasteAnalyzer : DiagnosticAnalyzer
{
    /// <summary>Diagnostic property: heads to declare when the code fix must add [Attention].</summary>
    public const string HeadsProperty = "Heads";

    /// <summary>Diagnostic property: the KvHeads value that fits the budget (LLM014), when one does.</summary>
    public const string KvHeadsProperty = "KvHeads";

    /// <summary>Share of the model above which an untied head is reported.</summary>
    public const double UntiedHeadShare = 0.10;

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.KeysCouldBeValues,
        DiagnosticDescriptors.CollapsingProjections,
        DiagnosticDescriptors.UntiedOutputHead,
        DiagnosticDescriptors.KvCacheOverBudget,
        DiagnosticDescriptors.ExpertParameters,
        DiagnosticDescriptors.HybridKvCache,
        DiagnosticDescriptors.CompressedKvCache,
        DiagnosticDescriptors.ResidualStreamCost);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterSymbolAction(Analyze, SymbolKind.NamedType);
    }

    private static void Analyze(SymbolAnalysisContext context)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        if (ModelReader.Find(type, AttributeNames.Model) is null) return;
        var result = ModelValidator.Validate(ModelReader.Read(type), type.Name);
        if (result.Spec is not { } spec || result.Sizes is not { } sizes) return;
        var site = new Site(type, context);

        SuggestNoKey(site, spec, sizes);
        ReportCollapsingPairs(site, spec, sizes);
        ReportUntiedHead(site, spec, sizes);
        ReportKvBudget(site, spec, sizes);
        ReportExpertParameters(site, spec, sizes);
        ReportHybridKvCache(site, spec, sizes);
        ReportCompressedKvCache(site, spec, result.Plan!, sizes);
        ReportResidualStreamCost(site, spec, sizes);
    }

    /// <summary>What [Residual] adds against the same model with one ordinary residual (LLM026).</summary>
    private static void ReportResidualStreamCost(Site site, ModelSpec spec, ModelSizes sizes)
    {
        if (spec.Residual is not { } residual) return;
        var single = ModelSizing.Compute(spec with { Residual = null });
        var flops = sizes.FlopsPerToken - single.FlopsPerToken;
        site.Report(DiagnosticDescriptors.ResidualStreamCost, site.Argument("Residual", "Streams") ?? site.Attribute("Residual"), null,
            site.Type.Name, Text(residual.Streams), N(sizes.ResidualStreamParameters), Share(sizes.ResidualStreamParameters, sizes.Parameters),
            N(flops), Share(flops, sizes.FlopsPerToken) + " of the forward", N(spec.Dim), N(sizes.ResidualStateElementsPerToken));
    }

    /// <summary>What compressed attention caches at full context, against full attention with per-layer keys and values of
    /// the same heads (2 · Heads · HeadDim per token and layer) and latent attention caching one HeadDim-wide latent plus
    /// RopeDim rotary channels per token and layer (DeepSeek-V3's 512 + 64, the comparison DeepSeek's V4 report makes).</summary>
    private static void ReportCompressedKvCache(Site site, ModelSpec spec, LayoutPlan plan, ModelSizes sizes)
    {
        if (spec.Attention.Compressed is not { } c) return;
        var a = spec.Attention;
        var cached = sizes.KvCacheElementsAtContext;
        long full, latent;
        try
        {
            full = checked(2L * a.Heads * a.HeadDim * spec.Layers * spec.Context);
            latent = checked((long)(a.HeadDim + c.RopeDim) * spec.Layers * spec.Context);
        }
        catch (OverflowException)
        {
            return; // a comparison too large for 64 bits is dropped rather than reported with wrapped numbers
        }
        int Count(CompressedKind kind) => plan.Layers.Count(l => l.Compressed?.Kind == kind);
        site.Report(DiagnosticDescriptors.CompressedKvCache, site.Argument("Attention", "Kind") ?? site.AttentionOrModel(), null,
            site.Type.Name, N(sizes.KvCacheElementsPerToken), N(spec.Context), Text(Count(CompressedKind.SlidingWindow)), Text(Count(CompressedKind.CompressedSparse)),
            Text(Count(CompressedKind.HeavilyCompressed)), ModelSizing.CacheElementsPerTokenLimit(plan).ToString("0.#", CultureInfo.InvariantCulture),
            Text(a.Heads), Text(a.HeadDim), N(full / spec.Context), Ratio(full, cached), Text(c.RopeDim), N(latent / spec.Context), Ratio(latent, cached));
    }

    private static string Ratio(long larger, long smaller) => (1.0 * larger / smaller).ToString("0.#", CultureInfo.InvariantCulture);

    /// <summary>Layers from which a full-attention model is deep enough for a hybrid layout to be worth showing.</summary>
    private const int HybridHintLayers = 8;

    private static void ReportHybridKvCache(Site site, ModelSpec spec, ModelSizes sizes)
    {
        var a = spec.Attention;
        if (!spec.Causal || spec.Hybrid is not null || a.Latent is not null || a.Compressed is not null || a.ShareKvEvery > 1 || spec.Layers < HybridHintLayers) return;
        // LFM2's proportion: attention in one layer of four (the last of each four), short convolutions elsewhere.
        var attentionLayers = Enumerable.Range(0, spec.Layers / 4).Select(k => 4 * k + 3).ToEquatableArray();
        // The hybrid's convolutions can outgrow the attention they replace (in_proj is Dim × 3·Dim): no hint then.
        if (ModelSizing.TryCompute(spec with { Hybrid = new HybridSpec(attentionLayers, ConvKernel: 3) }) is not { } hybrid) return;
        var bytes = ModelSizing.InBf16(sizes.KvCacheElementsPerToken);
        var hybridBytes = ModelSizing.InBf16(hybrid.KvCacheElementsPerToken);
        site.Report(DiagnosticDescriptors.HybridKvCache, site.AttentionOrModel(), null,
            site.Type.Name, N(bytes), Text(spec.Layers), Text(attentionLayers.Count), N(hybridBytes), Share(bytes - hybridBytes, bytes), N(ModelSizing.InBf16(hybrid.ConvStateElements)));
    }

    private static void ReportExpertParameters(Site site, ModelSpec spec, ModelSizes sizes)
    {
        if (spec.Moe is not { } moe) return;
        var routedExperts = sizes.RoutedExpertParameters;
        site.Report(DiagnosticDescriptors.ExpertParameters, site.Attribute("MoE"), null,
            site.Type.Name, N(sizes.Parameters), N(sizes.ActiveParameters), Share(sizes.ActiveParameters, sizes.Parameters),
            N(routedExperts), Share(routedExperts, sizes.Parameters), Text(moe.Active), Text(moe.Experts));
    }

    private static void SuggestNoKey(Site site, ModelSpec spec, ModelSizes sizes)
    {
        // Encoders keep no KV cache, and the saving is what the suggestion is about.
        if (spec.Attention.Projections != ProjectionKind.Full || spec.Attention.Latent is not null || spec.Attention.Compressed is not null || !spec.Causal) return;
        var noKey = ModelSizing.Compute(spec with { Attention = spec.Attention with { Projections = ProjectionKind.NoKey } });
        var saved = sizes.Parameters - noKey.Parameters;
        site.Report(DiagnosticDescriptors.KeysCouldBeValues, site.AttentionOrModel(),
            ImmutableDictionary<string, string?>.Empty.Add(HeadsProperty, Text(spec.Attention.Heads)),
            site.Type.Name, N(saved), Share(saved, sizes.Parameters), N(ModelSizing.InBf16(sizes.KvCacheElementsPerToken)), N(ModelSizing.InBf16(noKey.KvCacheElementsPerToken)));
    }

    private static void ReportCollapsingPairs(Site site, ModelSpec spec, ModelSizes sizes)
    {
        var a = spec.Attention;
        if (a.Heads != 1 || a.HeadDim < spec.Dim || a.Latent is not null || a.Compressed is not null) return;
        // A pair collapses only when both factors serve nothing else: W_K is shared with the values under
        // NoKey, and under Shared the one projection also feeds the value path.
        var pairs = new List<string>();
        if (a.Projections == ProjectionKind.Full) pairs.Add("W_Q·W_Kᵀ is a single matrix (W_K could be the identity)");
        if (a.Projections is ProjectionKind.Full or ProjectionKind.NoQuery) pairs.Add("W_V·W_O is a single matrix (W_O could be the identity)");
        if (pairs.Count == 0) return;
        var redundant = checked(pairs.Count * (long)spec.Dim * a.HeadDim * spec.AttentionLayers);
        site.Report(DiagnosticDescriptors.CollapsingProjections, site.Argument("Attention", "HeadDim") ?? site.Argument("Attention", "Heads") ?? site.AttentionOrModel(),
            null, Text(a.HeadDim), Text(spec.Dim), string.Join(" and ", pairs), N(redundant), Share(redundant, sizes.Parameters));
    }

    private static void ReportUntiedHead(Site site, ModelSpec spec, ModelSizes sizes)
    {
        if (spec.TiedEmbeddings || sizes.OutputHeadParameters < UntiedHeadShare * sizes.Parameters) return;
        site.Report(DiagnosticDescriptors.UntiedOutputHead, site.Argument("Model", "TiedEmbeddings") ?? site.Attribute("Model"),
            null, site.Type.Name, N(sizes.OutputHeadParameters), Share(sizes.OutputHeadParameters, sizes.Parameters));
    }

    private static void ReportKvBudget(Site site, ModelSpec spec, ModelSizes sizes)
    {
        if (spec.KvBudgetBytes <= 0) return;
        var bytes = CacheBytes(spec, sizes);
        if (bytes <= spec.KvBudgetBytes) return;

        var (advice, kvHeads) = FittingAlternative(spec);
        var properties = kvHeads is { } k
            ? ImmutableDictionary<string, string?>.Empty.Add(KvHeadsProperty, Text(k)).Add(HeadsProperty, Text(spec.Attention.Heads))
            : null;
        site.Report(DiagnosticDescriptors.KvCacheOverBudget, site.Argument("Model", "KvBudgetBytes") ?? site.Attribute("Model"),
            properties, site.Type.Name, N(spec.Context), N(bytes), N(spec.KvBudgetBytes), advice);
    }

    /// <summary>The mildest change that fits: the most KV heads in the same variant, else in NoKey.</summary>
    private static (string Advice, int? KvHeads) FittingAlternative(ModelSpec spec)
    {
        var a = spec.Attention;
        if (a.Latent is not null) return ("a smaller KvRank or RopeDim, fewer attention layers or a shorter Context would shrink it", null);
        if (a.Compressed is not null) return ("larger SparseRatio or HeavyRatio, a shorter SlidingWindow, fewer CSA layers or a shorter Context would shrink it", null);
        foreach (var projections in new[] { a.Projections, ProjectionKind.NoKey }.Distinct())
        {
            for (var kv = a.KvHeads - (projections == a.Projections ? 1 : 0); kv >= 1; kv--)
            {
                if (a.Heads % kv != 0) continue;
                var candidate = spec with { Attention = a with { Projections = projections, KvHeads = kv } };
                var fits = CacheBytes(candidate, ModelSizing.Compute(candidate));
                if (fits > spec.KvBudgetBytes) continue;
                return projections == a.Projections
                    ? ($"KvHeads = {kv} would fit ({N(fits)} bytes)", kv)
                    : ($"Projections.NoKey with KvHeads = {kv} would fit ({N(fits)} bytes)", null);
            }
        }
        var smallest = spec with { Attention = a with { Projections = ProjectionKind.NoKey, KvHeads = 1 } };
        return ($"no KvHeads or variant fits: even NoKey with one KV head needs {N(CacheBytes(smallest, ModelSizing.Compute(smallest)))} bytes; shorten Context or use fewer layers", null);
    }

    private static long CacheBytes(ModelSpec spec, ModelSizes sizes) => checked(ModelSizing.InBf16(sizes.KvCacheElementsPerToken) * spec.Context);

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
    private static string Share(long part, long whole) => (100.0 * part / whole).ToString("F1", CultureInfo.InvariantCulture) + "%";

    /// <summary>Finds attribute and argument locations on one model class and reports there.</summary>
    private readonly struct Site
    {
        private readonly SymbolAnalysisContext context;

        public Site(INamedTypeSymbol type, SymbolAnalysisContext context)
        {
            Type = type;
            this.context = context;
        }

        public INamedTypeSymbol Type { get; }

        public Location? Attribute(string name) => AttributeLocations.Of(Type, name, null, context.CancellationToken);

        public Location? AttentionOrModel() =>
            AttributeLocations.Syntax(Type, "Attention", context.CancellationToken)?.GetLocation() ?? Attribute("Model");

        public Location? Argument(string attribute, string argument) =>
            AttributeLocations.IfWritten(Type, attribute, argument, context.CancellationToken);

        public void Report(DiagnosticDescriptor descriptor, Location? location, ImmutableDictionary<string, string?>? properties, params object[] arguments) =>
            context.ReportDiagnostic(Diagnostic.Create(descriptor, location, properties, arguments));
    }
}
