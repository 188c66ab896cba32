using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using LlmEff.Generator.Validation;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ModelDeclarationAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>The table of features that cannot go together (LLM021): every row, at its argument, naming both sides.</summary>
public sealed class CombinationDiagnosticsTests
{
    private const string Latent = "Kind = AttentionKind.Latent";
    private const string Sparse = "SparseAttention(IndexerHeads = 2, IndexerDim = 8, TopK = 4)";
    private const string LatentAttention = "Heads = 4, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8";
    private const string Compressed = "Kind = AttentionKind.Compressed";
    private const string CompressedShape = "HeadDim = 16, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 8";
    private const string CompressedAttention = "Heads = 4, " + Compressed + ", " + CompressedShape;

    /// <summary>Per row of <see cref="IncompatibleCombinations.All"/>: a declaration that triggers it and nothing else,
    /// with #0 on the argument the diagnostic belongs to, and the two sides the message must name.</summary>
    private static readonly Dictionary<string, (string Declaration, string Setting, string ConflictsWith)> Declarations = new()
    {
        ["SwiGLU clamping without SwiGLU"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
            [Attention(Heads = 4)]
            [Mlp(Activation = Activation.Gelu, {|#0:ClampLimit = 10|})]
            """, "ClampLimit", "Activation.Gelu"),
        ["Checkpointing with KV sharing"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Checkpointing = true|})]
            [Attention(Heads = 4, ShareKvEvery = 2)]
            """, "Checkpointing = true", "ShareKvEvery = 2"),
        ["Checkpointing with experts"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Checkpointing = true|})]
            [Attention(Heads = 4)]
            [MoE(Experts = 4, Active = 2)]
            """, "Checkpointing = true", "[MoE]"),
        ["Checkpointing with sparse attention"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Checkpointing = true|})]
            [Attention(Heads = 4)]
            [{{Sparse}}]
            """, "Checkpointing = true", "[SparseAttention]"),
        ["Checkpointing with compressed sparse attention"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Checkpointing = true|})]
            [Attention({{CompressedAttention}})]
            [CompressedLayers(Sparse = "1,3", SparseRatio = 4, TopK = 2, IndexerHeads = 2, IndexerDim = 32)]
            """, "Checkpointing = true", "[CompressedLayers(Sparse = ...)]"),
        ["KV sharing with queries taken from the keys"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention(Projections.NoQuery, Heads = 4, {|#0:ShareKvEvery = 2|})]
            """, "ShareKvEvery = 2", "Projections.NoQuery"),
        ["KV sharing in a hybrid"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Layers(Attention = "0,1")]
            [ShortConv]
            [Attention(Heads = 4, {|#0:ShareKvEvery = 2|})]
            """, "ShareKvEvery = 2", "[ShortConv] layers"),
        ["QK norm with KV sharing"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention(Heads = 4, {|#0:QkNorm = true|}, ShareKvEvery = 2)]
            """, "QkNorm = true", "ShareKvEvery = 2"),
        ["Latent attention with a projection variant"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({|#0:Projections.NoKey|}, {{LatentAttention}})]
            """, "Projections.NoKey", Latent),
        ["Latent attention with KV sharing"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({{LatentAttention}}, {|#0:ShareKvEvery = 4|})]
            """, "ShareKvEvery = 4", Latent),
        ["Latent attention without rotary positions"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Positions = Positions.None|})]
            [Attention({{LatentAttention}})]
            """, "Positions.None", Latent),
        ["Latent attention with GPT-2 names"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Naming = ParameterNaming.Gpt2|})]
            [Attention({{LatentAttention}})]
            """, "ParameterNaming.Gpt2", Latent),
        ["Latent attention with biases"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Bias = true|})]
            [Attention({{LatentAttention}})]
            """, "Bias = true", Latent),
        ["Latent attention quantized"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({{LatentAttention}})]
            [Quant(QuantFormat.Nvfp4, {|#0:Target = QuantTarget.Mlp | QuantTarget.Attention|})]
            """, "QuantTarget.Attention", Latent),
        ["Short convolutions in an encoder"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, Causal = false)]
            [Layers(Attention = "1")]
            [{|#0:ShortConv|}]
            [Attention(Heads = 4)]
            """, "[ShortConv]", "Causal = false"),
        ["Sparse attention in an encoder"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, Causal = false)]
            [Attention(Heads = 4)]
            [{|#0:{{Sparse}}|}]
            """, "[SparseAttention]", "Causal = false"),
        ["Sparse attention with KV sharing"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention(Heads = 4, ShareKvEvery = 2)]
            [{|#0:{{Sparse}}|}]
            """, "[SparseAttention]", "ShareKvEvery = 2"),
        ["Sparse attention with the positional score mixer"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention(Projections.Shared, Heads = 4, BreakSymmetry = true)]
            [{|#0:{{Sparse}}|}]
            """, "[SparseAttention]", "BreakSymmetry = true"),
        ["PyTorch's initialisation with tied embeddings"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention(Heads = 4)]
            """, TorchInit, "TiedEmbeddings = true (the default)"),
        ["PyTorch's initialisation with GPT-2 names"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, TiedEmbeddings = false, Naming = ParameterNaming.Gpt2, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention(Heads = 4)]
            """, TorchInit, "ParameterNaming.Gpt2"),
        ["PyTorch's initialisation with latent attention"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, TiedEmbeddings = false, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention({{LatentAttention}})]
            """, TorchInit, Latent),
        ["PyTorch's initialisation with experts"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, TiedEmbeddings = false, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention(Heads = 4)]
            [MoE(Experts = 4, Active = 2)]
            """, TorchInit, "[MoE]"),
        ["PyTorch's initialisation in a hybrid"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, TiedEmbeddings = false, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention(Heads = 4)]
            [Layers(Attention = "1")]
            [ShortConv]
            """, TorchInit, "[ShortConv]"),
        ["PyTorch's initialisation with sparse attention"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, TiedEmbeddings = false, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention(Heads = 4)]
            [{{Sparse}}]
            """, TorchInit, "[SparseAttention]"),
        ["PyTorch's initialisation with residual streams"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, TiedEmbeddings = false, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention(Heads = 4)]
            [Residual(Streams = 4)]
            """, TorchInit, "[Residual]"),
        ["PyTorch's initialisation quantized"] = ("""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, TiedEmbeddings = false, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention(Heads = 4)]
            [Quant(QuantFormat.Nvfp4)]
            """, TorchInit, "[Quant]"),
        ["Compressed attention in an encoder"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, Causal = false)]
            [Attention(Heads = 4, {|#0:{{Compressed}}|}, {{CompressedShape}})]
            """, Compressed, "Causal = false"),
        ["Compressed attention with sparse attention"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({{CompressedAttention}})]
            [{|#0:{{Sparse}}|}]
            """, "[SparseAttention]", Compressed),
        ["Compressed attention in a hybrid"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention(Heads = 4, {|#0:{{Compressed}}|}, {{CompressedShape}})]
            [Layers(Attention = "1")]
            [ShortConv]
            """, Compressed, "[ShortConv] layers"),
        ["Compressed attention with KV sharing"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({{CompressedAttention}}, {|#0:ShareKvEvery = 2|})]
            """, "ShareKvEvery = 2", Compressed),
        ["Compressed attention without rotary positions"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Positions = Positions.Learned|})]
            [Attention({{CompressedAttention}})]
            """, "Positions.Learned", Compressed),
        ["Compressed attention with GPT-2 names"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Naming = ParameterNaming.Gpt2|})]
            [Attention({{CompressedAttention}})]
            """, "ParameterNaming.Gpt2", Compressed),
        ["Compressed attention with the positional score mixer"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({{CompressedAttention}}, {|#0:BreakSymmetry = true|})]
            """, "BreakSymmetry = true", Compressed),
        ["Compressed attention with QK norm"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({{CompressedAttention}}, {|#0:QkNorm = true|})]
            """, "QkNorm = true", Compressed),
        ["Compressed attention with a projection variant"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({|#0:Projections.NoKey|}, {{CompressedAttention}})]
            """, "Projections.NoKey", Compressed),
        ["Compressed attention with biases"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Bias = true|})]
            [Attention({{CompressedAttention}})]
            """, "Bias = true", Compressed),
        ["Compressed attention quantized"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
            [Attention({{CompressedAttention}})]
            [Quant(QuantFormat.Nvfp4, {|#0:Target = QuantTarget.Attention|})]
            """, "QuantTarget.Attention", Compressed),
        ["PyTorch's initialisation with compressed attention"] = ($$"""
            [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16, TiedEmbeddings = false, {|#0:Init = InitScheme.PyTorchDefault|})]
            [Attention({{CompressedAttention}})]
            """, TorchInit, Compressed),
    };

    private const string TorchInit = "Init = InitScheme.PyTorchDefault";

    public static TheoryData<string> Rows => new(IncompatibleCombinations.All.Select(row => row.Name));

    [Theory]
    [MemberData(nameof(Rows))]
    public Task Each_combination_is_an_LLM021_error_at_its_argument_naming_both_sides_and_why(string row)
    {
        Assert.True(Declarations.TryGetValue(row, out var test), $"no declaration exercises the row '{row}'; add one to {nameof(Declarations)}");
        var reason = IncompatibleCombinations.All.Single(r => r.Name == row).Reason;
        return Verify.VerifyAsync("using LlmEff;\n" + test.Declaration + "public partial class M;",
            Verify.Diagnostic("LLM021").WithLocation(0).WithArguments(test.Setting, test.ConflictsWith, reason));
    }

    [Fact]
    public void Every_row_of_the_table_is_exercised_and_every_exercise_names_a_row()
    {
        var names = IncompatibleCombinations.All.Select(row => row.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Equal(names.OrderBy(n => n), Declarations.Keys.OrderBy(n => n));
    }

    [Fact]
    public Task Quantizing_latent_attention_by_default_is_reported_at_Quant_naming_the_default_target() => Verify.VerifyAsync($$"""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention({{LatentAttention}})]
        [{|#0:Quant(QuantFormat.Nvfp4)|}]
        public partial class M;
        """,
        Verify.Diagnostic("LLM021").WithLocation(0).WithArguments("[Quant] (its default Target is QuantTarget.AllLinear)", Latent,
            "fake quantization of latent attention's projections is not supported yet; target Experts or Mlp"));

    [Fact]
    public Task Each_combination_a_declaration_makes_is_reported_not_only_the_first() => Verify.VerifyAsync("""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, {|#0:Checkpointing = true|})]
        [Attention(Heads = 4, {|#1:ShareKvEvery = 2|})]
        [MoE(Experts = 4, Active = 2)]
        [Layers(Attention = "0,1")]
        [ShortConv]
        public partial class M;
        """,
        Verify.Diagnostic("LLM021").WithLocation(0).WithArguments("Checkpointing = true", "ShareKvEvery = 2",
            "layers that share keys and values pass tensors from block to block, which a recomputed block would cut off from their gradient"),
        Verify.Diagnostic("LLM021").WithLocation(0).WithArguments("Checkpointing = true", "[MoE]",
            "a recomputed mixture-of-experts block would count its routing load and balancing loss twice"),
        Verify.Diagnostic("LLM021").WithLocation(1).WithArguments("ShareKvEvery = 2", "[ShortConv] layers",
            "groups of layers sharing keys and values would straddle convolution blocks"));

    [Fact]
    public Task Features_that_go_together_are_not_reported() => Verify.VerifyAsync($$"""
        using LlmEff;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16, Checkpointing = true)]
        [Layers(Attention = "0,1")]
        [ShortConv]
        [Attention(Projections.Shared, Heads = 4, QkNorm = true, BreakSymmetry = true)]
        public partial class SharedHybrid;
        [Model(Vocab = 64, Dim = 64, Layers = 4, Context = 16)]
        [Attention({{LatentAttention}})]
        [{{Sparse}}]
        [MoE(Experts = 4, Active = 2)]
        [Quant(QuantFormat.Nvfp4)]
        public partial class LatentSparseExperts;
        """);
}
