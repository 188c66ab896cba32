using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using CsCheck;
using LlmEff.Generator.Analyzers;
using LlmEff.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace LlmEff.Generator.Tests;

/// <summary>
/// Property-based: thousands of random declarations (bad sizes, huge products, undefined enum values, wrong
/// types, missing or duplicate attributes, odd class shapes). Whatever the source, neither the generator nor
/// the analyzers throw; a declaration our diagnostics reject gets no generated code and at least one error at
/// its attribute or class; one they accept compiles cleanly against TorchSharp.
/// </summary>
public sealed class GeneratorFuzzTests
{
    private static readonly ImmutableArray<DiagnosticAnalyzer> Analyzers =
        ImmutableArray.Create<DiagnosticAnalyzer>(new ModelDeclarationAnalyzer(), new ParameterWasteAnalyzer());

    // Mostly sizes that fit together (so valid models are common and get compiled), with a tail of the awkward:
    // zero, negative, huge, overflow-prone, and values of the wrong type.
    private static readonly Gen<string> Size = Gen.Frequency(
        (30, Gen.OneOf<string>("16", "32", "64")), (8, Gen.OneOf<string>("1", "2", "4", "8")), (2, Gen.Int[-3, 300].Select(i => i.ToString())),
        (1, Gen.OneOf<string>("0", "-1", "int.MaxValue", "int.MinValue", "1000000000", "65536")), (1, Gen.OneOf<string>("\"64\"", "64.5", "null")));

    private static readonly Gen<string> Real = Gen.Frequency(
        (8, Gen.OneOf<string>("1e-5", "10000", "1e-6", "500000")), (1, Gen.OneOf<string>("0", "-1", "double.NaN", "double.PositiveInfinity", "1", "0.5")));

    private static Gen<string> Enum(string type, params string[] members) => Gen.Frequency(
        (9, Gen.OneOf<string>(members).Select(m => $"{type}.{m}")), (1, Gen.Int[-2, 9].Select(i => $"({type}){i}")));

    /// <summary>Each named argument present (with the given odds in ten) or left out, joined in declaration order.</summary>
    private static Gen<string> Arguments(params (string Name, Gen<string> Value, int Presence)[] arguments)
    {
        var joined = Gen.Const("");
        foreach (var (name, value, presence) in arguments)
        {
            var optional = Gen.Frequency((presence, (IGen<string>)value.Select(v => $"{name} = {v}")), (10 - presence, (IGen<string>)Gen.Const("")));
            joined = Gen.Select(joined, optional, (left, right) => left.Length == 0 ? right : right.Length == 0 ? left : left + ", " + right);
        }
        return joined;
    }

    // Head counts that usually divide the widths above.
    private static readonly Gen<string> Heads = Gen.Frequency((12, Gen.OneOf<string>("1", "2", "4")), (1, Size));

    private static readonly Gen<string> ModelAttribute = Arguments(
        ("Vocab", Size, 9), ("Dim", Size, 9), ("Layers", Size, 9), ("Context", Size, 9), ("TiedEmbeddings", Gen.OneOf<string>("true", "false"), 3),
        ("Norm", Enum("Norm", "RmsNorm", "LayerNorm"), 3), ("Positions", Enum("Positions", "Rope", "Learned", "None"), 3),
        ("Bias", Gen.OneOf<string>("true", "false"), 3), ("RopeTheta", Real, 2), ("NormEps", Real, 2),
        ("Naming", Enum("ParameterNaming", "Llama", "Gpt2"), 3), ("Causal", Gen.OneOf<string>("true", "false"), 3),
        ("KvBudgetBytes", Gen.OneOf<string>("1", "100000", "-5", "long.MaxValue"), 1))
        .Select(a => $"[Model({a})]");

    private static readonly Gen<string> AttentionAttribute = Gen.Select(
        Gen.Frequency((1, Gen.Const("")), (3, Enum("Projections", "Full", "NoKey", "NoQuery", "Shared"))),
        Arguments(("Heads", Heads, 9), ("KvHeads", Heads, 4), ("HeadDim", Gen.Frequency((8, Gen.OneOf<string>("8", "16")), (1, Size)), 2),
            ("BreakSymmetry", Gen.OneOf<string>("true", "false"), 3), ("ShareKvEvery", Gen.Frequency((6, Gen.OneOf<string>("1", "2")), (1, Size)), 2),
            ("QkNorm", Gen.OneOf<string>("true", "false"), 2), ("Kind", Enum("AttentionKind", "Standard", "Latent"), 3),
            ("KvRank", Gen.Frequency((6, Gen.OneOf<string>("8", "16", "24")), (1, Size)), 3), ("RopeDim", Gen.Frequency((6, Gen.OneOf<string>("4", "8")), (1, Size)), 3),
            ("QRank", Gen.Frequency((6, Gen.OneOf<string>("0", "16", "24")), (1, Size)), 2)))
        .Select((projection, named) => $"[Attention({string.Join(", ", new[] { projection, named }.Where(p => p.Length > 0))})]");

    private static readonly Gen<string> MlpAttribute =
        Arguments(("Hidden", Size, 5), ("Activation", Enum("Activation", "SwiGlu", "Gelu"), 5), ("ClampLimit", Real, 2)).Select(a => $"[Mlp({a})]");

    private static readonly Gen<string> Count = Gen.Frequency((8, Gen.OneOf<string>("0", "1", "2", "3")), (1, Size));

    private static readonly Gen<string> MoEAttribute =
        Arguments(("Experts", Gen.Frequency((6, Gen.OneOf<string>("4", "8")), (1, Size)), 9), ("Active", Gen.Frequency((6, Gen.OneOf<string>("1", "2")), (1, Size)), 9),
            ("Shared", Count, 3), ("ExpertHidden", Size, 4), ("FirstLayer", Count, 4),
            ("Router", Enum("RouterScoring", "Softmax", "Sigmoid"), 3), ("Balance", Enum("ExpertBalance", "AuxLoss", "AuxLossFree", "None"), 3),
            ("NormalizeWeights", Gen.OneOf<string>("true", "false"), 2), ("RoutedScale", Real, 2), ("AuxLossWeight", Real, 2), ("BiasUpdateRate", Real, 2), ("SequenceAuxLossWeight", Real, 2),
            ("HashLayers", Count, 3))
        .Select(a => $"[MoE({a})]");

    private static readonly Gen<string> QuantAttribute = Gen.Select(
        Enum("QuantFormat", "Mxfp4", "Nvfp4", "Fp8E4M3", "Int4", "Fp4"),
        Arguments(("From", Gen.Frequency((6, Gen.OneOf<string>("0", "0.5", "0.8")), (1, Gen.OneOf<string>("1", "-0.1", "double.NaN", "0.999", "2"))), 6),
            ("Target", Gen.Frequency(
                (6, Gen.OneOf<string>("QuantTarget.Experts", "QuantTarget.Mlp", "QuantTarget.Attention", "QuantTarget.AllLinear", "QuantTarget.Mlp | QuantTarget.Attention")),
                (1, Gen.Int[-1, 9].Select(i => $"(QuantTarget){i}"))), 4),
            ("Clipped", Gen.OneOf<string>("true", "false"), 3), ("GroupSize", Gen.Frequency((6, Gen.OneOf<string>("16", "32", "64")), (1, Size)), 2)))
        .Select((format, named) => $"[Quant({string.Join(", ", new[] { format, named }.Where(p => p.Length > 0))})]");

    // Hybrid layouts and sparse attention: valid lists usually, with out-of-range, repeated, reversed and garbage ones.
    private static readonly Gen<string> LayerList = Gen.Frequency(
        (8, Gen.OneOf<string>("\"0\"", "\"1\"", "\"0,2\"", "\"1-2\"", "\"0-3\"")),
        (1, Gen.OneOf<string>("\"\"", "\"5,1\"", "\"1,1\"", "\"3-1\"", "\"x\"", "\"-1\"", "\" 1 , 2 \"", "null", "\"99999999999\"", "7")));

    private static readonly Gen<string> BlockKinds = Gen.Select(
        Gen.Frequency((1, Arguments(("Attention", LayerList, 9)).Select(a => $"[Layers({a})]")), (3, Gen.Const(""))),
        Gen.Frequency((1, Arguments(("Kernel", Gen.Frequency((6, Gen.OneOf<string>("1", "2", "3", "4")), (1, Size)), 5)).Select(a => $"[ShortConv({a})]")), (3, Gen.Const(""))),
        Gen.Frequency((1, Arguments(("IndexerHeads", Heads, 9), ("IndexerDim", Gen.Frequency((6, Gen.OneOf<string>("4", "8")), (1, Size)), 9),
            ("TopK", Gen.Frequency((6, Gen.OneOf<string>("2", "8", "64")), (1, Size)), 9)).Select(a => $"[SparseAttention({a})]")), (4, Gen.Const(""))))
        .Select((layers, conv, sparse) => layers + conv + sparse);

    private static readonly Gen<string> Declaration = Gen.Select(
        Gen.Frequency((16, (IGen<string>)ModelAttribute), (1, Gen.Const("")), (1, ModelAttribute.Select(m => m + m))),
        Gen.Frequency((3, (IGen<string>)AttentionAttribute), (1, Gen.Const(""))),
        Gen.Frequency((2, (IGen<string>)MlpAttribute), (1, Gen.Const(""))),
        Gen.Frequency((1, (IGen<string>)MoEAttribute), (2, Gen.Const(""))),
        Gen.Frequency((1, (IGen<string>)QuantAttribute), (2, Gen.Const(""))).Select(BlockKinds, (quant, kinds) => quant + kinds),
        Gen.Frequency((6, Gen.OneOf<string>("public partial class M;", "public partial class M { }", "internal partial class M;")), (2, Gen.OneOf<string>(
            "public class M;", "public partial class M<T>;",
            "public static partial class M;", "public abstract partial class M;", "public partial class M : System.Exception;",
            "public partial record M;", "public partial struct M;",
            "public partial class Outer { ATTRS public partial class M; }", "public class Outer { ATTRS public partial class M; }",
            "public partial class Outer<T> { ATTRS public partial class M; }"))))
        .Select((model, attention, mlp, moe, quant, shape) =>
        {
            var attributes = model + attention + mlp + moe + quant;
            var declaration = shape.Contains("ATTRS") ? shape.Replace("ATTRS", attributes) : attributes + " " + shape;
            return "using LlmEff;\nnamespace Fuzz;\n" + declaration + "\n";
        });

    [Fact]
    public void No_declaration_makes_the_generator_or_analyzers_throw_and_every_verdict_holds() =>
        Declaration.Sample(Check, iter: 1500, threads: 1);

    /// <summary>Declarations random runs once broke, kept so they stay fixed whatever seed the next run draws.</summary>
    [Theory]
    [InlineData("public partial class Outer { [Model(Vocab = 32, Dim = 64, Layers = 16, Context = 32)][Attention(Projections.Full, Heads = 4)]" +
                "[MoE(Experts = null, Active = 1, ExpertHidden = 32)][Quant(QuantFormat.Fp8E4M3, From = 0.5)] public partial class M; }")]
    // A model wide enough that the hybrid layout the analyzer suggests would overflow 64 bits (in_proj is Dim × 3·Dim).
    [InlineData("[Model(Vocab = 32, Dim = int.MaxValue, Layers = 16, Context = 64, Positions = Positions.Rope)]" +
                "[Attention((Projections)3, Heads = 4, HeadDim = 8, KvRank = 16, QRank = 24)][Mlp(Hidden = 32)] public partial class M { }")]
    public void Declarations_that_once_broke_the_contract_hold_it(string declaration) =>
        Check("using LlmEff;\nnamespace Fuzz;\n" + declaration + "\n");

    /// <summary>One declaration: run everything and check the contract; throws (with the source) when it breaks.</summary>
    private static void Check(string source)
    {
        var input = CompilationHarness.Compile(source);
        var (output, run) = CompilationHarness.Generate(input);
        var result = run.Results.Single();
        if (result.Exception is not null) throw new Exception($"Generator threw on:\n{source}", result.Exception);

        var analyzerDiagnostics = input.WithAnalyzers(Analyzers).GetAllDiagnosticsAsync().Result;
        var crash = analyzerDiagnostics.FirstOrDefault(d => d.Id == "AD0001");
        if (crash is not null) throw new Exception($"An analyzer threw on:\n{source}\n{crash}");

        var compilerErrors = input.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        var ourErrors = analyzerDiagnostics.Where(d => d.Id.StartsWith("LLM", StringComparison.Ordinal) && d.Severity == DiagnosticSeverity.Error).ToList();
        var modelPresent = source.Contains("[Model(", StringComparison.Ordinal);

        foreach (var diagnostic in analyzerDiagnostics.Where(d => d.Id.StartsWith("LLM", StringComparison.Ordinal)))
            if (!diagnostic.Location.IsInSource || !InDeclaration(source, diagnostic.Location.SourceSpan))
                throw new Exception($"{diagnostic.Id} is not on the declaration ({diagnostic.Location.GetLineSpan()}) in:\n{source}");

        if (ourErrors.Count > 0 && run.GeneratedTrees.Length > 0)
            throw new Exception($"Code was generated despite {ourErrors[0]} for:\n{source}");

        // Ill-typed source (wrong argument types, duplicate attributes, attribute on a struct) is the compiler's to
        // report; otherwise a model declaration either gets our error or generated code that compiles.
        if (compilerErrors.Count > 0 || !modelPresent || ourErrors.Count > 0) return;
        if (run.GeneratedTrees.Length == 0)
            throw new Exception($"Nothing was generated and no LLM error explains why, for:\n{source}");
        if (run.GeneratedTrees.Length != 3)
            throw new Exception($"Expected the module, its PyTorch twin and its GGUF description, got {run.GeneratedTrees.Length} files, for:\n{source}");
        foreach (var generated in run.GeneratedTrees)
        {
            var problems = output.GetSemanticModel(generated).GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
            if (problems.Count > 0)
                throw new Exception($"Generated code does not compile cleanly ({problems[0]}) for:\n{source}\n{generated}");
        }
    }

    /// <summary>Whether the span lies on the class line(s) or its attributes, i.e. after the usings and namespace.</summary>
    private static bool InDeclaration(string source, TextSpan span) => span.Start >= source.IndexOf('\n', source.IndexOf("namespace", StringComparison.Ordinal));
}
