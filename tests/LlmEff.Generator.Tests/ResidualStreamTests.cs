using System.Threading.Tasks;
using LlmEff.Generator.Model;
using LlmEff.Generator.Sizing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;
using VerifyWaste = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ParameterWasteAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>[Residual] (DeepSeek V4's residual streams): bad values at their argument, one stream (LLM027), what the
/// streams cost (LLM026), and their sizes by hand and for DeepSeek-V4-Flash.</summary>
public sealed class ResidualStreamTests
{
    [Fact]
    public Task Streams_and_iterations_that_are_not_positive_or_missing_are_errors_at_their_argument() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Residual({|#0:Streams = 0|}, {|#1:SinkhornIterations = -1|})]
        public partial class Zero;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [{|#2:Residual(SinkhornIterations = 20)|}]
        public partial class NoStreams;
        """,
        Verify.Diagnostic("LLM004").WithLocation(0).WithArguments("Streams", 0),
        Verify.Diagnostic("LLM004").WithLocation(1).WithArguments("SinkhornIterations", -1),
        Verify.Diagnostic("LLM003").WithLocation(2).WithArguments("Residual", "Streams"));

    [Fact]
    public Task One_stream_is_a_warning_at_Streams_not_an_error() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4)]
        [Residual({|#0:Streams = 1|})]
        public partial class One;
        """,
        new DiagnosticResult("LLM027", DiagnosticSeverity.Warning).WithLocation(0));

    [Fact]
    public Task Streams_whose_maps_overflow_64_bits_are_LLM008_naming_the_streams() => Verify.VerifyAsync("""
        using LlmEff;
        [{|#0:Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)|}]
        [Attention(Heads = 4)]
        [Residual(Streams = 2000000000)]
        public partial class Huge;
        """,
        Verify.Diagnostic("LLM008").WithLocation(0).WithArguments("Huge", "Vocab = 64, Dim = 64, Layers = 2, Context = 16, Streams = 2000000000"));

    [Fact]
    public Task Valid_residual_streams_are_silent_for_the_declaration_analyzer() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, Checkpointing = true)]
        [Attention(Heads = 4)]
        [Residual(Streams = 4, SinkhornIterations = 20)]
        public partial class M;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Heads = 4, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 24, RopeDim = 8)]
        [SparseAttention(IndexerHeads = 2, IndexerDim = 8, TopK = 4)]
        [MoE(Experts = 4, Active = 2)]
        [Residual(Streams = 2)]
        public partial class N;
        """);

    [Fact]
    public Task Residual_streams_without_a_model_are_a_warning() => Verify.VerifyAsync("""
        using LlmEff;
        [{|#0:Residual(Streams = 4)|}]
        public partial class Lonely;
        """,
        new DiagnosticResult("LLM009", DiagnosticSeverity.Warning).WithLocation(0).WithArguments("Residual", "Lonely"));

    // d 64, 2 layers, NoKey attention (so no LLM010), SwiGLU 192: 4,096 + 24,576 + 73,728 + 320 = 102,720 parameters.
    // Two streams: each map 8 × 128 + 8 + 3 = 1,035, four of them, and the head 2 × 128 + 2 + 1 = 259: 4,399 (4.1% of
    // 107,119). FLOPs: 2 · (4 · 1,024 + 256) for the maps and 2 · (2 · 2 · 8 · 64 + 128) for mixing the streams = 13,056
    // of 212,992 + 13,056 = 226,048 (5.8%).
    [Fact]
    public Task LLM026_reports_what_the_streams_cost_at_Streams() => VerifyWaste.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        [Attention(Projections.NoKey, Heads = 4)]
        [Residual({|#0:Streams = 2|})]
        public partial class M;
        """,
        new DiagnosticResult("LLM026", DiagnosticSeverity.Info).WithLocation(0)
            .WithArguments("M", "2", "4,399", "4.1%", "13,056", "5.8% of the forward", "64", "128"));

    private static ModelSpec Plain(int vocab, int dim, int layers, int heads, int hidden) =>
        new(vocab, dim, layers, 4096, TiedEmbeddings: false, NormKind.RmsNorm, PositionKind.Rope, Bias: false, 10000, 1e-6, NamingKind.Llama,
            new AttentionSpec(ProjectionKind.Full, heads, heads, dim / heads), new MlpSpec(hidden, ActivationKind.SwiGlu));

    [Fact]
    public void DeepSeek_V4_Flash_streams_hold_43_times_two_maps_and_one_head()
    {
        // 43 layers, Dim 4096, hc_mult 4: each map [(2 + 4)·4, 4·4096] + 24 biases + 3 gates, two per layer; the head
        // [4, 4·4096] + 4 biases + 1 gate. (The MTP block's own maps are not counted: the generator has no MTP.)
        var flash = Plain(129280, 4096, 43, 32, 2048) with { Residual = new ResidualSpec(4, 20) };
        var sizes = ModelSizing.Compute(flash);
        const long map = 24L * 16384 + 24 + 3, head = 4L * 16384 + 4 + 1;
        Assert.Equal(43 * 2 * map + head, sizes.ResidualStreamParameters);
        Assert.Equal(33_884_439, sizes.ResidualStreamParameters);
        Assert.Equal(4L * 4096, sizes.ResidualStateElementsPerToken);
        Assert.Equal(ModelSizing.Compute(flash with { Residual = null }).Parameters + 33_884_439, sizes.Parameters);
    }

    [Fact]
    public void Streams_add_their_maps_as_weights_and_the_stream_mixing_to_the_flops()
    {
        var spec = Plain(100, 64, 3, 4, 128);
        var single = ModelSizing.Compute(spec);
        var streams = ModelSizing.Compute(spec with { Residual = new ResidualSpec(3, 20) });
        const long rows = (2 + 3) * 3, width = 3 * 64;
        Assert.Equal(3 * 2 * (rows * width + rows + 3) + (3 * width + 3 + 1), streams.Parameters - single.Parameters);
        Assert.Equal(2 * (3 * 2 * rows * width + 3 * width), streams.MatmulFlopsPerToken - single.MatmulFlopsPerToken);
        Assert.Equal(2 * (3 * 2 * rows * width + 3 * width) + 2 * (3 * 2 * rows * 64 + width), streams.FlopsPerToken - single.FlopsPerToken);
        Assert.Equal(0, single.ResidualStateElementsPerToken);
        Assert.Equal(width, streams.ResidualStateElementsPerToken);
    }

    [Fact]
    public void Sizes_that_overflow_with_streams_are_an_overflow_not_a_wrapped_number()
    {
        var huge = Plain(100, 1 << 20, 8, 16, 64) with { Residual = new ResidualSpec(int.MaxValue / 2, 20) };
        Assert.Throws<System.OverflowException>(() => ModelSizing.Compute(huge));
    }
}
