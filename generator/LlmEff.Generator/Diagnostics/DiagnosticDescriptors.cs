using Microsoft.CodeAnalysis;

namespace LlmEff.Generator.Diagnostics;

/// <summary>
/// Every diagnostic LlmEff reports, in one place. IDs are stable: never renumber or reuse one; record each
/// new ID in AnalyzerReleases.Unshipped.md. The README's "Diagnostics" table mirrors this catalog.
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Usage = "LlmEff.Usage";
    private const string Configuration = "LlmEff.Configuration";
    private const string Efficiency = "LlmEff.Efficiency";
    private const string HelpBase = "https://github.com/llmeff/LlmEff.Compiler/blob/main/README.md#";

    private static DiagnosticDescriptor Create(string id, string title, string message, string category, DiagnosticSeverity severity, string description) =>
        new(id, title, message, category, severity, isEnabledByDefault: true, description: description, helpLinkUri: HelpBase + id.ToLowerInvariant());

    public static readonly DiagnosticDescriptor ModelClassNotPartial = Create(
        "LLM001", "Model class must be partial",
        "'{0}' carries [Model] but is not partial, so the generator cannot add the module to it",
        Usage, DiagnosticSeverity.Error,
        "The generator writes the TorchSharp module into the other half of the class: declare it 'partial class'.");

    public static readonly DiagnosticDescriptor UnsupportedDeclaration = Create(
        "LLM002", "Model class shape not supported",
        "'{0}' cannot carry [Model]: {1}",
        Usage, DiagnosticSeverity.Error,
        "A model class must be a non-generic, non-static, non-abstract class without a base class of its own (the generated half derives it from TorchSharp's Module), and every enclosing type must be partial.");

    public static readonly DiagnosticDescriptor MissingSize = Create(
        "LLM003", "Required size missing",
        "[{0}] needs {1}: set it to a positive number",
        Configuration, DiagnosticSeverity.Error,
        "Vocab, Dim, Layers and Context have no sensible default and must be declared.");

    public static readonly DiagnosticDescriptor NonPositiveSize = Create(
        "LLM004", "Size must be positive",
        "{0} is {1}; it must be a positive number",
        Configuration, DiagnosticSeverity.Error,
        "Every count and width of a model is a positive integer.");

    public static readonly DiagnosticDescriptor HeadsNotDivisibleByKvHeads = Create(
        "LLM005", "Heads not divisible by KvHeads",
        "Heads = {0} is not a multiple of KvHeads = {1}: each key/value head must serve the same number of query heads",
        Configuration, DiagnosticSeverity.Error,
        "Grouped-query attention shares each key/value head among Heads / KvHeads query heads, so KvHeads must divide Heads.");

    public static readonly DiagnosticDescriptor DimNotDivisibleByHeads = Create(
        "LLM006", "Dim not divisible by Heads",
        "Dim = {0} is not a multiple of Heads = {1}, so the default HeadDim = Dim / Heads is not whole; set HeadDim or change Heads",
        Configuration, DiagnosticSeverity.Error,
        "Without an explicit HeadDim each head is Dim / Heads wide.");

    public static readonly DiagnosticDescriptor ValueOutOfRange = Create(
        "LLM007", "Value out of range",
        "{0} = {1} is out of range: {2}",
        Configuration, DiagnosticSeverity.Error,
        "A setting lies outside the values the architecture allows.");

    public static readonly DiagnosticDescriptor SizeOverflow = Create(
        "LLM008", "Model size overflows",
        "The sizes of '{0}' overflow 64-bit arithmetic ({1}); reduce the declared dimensions",
        Configuration, DiagnosticSeverity.Error,
        "Size facts are computed with checked 64-bit integers; a declaration whose parameter count or FLOPs do not fit is refused rather than reported wrongly.");

    public static readonly DiagnosticDescriptor OrphanAttribute = Create(
        "LLM009", "Attribute has no effect without [Model]",
        "[{0}] on '{1}' has no effect: the class has no [Model] attribute",
        Usage, DiagnosticSeverity.Warning,
        "Attention, Mlp and the other architecture attributes describe parts of a model declared with [Model].");

    public static readonly DiagnosticDescriptor KeysCouldBeValues = Create(
        "LLM010", "NoKey attention would save parameters and halve the KV cache",
        "'{0}': NoKey attention (keys are the values) would save {1} parameters ({2} of the model) and halve the KV cache ({3} → {4} bytes per token in bf16)",
        Efficiency, DiagnosticSeverity.Info,
        "The QKV study measured K = V at about +3% perplexity for half the KV cache. The numbers are this model's own; the code fix switches the attention to Projections.NoKey.");

    public static readonly DiagnosticDescriptor CollapsingProjections = Create(
        "LLM011", "Projection pair collapses to one matrix",
        "With one head as wide as the model (HeadDim = {0}, Dim = {1}), {2}: {3} parameters ({4} of the model) are redundant",
        Efficiency, DiagnosticSeverity.Warning,
        "Per head, W_Q·W_Kᵀ is one bilinear form and W_V·W_O one linear map. When the head is as wide as the model the product is an unconstrained Dim×Dim matrix, so one factor of each pair can be fixed to the identity without changing what the model can express.");

    public static readonly DiagnosticDescriptor UntiedOutputHead = Create(
        "LLM012", "Untied output head is a large share of the model",
        "The untied output head of '{0}' holds {1} parameters ({2} of the model); TiedEmbeddings = true would reuse the embedding matrix instead",
        Efficiency, DiagnosticSeverity.Warning,
        "Small models usually tie the output head to the token embedding (GPT-2, Gemma, LFM2): the head then costs no parameters. Reported when the head is at least 10% of the model.");

    public static readonly DiagnosticDescriptor IgnoredSetting = Create(
        "LLM013", "Setting has no effect",
        "{0} has no effect here: {1}",
        Configuration, DiagnosticSeverity.Warning,
        "A declared setting that the chosen configuration ignores is usually a mistake in the declaration.");

    public static readonly DiagnosticDescriptor KvCacheOverBudget = Create(
        "LLM014", "KV cache over budget",
        "The KV cache of '{0}' at its full context of {1} tokens is {2} bytes in bf16, over the budget of {3} bytes; {4}",
        Efficiency, DiagnosticSeverity.Warning,
        "The cache of one sequence at full context is Context · KvCacheElementsPerToken · 2 bytes. Fewer KV heads (GQA, MQA) or keys that are the values (NoKey) shrink it.");

    public static readonly DiagnosticDescriptor ExpertParameters = Create(
        "LLM015", "Total and active parameters of a mixture of experts",
        "'{0}' holds {1} parameters, of which one token uses {2} ({3}); the routed experts hold {4} ({5} of the model) and {6} of {7} run per token",
        Efficiency, DiagnosticSeverity.Info,
        "A mixture of experts stores every expert but runs only the chosen ones: memory follows the total, compute per token follows the active count (embeddings, attention, router, shared and chosen experts).");

    public static readonly DiagnosticDescriptor QuantBlockDoesNotDivide = Create(
        "LLM016", "Quantization blocks do not divide a weight's input width",
        "{0} scales blocks of {1} values along each weight's input, so every quantized input width must be a multiple of {1}: {2}",
        Configuration, DiagnosticSeverity.Error,
        "Block formats share one scale among consecutive values of a row (MXFP4 32, NVFP4 16, Int4 its group size). A width that is no multiple of the block would need padded blocks, so the stated bits per value would not hold; change the width, the format or the Int4 GroupSize.");

    public static readonly DiagnosticDescriptor QuantTargetMissing = Create(
        "LLM017", "Quantization target absent from the model",
        "Target names {0}, which '{1}' does not have: {2}",
        Configuration, DiagnosticSeverity.Error,
        "A [Quant] Target other than QuantTarget.AllLinear must name only parts the model has: experts need [MoE]; Mlp needs a dense layer or shared experts.");

    public static readonly DiagnosticDescriptor InvalidLayerLayout = Create(
        "LLM018", "Invalid layer layout",
        "{0}: {1}",
        Configuration, DiagnosticSeverity.Error,
        "[Layers(Attention = \"...\")] lists 0-based attention layers (commas, inclusive ranges a-b), each once and below Layers; the other layers are the block kind [ShortConv] declares, so the two come together.");

    public static readonly DiagnosticDescriptor LatentRankTooLarge = Create(
        "LLM019", "Latent rank not smaller than what it compresses",
        "{0} = {1} is not smaller than {2} ({3}): a latent that wide compresses nothing and costs an extra matrix",
        Configuration, DiagnosticSeverity.Error,
        "Latent attention projects the input down to KvRank (and QRank) and back up; the rank must be below both the input width and the width it is expanded to, else the low-rank path only adds parameters.");

    public static readonly DiagnosticDescriptor HybridKvCache = Create(
        "LLM020", "A hybrid layout would shrink the KV cache",
        "'{0}' caches {1} bytes per token (bf16) in all {2} attention layers; with attention in {3} of them and [ShortConv] blocks elsewhere (LFM2's one in four) it would cache {4} bytes, {5} less, plus a constant {6}-byte convolution state",
        Efficiency, DiagnosticSeverity.Info,
        "Short-convolution blocks keep only their last Kernel - 1 inputs while decoding, so only attention layers grow the cache with the context. LFM2 keeps attention in 6 of 24 layers.");

    public static readonly DiagnosticDescriptor UnsupportedCombination = Create(
        "LLM021", "Settings that cannot be combined",
        "{0} cannot be combined with {1}: {2}",
        Configuration, DiagnosticSeverity.Error,
        "Some features exclude each other. One table (Validation/IncompatibleCombinations.cs) lists every such pair; the message names both sides, with this model's values, and says why.");

    public static readonly DiagnosticDescriptor InvalidCompressedLayers = Create(
        "LLM022", "Invalid compressed-attention layer lists",
        "{0}: {1}",
        Configuration, DiagnosticSeverity.Error,
        "[CompressedLayers(Sparse = \"...\", Heavy = \"...\")] lists 0-based CSA and HCA layers (commas, inclusive ranges a-b), each once, below Layers and in one list only; it describes compressed attention, so it needs [Attention(Kind = AttentionKind.Compressed)].");

    public static readonly DiagnosticDescriptor CompressedShapeMismatch = Create(
        "LLM023", "Compressed-attention widths that cannot work together",
        "{0} = {1} cannot work with {2}: {3}",
        Configuration, DiagnosticSeverity.Error,
        "Compressed attention splits its heads into OutputGroups equal groups, rotates the last RopeDim channels of every head, entry and index key, and Hadamard-rotates and block-quantizes the index keys; the widths must fit those operations.");

    public static readonly DiagnosticDescriptor CompressedKvCache = Create(
        "LLM024", "What compressed attention caches",
        "'{0}' caches {1} elements per token at its full context of {2} tokens ({3} sliding-window, {4} CSA and {5} HCA layers; {6} per token at long context); full attention with per-layer keys and values ({7} heads of {8}) would cache {9}, {10}x more, and latent attention of rank {8} plus {11} rotary channels {12}, {13}x more",
        Efficiency, DiagnosticSeverity.Info,
        "DeepSeek V4's attention caches a bounded window plus one entry per SparseRatio or HeavyRatio tokens (and an index key per CSA entry), so its cache grows far slower than full or latent attention's. The figures are elements of one sequence at full context, the compressors' fixed state included.");

    public static readonly DiagnosticDescriptor ResidualStreamCost = Create(
        "LLM026", "What residual streams cost",
        "'{0}' keeps {1} residual streams: their maps add {2} parameters ({3} of the model) and {4} FLOPs per token ({5}), and the residual state grows from {6} to {7} values per token and layer",
        Efficiency, DiagnosticSeverity.Info,
        "Manifold-constrained hyper-connections (DeepSeek V4) keep Streams copies of the residual: few parameters (a (2 + n)·n × n·Dim map, biases and 3 gates around each block), but every layer reads and writes n·Dim values per token, which activation memory and memory traffic follow.");

    public static readonly DiagnosticDescriptor SingleResidualStream = Create(
        "LLM027", "One residual stream mixes nothing",
        "[Residual] with Streams = 1 has a 1×1 mixing matrix, which Sinkhorn makes 1: only the pre and post gates remain, not hyper-connections; declare 2 or more streams (DeepSeek V4: 4) or drop [Residual]",
        Configuration, DiagnosticSeverity.Warning,
        "Hyper-connections mix several copies of the residual; with one copy the doubly stochastic mixing matrix is the scalar 1 and the block is an ordinary residual with two learned gates.");
}
