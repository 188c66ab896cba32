using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;
using VerifyWaste = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ParameterWasteAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>Compressed attention ([Attention(Kind = AttentionKind.Compressed)] with [CompressedLayers]): invalid layer
/// lists (LLM022), widths that cannot work together (LLM023), single values out of range (LLM007, LLM004, LLM003),
/// settings without effect (LLM013), all at the argument that causes them, and the KV-cache info (LLM024). The
/// combinations it excludes are rows of the LLM021 table (<see cref="CombinationDiagnosticsTests"/>).</summary>
public sealed class CompressedDiagnosticsTests
{
    private const string Model = "[Model(Vocab = 64, Dim = 64, Layers = 4, Context = 64)]";
    private const string Attention = "[Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 8)]";
    private const string Indexer = "SparseRatio = 4, TopK = 4, IndexerHeads = 2, IndexerDim = 32";

    [Fact]
    public Task A_valid_declaration_with_all_three_kinds_has_no_diagnostic() => Verify.VerifyAsync($$"""
        using LlmEff;
        {{Model}}
        {{Attention}}
        [CompressedLayers(Sparse = "2", Heavy = "3", HeavyRatio = 8, {{Indexer}})]
        public partial class M;
        {{Model}}
        {{Attention}}
        public partial class SlidingOnly;
        """);

    [Fact]
    public Task Invalid_layer_lists_are_errors_at_the_list_that_causes_them() => Verify.VerifyAsync($$"""
        using LlmEff;
        {{Model}}
        {{Attention}}
        [CompressedLayers({|#0:Sparse = "2,4"|}, Heavy = "3", HeavyRatio = 8, {{Indexer}})]
        public partial class Missing;
        {{Model}}
        {{Attention}}
        [CompressedLayers(Sparse = "2", {|#1:Heavy = "3,3"|}, HeavyRatio = 8, {{Indexer}})]
        public partial class Twice;
        {{Model}}
        {{Attention}}
        [CompressedLayers(Sparse = "2", {|#2:Heavy = "2-3"|}, HeavyRatio = 8, {{Indexer}})]
        public partial class Both;
        {{Model}}
        [Attention(Heads = 4)]
        [{|#3:CompressedLayers(Heavy = "3")|}]
        public partial class NotCompressed;
        """,
        Verify.Diagnostic("LLM022").WithLocation(0).WithArguments("Sparse = \"2,4\"", "layer 4 does not exist: layers are numbered 0 to 3"),
        Verify.Diagnostic("LLM022").WithLocation(1).WithArguments("Heavy = \"3,3\"", "layer 3 is listed twice"),
        Verify.Diagnostic("LLM022").WithLocation(2).WithArguments("Heavy = \"2-3\"", "layer 2 is also in Sparse; a layer is CSA or HCA, not both"),
        Verify.Diagnostic("LLM022").WithLocation(3).WithArguments("[CompressedLayers] lists CSA and HCA layers",
            "they are kinds of compressed attention; declare [Attention(Kind = AttentionKind.Compressed, ...)]"));

    [Fact]
    public Task Widths_that_cannot_work_together_are_errors_naming_both_values() => Verify.VerifyAsync($$"""
        using LlmEff;
        {{Model}}
        [Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, RopeDim = 8, QRank = 32, {|#0:OutputGroups = 3|}, OutputRank = 16, SlidingWindow = 8)]
        public partial class Groups;
        {{Model}}
        [Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, {|#1:RopeDim = 40|}, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 8)]
        public partial class WideRope;
        {{Model}}
        {{Attention}}
        [CompressedLayers(Sparse = "2", SparseRatio = 4, TopK = 4, IndexerHeads = 2, {|#2:IndexerDim = 48|})]
        public partial class NotAPowerOfTwo;
        {{Model}}
        {{Attention}}
        [CompressedLayers(Sparse = "2", SparseRatio = 4, TopK = 4, IndexerHeads = 2, {|#3:IndexerDim = 64|}, IndexerPrecision = IndexKeyPrecision.Fp8)]
        public partial class PartialBlock;
        """,
        Verify.Diagnostic("LLM023").WithLocation(0).WithArguments("OutputGroups", "3", "Heads = 4",
            "the grouped output projection splits the heads into equal groups, so OutputGroups must divide Heads"),
        Verify.Diagnostic("LLM023").WithLocation(1).WithArguments("RopeDim", "40", "HeadDim = 32",
            "the rotary channels are the last RopeDim of each head, so there cannot be more of them than the head is wide"),
        Verify.Diagnostic("LLM023").WithLocation(2).WithArguments("IndexerDim", "48", "the Hadamard rotation",
            "it rotates the index queries and keys by a Hadamard matrix, which exists here for powers of two only"),
        Verify.Diagnostic("LLM023").WithLocation(3).WithArguments("IndexerDim", "64", "IndexerPrecision.Fp8",
            "Fp8 scales blocks of 128 values, so an index key must hold whole blocks"));

    [Fact]
    public Task Single_values_out_of_range_are_errors_at_their_argument() => Verify.VerifyAsync($$"""
        using LlmEff;
        {{Model}}
        [Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, {|#0:RopeDim = 7|}, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 8)]
        public partial class OddRope;
        {{Model}}
        {{Attention}}
        [CompressedLayers(Sparse = "2", {|#1:SparseRatio = 1|}, TopK = 4, IndexerHeads = 2, IndexerDim = 32)]
        public partial class RatioOne;
        {{Model}}
        {{Attention}}
        [CompressedLayers(Sparse = "2", SparseRatio = 4, {|#2:TopK = 0|}, IndexerHeads = 2, IndexerDim = 32)]
        public partial class NoTopK;
        {{Model}}
        {{Attention}}
        [{|#3:CompressedLayers(Sparse = "2", SparseRatio = 4, TopK = 4, IndexerHeads = 2)|}]
        public partial class NoIndexerDim;
        {{Model}}
        [{|#4:Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16)|}]
        public partial class NoWindow;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("RopeDim", "7", "rotary positions rotate channel pairs, so the width must be even"),
        Verify.Diagnostic("LLM007").WithLocation(1).WithArguments("SparseRatio", "1",
            "a compressed entry pools a window of at least 2 tokens (1 would cache one entry per token, more than the window it replaces)"),
        Verify.Diagnostic("LLM004").WithLocation(2).WithArguments("TopK", "0"),
        Verify.Diagnostic("LLM003").WithLocation(3).WithArguments("CompressedLayers", "IndexerDim"),
        Verify.Diagnostic("LLM003").WithLocation(4).WithArguments("Attention", "SlidingWindow"));

    [Fact]
    public Task Settings_without_effect_are_warnings_saying_why() => Verify.VerifyAsync($$"""
        using LlmEff;
        {{Model}}
        [Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16, {|#0:SlidingWindow = 64|})]
        public partial class WholeContextWindow;
        {{Model}}
        {{Attention}}
        [CompressedLayers(Sparse = "2", SparseRatio = 4, {|#1:TopK = 16|}, IndexerHeads = 2, IndexerDim = 32, Heavy = "3", {|#2:HeavyRatio = 128|})]
        public partial class NeverSelects;
        {{Model}}
        [Attention(Heads = 4, {|#3:OutputGroups = 2|})]
        public partial class Standard;
        {{Model}}
        [Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, {|#4:KvHeads = 2|}, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 8)]
        [CompressedLayers(Heavy = "3", HeavyRatio = 8, {|#5:TopK = 4|})]
        public partial class NoCsa;
        """,
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(0).WithArguments("SlidingWindow", "a window of 64 tokens holds the whole context of 64, so no compressed entry is ever needed"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(1).WithArguments("TopK",
            "a context of 64 tokens makes at most 16 entries of 4, so every query keeps them all and the indexer only adds cost"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(2).WithArguments("HeavyRatio",
            "no window of 128 tokens completes within the context of 64, so those layers never see a compressed entry"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(3).WithArguments("OutputGroups",
            "only compressed attention (Kind = AttentionKind.Compressed) has output groups and a sliding window; this model's attention is Standard"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(4).WithArguments("KvHeads",
            "compressed attention has one key head, which is also the value head, shared by every query head"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(5).WithArguments("TopK", "no layer is listed in Sparse, so there is no indexer"));

    [Fact]
    public Task The_cache_at_full_context_is_reported_against_full_and_latent_attention_with_the_models_numbers() => VerifyWaste.VerifyAsync($$"""
        using LlmEff;
        {{Model}}
        [Attention(Heads = 4, HeadDim = 32, {|#0:Kind = AttentionKind.Compressed|}, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 8)]
        [CompressedLayers(Sparse = "2", Heavy = "3", HeavyRatio = 8, {{Indexer}})]
        public partial class M;
        """,
        // At 64 tokens: 2 × 8 window entries × 32; CSA 8 × 32 + 16 × (32 + 32) + 2,048 state; HCA 8 × 32 + 8 × 32 + 512 state:
        // 4,864 elements, 76 per token. Full attention: 2 × 4 × 32 × 4 = 1,024 per token; latent (32 + 8) × 4 = 160.
        new DiagnosticResult("LLM024", DiagnosticSeverity.Info).WithLocation(0).WithArguments("M", "76", "64", "2", "1", "1", "20", "4", "32", "1,024", "13.5", "8", "160", "2.1"));
}
