using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;
using VerifyWaste = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ParameterWasteAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>[MoE] declarations: invalid counts and layer indices at the argument that causes them, ignored
/// balancing settings, and the total-versus-active info (LLM015).</summary>
public sealed class ExpertDiagnosticsTests
{
    [Fact]
    public Task Impossible_expert_counts_and_layers_are_errors_at_their_argument() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 8, {|#0:Active = 9|}, {|#1:FirstLayer = 4|})]
        public partial class TooMany;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4)]
        [MoE({|#2:Experts = 0|}, Active = 1, {|#3:Shared = -1|}, {|#4:FirstLayer = -2|})]
        public partial class None;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4)]
        [{|#5:MoE(Experts = 8)|}]
        public partial class NoActive;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 8, Active = 2, {|#6:RoutedScale = 0|}, {|#7:Router = (RouterScoring)5|}, {|#8:SequenceAuxLossWeight = -0.1|})]
        public partial class BadRouter;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("Active", 9, "a token cannot use more than the layer's 8 experts"),
        Verify.Diagnostic("LLM007").WithLocation(1).WithArguments("FirstLayer", 4, "layers are numbered 0 to 3, so no layer would have experts"),
        Verify.Diagnostic("LLM004").WithLocation(2).WithArguments("Experts", 0),
        Verify.Diagnostic("LLM007").WithLocation(3).WithArguments("Shared", -1, "must be zero or positive"),
        Verify.Diagnostic("LLM007").WithLocation(4).WithArguments("FirstLayer", -2, "must be zero or positive"),
        Verify.Diagnostic("LLM003").WithLocation(5).WithArguments("MoE", "Active"),
        Verify.Diagnostic("LLM007").WithLocation(6).WithArguments("RoutedScale", "0", "must be positive"),
        Verify.Diagnostic("LLM007").WithLocation(7).WithArguments("Router", 5, "not a defined Router value"),
        Verify.Diagnostic("LLM007").WithLocation(8).WithArguments("SequenceAuxLossWeight", "-0.1", "must be zero or positive"));

    [Fact]
    public Task Balancing_settings_of_another_mode_are_reported_as_ignored() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 4, Active = 2, Balance = ExpertBalance.AuxLossFree, {|#0:AuxLossWeight = 0.1|})]
        public partial class M;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 4, Active = 2, {|#1:BiasUpdateRate = 0.01|})]
        public partial class N;
        """,
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(0).WithArguments("AuxLossWeight", "the layer balances with ExpertBalance.AuxLossFree, not an auxiliary loss"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(1).WithArguments("BiasUpdateRate", "the layer balances with ExpertBalance.AuxLoss, which keeps no selection bias"));

    [Fact]
    public Task Hash_layers_beyond_the_layers_with_experts_or_negative_are_errors_at_the_argument() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 8, Active = 2, FirstLayer = 1, {|#0:HashLayers = 4|})]
        public partial class TooMany;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 8, Active = 2, {|#1:HashLayers = 2|})]
        public partial class One;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 8, Active = 2, {|#2:HashLayers = -1|})]
        public partial class Negative;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("HashLayers", 4, "only 3 layers have experts (layers 1 to 3)"),
        Verify.Diagnostic("LLM007").WithLocation(1).WithArguments("HashLayers", 2, "only 1 layer has experts (layers 0 to 0)"),
        Verify.Diagnostic("LLM007").WithLocation(2).WithArguments("HashLayers", -1, "must be zero or positive"));

    [Fact]
    public Task Balancing_a_mixture_whose_every_routed_layer_is_hashed_and_hashing_with_every_expert_active_are_reported_as_ignored() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 3, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 8, Active = 2, FirstLayer = 1, HashLayers = 2, {|#0:Balance = ExpertBalance.AuxLossFree|}, {|#1:SequenceAuxLossWeight = 0.01|})]
        public partial class AllHashed;
        [Model(Vocab = 64, Dim = 64, Layers = 3, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 4, Active = 4, {|#2:HashLayers = 1|})]
        public partial class EveryExpert;
        [Model(Vocab = 64, Dim = 64, Layers = 3, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 8, Active = 2, HashLayers = 2, Balance = ExpertBalance.AuxLossFree, SequenceAuxLossWeight = 0.01)]
        public partial class LastLayerScored;
        """,
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(0).WithArguments("Balance", "all 2 layers with experts are hash-routed (HashLayers = 2), and a fixed table's load cannot be balanced"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(1).WithArguments("SequenceAuxLossWeight", "all 2 layers with experts are hash-routed (HashLayers = 2), and a fixed table's load cannot be balanced"),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(2).WithArguments("HashLayers", "every token already uses all 4 experts (Active = 4), so the table has nothing to choose"));

    [Fact]
    public Task A_valid_mixture_is_silent_for_the_declaration_analyzer() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 8, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 3, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree, BiasUpdateRate = 0.01, SequenceAuxLossWeight = 0.0001)]
        public partial class M;
        """);

    // d 64, 2 layers, 4 heads (NoKey: no LLM010), SwiGLU experts of 32: 8 experts × 6,144 + a 512 router per layer, 2 active:
    // 4,096 embeddings + 24,576 attention + 99,328 MLP + 320 norms = 128,320; active = 128,320 − 2 · 6 · 6,144 = 54,592.
    [Fact]
    public Task LLM015_reports_total_and_active_parameters_at_the_attribute() => VerifyWaste.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Projections.NoKey, Heads = 4)]
        [{|#0:MoE(Experts = 8, Active = 2, ExpertHidden = 32)|}]
        public partial class M;
        """,
        new DiagnosticResult("LLM015", DiagnosticSeverity.Info).WithLocation(0)
            .WithArguments("M", "128,320", "54,592", "42.5%", "98,304", "76.6%", "2", "8"));
}
