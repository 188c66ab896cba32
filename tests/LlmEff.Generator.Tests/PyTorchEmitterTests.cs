using System.Linq;
using LlmEff.Generator.Emitting;
using LlmEff.Generator.Model;
using LlmEff.Generator.Tests.Infrastructure;

namespace LlmEff.Generator.Tests;

/// <summary>The PyTorch twin's part: the Python text comes out verbatim from its raw string, and a spec with a feature
/// that has no port gets a part carrying the refusal, naming the feature, instead of an exception.</summary>
public sealed class PyTorchEmitterTests
{
    private static readonly ModelSpec Plain = new(Vocab: 64, Dim: 64, Layers: 1, Context: 16, TiedEmbeddings: true, Norm: NormKind.RmsNorm,
        Positions: PositionKind.Rope, Bias: false, RopeTheta: 10000, NormEps: 1e-5, Naming: NamingKind.Llama,
        Attention: new AttentionSpec(ProjectionKind.Full, Heads: 1, KvHeads: 1, HeadDim: 64), Mlp: new MlpSpec(192, ActivationKind.SwiGlu));

    private static readonly ModelSizes NoSizes = new(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    private static ModelToEmit Model(ModelSpec spec) => new(new TypeTarget("Demo", "Odd", EquatableArray<string>.Empty), spec, Planning.LayoutPlanner.Plan(spec), NoSizes);

    [Fact]
    public void Every_feature_of_a_valid_declaration_has_a_port()
    {
        Assert.Null(PyTorchEmitter.Refusal(Plain));
        Assert.Contains("PyTorchExport.Module(\"Odd.py\",", PyTorchEmitter.Emit(Model(Plain)));
    }

    [Theory]
    [InlineData("attention projections 9 (not Full, NoKey, NoQuery or Shared) have no PyTorch port")]
    [InlineData("[MoE] router scoring 5 has no PyTorch port")]
    [InlineData("[Quant] format 8 has no PyTorch port")]
    public void A_feature_without_a_port_is_refused_by_name_in_the_generated_part(string reason)
    {
        var spec = reason.StartsWith("attention", System.StringComparison.Ordinal) ? Plain with { Attention = Plain.Attention with { Projections = (ProjectionKind)9 } }
            : reason.StartsWith("[MoE]", System.StringComparison.Ordinal) ? Plain with { Moe = new MoeSpec(4, 2, 0, 32, 0, (RouterKind)5, BalanceKind.None, true, 1, 0, 0) }
            : Plain with { Quant = new QuantSpec((QuantFormatKind)8, QuantTargetKind.AllLinear, 0, false, 0) };

        Assert.Equal(reason, PyTorchEmitter.Refusal(spec));
        var part = PyTorchEmitter.Emit(Model(spec));
        Assert.Contains($"PyTorchExport.Refused(\"{reason}\")", part);
        Assert.DoesNotContain("import torch", part);
    }

    [Fact]
    public void The_Python_text_survives_the_raw_string_literal_unchanged()
    {
        var (output, run) = CompilationHarness.Generate(CompilationHarness.Compile(CompilationHarness.SampleSources()["TinyDecoder"]));
        var tree = run.GeneratedTrees.Single(t => t.FilePath.EndsWith(".PyTorch.g.cs", System.StringComparison.Ordinal));
        var literal = tree.GetRoot().DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.LiteralExpressionSyntax>()
            .Single(l => l.Token.ValueText.Contains("import torch"));
        var python = literal.Token.ValueText;

        Assert.Empty(CompilationHarness.Problems(output));
        Assert.StartsWith("# TinyDecoder: decoder-only transformer", python);
        Assert.Contains("\n    def forward(self, x, cos, sin):\n        q = split_heads(self.q_proj(x), HEADS)\n", python);
        Assert.Contains("\"\"\"", python); // docstrings: the delimiter is longer than any quote run
        Assert.Contains("MODEL = TinyDecoder", python);
    }
}
