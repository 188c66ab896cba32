using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;
using VerifyWaste = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ParameterWasteAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>[Layers]/[ShortConv], latent attention and [SparseAttention]: invalid layouts, ranks and combinations at the
/// argument that causes them (LLM018, LLM019, LLM021, LLM004), and the hybrid KV-cache info (LLM020).</summary>
public sealed class HybridDiagnosticsTests
{
    [Fact]
    public Task Invalid_layer_lists_are_errors_at_the_Attention_argument() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Layers({|#0:Attention = "1,4"|})]
        [ShortConv]
        [Attention(Heads = 4)]
        public partial class OutOfRange;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Layers({|#1:Attention = "0-2, 1"|})]
        [ShortConv]
        [Attention(Heads = 4)]
        public partial class Twice;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Layers({|#2:Attention = "one"|})]
        [ShortConv]
        [Attention(Heads = 4)]
        public partial class NotANumber;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Layers({|#3:Attention = "3-1"|})]
        [ShortConv]
        [Attention(Heads = 4)]
        public partial class Backwards;
        """,
        Verify.Diagnostic("LLM018").WithLocation(0).WithArguments("Attention = \"1,4\"", "layer 4 does not exist: layers are numbered 0 to 3"),
        Verify.Diagnostic("LLM018").WithLocation(1).WithArguments("Attention = \"0-2, 1\"", "layer 1 is listed twice"),
        Verify.Diagnostic("LLM018").WithLocation(2).WithArguments("Attention = \"one\"", "'one' is not a layer number"),
        Verify.Diagnostic("LLM018").WithLocation(3).WithArguments("Attention = \"3-1\"", "'3-1' is not a range a-b of layer numbers with a ≤ b"));

    [Fact]
    public Task Layers_and_ShortConv_need_each_other_and_a_causal_model() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [{|#0:Layers(Attention = "1")|}]
        [Attention(Heads = 4)]
        public partial class NoOtherKind;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [{|#1:ShortConv(Kernel = 3)|}]
        [Attention(Heads = 4)]
        public partial class NoAttentionLayers;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, Causal = false)]
        [Layers(Attention = "1")]
        [{|#2:ShortConv|}]
        [Attention(Heads = 4)]
        public partial class Encoder;
        """,
        Verify.Diagnostic("LLM018").WithLocation(0).WithArguments("[Layers] names the attention layers", "the other layers need a block kind; add [ShortConv(Kernel = 3)]"),
        Verify.Diagnostic("LLM018").WithLocation(1).WithArguments("[ShortConv] replaces attention in some layers", "say which layers keep attention with [Layers(Attention = \"...\")]"),
        Verify.Diagnostic("LLM021").WithLocation(2).WithArguments("[ShortConv]", "Causal = false",
            "the short convolution only looks back, so an encoder would see the future through attention but not through its convolutions"));

    [Fact]
    public Task Latent_ranks_must_compress_and_latent_attention_needs_rotary_positions() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4, Kind = AttentionKind.Latent, {|#0:KvRank = 64|}, RopeDim = 8, {|#1:QRank = 80|})]
        public partial class Wide;
        [Model(Vocab = 64, Dim = 256, Layers = 2, Context = 16)]
        [Attention(Heads = 2, HeadDim = 16, Kind = AttentionKind.Latent, {|#2:KvRank = 64|}, RopeDim = 8)]
        public partial class WiderThanHeads;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, {|#3:Positions = Positions.Learned|})]
        [Attention(Heads = 4, Kind = AttentionKind.Latent, KvRank = 16, {|#4:RopeDim = 7|})]
        public partial class NoRope;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention({|#5:Projections.NoKey|}, Heads = 4, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8, {|#6:ShareKvEvery = 2|})]
        public partial class Variant;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [{|#7:Attention(Heads = 4, Kind = AttentionKind.Latent, RopeDim = 8)|}]
        public partial class NoRank;
        """,
        Verify.Diagnostic("LLM019").WithLocation(0).WithArguments("KvRank", 64, "Dim", 64),
        Verify.Diagnostic("LLM019").WithLocation(1).WithArguments("QRank", 80, "Dim", 64),
        Verify.Diagnostic("LLM019").WithLocation(2).WithArguments("KvRank", 64, "Heads · 2 · HeadDim", 64L),
        Verify.Diagnostic("LLM021").WithLocation(3).WithArguments("Positions.Learned", "Kind = AttentionKind.Latent",
            "latent attention carries positions in its decoupled rotary key (DeepSeek-V2); use Positions.Rope"),
        Verify.Diagnostic("LLM007").WithLocation(4).WithArguments("RopeDim", 7, "rotary positions rotate channel pairs, so the width must be even"),
        Verify.Diagnostic("LLM021").WithLocation(5).WithArguments("Projections.NoKey", "Kind = AttentionKind.Latent",
            "latent attention expands its own keys and values from one cached vector; the projection variants apply to standard attention"),
        Verify.Diagnostic("LLM021").WithLocation(6).WithArguments("ShareKvEvery = 2", "Kind = AttentionKind.Latent",
            "latent attention already caches one small vector per layer; sharing it across layers is not supported"),
        Verify.Diagnostic("LLM003").WithLocation(7).WithArguments("Attention", "KvRank"));

    [Fact]
    public Task Settings_latent_attention_ignores_are_named_where_they_are_written() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8, {|#0:QkNorm = true|}, {|#1:BreakSymmetry = true|})]
        public partial class Latent;
        """,
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(0).WithArguments("QkNorm",
            "latent attention normalises its latent vectors instead (kv_a_layernorm, q_a_layernorm)"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(1).WithArguments("BreakSymmetry",
            "latent attention has distinct queries and keys, so its scores are not symmetric"));

    [Fact]
    public Task Sparse_attention_needs_a_positive_top_k_and_a_causal_model() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [SparseAttention(IndexerHeads = 2, IndexerDim = 8, {|#0:TopK = 0|})]
        public partial class NoKeys;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, Causal = false)]
        [Attention(Heads = 4)]
        [{|#1:SparseAttention(IndexerHeads = 2, IndexerDim = 8, TopK = 4)|}]
        public partial class Encoder;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [SparseAttention(IndexerHeads = 2, IndexerDim = 8, {|#2:TopK = 16|})]
        public partial class Dense;
        """,
        Verify.Diagnostic("LLM004").WithLocation(0).WithArguments("TopK", 0),
        Verify.Diagnostic("LLM021").WithLocation(1).WithArguments("[SparseAttention]", "Causal = false", "the indexer chooses among past tokens; an encoder has no past"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(2).WithArguments("TopK",
            "at or beyond the context of 16 tokens every query attends to its whole past, so the indexer only adds cost"));

    [Fact]
    public Task A_deep_full_attention_model_is_shown_the_cache_of_a_hybrid_layout() => VerifyWaste.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 8, Context = 16)]
        [{|#0:Attention(Projections.NoKey, Heads = 4)|}]
        public partial class Deep;
        [Model(Vocab = 64, Dim = 64, Layers = 8, Context = 16)]
        [Layers(Attention = "3,7")]
        [ShortConv]
        [Attention(Projections.NoKey, Heads = 4)]
        public partial class AlreadyHybrid;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Projections.NoKey, Heads = 4)]
        public partial class Shallow;
        """,
        // 8 layers × 64 values × 2 bytes = 1,024; in 2 layers 256 (75% less); 6 convolutions × 2 inputs × 64 × 2 bytes = 1,536.
        new DiagnosticResult("LLM020", DiagnosticSeverity.Info).WithLocation(0).WithArguments("Deep", "1,024", "8", "2", "256", "75.0%", "1,536"));
}
