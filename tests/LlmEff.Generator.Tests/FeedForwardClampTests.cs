using System.Threading.Tasks;
using LlmEff.Generator.Emitting;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>[Mlp(ClampLimit = L)], DeepSeek V4's SwiGLU clamping: refused where it cannot mean anything, planned once for
/// every SwiGLU feed-forward and rendered by both back ends (their parity is tested in LlmEff.Cli.Tests).</summary>
public sealed class FeedForwardClampTests
{
    private static readonly ModelSpec Clamped = new(Vocab: 64, Dim: 64, Layers: 2, Context: 16, TiedEmbeddings: true, Norm: NormKind.RmsNorm,
        Positions: PositionKind.Rope, Bias: false, RopeTheta: 10000, NormEps: 1e-5, Naming: NamingKind.Llama,
        Attention: new AttentionSpec(ProjectionKind.Full, Heads: 4, KvHeads: 4, HeadDim: 16), Mlp: new MlpSpec(192, ActivationKind.SwiGlu, ClampLimit: 10),
        Moe: new MoeSpec(4, 2, 1, 32, 1, RouterKind.Softmax, BalanceKind.AuxLoss, true, 1, 0.01, 0));

    private static readonly ModelSizes NoSizes = new(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    private static (LayoutPlan Plan, string TorchSharp, string PyTorch) Emit(ModelSpec spec)
    {
        var model = new ModelToEmit(new TypeTarget("Demo", "M", EquatableArray<string>.Empty), spec, LayoutPlanner.Plan(spec), NoSizes);
        return (model.Plan, ModelEmitter.Emit(model), PyTorchEmitter.EmitPython(model));
    }

    [Fact]
    public Task A_limit_that_is_not_positive_is_an_error_at_the_argument() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Mlp({|#0:ClampLimit = 0|})]
        public partial class Zero;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Mlp({|#1:ClampLimit = -10|})]
        public partial class Negative;
        """,
        Verify.Diagnostic("LLM007").WithLocation(0).WithArguments("ClampLimit", "0",
            "SwiGLU clamping keeps the gate at most the limit and the up branch within ±limit, so the limit must be positive"),
        Verify.Diagnostic("LLM007").WithLocation(1).WithArguments("ClampLimit", "-10",
            "SwiGLU clamping keeps the gate at most the limit and the up branch within ±limit, so the limit must be positive"));

    [Fact]
    public Task A_positive_limit_on_SwiGLU_is_silent() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Mlp(ClampLimit = 10)]
        [MoE(Experts = 4, Active = 2, Shared = 1, FirstLayer = 1)]
        public partial class M;
        """);

    [Fact]
    public void The_plan_gives_the_limit_to_the_dense_routed_and_shared_feed_forwards_and_both_back_ends_clamp_gate_above_and_up_both_ways()
    {
        var declared = Emit(Clamped);
        Assert.Equal(10, declared.Plan.Dense!.ClampLimit);
        Assert.Equal(10, declared.Plan.Mixture!.Expert.ClampLimit);
        Assert.Equal(10, declared.Plan.Mixture.Shared!.ClampLimit);

        Assert.Contains("var gate = gate_proj.forward(x).clamp_max(10);", declared.TorchSharp);
        Assert.Contains("var up = up_proj.forward(x).clamp(-10, 10);", declared.TorchSharp);
        Assert.Contains("gate = gate.clamp(max=10.0)", declared.PyTorch);
        Assert.Contains("up = up.clamp(min=-10.0, max=10.0)", declared.PyTorch);
    }

    [Fact]
    public void Without_a_limit_nothing_is_clamped()
    {
        var declared = Emit(Clamped with { Mlp = new MlpSpec(192, ActivationKind.SwiGlu), Moe = null });
        Assert.Null(declared.Plan.Dense!.ClampLimit);
        Assert.DoesNotContain("clamp", declared.TorchSharp);
        Assert.DoesNotContain("clamp(", declared.PyTorch);
    }
}
