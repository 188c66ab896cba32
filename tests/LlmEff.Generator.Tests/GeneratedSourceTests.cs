using System.Linq;
using LlmEff.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace LlmEff.Generator.Tests;

/// <summary>What the generator writes for the sample models: reviewed snapshots, and code that compiles cleanly.</summary>
public sealed class GeneratedSourceTests
{
    public static TheoryData<string> Samples => new(CompilationHarness.SampleSources().Keys);

    [Theory]
    [MemberData(nameof(Samples))]
    public void Sample_generates_the_reviewed_source(string sample)
    {
        var (_, run) = CompilationHarness.Generate(CompilationHarness.Compile(CompilationHarness.SampleSources()[sample]));

        Assert.Null(run.Results.Single().Exception);
        Assert.NotEmpty(run.Results.Single().GeneratedSources);
        foreach (var generated in run.Results.Single().GeneratedSources)
            Snapshot.Match<GeneratedSourceTests>(generated.HintName.Replace(".g.cs", ".g"), generated.SourceText.ToString());
    }

    [Fact]
    public void All_samples_compile_against_TorchSharp_without_warnings()
    {
        var (output, run) = CompilationHarness.Generate(CompilationHarness.Compile(CompilationHarness.SampleSources().Values.ToArray()));

        Assert.Empty(run.Diagnostics);
        Assert.True(run.GeneratedTrees.Length >= CompilationHarness.SampleSources().Count);
        Assert.Empty(CompilationHarness.Problems(output));
    }

    [Theory]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Naming = ParameterNaming.Gpt2, TiedEmbeddings = false)] [Attention(Heads = 4, KvHeads = 2)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true)] [Mlp(Activation = Activation.Gelu)] [Attention(Heads = 2)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 1, Context = 32, Positions = Positions.None)] [Attention(Heads = 8, KvHeads = 1, HeadDim = 16)]")]
    [InlineData("[Model(Vocab = 100, Dim = 128, Layers = 1, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)] [Mlp(Hidden = 96)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32, Checkpointing = true)] [Attention(Heads = 4)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 1, Context = 32, Positions = Positions.Learned, Checkpointing = true)] [Attention(Heads = 4)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)] [Mlp(Activation = Activation.Gelu)] [MoE(Experts = 4, Active = 2, Shared = 2, FirstLayer = 1)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)] [Attention(Heads = 4, ShareKvEvery = 2)] [Quant(QuantFormat.Nvfp4, Clipped = true)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32)] [Attention(Heads = 4, ShareKvEvery = 2)] [MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1)] [Quant(QuantFormat.Int4, GroupSize = 16, From = 0.5)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Naming = ParameterNaming.Gpt2)] [MoE(Experts = 4, Active = 1, ExpertHidden = 32, FirstLayer = 1)] [Quant(QuantFormat.Fp8E4M3, Target = QuantTarget.Mlp | QuantTarget.Attention)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true, Checkpointing = true)] [Layers(Attention = \"0\")] [ShortConv(Kernel = 2)] [Attention(Projections.Shared, Heads = 4, KvHeads = 2, QkNorm = true)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Positions = Positions.None)] [Layers(Attention = \"1\")] [ShortConv] [Attention(Projections.NoKey, Heads = 4)] [SparseAttention(IndexerHeads = 2, IndexerDim = 4, TopK = 3)] [Quant(QuantFormat.Mxfp4)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Checkpointing = true)] [Attention(Heads = 2, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8)] [Quant(QuantFormat.Nvfp4, Target = QuantTarget.Mlp)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Causal = false)] [Attention(Heads = 2, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8, QRank = 24)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32)] [Layers(Attention = \"0-1\")] [ShortConv] [Attention(Heads = 2, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8)] [SparseAttention(IndexerHeads = 2, IndexerDim = 4, TopK = 3)] [MoE(Experts = 4, Active = 2)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Positions = Positions.Learned, Checkpointing = true)] [Attention(Heads = 4, KvHeads = 2)] [Residual(Streams = 2, SinkhornIterations = 5)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32)] [Layers(Attention = \"0-1\")] [ShortConv] [Attention(Heads = 2, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8)] [SparseAttention(IndexerHeads = 2, IndexerDim = 4, TopK = 3)] [MoE(Experts = 4, Active = 2)] [Residual(Streams = 3)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Causal = false)] [Attention(Projections.NoQuery, Heads = 4, BreakSymmetry = true)] [Residual(Streams = 4)] [Quant(QuantFormat.Mxfp4)]")]
    // Hash routing: every routed layer hashed; dense then hashed then scored layers with key/value sharing; a hybrid with latent attention.
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32)] [Attention(Heads = 4)] [MoE(Experts = 4, Active = 2, HashLayers = 2, Router = RouterScoring.SqrtSoftplus)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 4, Context = 32, Causal = false)] [Attention(Heads = 4, ShareKvEvery = 2)] [MoE(Experts = 4, Active = 2, Shared = 1, FirstLayer = 1, HashLayers = 2, Balance = ExpertBalance.AuxLossFree, SequenceAuxLossWeight = 0.001)]")]
    [InlineData("[Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32)] [Layers(Attention = \"0\")] [ShortConv] [Attention(Heads = 2, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8)] [MoE(Experts = 4, Active = 2, HashLayers = 1)]")]
    public void Every_layout_option_compiles_without_warnings(string attributes)
    {
        var source = $$"""
            using LlmEff;
            namespace Variants;
            {{attributes}}
            public partial class Variant;
            """;
        var (output, run) = CompilationHarness.Generate(CompilationHarness.Compile(source));

        Assert.Equal(3, run.GeneratedTrees.Length); // the module, its PyTorch twin and its GGUF description
        Assert.Empty(CompilationHarness.Problems(output));
    }

    /// <summary>The user's own types named like what the generated code uses (TorchSharp's Tensor, nn, Device; the runtime's
    /// Linear, SingleTokenStep, SingleTokenDecoder, Attention, Init, LayerState; the BCL's System) sit beside the models and must not capture a name.</summary>
    [Fact]
    public void Models_compile_beside_user_types_named_like_TorchSharp_runtime_and_BCL_types()
    {
        const string source = """
            using LlmEff;
            namespace Users
            {
                public class Tensor { }
                public static class nn { }
                public class Device { }
                public class ScalarType { }
                public class Linear { }
                public class SingleTokenStep { }
                public class SingleTokenDecoder { }
                public class DecoderBlockWeights { }
                public class Kernels { }
                public class ModuleList<T> { }
                public class Attention { }
                public class Init { }
                public class RmsNorm { }
                public class LayerState { }
                public class DecodingCache { }
                public class ModelFacts { }
                public class System { }
                public class torch { }

                [Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoKey, Heads = 4, KvHeads = 2)]
                public partial class Plain;

                [Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Bias = true, TiedEmbeddings = false)] [Attention(Heads = 4, KvHeads = 2)]
                public partial class Llama;

                [Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)]
                [Attention(Heads = 4, ShareKvEvery = 2)] [MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1)] [Quant(QuantFormat.Nvfp4)]
                public partial class Fused;

                [Model(Vocab = 100, Dim = 64, Layers = 3, Context = 32)] [Layers(Attention = "0-1")] [ShortConv]
                [Attention(Heads = 2, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8)] [SparseAttention(IndexerHeads = 2, IndexerDim = 4, TopK = 3)]
                public partial class Hybrid;

                [Model(Vocab = 100, Dim = 64, Layers = 2, Context = 32, Norm = Norm.LayerNorm, Positions = Positions.Learned, Checkpointing = true)]
                [Attention(Projections.Shared, Heads = 4, BreakSymmetry = true)] [Mlp(Activation = Activation.Gelu)]
                public partial class Symmetric;
            }
            """;
        var (output, run) = CompilationHarness.Generate(CompilationHarness.Compile(source));

        Assert.Equal(15, run.GeneratedTrees.Length); // five models, three parts each
        Assert.Empty(CompilationHarness.Problems(output));
    }

    [Fact]
    public void Models_nested_in_partial_types_and_in_the_global_namespace_compile()
    {
        const string source = """
            using LlmEff;
            public static partial class Outer
            {
                public partial struct Middle
                {
                    [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
                    internal partial class Inner { }
                }
            }
            [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
            partial class TopLevel;
            """;
        var (output, run) = CompilationHarness.Generate(CompilationHarness.Compile(source));

        Assert.Equal(6, run.GeneratedTrees.Length); // each model, its PyTorch twin and its GGUF description
        Assert.Empty(CompilationHarness.Problems(output));
        Assert.Contains(run.Results.Single().GeneratedSources, s => s.HintName == "Outer.Middle.Inner.g.cs");
        Assert.Contains(run.Results.Single().GeneratedSources, s => s.HintName == "Outer.Middle.Inner.PyTorch.g.cs");
    }

    [Fact]
    public void Invalid_declarations_generate_nothing_and_leave_the_reporting_to_the_analyzer()
    {
        const string source = """
            using LlmEff;
            [Model(Vocab = 64, Dim = 0, Layers = 1, Context = 16)]
            public partial class Broken;
            [Model(Vocab = 64, Dim = 64, Layers = 1, Context = 16)]
            public class NotPartial;
            """;
        var (_, run) = CompilationHarness.Generate(CompilationHarness.Compile(source));

        Assert.Empty(run.GeneratedTrees);
        Assert.Empty(run.Diagnostics);
        Assert.Null(run.Results.Single().Exception);
    }

    [Fact]
    public void Output_is_deterministic_across_runs()
    {
        var source = CompilationHarness.SampleSources()["TinyDecoder"];
        var first = string.Concat(CompilationHarness.Generate(CompilationHarness.Compile(source)).Run.GeneratedTrees.Select(t => t.ToString()));
        var second = string.Concat(CompilationHarness.Generate(CompilationHarness.Compile(source)).Run.GeneratedTrees.Select(t => t.ToString()));

        Assert.Equal(first, second);
        Assert.DoesNotContain("\r", first);
    }
}
