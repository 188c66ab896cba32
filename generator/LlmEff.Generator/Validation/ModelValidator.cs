using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Microsoft.CodeAnalysis;
using LlmEff.Generator.Diagnostics;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;
using LlmEff.Generator.Parsing;
using LlmEff.Generator.Sizing;

namespace LlmEff.Generator.Validation;

/// <summary>
/// Applies defaults to a declaration and checks it. The generator emits only what validates; the analyzer
/// reports the same issues at the arguments that cause them, so both always agree.
/// </summary>
internal static class ModelValidator
{
    public sealed class Result
    {
        public Result(ModelSpec? spec, LayoutPlan? plan, ModelSizes? sizes, IReadOnlyList<ConfigurationIssue> issues)
        {
            Spec = spec;
            Plan = plan;
            Sizes = sizes;
            Issues = issues;
        }

        /// <summary>The resolved model, or null when an error makes it meaningless.</summary>
        public ModelSpec? Spec { get; }

        /// <summary>The layout of <see cref="Spec"/>, decided once for the back ends and sizing; null with it.</summary>
        public LayoutPlan? Plan { get; }

        /// <summary>Size facts of <see cref="Spec"/>, or null when they overflow.</summary>
        public ModelSizes? Sizes { get; }

        public IReadOnlyList<ConfigurationIssue> Issues { get; }
    }

    /// <summary>The deepest declaration accepted.</summary>
    public const int MaxLayers = 10_000;

    public static Result Validate(DeclaredModel declared, string className)
    {
        var issues = new List<ConfigurationIssue>();
        var model = new Reader(declared.Model, issues);
        var vocab = model.RequiredSize("Vocab");
        var dim = model.RequiredSize("Dim");
        var layers = model.RequiredSize("Layers");
        // The layout plan lists every layer, so an absurd depth would cost the IDE its memory; no published model
        // comes within two orders of magnitude of this bound (Llama 3.1 405B has 126 layers).
        if (layers > MaxLayers)
        {
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Model", "Layers", "Layers", layers,
                $"at most {MaxLayers.ToString("N0", CultureInfo.InvariantCulture)} layers"));
            layers = 0;
        }
        var context = model.RequiredSize("Context");
        var tied = model.Bool("TiedEmbeddings", true);
        var norm = model.Enum("Norm", NormKind.RmsNorm);
        var positions = model.Enum("Positions", PositionKind.Rope);
        var bias = model.Bool("Bias", false);
        var ropeTheta = model.Double("RopeTheta", 10000, v => v > 1, "must be greater than 1");
        var normEps = model.Double("NormEps", 1e-5, v => v > 0 && v < 1, "must lie in (0, 1)");
        var naming = model.Enum("Naming", NamingKind.Llama);
        var kvBudget = model.OptionalLong("KvBudgetBytes");
        var causal = model.Bool("Causal", true);
        var checkpointing = model.Bool("Checkpointing", false);
        var init = model.Enum("Init", InitKind.Gpt2);
        if (!causal && kvBudget > 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Model", "KvBudgetBytes", "KvBudgetBytes",
                "an encoder (Causal = false) reads whole sequences at once and keeps no KV cache"));
        if (positions != PositionKind.Rope && model.Has("RopeTheta"))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Model", "RopeTheta", "RopeTheta",
                $"the model uses Positions.{positions}, not rotary positions"));

        var attention = ResolveAttention(new Reader(declared.Attention, issues), declared.Attention.Present, dim, positions, issues);
        if (attention is not null && attention.ShareKvEvery > layers && layers > 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Attention", "ShareKvEvery", "ShareKvEvery", attention.ShareKvEvery,
                $"groups cannot be longer than the model's {layers} layers"));
        var mlp = ResolveMlp(new Reader(declared.Mlp, issues), dim, issues);
        var moe = declared.MoE.Present && mlp is not null ? ResolveMoe(new Reader(declared.MoE, issues), layers, mlp, issues) : null;
        var quant = declared.Quant.Present ? ResolveQuant(new Reader(declared.Quant, issues), moe is not null, issues) : null;

        var compressedDeclared = attention is not null && declared.Attention.Named.TryGetValue("Kind", out var kindWritten) && kindWritten is int kindNumber
            && kindNumber == (int)AttentionForm.Compressed;
        if (compressedDeclared)
        {
            var compressed = ResolveCompressed(new Reader(declared.Attention, issues), declared.CompressedLayers, attention!, dim, layers, context, issues);
            attention = compressed is null ? null : attention! with { KvHeads = 1, Compressed = compressed };
        }
        else if (declared.CompressedLayers.Present)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.InvalidCompressedLayers, "CompressedLayers", null, "[CompressedLayers] lists CSA and HCA layers",
                "they are kinds of compressed attention; declare [Attention(Kind = AttentionKind.Compressed, ...)]"));
        var hybrid = ResolveHybrid(declared, layers, issues);
        var sparse = declared.SparseAttention.Present ? ResolveSparse(new Reader(declared.SparseAttention, issues), context, issues) : null;
        var residual = declared.Residual.Present ? ResolveResidual(new Reader(declared.Residual, issues), issues) : null;
        // Features that cannot go together are decided by one table, nowhere else.
        issues.AddRange(IncompatibleCombinations.Find(declared));

        // An attribute whose arguments the compiler already rejects (Experts = null) resolves to nothing: emit no stand-in.
        if (HasErrors(issues) || attention is null || mlp is null || (declared.MoE.Present && moe is null)
            || (declared.SparseAttention.Present && sparse is null) || (declared.Residual.Present && residual is null) || ((declared.Layers.Present || declared.ShortConv.Present) && hybrid is null))
            return new Result(null, null, null, issues);

        var spec = new ModelSpec(vocab, dim, layers, context, tied, norm, positions, bias, ropeTheta, normEps, naming, attention, mlp, causal ? kvBudget : 0, causal, moe, quant, checkpointing,
            hybrid, sparse, init, residual);
        if (quant is not null)
        {
            CheckQuantFits(spec, quant, declared.Quant, className, issues);
            if (HasErrors(issues)) return new Result(null, null, null, issues);
        }
        try
        {
            var plan = LayoutPlanner.Plan(spec);
            return new Result(spec, plan, ModelSizing.Compute(plan), issues);
        }
        catch (OverflowException)
        {
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.SizeOverflow, declared.Model.Name, null, className,
                $"Vocab = {vocab}, Dim = {dim}, Layers = {layers}, Context = {context}" + (residual is { } r ? $", Streams = {r.Streams}" : "")));
            return new Result(null, null, null, issues);
        }
    }

    private static bool HasErrors(List<ConfigurationIssue> issues) => issues.Any(i => i.Descriptor.DefaultSeverity == DiagnosticSeverity.Error);

    private static QuantSpec ResolveQuant(Reader reader, bool hasExperts, List<ConfigurationIssue> issues)
    {
        var format = reader.ConstructorEnum(QuantFormatKind.Mxfp4, "Format");
        var from = reader.Double("From", 0, v => v >= 0 && v < 1, "must lie in [0, 1): the fraction of training steps after which fake quantization switches on");
        // Experts hold most of a mixture's memory, and quantizing them alone keeps attention exact.
        var target = reader.Flags("Target", hasExperts ? QuantTargetKind.Experts : QuantTargetKind.AllLinear);
        var clipped = reader.Bool("Clipped", false);
        var groupSize = 0;
        if (reader.Has("GroupSize"))
        {
            var fixedBlocks = new QuantSpec(format, target, from, clipped, 0);
            if (format != QuantFormatKind.Int4)
            {
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Quant", "GroupSize", "GroupSize",
                    format == QuantFormatKind.Fp8E4M3
                        ? "FP8 E4M3 has one scale for the whole tensor"
                        : $"{fixedBlocks.FormatName} has a fixed block size of {fixedBlocks.BlockSize}"));
            }
            else
            {
                groupSize = reader.OptionalSize("GroupSize", 0);
                if (groupSize > 0 && groupSize % 2 != 0)
                    issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Quant", "GroupSize", "GroupSize", groupSize,
                        "two 4-bit codes share a byte, so a group must hold an even number of values"));
            }
        }
        return new QuantSpec(format, target, from, clipped, groupSize);
    }

    /// <summary>The target must name parts the model has, and the blocks must divide every targeted input width.</summary>
    private static void CheckQuantFits(ModelSpec spec, QuantSpec quant, DeclaredAttribute declared, string className, List<ConfigurationIssue> issues)
    {
        var linears = ModelSizing.Linears(spec).ToList();
        if (declared.Named.ContainsKey("Target") && quant.Target != QuantTargetKind.AllLinear)
        {
            if (quant.Targets(QuantTargetKind.Experts) && !linears.Any(l => l.Target == QuantTargetKind.Experts))
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.QuantTargetMissing, "Quant", "Target",
                    "routed experts (QuantTarget.Experts)", className, "it declares no [MoE]"));
            if (quant.Targets(QuantTargetKind.Mlp) && !linears.Any(l => l.Target == QuantTargetKind.Mlp))
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.QuantTargetMissing, "Quant", "Target",
                    "dense MLPs or shared experts (QuantTarget.Mlp)", className, "every layer routes to experts and none is shared"));
        }
        var block = quant.BlockSize;
        if (block == 0) return;
        var misfits = linears.Where(l => quant.Targets(l.Target) && l.Inputs % block != 0)
            .GroupBy(l => l.InputName)
            .Select(g => $"{g.Key} = {g.First().Inputs.ToString(CultureInfo.InvariantCulture)} ({string.Join(", ", g.Select(l => l.Role).Distinct())})")
            .ToList();
        if (misfits.Count > 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.QuantBlockDoesNotDivide, "Quant",
                quant.Format == QuantFormatKind.Int4 && declared.Named.ContainsKey("GroupSize") ? "GroupSize" : ConfigurationIssue.ConstructorArgument,
                quant.FormatName, block, string.Join("; ", misfits)));
    }

    private static AttentionSpec? ResolveAttention(Reader reader, bool present, int dim, PositionKind positions, List<ConfigurationIssue> issues)
    {
        var projections = reader.ConstructorEnum(ProjectionKind.Full, "Projections");
        int heads;
        if (present)
        {
            heads = reader.RequiredSize("Heads");
        }
        else
        {
            // Without [Attention], 64-wide heads; a width that is no multiple of 64 must say what it wants.
            heads = dim > 0 && dim % 64 == 0 ? dim / 64 : 0;
            if (dim > 0 && heads == 0)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Model", "Dim", "Dim", dim,
                    "without [Attention] heads are 64 wide, so Dim must be a multiple of 64; declare [Attention(Heads = ...)]"));
        }
        var kvHeads = reader.OptionalSize("KvHeads", heads);
        var headDim = reader.OptionalSize("HeadDim", 0);
        if (heads <= 0 || kvHeads <= 0 || headDim < 0 || dim <= 0) return null;

        if (kvHeads > heads)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Attention", "KvHeads", "KvHeads", kvHeads,
                $"a model cannot have more key/value heads than query heads ({heads})"));
        else if (heads % kvHeads != 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.HeadsNotDivisibleByKvHeads, "Attention", "KvHeads", heads, kvHeads));

        if (headDim == 0)
        {
            if (dim % heads != 0)
            {
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.DimNotDivisibleByHeads, "Attention", "Heads", dim, heads));
                return null;
            }
            headDim = dim / heads;
        }
        if (positions == PositionKind.Rope && headDim % 2 != 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Attention", reader.Has("HeadDim") ? "HeadDim" : "Heads",
                "HeadDim", headDim, "rotary positions rotate channel pairs, so the head width must be even"));
        var shareKvEvery = reader.OptionalSize("ShareKvEvery", 1);
        var attention = new AttentionSpec(projections, heads, kvHeads, headDim, ShareKvEvery: Math.Max(1, shareKvEvery));
        var kind = reader.Enum("Kind", AttentionForm.Standard);
        if (kind == AttentionForm.Latent)
            return ResolveLatent(reader, attention, dim, issues);
        // Compressed attention's own settings are read with its layer lists (ResolveCompressed).
        if (kind == AttentionForm.Compressed) return attention;
        foreach (var latentOnly in new[] { "KvRank", "RopeDim", "QRank" }.Where(reader.Has))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", latentOnly, latentOnly,
                "only latent attention (Kind = AttentionKind.Latent) compresses keys, values or queries"));
        WarnCompressedOnly(reader, "Standard", issues);
        if (reader.Bool("QkNorm", false))
            attention = attention with { QkNorm = true };
        if (reader.Bool("BreakSymmetry", false))
        {
            if (attention.HasSymmetricScores) return attention with { BreakSymmetry = true };
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", "BreakSymmetry", "BreakSymmetry",
                $"{projections} attention has distinct queries and keys, so its scores are not symmetric"));
        }
        return attention;
    }

    /// <summary>Settings only compressed attention reads; written on another kind they are LLM013.</summary>
    private static readonly string[] CompressedOnly = { "OutputGroups", "OutputRank", "SlidingWindow" };

    private static void WarnCompressedOnly(Reader reader, string kind, List<ConfigurationIssue> issues)
    {
        foreach (var name in CompressedOnly.Where(reader.Has))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", name, name,
                $"only compressed attention (Kind = AttentionKind.Compressed) has output groups and a sliding window; this model's attention is {kind}"));
    }

    /// <summary>
    /// DeepSeek V4's attention: the shape from [Attention], the layer kinds from [CompressedLayers] (none: every layer
    /// sliding-window only). Guards mirror what <c>CompressedAttentionOptions.Validate</c> and the indexer would throw,
    /// so a declaration that validates never fails when the module is built.
    /// </summary>
    private static CompressedSpec? ResolveCompressed(Reader reader, DeclaredAttribute layersAttribute, AttentionSpec a, int dim, int layers, int context,
        List<ConfigurationIssue> issues)
    {
        var ropeDim = reader.RequiredSize("RopeDim");
        var qRank = reader.RequiredSize("QRank");
        var groups = reader.RequiredSize("OutputGroups");
        var outputRank = reader.RequiredSize("OutputRank");
        var window = reader.RequiredSize("SlidingWindow");
        if (reader.Has("KvRank"))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", "KvRank", "KvRank",
                "compressed attention caches its key = value head and compressed entries, not a latent"));
        if (reader.Has("KvHeads"))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", "KvHeads", "KvHeads",
                "compressed attention has one key head, which is also the value head, shared by every query head"));
        if (ropeDim > 0 && ropeDim % 2 != 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Attention", "RopeDim", "RopeDim", ropeDim,
                "rotary positions rotate channel pairs, so the width must be even"));
        if (ropeDim > a.HeadDim)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.CompressedShapeMismatch, "Attention", "RopeDim", "RopeDim", ropeDim,
                $"HeadDim = {a.HeadDim}", "the rotary channels are the last RopeDim of each head, so there cannot be more of them than the head is wide"));
        if (groups > 0 && a.Heads % groups != 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.CompressedShapeMismatch, "Attention", "OutputGroups", "OutputGroups", groups,
                $"Heads = {a.Heads}", "the grouped output projection splits the heads into equal groups, so OutputGroups must divide Heads"));
        // A rank must compress: below the input width it projects from.
        if (qRank > 0 && dim > 0 && qRank >= dim)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.LatentRankTooLarge, "Attention", "QRank", "QRank", qRank, "Dim", dim));
        if (outputRank > 0 && groups > 0 && a.Heads % groups == 0)
        {
            var groupWidth = (long)a.Heads / groups * a.HeadDim;
            if (outputRank >= groupWidth)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.LatentRankTooLarge, "Attention", "OutputRank", "OutputRank", outputRank,
                    "Heads · HeadDim / OutputGroups", groupWidth));
        }
        if (window > 0 && context > 0 && window >= context)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", "SlidingWindow", "SlidingWindow",
                $"a window of {window} tokens holds the whole context of {context}, so no compressed entry is ever needed"));

        var lists = new Reader(layersAttribute, issues);
        var sparseRatio = lists.OptionalSize("SparseRatio", 4);
        var heavyRatio = lists.OptionalSize("HeavyRatio", 128);
        var sparse = CompressedList(layersAttribute, "Sparse", layers, issues);
        var heavy = CompressedList(layersAttribute, "Heavy", layers, issues);
        if (sparse is not null && heavy is not null)
        {
            var both = sparse.Intersect(heavy).ToList();
            if (both.Count > 0)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.InvalidCompressedLayers, "CompressedLayers", "Heavy", $"Heavy = \"{layersAttribute.Named["Heavy"]}\"",
                    $"layer {both[0]} is also in Sparse; a layer is CSA or HCA, not both"));
        }
        foreach (var (name, ratio, used) in new[] { ("SparseRatio", sparseRatio, sparse is { Count: > 0 }), ("HeavyRatio", heavyRatio, heavy is { Count: > 0 }) })
        {
            if (ratio == 1)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "CompressedLayers", name, name, ratio,
                    "a compressed entry pools a window of at least 2 tokens (1 would cache one entry per token, more than the window it replaces)"));
            else if (used && ratio > context && context > 0)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "CompressedLayers", name, name,
                    $"no window of {ratio} tokens completes within the context of {context}, so those layers never see a compressed entry"));
        }

        int topK = 0, indexerHeads = 0, indexerDim = 0;
        var precision = lists.Enum("IndexerPrecision", IndexerPrecisionKind.Fp4);
        var bf16Scores = lists.Bool("Bf16Scores", false);
        if (sparse is { Count: > 0 })
        {
            topK = lists.RequiredSize("TopK");
            indexerHeads = lists.RequiredSize("IndexerHeads");
            indexerDim = lists.RequiredSize("IndexerDim");
            // The Hadamard rotation pairs channels recursively, and FP4/FP8 scale whole blocks of 32/128 values.
            var block = precision switch { IndexerPrecisionKind.Fp4 => 32, IndexerPrecisionKind.Fp8 => 128, _ => 1 };
            if (indexerDim > 0 && (indexerDim & (indexerDim - 1)) != 0)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.CompressedShapeMismatch, "CompressedLayers", "IndexerDim", "IndexerDim", indexerDim,
                    "the Hadamard rotation", "it rotates the index queries and keys by a Hadamard matrix, which exists here for powers of two only"));
            else if (indexerDim > 0 && indexerDim % block != 0)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.CompressedShapeMismatch, "CompressedLayers", "IndexerDim", "IndexerDim", indexerDim,
                    $"IndexerPrecision.{precision}", $"{precision} scales blocks of {block} values, so an index key must hold whole blocks"));
            if (indexerDim > 0 && ropeDim > indexerDim)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.CompressedShapeMismatch, "Attention", "RopeDim", "RopeDim", ropeDim,
                    $"IndexerDim = {indexerDim}", "the index keys carry the same rotary channels at their end, so they cannot be narrower than RopeDim"));
            if (topK > 0 && sparseRatio >= 2 && context > 0 && topK >= context / sparseRatio)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "CompressedLayers", "TopK", "TopK",
                    $"a context of {context} tokens makes at most {context / sparseRatio} entries of {sparseRatio}, so every query keeps them all and the indexer only adds cost"));
        }
        else if (sparse is not null)
        {
            foreach (var name in new[] { "TopK", "IndexerHeads", "IndexerDim", "IndexerPrecision", "Bf16Scores", "SparseRatio" }.Where(lists.Has))
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "CompressedLayers", name, name, "no layer is listed in Sparse, so there is no indexer"));
        }
        if (heavy is { Count: 0 } && lists.Has("HeavyRatio"))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "CompressedLayers", "HeavyRatio", "HeavyRatio", "no layer is listed in Heavy"));

        if (ropeDim <= 0 || qRank <= 0 || groups <= 0 || outputRank <= 0 || window <= 0 || sparse is null || heavy is null
            || sparseRatio <= 0 || heavyRatio <= 0 || (sparse.Count > 0 && (topK <= 0 || indexerHeads <= 0 || indexerDim <= 0)))
            return null;
        return new CompressedSpec(ropeDim, qRank, groups, outputRank, window, sparse.ToEquatableArray(), heavy.ToEquatableArray(), sparseRatio, heavyRatio,
            topK, indexerHeads, indexerDim, precision, bf16Scores);
    }

    /// <summary>One [CompressedLayers] list: absent is none; otherwise parsed as [Layers] lists are (LLM022 when invalid).</summary>
    private static List<int>? CompressedList(DeclaredAttribute attribute, string name, int layers, List<ConfigurationIssue> issues)
    {
        if (attribute.Erroneous.Contains(name)) return null;
        if (!attribute.Named.TryGetValue(name, out var written) || written is null) return new List<int>();
        var text = written as string;
        var parsed = ParseLayerList(text, layers, out var problem);
        if (parsed is null)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.InvalidCompressedLayers, "CompressedLayers", name, $"{name} = \"{text}\"",
                problem!.Replace("attention layers", $"{(name == "Sparse" ? "CSA" : "HCA")} layers")));
        return parsed;
    }

    /// <summary>DeepSeek's multi-head latent attention: every head has its own keys and values, expanded from the latent.</summary>
    private static AttentionSpec? ResolveLatent(Reader reader, AttentionSpec standard, int dim, List<ConfigurationIssue> issues)
    {
        var kvRank = reader.RequiredSize("KvRank");
        var ropeDim = reader.RequiredSize("RopeDim");
        var qRank = reader.OptionalCount("QRank", 0);
        WarnCompressedOnly(reader, "Latent", issues);
        var a = standard;
        if (reader.Has("KvHeads") && a.KvHeads != a.Heads)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", "KvHeads", "KvHeads",
                "latent attention caches one latent per token whatever the heads, and expands it to keys and values for every head"));
        if (reader.Bool("QkNorm", false))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", "QkNorm", "QkNorm",
                "latent attention normalises its latent vectors instead (kv_a_layernorm, q_a_layernorm)"));
        if (reader.Bool("BreakSymmetry", false))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "Attention", "BreakSymmetry", "BreakSymmetry",
                "latent attention has distinct queries and keys, so its scores are not symmetric"));
        if (ropeDim > 0 && ropeDim % 2 != 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Attention", "RopeDim", "RopeDim", ropeDim,
                "rotary positions rotate channel pairs, so the width must be even"));
        // A rank must compress: below the input width and below what it is expanded back to.
        if (kvRank > 0)
        {
            var expanded = 2L * a.Heads * a.HeadDim;
            if (kvRank >= dim || kvRank >= expanded)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.LatentRankTooLarge, "Attention", "KvRank", "KvRank", kvRank,
                    kvRank >= dim ? "Dim" : "Heads · 2 · HeadDim", kvRank >= dim ? dim : expanded));
        }
        if (qRank > 0 && ropeDim > 0)
        {
            var expanded = (long)a.Heads * (a.HeadDim + ropeDim);
            if (qRank >= dim || qRank >= expanded)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.LatentRankTooLarge, "Attention", "QRank", "QRank", qRank,
                    qRank >= dim ? "Dim" : "Heads · (HeadDim + RopeDim)", qRank >= dim ? dim : expanded));
        }
        if (kvRank <= 0 || ropeDim <= 0 || qRank < 0) return null;
        return a with { KvHeads = a.Heads, Latent = new LatentSpec(kvRank, ropeDim, qRank) };
    }

    /// <summary>[Layers] and [ShortConv] together make a hybrid; either alone is an error.</summary>
    private static HybridSpec? ResolveHybrid(DeclaredModel declared, int layers, List<ConfigurationIssue> issues)
    {
        if (!declared.Layers.Present && !declared.ShortConv.Present) return null;
        var conv = new Reader(declared.ShortConv, issues);
        var kernel = conv.OptionalSize("Kernel", 3);
        if (!declared.ShortConv.Present)
        {
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.InvalidLayerLayout, "Layers", null, "[Layers] names the attention layers",
                "the other layers need a block kind; add [ShortConv(Kernel = 3)]"));
            return null;
        }
        if (!declared.Layers.Present)
        {
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.InvalidLayerLayout, "ShortConv", null, "[ShortConv] replaces attention in some layers",
                "say which layers keep attention with [Layers(Attention = \"...\")]"));
            return null;
        }
        if (declared.Layers.Erroneous.Contains("Attention")) return null;
        declared.Layers.Named.TryGetValue("Attention", out var written);
        var text = written as string;
        var parsed = ParseLayerList(text, layers, out var problem);
        if (parsed is null)
        {
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.InvalidLayerLayout, "Layers", declared.Layers.Named.ContainsKey("Attention") ? "Attention" : null,
                text is null ? "Layers.Attention is missing" : $"Attention = \"{text}\"", problem!));
            return null;
        }
        if (parsed.Count == layers)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "ShortConv", null, "[ShortConv]",
                $"[Layers] makes all {layers} layers attention, so no layer is a short convolution"));
        return kernel > 0 ? new HybridSpec(parsed.ToEquatableArray(), kernel) : null;
    }

    /// <summary>"2,6,10" or "0-3, 8" → ascending distinct layers; null with <paramref name="problem"/> when invalid.</summary>
    internal static List<int>? ParseLayerList(string? text, int layers, out string? problem)
    {
        problem = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            problem = "list the 0-based attention layers, e.g. \"2,6,10\" or \"0-3,8\"";
            return null;
        }
        var result = new List<int>();
        foreach (var raw in text!.Split(','))
        {
            var item = raw.Trim();
            // A dash after the first character separates a range; a leading one is a sign ("-1" is reported out of range).
            var dash = item.Length > 1 ? item.IndexOf('-', 1) : -1;
            int first, last;
            if (dash > 0)
            {
                if (!int.TryParse(item.Substring(0, dash).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out first) ||
                    !int.TryParse(item.Substring(dash + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out last) || last < first)
                {
                    problem = $"'{item}' is not a range a-b of layer numbers with a ≤ b";
                    return null;
                }
            }
            else if (int.TryParse(item, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out first))
                last = first;
            else
            {
                problem = $"'{item}' is not a layer number";
                return null;
            }
            for (long layer = first; layer <= last; layer++)
            {
                if (layer < 0 || layer >= layers)
                {
                    problem = $"layer {layer} does not exist: layers are numbered 0 to {layers - 1}";
                    return null;
                }
                if (result.Contains((int)layer))
                {
                    problem = $"layer {layer} is listed twice";
                    return null;
                }
                result.Add((int)layer);
            }
        }
        result.Sort();
        return result;
    }

    /// <summary>DeepSeek-V3.2's lightning indexer, in front of standard or latent attention.</summary>
    private static SparseSpec? ResolveSparse(Reader reader, int context, List<ConfigurationIssue> issues)
    {
        var heads = reader.RequiredSize("IndexerHeads");
        var width = reader.RequiredSize("IndexerDim");
        var topK = reader.RequiredSize("TopK");
        if (topK >= context && context > 0)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "SparseAttention", "TopK", "TopK",
                $"at or beyond the context of {context} tokens every query attends to its whole past, so the indexer only adds cost"));
        return heads > 0 && width > 0 && topK > 0 ? new SparseSpec(heads, width, topK) : null;
    }

    /// <summary>DeepSeek V4's residual streams: how many, and the Sinkhorn iterations of their mixing matrices.</summary>
    private static ResidualSpec? ResolveResidual(Reader reader, List<ConfigurationIssue> issues)
    {
        var streams = reader.RequiredSize("Streams");
        var iterations = reader.OptionalSize("SinkhornIterations", 20);
        // One stream makes the mixing matrix the 1×1 matrix 1: what remains is a gated residual, not hyper-connections.
        if (streams == 1)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.SingleResidualStream, "Residual", "Streams"));
        return streams > 0 && iterations > 0 ? new ResidualSpec(streams, iterations) : null;
    }

    private static MlpSpec? ResolveMlp(Reader reader, int dim, List<ConfigurationIssue> issues)
    {
        var activation = reader.Enum("Activation", ActivationKind.SwiGlu);
        if (dim <= 0) return null;
        var fallback = activation == ActivationKind.Gelu
            ? 4L * dim
            : (8L * dim / 3 + 63) / 64 * 64; // Llama's rule of thumb: same parameters as a 4·Dim GELU MLP.
        if (!reader.Has("Hidden") && fallback > int.MaxValue)
        {
            // Found by the fuzz tests: the default width overflowed silently and nothing was generated.
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "Model", "Dim", "Dim", dim,
                $"the default MLP width for it ({fallback.ToString("N0", CultureInfo.InvariantCulture)}) exceeds the largest size, {int.MaxValue.ToString("N0", CultureInfo.InvariantCulture)}; declare [Mlp(Hidden = ...)]"));
            return null;
        }
        var hidden = reader.OptionalSize("Hidden", (int)fallback);
        double? clamp = reader.Has("ClampLimit")
            ? reader.Double("ClampLimit", 0, v => v > 0, "SwiGLU clamping keeps the gate at most the limit and the up branch within ±limit, so the limit must be positive")
            : null;
        return hidden > 0 ? new MlpSpec(hidden, activation, clamp) : null;
    }

    private static MoeSpec? ResolveMoe(Reader reader, int layers, MlpSpec mlp, List<ConfigurationIssue> issues)
    {
        var experts = reader.RequiredSize("Experts");
        var active = reader.RequiredSize("Active");
        if (experts > 0 && active > experts)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "MoE", "Active", "Active", active,
                $"a token cannot use more than the layer's {experts} experts"));
        var shared = reader.OptionalCount("Shared", 0);
        var expertHidden = reader.OptionalSize("ExpertHidden", mlp.Hidden);
        var firstLayer = reader.OptionalCount("FirstLayer", 0);
        if (layers > 0 && firstLayer >= layers)
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "MoE", "FirstLayer", "FirstLayer", firstLayer,
                $"layers are numbered 0 to {layers - 1}, so no layer would have experts"));
        var router = reader.Enum("Router", RouterKind.Softmax);
        var balance = reader.Enum("Balance", BalanceKind.AuxLoss);
        var normalize = reader.Bool("NormalizeWeights", true);
        var routedScale = reader.Double("RoutedScale", 1.0, v => v > 0, "must be positive");
        var auxLossWeight = reader.Double("AuxLossWeight", 0.01, v => v >= 0, "must be zero or positive");
        var biasUpdateRate = reader.Double("BiasUpdateRate", 0.001, v => v >= 0, "must be zero or positive");
        var sequenceAuxLossWeight = reader.Double("SequenceAuxLossWeight", 0, v => v >= 0, "must be zero or positive");
        if (balance != BalanceKind.AuxLoss && reader.Has("AuxLossWeight"))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "MoE", "AuxLossWeight", "AuxLossWeight",
                $"the layer balances with ExpertBalance.{balance}, not an auxiliary loss"));
        if (balance != BalanceKind.AuxLossFree && reader.Has("BiasUpdateRate"))
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "MoE", "BiasUpdateRate", "BiasUpdateRate",
                $"the layer balances with ExpertBalance.{balance}, which keeps no selection bias"));
        var hashLayers = reader.OptionalCount("HashLayers", 0);
        var routedLayers = layers - Math.Max(firstLayer, 0);
        if (hashLayers > 0 && layers > 0 && firstLayer >= 0 && firstLayer < layers)
        {
            if (hashLayers > routedLayers)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, "MoE", "HashLayers", "HashLayers", hashLayers,
                    $"only {routedLayers} layer{(routedLayers == 1 ? " has" : "s have")} experts (layers {firstLayer} to {layers - 1})"));
            else if (hashLayers == routedLayers)
            {
                // Hash layers keep no selection bias and add no balancing loss (V4's hash gates have no bias): with every
                // routed layer hashed, the balancing settings steer nothing.
                if (reader.Has("Balance") && balance != BalanceKind.None)
                    issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "MoE", "Balance", "Balance",
                        $"all {routedLayers} layers with experts are hash-routed (HashLayers = {hashLayers}), and a fixed table's load cannot be balanced"));
                if (sequenceAuxLossWeight > 0)
                    issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "MoE", "SequenceAuxLossWeight", "SequenceAuxLossWeight",
                        $"all {routedLayers} layers with experts are hash-routed (HashLayers = {hashLayers}), and a fixed table's load cannot be balanced"));
            }
            if (active > 0 && active == experts)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.IgnoredSetting, "MoE", "HashLayers", "HashLayers",
                    $"every token already uses all {experts} experts (Active = {active}), so the table has nothing to choose"));
        }
        if (experts <= 0 || active <= 0 || expertHidden <= 0 || shared < 0 || firstLayer < 0 || hashLayers < 0) return null;
        return new MoeSpec(experts, active, shared, expertHidden, firstLayer, router, balance, normalize, routedScale, auxLossWeight, biasUpdateRate, sequenceAuxLossWeight, hashLayers);
    }

    /// <summary>Typed access to one attribute's arguments that records what is wrong with them.</summary>
    private sealed class Reader
    {

        private readonly DeclaredAttribute attribute;
        private readonly List<ConfigurationIssue> issues;

        public Reader(DeclaredAttribute attribute, List<ConfigurationIssue> issues)
        {
            this.attribute = attribute;
            this.issues = issues;
        }

        public bool Has(string name) => attribute.Named.ContainsKey(name);

        public int RequiredSize(string name)
        {
            if (System.Linq.Enumerable.Contains(attribute.Erroneous, name)) return 0;
            if (!attribute.Named.TryGetValue(name, out var value))
            {
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.MissingSize, attribute.Name, null, attribute.Name, name));
                return 0;
            }
            return Positive(name, value);
        }

        public int OptionalSize(string name, int fallback) =>
            attribute.Named.TryGetValue(name, out var value) ? Positive(name, value) : fallback;

        /// <summary>A count that may be zero (shared experts, a layer index).</summary>
        public int OptionalCount(string name, int fallback)
        {
            if (!attribute.Named.TryGetValue(name, out var value)) return fallback;
            var number = value is int i ? i : -1;
            if (number < 0)
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, attribute.Name, name, name, number, "must be zero or positive"));
            return number;
        }

        private int Positive(string name, object? value)
        {
            var number = value is int i ? i : 0;
            if (number <= 0) issues.Add(new ConfigurationIssue(DiagnosticDescriptors.NonPositiveSize, attribute.Name, name, name, number));
            return number;
        }

        public long OptionalLong(string name)
        {
            if (!attribute.Named.TryGetValue(name, out var value)) return 0;
            var number = value is long l ? l : value is int i ? i : 0;
            if (number <= 0) issues.Add(new ConfigurationIssue(DiagnosticDescriptors.NonPositiveSize, attribute.Name, name, name, number));
            return number;
        }

        public bool Bool(string name, bool fallback) =>
            attribute.Named.TryGetValue(name, out var value) && value is bool b ? b : fallback;

        public double Double(string name, double fallback, Func<double, bool> valid, string rule)
        {
            if (!attribute.Named.TryGetValue(name, out var value)) return fallback;
            var number = value is double d ? d : System.Convert.ToDouble(value, CultureInfo.InvariantCulture);
            if (!valid(number) || double.IsNaN(number) || double.IsInfinity(number))
                issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, attribute.Name, name, name, number.ToString("R", CultureInfo.InvariantCulture), rule));
            return number;
        }

        public T Enum<T>(string name, T fallback) where T : struct, Enum =>
            attribute.Named.TryGetValue(name, out var value) ? Defined(name, value, fallback) : fallback;

        /// <summary>A [Flags] value: a non-empty combination of the defined flags.</summary>
        public T Flags<T>(string name, T fallback) where T : struct, Enum
        {
            if (!attribute.Named.TryGetValue(name, out var value)) return fallback;
            var defined = System.Enum.GetValues(typeof(T)).Cast<object>().Aggregate(0, (bits, flag) => bits | System.Convert.ToInt32(flag, CultureInfo.InvariantCulture));
            if (value is int number && number != 0 && (number & ~defined) == 0) return (T)(object)number;
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, attribute.Name, name, name, value ?? "null",
                $"not a combination of {typeof(T).Name.Replace("Kind", "")} flags"));
            return fallback;
        }

        public T ConstructorEnum<T>(T fallback, string displayName) where T : struct, Enum =>
            attribute.FirstConstructorArgument is { } value ? Defined(displayName, value, fallback, constructor: true) : fallback;

        private T Defined<T>(string name, object? value, T fallback, bool constructor = false) where T : struct, Enum
        {
            if (value is int number && System.Enum.IsDefined(typeof(T), number)) return (T)(object)number;
            issues.Add(new ConfigurationIssue(DiagnosticDescriptors.ValueOutOfRange, attribute.Name, constructor ? ConfigurationIssue.ConstructorArgument : name, name,
                value ?? "null", $"not a defined {typeof(T).Name.Replace("Kind", "")} value"));
            return fallback;
        }
    }
}
