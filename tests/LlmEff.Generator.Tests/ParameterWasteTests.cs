using System.Threading.Tasks;
using LlmEff.CodeFixes;
using LlmEff.Generator.Analyzers;
using LlmEff.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Testing;
using Verify = LlmEff.Generator.Tests.Infrastructure.AnalyzerVerifier<LlmEff.Generator.Analyzers.ParameterWasteAnalyzer>;

namespace LlmEff.Generator.Tests;

/// <summary>LLM010 shows this model's own savings from NoKey, and its code fix switches the attention.</summary>
public sealed class ParameterWasteTests
{
    // Vocab 256, d 64, 2 layers, 4 heads of 16, SwiGLU 192, tied: 123,200 parameters; W_K is 2 · 64 · 64 = 8,192 of them.
    // Without [Attention] at d 128: 2 heads of 64, SwiGLU 384, 459,392 parameters; W_K is 2 · 128 · 128 = 32,768.
    private const string Model = "[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 16)]";

    private static DiagnosticResult NoKeySaves(int location) =>
        new DiagnosticResult("LLM010", DiagnosticSeverity.Info).WithLocation(location)
            .WithArguments("M", "8,192", "6.6%", "512", "256");

    [Fact]
    public Task LLM010_full_attention_is_told_what_NoKey_would_save() => Verify.VerifyAsync($$"""
        using LlmEff;
        {{Model}}
        [{|#0:Attention(Heads = 4)|}]
        public partial class M;
        """, NoKeySaves(0));

    [Theory]
    [InlineData("[Attention(Projections.NoKey, Heads = 4)]")]
    [InlineData("[Attention(Projections.Shared, Heads = 4)]")]
    [InlineData("[Attention(Heads = 4, KvHeads = 3)]")] // invalid: the error comes first, no suggestion
    public Task LLM010_stays_silent_where_keys_already_are_values_or_the_model_is_invalid(string attention) =>
        new CSharpAnalyzerTest<ParameterWasteAnalyzer, DefaultVerifier>
        {
            TestCode = $$"""
                using LlmEff;
                {{Model}}
                {{attention}}
                public partial class M;
                """,
        }.Configured().RunAsync();

    [Fact]
    public Task Code_fix_replaces_Full_with_NoKey() => FixAsync($$"""
        using LlmEff;
        {{Model}}
        [{|#0:Attention(Projections.Full, Heads = 4)|}]
        public partial class M;
        """, $$"""
        using LlmEff;
        {{Model}}
        [Attention(Projections.NoKey, Heads = 4)]
        public partial class M;
        """);

    [Fact]
    public Task Code_fix_inserts_NoKey_when_the_projections_are_implicit() => FixAsync($$"""
        using LlmEff;
        {{Model}}
        [{|#0:Attention(Heads = 4)|}]
        public partial class M;
        """, $$"""
        using LlmEff;
        {{Model}}
        [Attention(Projections.NoKey, Heads = 4)]
        public partial class M;
        """);

    [Fact]
    public Task Code_fix_declares_attention_when_the_model_has_none() => FixAsync("""
        using LlmEff;
        [{|#0:Model(Vocab = 256, Dim = 128, Layers = 2, Context = 16)|}]
        public partial class M;
        """, """
        using LlmEff;
        [Model(Vocab = 256, Dim = 128, Layers = 2, Context = 16)]
        [Attention(Projections.NoKey, Heads = 2)]
        public partial class M;
        """, expected: new DiagnosticResult("LLM010", DiagnosticSeverity.Info).WithLocation(0)
            .WithArguments("M", "32,768", "7.1%", "1,024", "512"));

    private static Task FixAsync(string source, string fixedSource, DiagnosticResult? expected = null) =>
        FixAsync<UseNoKeyCodeFix>(source, fixedSource, expected ?? NoKeySaves(0));

    internal static Task FixAsync<TFix>(string source, string fixedSource, params DiagnosticResult[] expected)
        where TFix : Microsoft.CodeAnalysis.CodeFixes.CodeFixProvider, new()
    {
        var test = new CSharpCodeFixTest<ParameterWasteAnalyzer, TFix, DefaultVerifier>
        {
            TestCode = source,
            FixedCode = fixedSource,
        };
        AnalyzerVerifier<ParameterWasteAnalyzer>.Configure(test.TestState);
        AnalyzerVerifier<ParameterWasteAnalyzer>.Configure(test.FixedState);
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync();
    }
}

internal static class AnalyzerTestExtensions
{
    public static CSharpAnalyzerTest<TAnalyzer, DefaultVerifier> Configured<TAnalyzer>(this CSharpAnalyzerTest<TAnalyzer, DefaultVerifier> test)
        where TAnalyzer : Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer, new()
    {
        AnalyzerVerifier<TAnalyzer>.Configure(test.TestState);
        return test;
    }
}
