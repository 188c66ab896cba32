using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>[Quant] declarations: blocks that do not divide a quantized input width (LLM016), targets the model
/// lacks (LLM017), QAT start and group sizes out of range, each at the argument that causes it; and silence on
/// valid declarations.</summary>
public sealed class QuantDiagnosticsTests
{
    [Fact]
    public Task Valid_quantized_declarations_raise_nothing() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Quant(QuantFormat.Fp4, From = 0.8)]
        public partial class DenseAllLinear;

        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 4, Active = 2, ExpertHidden = 32)]
        [Quant(QuantFormat.Mxfp4, Target = QuantTarget.Experts, Clipped = true)]
        public partial class ExpertsOnly;

        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Mlp(Hidden = 80)]
        [Quant(QuantFormat.Nvfp4, Target = QuantTarget.AllLinear)]
        public partial class NvfpBlocksOf16;

        [Model(Vocab = 64, Dim = 128, Layers = 1, Context = 16)]
        [Attention(Heads = 2)]
        [Mlp(Hidden = 192)]
        [Quant(QuantFormat.Int4, GroupSize = 64, From = 0)]
        public partial class Int4Groups;

        [Model(Vocab = 64, Dim = 60, Layers = 1, Context = 16)]
        [Attention(Heads = 3)]
        [Mlp(Hidden = 100)]
        [Quant(QuantFormat.Fp8E4M3, Target = QuantTarget.Attention | QuantTarget.Mlp)]
        public partial class Fp8AnyWidth;

        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 4, Active = 2, ExpertHidden = 32, FirstLayer = 1)]
        [Quant(QuantFormat.Mxfp4, Target = QuantTarget.Mlp)]
        public partial class DenseLayerOfAMixture;
        """);

    [Fact]
    public Task LLM007_a_QAT_start_outside_zero_to_one_is_reported_at_From() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Quant(QuantFormat.Mxfp4, {|#0:From = 1|})]
        public partial class Late;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Quant(QuantFormat.Mxfp4, {|#1:From = -0.25|})]
        public partial class Early;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("From", "1", "must lie in [0, 1): the fraction of training steps after which fake quantization switches on"),
        Verify.Diagnostic("LLM007").WithLocation(1).WithArguments("From", "-0.25", "must lie in [0, 1): the fraction of training steps after which fake quantization switches on"));

    [Fact]
    public Task LLM016_a_block_that_does_not_divide_an_input_width_names_the_width_at_the_format() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Attention(Heads = 4)]
        [Mlp(Hidden = 80)]
        [Quant({|#0:QuantFormat.Mxfp4|})]
        public partial class Hidden80;

        [Model(Vocab = 64, Dim = 48, Layers = 1, Context = 16)]
        [Attention(Heads = 4)]
        [Mlp(Hidden = 64)]
        [Quant({|#1:QuantFormat.Fp4|}, Target = QuantTarget.AllLinear)]
        public partial class Dim48;
        """,
        Verify.Diagnostic("LLM016").WithLocation(0).WithArguments("MXFP4", 32, "Hidden = 80 (MLP down projection)"),
        Verify.Diagnostic("LLM016").WithLocation(1).WithArguments("MXFP4", 32,
            "Dim = 48 (query projection, key projection, value projection, MLP gate projection, MLP up projection); Heads × HeadDim = 48 (attention output projection)"));

    [Fact]
    public Task LLM016_only_targeted_weights_count_and_an_Int4_group_is_reported_at_GroupSize() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Mlp(Hidden = 72)]
        [MoE(Experts = 4, Active = 2, ExpertHidden = 40, FirstLayer = 1)]
        [Quant({|#0:QuantFormat.Nvfp4|})]
        public partial class Experts40;

        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Attention(Heads = 4)]
        [Mlp(Hidden = 96)]
        [Quant(QuantFormat.Int4, {|#1:GroupSize = 64|})]
        public partial class Groups64;
        """,
        // The dense layer's 72 inputs would not fit either, but a mixture's default target is its experts.
        Verify.Diagnostic("LLM016").WithLocation(0).WithArguments("NVFP4", 16, "ExpertHidden = 40 (expert down projection)"),
        Verify.Diagnostic("LLM016").WithLocation(1).WithArguments("Int4", 64, "Hidden = 96 (MLP down projection)"));

    [Fact]
    public Task LLM017_a_target_the_model_lacks_is_reported_at_Target() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Quant(QuantFormat.Mxfp4, {|#0:Target = QuantTarget.Experts|})]
        public partial class Dense;

        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [MoE(Experts = 4, Active = 2, ExpertHidden = 32)]
        [Quant(QuantFormat.Mxfp4, {|#1:Target = QuantTarget.Mlp | QuantTarget.Attention|})]
        public partial class AllRouted;
        """,
        Verify.Diagnostic("LLM017").WithLocation(0).WithArguments("routed experts (QuantTarget.Experts)", "Dense", "it declares no [MoE]"),
        Verify.Diagnostic("LLM017").WithLocation(1).WithArguments("dense MLPs or shared experts (QuantTarget.Mlp)", "AllRouted", "every layer routes to experts and none is shared"));

    [Fact]
    public Task Group_sizes_and_targets_out_of_range_are_errors_and_a_group_size_for_a_fixed_block_is_ignored() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Quant(QuantFormat.Int4, {|#0:GroupSize = 33|})]
        public partial class OddGroup;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Quant(QuantFormat.Int4, {|#1:GroupSize = 0|})]
        public partial class NoGroup;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Quant(QuantFormat.Mxfp4, {|#2:GroupSize = 64|})]
        public partial class FixedBlocks;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Quant(QuantFormat.Mxfp4, {|#3:Target = (QuantTarget)8|})]
        public partial class UnknownTarget;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        [Quant({|#4:(QuantFormat)7|})]
        public partial class UnknownFormat;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("GroupSize", 33, "two 4-bit codes share a byte, so a group must hold an even number of values"),
        Verify.Diagnostic("LLM004").WithLocation(1).WithArguments("GroupSize", 0),
        new DiagnosticResult("LLM013", DiagnosticSeverity.Warning).WithLocation(2).WithArguments("GroupSize", "MXFP4 has a fixed block size of 32"),
        Verify.Diagnostic("LLM007").WithLocation(3).WithArguments("Target", 8, "not a combination of QuantTarget flags"),
        Verify.Diagnostic("LLM007").WithLocation(4).WithArguments("Format", 7, "not a defined QuantFormat value"));

    [Fact]
    public Task LLM009_Quant_without_Model_has_no_effect() => Verify.VerifyAsync("""
        using LlmEff;
        [{|#0:Quant(QuantFormat.Mxfp4)|}]
        public partial class Loose;
        """,
        new DiagnosticResult("LLM009", DiagnosticSeverity.Warning).WithLocation(0).WithArguments("Quant", "Loose"));
}
