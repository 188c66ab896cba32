using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Generator.Diagnostics;
using LlmEff.Generator.Model;
using LlmEff.Generator.Parsing;

namespace LlmEff.Generator.Validation;

/// <summary>
/// What a declaration says about the features that can exclude each other, with the attributes' defaults applied.
/// Read from the declaration as written, so a combination is reported even when another error stops resolution.
/// A value the compiler or LLM007 already rejects (an undefined enum, a non-positive ShareKvEvery) reads as its default.
/// </summary>
internal sealed class DeclaredFeatures
{
    private DeclaredFeatures(DeclaredModel declared)
    {
        Checkpointing = Bool(declared.Model, "Checkpointing", false);
        Causal = Bool(declared.Model, "Causal", true);
        Bias = Bool(declared.Model, "Bias", false);
        TiedEmbeddings = Bool(declared.Model, "TiedEmbeddings", true);
        PyTorchInit = Defined(declared.Model.Named.TryGetValue("Init", out var init) ? init : null, InitKind.Gpt2) == InitKind.PyTorchDefault;
        Naming = Defined(declared.Model.Named.TryGetValue("Naming", out var naming) ? naming : null, NamingKind.Llama);
        Positions = Defined(declared.Model.Named.TryGetValue("Positions", out var positions) ? positions : null, PositionKind.Rope);
        Projections = Defined(declared.Attention.FirstConstructorArgument, ProjectionKind.Full);
        Latent = Defined(declared.Attention.Named.TryGetValue("Kind", out var kind) ? kind : null, AttentionForm.Standard) == AttentionForm.Latent;
        Compressed = Defined(kind, AttentionForm.Standard) == AttentionForm.Compressed;
        CompressedSparse = declared.CompressedLayers.Named.TryGetValue("Sparse", out var sparse) && sparse is string list && list.Trim().Length > 0;
        HybridLayers = declared.Layers.Present;
        ShareKvEvery = declared.Attention.Named.TryGetValue("ShareKvEvery", out var share) && share is int n && n > 1 ? n : 1;
        QkNorm = Bool(declared.Attention, "QkNorm", false);
        BreakSymmetry = Bool(declared.Attention, "BreakSymmetry", false);
        MoE = declared.MoE.Present;
        ShortConv = declared.ShortConv.Present;
        SparseAttention = declared.SparseAttention.Present;
        ResidualStreams = declared.Residual.Present;
        Activation = Defined(declared.Mlp.Named.TryGetValue("Activation", out var activation) ? activation : null, ActivationKind.SwiGlu);
        Clamped = declared.Mlp.Named.ContainsKey("ClampLimit");
        if (declared.Quant.Present)
        {
            // Same default as the validator: experts alone when the model has them, else every linear layer.
            QuantTargetWritten = declared.Quant.Named.TryGetValue("Target", out var target) && target is int bits && bits != 0 && (bits & ~(int)QuantTargetKind.AllLinear) == 0;
            QuantTarget = QuantTargetWritten ? (QuantTargetKind)(int)target! : MoE ? QuantTargetKind.Experts : QuantTargetKind.AllLinear;
        }
    }

    public static DeclaredFeatures Of(DeclaredModel declared) => new(declared);

    public bool Checkpointing { get; }
    public bool Causal { get; }
    public bool Bias { get; }
    public bool TiedEmbeddings { get; }

    /// <summary>Init = InitScheme.PyTorchDefault.</summary>
    public bool PyTorchInit { get; }
    public NamingKind Naming { get; }
    public PositionKind Positions { get; }
    public ProjectionKind Projections { get; }
    public bool Latent { get; }

    /// <summary>Kind = AttentionKind.Compressed (DeepSeek V4's attention).</summary>
    public bool Compressed { get; }

    /// <summary>[CompressedLayers] lists compressed sparse (CSA) layers, whose indexers train on a loss of their own.</summary>
    public bool CompressedSparse { get; }

    /// <summary>[Layers] is declared (a hybrid's attention list).</summary>
    public bool HybridLayers { get; }
    public int ShareKvEvery { get; }
    public bool QkNorm { get; }
    public bool BreakSymmetry { get; }
    public bool MoE { get; }
    public bool ShortConv { get; }
    public bool SparseAttention { get; }

    /// <summary>[Residual]: DeepSeek V4's residual streams.</summary>
    public bool ResidualStreams { get; }
    public ActivationKind Activation { get; }

    /// <summary>Whether [Mlp] declares a ClampLimit (any value: a non-positive one is LLM007 as well).</summary>
    public bool Clamped { get; }

    /// <summary>What [Quant] fake-quantizes; null without [Quant].</summary>
    public QuantTargetKind? QuantTarget { get; }

    /// <summary>Whether [Quant] names its Target (a valid one) rather than taking the default.</summary>
    public bool QuantTargetWritten { get; }

    public bool QuantizesAttention => QuantTarget is { } target && (target & QuantTargetKind.Attention) != 0;

    public bool SharesKv => ShareKvEvery > 1;

    /// <summary>NoQuery and Shared attention take their queries from the keys (and only they have symmetric scores).</summary>
    public bool QueriesAreKeys => Projections is ProjectionKind.NoQuery or ProjectionKind.Shared;

    /// <summary>BreakSymmetry as it takes effect: standard attention with symmetric scores (elsewhere it is LLM013).</summary>
    public bool ScoreMixer => BreakSymmetry && !Latent && QueriesAreKeys;

    private static bool Bool(DeclaredAttribute attribute, string name, bool fallback) =>
        attribute.Named.TryGetValue(name, out var value) && value is bool b ? b : fallback;

    private static T Defined<T>(object? value, T fallback) where T : struct, Enum =>
        value is int number && Enum.IsDefined(typeof(T), number) ? (T)(object)number : fallback;
}

/// <summary>One pair of features that cannot go together, and where and how it is reported (LLM021).</summary>
/// <param name="Name">Stable key of the row (tests exercise every row by it).</param>
/// <param name="Applies">Whether a declaration combines the two.</param>
/// <param name="Attribute">Attribute the diagnostic is placed on.</param>
/// <param name="Argument">Argument of <paramref name="Attribute"/> it is placed on (null: the attribute as a whole;
/// <see cref="ConfigurationIssue.ConstructorArgument"/>: the first positional one). Not written: the attribute.</param>
/// <param name="Setting">The side at that argument, as written, with the model's own values.</param>
/// <param name="ConflictsWith">The other side.</param>
/// <param name="Reason">Why the two cannot go together.</param>
internal sealed record IncompatibleCombination(
    string Name,
    Func<DeclaredFeatures, bool> Applies,
    string Attribute,
    string? Argument,
    Func<DeclaredFeatures, string> Setting,
    Func<DeclaredFeatures, string> ConflictsWith,
    string Reason)
{
    public ConfigurationIssue Issue(DeclaredFeatures features) =>
        new(DiagnosticDescriptors.UnsupportedCombination, Attribute, Argument, Setting(features), ConflictsWith(features), Reason);
}

/// <summary>
/// Every combination of features that cannot go together, in one table: the validator reports a row that applies as
/// LLM021 and nothing else decides incompatibility. A single value out of range stays LLM007; a setting that merely
/// has no effect in a configuration stays LLM013.
/// </summary>
internal static class IncompatibleCombinations
{
    private const string Latent = "Kind = AttentionKind.Latent";

    private const string PyTorchInit = "Init = InitScheme.PyTorchDefault";

    private const string Compressed = "Kind = AttentionKind.Compressed";

    private static string ShareKvEvery(DeclaredFeatures f) => $"ShareKvEvery = {f.ShareKvEvery}";

    public static readonly IReadOnlyList<IncompatibleCombination> All = new IncompatibleCombination[]
    {
        new("SwiGLU clamping without SwiGLU", f => f.Clamped && f.Activation != ActivationKind.SwiGlu,
            "Mlp", "ClampLimit", _ => "ClampLimit", f => $"Activation.{f.Activation}",
            "the clamp bounds SwiGLU's gate and linear branches, which a GELU feed-forward does not have"),

        new("Checkpointing with KV sharing", f => f.Checkpointing && f.SharesKv,
            "Model", "Checkpointing", _ => "Checkpointing = true", ShareKvEvery,
            "layers that share keys and values pass tensors from block to block, which a recomputed block would cut off from their gradient"),
        new("Checkpointing with experts", f => f.Checkpointing && f.MoE,
            "Model", "Checkpointing", _ => "Checkpointing = true", _ => "[MoE]",
            "a recomputed mixture-of-experts block would count its routing load and balancing loss twice"),
        new("Checkpointing with sparse attention", f => f.Checkpointing && f.SparseAttention,
            "Model", "Checkpointing", _ => "Checkpointing = true", _ => "[SparseAttention]",
            "a recomputed sparse-attention block would add its indexer's training loss twice"),
        new("Checkpointing with compressed sparse attention", f => f.Checkpointing && f.CompressedSparse,
            "Model", "Checkpointing", _ => "Checkpointing = true", _ => "[CompressedLayers(Sparse = ...)]",
            "a compressed sparse attention layer's indexer leaves a training loss from its forward, which a recomputed block would leave again in backward, too late for the step"),

        new("KV sharing with queries taken from the keys", f => f.SharesKv && f.QueriesAreKeys && !f.Latent,
            "Attention", "ShareKvEvery", ShareKvEvery, f => $"Projections.{f.Projections}",
            "NoQuery and Shared attention take their queries from the keys, so a layer that reuses another's keys would reuse its queries too; use Full or NoKey"),
        new("KV sharing in a hybrid", f => f.SharesKv && f.ShortConv,
            "Attention", "ShareKvEvery", ShareKvEvery, _ => "[ShortConv] layers",
            "groups of layers sharing keys and values would straddle convolution blocks"),
        new("QK norm with KV sharing", f => f.QkNorm && f.SharesKv && !f.Latent,
            "Attention", "QkNorm", _ => "QkNorm = true", ShareKvEvery,
            "layers reusing a group's keys would need that group's key norm; not supported"),

        new("Latent attention with a projection variant", f => f.Latent && f.Projections != ProjectionKind.Full,
            "Attention", ConfigurationIssue.ConstructorArgument, f => $"Projections.{f.Projections}", _ => Latent,
            "latent attention expands its own keys and values from one cached vector; the projection variants apply to standard attention"),
        new("Latent attention with KV sharing", f => f.Latent && f.SharesKv,
            "Attention", "ShareKvEvery", ShareKvEvery, _ => Latent,
            "latent attention already caches one small vector per layer; sharing it across layers is not supported"),
        new("Latent attention without rotary positions", f => f.Latent && f.Positions != PositionKind.Rope,
            "Model", "Positions", f => $"Positions.{f.Positions}", _ => Latent,
            "latent attention carries positions in its decoupled rotary key (DeepSeek-V2); use Positions.Rope"),
        new("Latent attention with GPT-2 names", f => f.Latent && f.Naming == NamingKind.Gpt2,
            "Model", "Naming", _ => "ParameterNaming.Gpt2", _ => Latent,
            "latent attention's weights carry DeepSeek's names (q_a_proj, kv_a_proj_with_mqa, ...), which have no GPT-2 counterpart"),
        new("Latent attention with biases", f => f.Latent && f.Bias,
            "Model", "Bias", _ => "Bias = true", _ => Latent,
            "latent attention's projections have no biases (DeepSeek's attention_bias is false)"),
        new("Latent attention quantized", f => f.Latent && f.QuantizesAttention,
            "Quant", "Target", f => f.QuantTargetWritten ? "QuantTarget.Attention" : "[Quant] (its default Target is QuantTarget.AllLinear)", _ => Latent,
            "fake quantization of latent attention's projections is not supported yet; target Experts or Mlp"),

        // DeepSeek V4's attention is one runtime block (CompressedAttention) with its own projections, norms, rotation
        // and cache; these are the settings of standard attention or other blocks it has no place for.
        new("Compressed attention in an encoder", f => f.Compressed && !f.Causal,
            "Attention", "Kind", _ => Compressed, _ => "Causal = false",
            "its window and compressed entries look back only, and a query sees an entry only once its window is complete"),
        new("Compressed attention with sparse attention", f => f.Compressed && f.SparseAttention,
            "SparseAttention", null, _ => "[SparseAttention]", _ => Compressed,
            "compressed attention has its own indexer over compressed entries; declare it with [CompressedLayers(Sparse = ..., TopK = ...)]"),
        new("Compressed attention in a hybrid", f => f.Compressed && (f.ShortConv || f.HybridLayers),
            "Attention", "Kind", _ => Compressed, f => f.ShortConv ? "[ShortConv] layers" : "[Layers]",
            "a compressed-attention model chooses each layer's kind with [CompressedLayers]; short convolutions between them are not supported"),
        new("Compressed attention with KV sharing", f => f.Compressed && f.SharesKv,
            "Attention", "ShareKvEvery", ShareKvEvery, _ => Compressed,
            "each layer keeps its own window and compressed entries; sharing them across layers is not supported"),
        new("Compressed attention without rotary positions", f => f.Compressed && f.Positions != PositionKind.Rope,
            "Model", "Positions", f => $"Positions.{f.Positions}", _ => Compressed,
            "compressed attention carries positions in the rotary channels of its queries, keys and entries (and rotates the output back); use Positions.Rope"),
        new("Compressed attention with GPT-2 names", f => f.Compressed && f.Naming == NamingKind.Gpt2,
            "Model", "Naming", _ => "ParameterNaming.Gpt2", _ => Compressed,
            "its weights carry DeepSeek V4's names (wq_a, wkv, wo_a, attn_sink, ...), which have no GPT-2 counterpart"),
        new("Compressed attention with the positional score mixer", f => f.Compressed && f.BreakSymmetry,
            "Attention", "BreakSymmetry", _ => "BreakSymmetry = true", _ => Compressed,
            "its queries and keys are distinct, and the score mixer works on whole score maps, which it never forms"),
        new("Compressed attention with QK norm", f => f.Compressed && f.QkNorm,
            "Attention", "QkNorm", _ => "QkNorm = true", _ => Compressed,
            "it already normalises each query head (without weights) and its key = value head (kv_norm)"),
        new("Compressed attention with a projection variant", f => f.Compressed && f.Projections != ProjectionKind.Full,
            "Attention", ConfigurationIssue.ConstructorArgument, f => $"Projections.{f.Projections}", _ => Compressed,
            "compressed attention fixes its projections: a query latent and one key head that is also the value head"),
        new("Compressed attention with biases", f => f.Compressed && f.Bias,
            "Model", "Bias", _ => "Bias = true", _ => Compressed,
            "DeepSeek V4's attention projections have no biases"),
        new("Compressed attention quantized", f => f.Compressed && f.QuantizesAttention,
            "Quant", "Target", f => f.QuantTargetWritten ? "QuantTarget.Attention" : "[Quant] (its default Target is QuantTarget.AllLinear)", _ => Compressed,
            "fake quantization of compressed attention's projections is not supported yet; target Experts or Mlp"),
        new("PyTorch's initialisation with compressed attention", f => f.PyTorchInit && f.Compressed,
            "Model", "Init", _ => PyTorchInit, _ => Compressed,
            "compressed attention initialises its own unbiased projections, compressors and sink"),

        new("Short convolutions in an encoder", f => f.ShortConv && !f.Causal,
            "ShortConv", null, _ => "[ShortConv]", _ => "Causal = false",
            "the short convolution only looks back, so an encoder would see the future through attention but not through its convolutions"),
        new("Sparse attention in an encoder", f => f.SparseAttention && !f.Causal,
            "SparseAttention", null, _ => "[SparseAttention]", _ => "Causal = false",
            "the indexer chooses among past tokens; an encoder has no past"),
        new("Sparse attention with KV sharing", f => f.SparseAttention && f.SharesKv,
            "SparseAttention", null, _ => "[SparseAttention]", ShareKvEvery,
            "layers that reuse another's keys would also need its selection; not supported"),
        new("Sparse attention with the positional score mixer", f => f.SparseAttention && f.ScoreMixer,
            "SparseAttention", null, _ => "[SparseAttention]", _ => "BreakSymmetry = true",
            "the positional score mixer works on whole score maps, which sparse attention never forms"),
        // PyTorch's defaults are reproduced for the layers a plain PyTorch model is built from (the QKV study's
        // encoders); the blocks below build their own weights with their own schemes.
        new("PyTorch's initialisation with tied embeddings", f => f.PyTorchInit && f.TiedEmbeddings,
            "Model", "Init", _ => PyTorchInit, _ => "TiedEmbeddings = true (the default)",
            "the one-hot input layer and the biased output head are two matrices in PyTorch's defaults; declare TiedEmbeddings = false"),
        new("PyTorch's initialisation with GPT-2 names", f => f.PyTorchInit && f.Naming == NamingKind.Gpt2,
            "Model", "Init", _ => PyTorchInit, _ => "ParameterNaming.Gpt2",
            "GPT-2's fused Conv1D projections are not PyTorch's nn.Linear; use the default naming"),
        new("PyTorch's initialisation with latent attention", f => f.PyTorchInit && f.Latent,
            "Model", "Init", _ => PyTorchInit, _ => Latent,
            "latent attention initialises its own unbiased projections"),
        new("PyTorch's initialisation with experts", f => f.PyTorchInit && f.MoE,
            "Model", "Init", _ => PyTorchInit, _ => "[MoE]",
            "experts and routers initialise their own weights"),
        new("PyTorch's initialisation in a hybrid", f => f.PyTorchInit && f.ShortConv,
            "Model", "Init", _ => PyTorchInit, _ => "[ShortConv]",
            "the short-convolution blocks initialise their own weights"),
        new("PyTorch's initialisation with sparse attention", f => f.PyTorchInit && f.SparseAttention,
            "Model", "Init", _ => PyTorchInit, _ => "[SparseAttention]",
            "the indexer initialises its own weights"),
        new("PyTorch's initialisation with residual streams", f => f.PyTorchInit && f.ResidualStreams,
            "Model", "Init", _ => PyTorchInit, _ => "[Residual]",
            "the residual streams' maps start as DeepSeek V4's (a small normal map, zero biases, unit gates), which PyTorch's defaults do not describe"),
        new("PyTorch's initialisation quantized", f => f.PyTorchInit && f.QuantTarget is not null,
            "Model", "Init", _ => PyTorchInit, _ => "[Quant]",
            "fake-quantized layers initialise their own weights"),
    };

    /// <summary>The LLM021 issues of a declaration: one per row that applies.</summary>
    public static IEnumerable<ConfigurationIssue> Find(DeclaredModel declared)
    {
        var features = DeclaredFeatures.Of(declared);
        return All.Where(row => row.Applies(features)).Select(row => row.Issue(features));
    }
}
