using System.Threading.Tasks;
using LlmEff.Generator.Analyzers;
using Microsoft.CodeAnalysis;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>Each diagnostic of <see cref="ModelDeclarationAnalyzer"/> fires at the argument that causes it, with
/// its numbers, and stays silent on valid declarations.</summary>
public sealed class ModelDeclarationAnalyzerTests
{
    [Fact]
    public Task Valid_declarations_raise_nothing() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 50257, Dim = 768, Layers = 12, Context = 1024, Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true)]
        [Attention(Heads = 12)]
        [Mlp(Hidden = 3072, Activation = Activation.Gelu)]
        public partial class Gpt2;

        [Model(Vocab = 256, Dim = 100, Layers = 2, Context = 64)]
        [Attention(Projections.Full, Heads = 4, KvHeads = 2, HeadDim = 32)]
        public partial class Odd;
        """);

    [Fact]
    public Task LLM001_non_partial_class_is_reported_at_its_name() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
        public class {|#0:Whole|};
        """, Verify.Diagnostic("LLM001").WithLocation(0).WithArguments("Whole"));

    [Theory]
    [InlineData("@M public partial class {|#0:G|}<T>;", "a generic class cannot be a model (its sizes must be constants)")]
    [InlineData("@M public static partial class {|#0:G|};", "a static class cannot be a module")]
    [InlineData("@M public abstract partial class {|#0:G|};", "an abstract class cannot be built")]
    [InlineData("public class Base; @M public partial class {|#0:G|} : Base;", "it declares the base class 'Base', but the generated half derives it from TorchSharp's Module")]
    [InlineData("public class Outer { @M public partial class {|#0:G|}; }", "the enclosing type 'Outer' is not partial")]
    public Task LLM002_unsupported_shapes_say_why(string declaration, string reason) =>
        Verify.VerifyAsync("using LlmEff;\n" + declaration.Replace("@M", "[Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]"),
            Verify.Diagnostic("LLM002").WithLocation(0).WithArguments("G", reason));

    [Fact]
    public Task LLM003_missing_required_size_names_it_at_the_attribute() => Verify.VerifyAsync("""
        using LlmEff;
        [{|#0:Model(Vocab = 64, Dim = 64, Layers = 1)|}]
        public partial class M;
        """, Verify.Diagnostic("LLM003").WithLocation(0).WithArguments("Model", "Context"));

    [Fact]
    public Task LLM004_non_positive_sizes_are_reported_at_each_argument() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, {|#0:Dim = 0|}, Layers = 1, Context = 16)]
        [Attention(Heads = 4, {|#1:KvHeads = -2|})]
        public partial class M;
        """,
        Verify.Diagnostic("LLM004").WithLocation(0).WithArguments("Dim", 0),
        Verify.Diagnostic("LLM004").WithLocation(1).WithArguments("KvHeads", -2));

    [Fact]
    public Task LLM005_heads_not_divisible_by_kv_heads() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 96, Layers = 1, Context = 16)]
        [Attention(Heads = 6, {|#0:KvHeads = 4|})]
        public partial class M;
        """, Verify.Diagnostic("LLM005").WithLocation(0).WithArguments(6, 4));

    [Fact]
    public Task LLM006_dim_not_divisible_by_heads_without_head_dim() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 100, Layers = 1, Context = 16)]
        [Attention({|#0:Heads = 3|})]
        public partial class M;
        """, Verify.Diagnostic("LLM006").WithLocation(0).WithArguments(100, 3));

    [Fact]
    public Task LLM007_values_out_of_range_explain_the_rule() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16, {|#0:NormEps = -1|}, {|#1:Positions = (Positions)7|})]
        [Attention(Heads = 2, {|#2:KvHeads = 4|})]
        public partial class M;
        [Model(Vocab = 64, Dim = 66, Layers = 1, Context = 16)]
        [Attention({|#3:Heads = 2|}, KvHeads = 1)]
        public partial class OddHeads;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("NormEps", "-1", "must lie in (0, 1)"),
        Verify.Diagnostic("LLM007").WithLocation(1).WithArguments("Positions", 7, "not a defined Position value"),
        Verify.Diagnostic("LLM007").WithLocation(2).WithArguments("KvHeads", 4, "a model cannot have more key/value heads than query heads (2)"),
        Verify.Diagnostic("LLM007").WithLocation(3).WithArguments("HeadDim", 33, "rotary positions rotate channel pairs, so the head width must be even"));

    [Fact]
    public Task LLM007_a_depth_beyond_the_layout_plans_bound_is_out_of_range() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, {|#0:Layers = 2000000000|}, Context = 16)]
        public partial class Deep;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("Layers", 2000000000, "at most 10,000 layers"));

    [Fact]
    public Task LLM008_overflowing_sizes_are_refused() => Verify.VerifyAsync("""
        using LlmEff;
        [{|#0:Model(Vocab = 2000000000, Dim = 2000000000, Layers = 10000, Context = 2000000000)|}]
        [Attention(Heads = 1)]
        [Mlp(Hidden = 2000000000)]
        public partial class Huge;
        """, Verify.Diagnostic("LLM008").WithLocation(0).WithArguments("Huge", "Vocab = 2000000000, Dim = 2000000000, Layers = 10000, Context = 2000000000"));

    [Fact]
    public Task LLM009_architecture_attribute_without_model_warns() => Verify.VerifyAsync("""
        using LlmEff;
        [{|#0:Attention(Heads = 4)|}]
        public partial class Forgotten;
        """, new Microsoft.CodeAnalysis.Testing.DiagnosticResult("LLM009", DiagnosticSeverity.Warning).WithLocation(0).WithArguments("Attention", "Forgotten"));

    [Fact]
    public Task KV_sharing_needs_a_query_projection_LLM021_and_groups_within_the_depth_LLM007() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Projections.NoQuery, Heads = 4, {|#0:ShareKvEvery = 2|})]
        public partial class M;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4, {|#1:ShareKvEvery = 5|})]
        public partial class TooLong;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention(Heads = 4, {|#2:ShareKvEvery = 0|})]
        public partial class Zero;
        """,
        Verify.Diagnostic("LLM021").WithLocation(0).WithArguments("ShareKvEvery = 2", "Projections.NoQuery",
            "NoQuery and Shared attention take their queries from the keys, so a layer that reuses another's keys would reuse its queries too; use Full or NoKey"),
        Verify.Diagnostic("LLM007").WithLocation(1).WithArguments("ShareKvEvery", 5, "groups cannot be longer than the model's 4 layers"),
        Verify.Diagnostic("LLM004").WithLocation(2).WithArguments("ShareKvEvery", 0));

    [Fact]
    public Task Regression_a_default_MLP_width_beyond_int_is_reported_not_silently_skipped() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, {|#0:Dim = 1000000000|}, Layers = 64, Context = 32)]
        [Attention(Heads = 4, KvHeads = 4)]
        [Mlp()]
        public partial class M;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("Dim", 1000000000,
            "the default MLP width for it (2,666,666,688) exceeds the largest size, 2,147,483,647; declare [Mlp(Hidden = ...)]"));

    [Fact]
    public Task LLM021_checkpointing_is_refused_where_recomputation_would_be_wrong() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Checkpointing = true|})]
        [Attention(Heads = 4, ShareKvEvery = 2)]
        public partial class Sharing;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#1:Checkpointing = true|})]
        [Attention(Heads = 4)]
        [MoE(Experts = 4, Active = 2)]
        public partial class Experts;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, Checkpointing = true)]
        [Attention(Heads = 4)]
        public partial class Fine;
        """,
        Verify.Diagnostic("LLM021").WithLocation(0).WithArguments("Checkpointing = true", "ShareKvEvery = 2",
            "layers that share keys and values pass tensors from block to block, which a recomputed block would cut off from their gradient"),
        Verify.Diagnostic("LLM021").WithLocation(1).WithArguments("Checkpointing = true", "[MoE]",
            "a recomputed mixture-of-experts block would count its routing load and balancing loss twice"));
}
