using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;

namespace LlmEff.Generator.Tests.Infrastructure;

/// <summary>
/// Runs an analyzer over markup source with Microsoft.CodeAnalysis.Testing. The LlmEff attributes are
/// compiled from the runtime's own source files, and the framework comes from the installed SDK's
/// reference pack, so nothing is downloaded.
/// </summary>
internal static class AnalyzerVerifier<TAnalyzer> where TAnalyzer : DiagnosticAnalyzer, new()
{
    public static Task VerifyAsync(string markup, params DiagnosticResult[] expected)
    {
        var test = new CSharpAnalyzerTest<TAnalyzer, DefaultVerifier> { TestCode = markup };
        Configure(test.TestState);
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync();
    }

    public static DiagnosticResult Diagnostic(string id) => new(id, DiagnosticSeverity.Error);

    internal static void Configure(SolutionState state)
    {
        state.ReferenceAssemblies = new ReferenceAssemblies("net10.0");
        state.AdditionalReferences.AddRange(FrameworkReferences.Value);
        foreach (var file in new[] { "Attributes/Enums.cs", "Attributes/ModelAttribute.cs", "Quantization/QuantFormat.cs" })
            state.Sources.Add(("/runtime/" + file, File.ReadAllText(Repository.Path(new[] { "runtime", "LlmEff.Runtime" }.Concat(file.Split('/')).ToArray()))));
    }

    private static readonly System.Lazy<MetadataReference[]> FrameworkReferences = new(() =>
    {
        var dotnetRoot = Path.GetFullPath(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var pack = Directory.GetDirectories(Path.Combine(dotnetRoot, "packs", "Microsoft.NETCore.App.Ref")).OrderBy(d => d).Last();
        return Directory.GetFiles(Path.Combine(pack, "ref", "net10.0"), "*.dll")
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToArray();
    });
}
