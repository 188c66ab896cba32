using System.Threading.Tasks;
using LlmEff.CodeFixes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ParameterWasteAnalyzer>;
using VerifyDeclaration = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>LLM011–LLM014: collapsing projections, a large untied head, ignored settings and the KV budget,
/// each firing with this model's numbers and silent where it does not apply; and their code fixes.</summary>
public sealed class WasteDiagnosticsTests
{
    private static DiagnosticResult Warning(string id, int location) => new DiagnosticResult(id, DiagnosticSeverity.Warning).WithLocation(location);

    private static DiagnosticResult Info(string id, int location) => new DiagnosticResult(id, DiagnosticSeverity.Info).WithLocation(location);

    // d 64, 2 layers, one head of 64, SwiGLU 192, vocab 256, tied: 123,200 parameters.
    [Fact]
    public Task LLM011_one_full_width_head_makes_both_pairs_collapse() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 256, Dim = 64, Layers = 2, Context = 16)]
        [{|#1:Attention({|#0:Heads = 1|})|}]
        public partial class M;
        """,
        Warning("LLM011", 0).WithArguments("64", "64",
            "W_Q·W_Kᵀ is a single matrix (W_K could be the identity) and W_V·W_O is a single matrix (W_O could be the identity)", "16,384", "13.3%"),
        Info("LLM010", 1).WithArguments("M", "8,192", "6.6%", "512", "256"));

    [Fact]
    public Task LLM011_under_NoQuery_only_the_value_pair_collapses() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 256, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Projections.NoQuery, {|#0:Heads = 1|})]
        public partial class M;
        """,
        Warning("LLM011", 0).WithArguments("64", "64", "W_V·W_O is a single matrix (W_O could be the identity)", "8,192", "7.1%"));

    [Theory]
    [InlineData("[Attention(Projections.NoKey, Heads = 1)]")]   // W_V serves keys and values: no exact collapse
    [InlineData("[Attention(Projections.Shared, Heads = 1)]")]
    [InlineData("[Attention(Projections.NoKey, Heads = 2)]")]   // heads narrower than the model
    public Task LLM011_is_silent_where_no_pair_collapses(string attention) => Verify.VerifyAsync($$"""
        using LlmEff;
        [Model(Vocab = 256, Dim = 64, Layers = 2, Context = 16)]
        {{attention}}
        public partial class M;
        """);

    // Vocab 1000, d 64, 1 layer, NoKey: 177,344 parameters, 64,000 of them in the untied head.
    private const string UntiedModel = "Model(Vocab = 1000, Dim = 64, Layers = 1, Context = 16, {|#0:TiedEmbeddings = false|})";

    [Fact]
    public Task LLM012_a_large_untied_head_is_reported_with_its_share_and_fixed_by_tying() =>
        ParameterWasteTests.FixAsync<TieEmbeddingsCodeFix>($$"""
            using LlmEff;
            [{{UntiedModel}}]
            [Attention(Projections.NoKey, Heads = 4)]
            public partial class M;
            """, """
            using LlmEff;
            [Model(Vocab = 1000, Dim = 64, Layers = 1, Context = 16, TiedEmbeddings = true)]
            [Attention(Projections.NoKey, Heads = 4)]
            public partial class M;
            """,
            Warning("LLM012", 0).WithArguments("M", "64,000", "36.1%"));

    [Fact]
    public Task LLM012_is_silent_when_the_head_is_a_small_share() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 128256, Dim = 4096, Layers = 32, Context = 8192, TiedEmbeddings = false)]
        [{|#0:Attention(Projections.NoKey, Heads = 32, KvHeads = 8)|}]
        [Mlp(Hidden = 14336)]
        public partial class Llama3Like;
        """,
        // The only report is the hybrid-layout info every deep full-attention model gets.
        new DiagnosticResult("LLM020", DiagnosticSeverity.Info).WithLocation(0).WithArguments("Llama3Like", "65,536", "32", "8", "16,384", "75.0%", "393,216"));

    [Fact]
    public Task LLM013_settings_the_configuration_ignores_are_reported_at_the_argument() => VerifyDeclaration.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 256, Dim = 64, Layers = 1, Context = 16, Positions = Positions.None, {|#0:RopeTheta = 5000|})]
        [Attention(Heads = 4, {|#1:BreakSymmetry = true|})]
        public partial class M;
        """,
        Warning("LLM013", 0).WithArguments("RopeTheta", "the model uses Positions.None, not rotary positions"),
        Warning("LLM013", 1).WithArguments("BreakSymmetry", "Full attention has distinct queries and keys, so its scores are not symmetric"));

    [Fact]
    public Task LLM013_a_KV_budget_on_an_encoder_has_no_effect() => VerifyDeclaration.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 10, Dim = 64, Layers = 1, Context = 16, Causal = false, {|#0:KvBudgetBytes = 1000|})]
        [Attention(Projections.NoKey, Heads = 4)]
        public partial class M;
        """,
        Warning("LLM013", 0).WithArguments("KvBudgetBytes", "an encoder (Causal = false) reads whole sequences at once and keeps no KV cache"));

    [Theory]
    [InlineData("Projections.NoQuery")]
    [InlineData("Projections.Shared")]
    public Task LLM013_is_silent_for_BreakSymmetry_on_symmetric_variants(string projections) => VerifyDeclaration.VerifyAsync($$"""
        using LlmEff;
        [Model(Vocab = 256, Dim = 64, Layers = 1, Context = 16)]
        [Attention({{projections}}, Heads = 4, BreakSymmetry = true)]
        public partial class M;
        """);

    // d 64, 2 layers, 4 heads of 16, context 1000: NoKey caches 2 · 4 · 16 = 128 elements per token (256,000 bytes in bf16).
    [Fact]
    public Task LLM014_over_budget_names_the_KvHeads_that_fits_and_the_fix_sets_it() =>
        ParameterWasteTests.FixAsync<FitKvHeadsCodeFix>("""
            using LlmEff;
            [Model(Vocab = 256, Dim = 64, Layers = 2, Context = 1000, {|#0:KvBudgetBytes = 100000|})]
            [Attention(Projections.NoKey, Heads = 4)]
            public partial class M;
            """, """
            using LlmEff;
            [Model(Vocab = 256, Dim = 64, Layers = 2, Context = 1000, KvBudgetBytes = 100000)]
            [Attention(Projections.NoKey, Heads = 4, KvHeads = 1)]
            public partial class M;
            """,
            Warning("LLM014", 0).WithArguments("M", "1,000", "256,000", "100,000", "KvHeads = 1 would fit (64,000 bytes)"));

    [Fact]
    public Task LLM014_suggests_NoKey_when_no_KvHeads_of_the_variant_fits() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 256, Dim = 64, Layers = 2, Context = 1000, {|#0:KvBudgetBytes = 70000|})]
        [{|#1:Attention(Heads = 4)|}]
        public partial class M;
        """,
        Warning("LLM014", 0).WithArguments("M", "1,000", "512,000", "70,000", "Projections.NoKey with KvHeads = 1 would fit (64,000 bytes)"),
        Info("LLM010", 1).WithArguments("M", "8,192", "6.6%", "512", "256"));

    [Fact]
    public Task LLM014_says_when_nothing_fits() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 256, Dim = 64, Layers = 2, Context = 1000, {|#0:KvBudgetBytes = 10|})]
        [Attention(Projections.NoKey, Heads = 4)]
        public partial class M;
        """,
        Warning("LLM014", 0).WithArguments("M", "1,000", "256,000", "10",
            "no KvHeads or variant fits: even NoKey with one KV head needs 64,000 bytes; shorten Context or use fewer layers"));

    [Fact]
    public Task LLM014_is_silent_within_budget() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 256, Dim = 64, Layers = 2, Context = 1000, KvBudgetBytes = 256000)]
        [Attention(Projections.NoKey, Heads = 4)]
        public partial class M;
        """);
}
