using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using BenchmarkDotNet.Attributes;
using LlmEff.Generator.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace LlmEff.Generator.Benchmarks;

/// <summary>
/// A project of 100 declared models (every attention variant, GQA/MQA, dense and mixture-of-experts): what one
/// generator run costs from scratch, what it costs after an edit elsewhere (everything cached), and what the
/// analyzers cost. Divide by 100 for the per-model figure; the target is under 1 ms per model per run.
/// </summary>
[MemoryDiagnoser]
public class GeneratorCostBenchmarks
{
    public const int Models = 100;

    /// <summary>Files the generator writes per model: the TorchSharp module, its PyTorch twin and its GGUF description.</summary>
    public const int PartsPerModel = 3;
    private static readonly CSharpParseOptions Parse = new(LanguageVersion.Latest);
    private CSharpCompilation compilation = null!;
    private CSharpCompilation edited = null!;
    private GeneratorDriver warmDriver = null!;

    [GlobalSetup]
    public void Setup()
    {
        compilation = Project();
        edited = UnrelatedEdit(compilation);
        warmDriver = NewDriver().RunGenerators(compilation);
    }

    /// <summary>Generator over all 100 models with nothing cached (a clean build).</summary>
    [Benchmark(Baseline = true)]
    public GeneratorDriverRunResult GenerateAll() => NewDriver().RunGenerators(compilation).GetRunResult();

    /// <summary>Generator after an edit that touches no model (typing in the IDE): every step should be cached.</summary>
    [Benchmark]
    public GeneratorDriverRunResult UnrelatedEdit() => warmDriver.RunGenerators(edited).GetRunResult();

    /// <summary>Both analyzers over all 100 models (binding included, as in the IDE).</summary>
    [Benchmark]
    public int AnalyzeAll() => compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new ModelDeclarationAnalyzer(), new ParameterWasteAnalyzer()))
        .GetAnalyzerDiagnosticsAsync().Result.Length;

    /// <summary>Runs the generator, edits an unrelated file, runs again, and checks that no model was parsed or emitted again.</summary>
    public static string CheckUnrelatedEditReusesEverything()
    {
        var first = Project();
        var driver = NewDriver().RunGenerators(first);
        var generated = driver.GetRunResult().GeneratedTrees.Length;
        var second = driver.RunGenerators(UnrelatedEdit(first)).GetRunResult().Results.Single();
        var reasons = new[] { "Declarations", "Models" }
            .SelectMany(step => second.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => (step, o.Reason)))
            .Concat(second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs).Select(o => ("emit", o.Reason)))
            .ToList();
        var rerun = reasons.Where(r => r.Reason is not (IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged)).ToList();
        if (generated != Models * PartsPerModel || rerun.Count > 0)
            throw new InvalidOperationException($"Expected {Models * PartsPerModel} generated files and every step cached after an unrelated edit; got {generated} files and re-runs: " +
                string.Join(", ", rerun.Select(r => $"{r.Item1}: {r.Reason}")));
        return string.Create(CultureInfo.InvariantCulture,
            $"Incremental check: {generated / PartsPerModel} models generated ({generated} files); after an unrelated edit all {reasons.Count} parse, model and emit outputs were cached or unchanged.");
    }

    private static GeneratorDriver NewDriver() =>
        CSharpGeneratorDriver.Create([new ModelGenerator().AsSourceGenerator()], parseOptions: Parse,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    private static CSharpCompilation UnrelatedEdit(CSharpCompilation project)
    {
        var other = project.SyntaxTrees.Single(t => t.FilePath == "Other.cs");
        return project.ReplaceSyntaxTree(other, CSharpSyntaxTree.ParseText("namespace Bench; public static class Other { public static int Answer => 43; }", Parse, path: "Other.cs"));
    }

    /// <summary>100 model declarations, one file each, plus one unrelated file.</summary>
    private static CSharpCompilation Project()
    {
        string[] projections = ["Full", "NoKey", "NoQuery", "Shared"];
        var sources = new List<SyntaxTree>();
        for (var i = 0; i < Models; i++)
        {
            var dim = 128 * (1 + i % 4);
            var heads = dim / 64;
            var kvHeads = i % 3 == 0 ? heads : i % 3 == 1 ? Math.Max(1, heads / 2) : 1;
            var moe = i % 5 == 4 ? $"\n[MoE(Experts = {4 + i % 8}, Active = 2, FirstLayer = 1)]" : "";
            var source = $"""
                using LlmEff;
                namespace Bench;
                [Model(Vocab = {1000 + i}, Dim = {dim}, Layers = {2 + i % 6}, Context = {256 * (1 + i % 3)})]
                [Attention(Projections.{projections[i % 4]}, Heads = {heads}, KvHeads = {kvHeads})]{moe}
                public partial class Model{i};
                """;
            sources.Add(CSharpSyntaxTree.ParseText(source, Parse, path: $"Model{i}.cs"));
        }
        sources.Add(CSharpSyntaxTree.ParseText("namespace Bench; public static class Other { public static int Answer => 42; }", Parse, path: "Other.cs"));
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(System.IO.Path.PathSeparator)
            .Where(p => System.IO.Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || System.IO.Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Append(typeof(TorchSharp.torch).Assembly.Location)
            .Append(typeof(LlmEff.ModelAttribute).Assembly.Location)
            .Distinct()
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p));
        return CSharpCompilation.Create("Bench", sources, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
    }
}
