using System.Linq;
using LlmEff.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace LlmEff.Generator.Tests;

/// <summary>The incremental pipeline caches: edits that do not touch a model re-run no parse or emit work.</summary>
public sealed class IncrementalPipelineTests
{
    private const string Model = """
        using LlmEff;
        namespace Demo;
        [Model(Vocab = 64, Dim = 64, Layers = 2, Context = 16)]
        public partial class Small;
        """;

    private const string Unrelated = """
        namespace Demo;
        public static class Helpers { public static int Twice(int x) => x * 2; }
        """;

    [Fact]
    public void An_unrelated_edit_leaves_every_step_cached_or_unchanged()
    {
        var compilation = CompilationHarness.Compile(Model, Unrelated);
        var driver = CompilationHarness.CreateDriver().RunGenerators(compilation);

        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Last(),
            CSharpSyntaxTree.ParseText(Unrelated.Replace("x * 2", "x + x"), CompilationHarness.ParseOptions, path: "Source1.cs"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        foreach (var step in new[] { TrackingNames.Declarations, TrackingNames.Models })
        {
            var outputs = result.TrackedSteps[step].SelectMany(s => s.Outputs).ToList();
            Assert.NotEmpty(outputs);
            Assert.All(outputs, o => Assert.Contains(o.Reason, new[] { IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged }));
        }
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
    }

    [Fact]
    public void Changing_a_declared_size_re_emits_the_model()
    {
        var compilation = CompilationHarness.Compile(Model, Unrelated);
        var driver = CompilationHarness.CreateDriver().RunGenerators(compilation);

        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.First(),
            CSharpSyntaxTree.ParseText(Model.Replace("Layers = 2", "Layers = 3"), CompilationHarness.ParseOptions, path: "Source0.cs"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        var models = result.TrackedSteps[TrackingNames.Models].SelectMany(s => s.Outputs).ToList();
        Assert.Contains(models, o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains("Layers: 3", result.GeneratedSources.Single(s => !s.HintName.EndsWith(".PyTorch.g.cs", System.StringComparison.Ordinal) && !s.HintName.EndsWith(".Gguf.g.cs", System.StringComparison.Ordinal)).SourceText.ToString());
    }
}
