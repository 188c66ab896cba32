using System.Collections.Immutable;
using System.Linq;
using LlmEff.Generator.Diagnostics;
using LlmEff.Generator.Parsing;
using LlmEff.Generator.Validation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace LlmEff.Generator.Analyzers;

/// <summary>
/// Reports invalid model declarations: the class shape (partial, not generic, …) at the class name and every
/// configuration issue at the attribute argument that causes it, with the numbers in the message.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ModelDeclarationAnalyzer : DiagnosticAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.ModelClassNotPartial,
        DiagnosticDescriptors.UnsupportedDeclaration,
        DiagnosticDescriptors.MissingSize,
        DiagnosticDescriptors.NonPositiveSize,
        DiagnosticDescriptors.HeadsNotDivisibleByKvHeads,
        DiagnosticDescriptors.DimNotDivisibleByHeads,
        DiagnosticDescriptors.ValueOutOfRange,
        DiagnosticDescriptors.SizeOverflow,
        DiagnosticDescriptors.OrphanAttribute,
        DiagnosticDescriptors.IgnoredSetting,
        DiagnosticDescriptors.QuantBlockDoesNotDivide,
        DiagnosticDescriptors.QuantTargetMissing,
        DiagnosticDescriptors.InvalidLayerLayout,
        DiagnosticDescriptors.LatentRankTooLarge,
        DiagnosticDescriptors.UnsupportedCombination,
        DiagnosticDescriptors.InvalidCompressedLayers,
        DiagnosticDescriptors.CompressedShapeMismatch,
        DiagnosticDescriptors.SingleResidualStream);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterSymbolAction(Analyze, SymbolKind.NamedType);
    }

    private static void Analyze(SymbolAnalysisContext context)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        var model = ModelReader.Find(type, AttributeNames.Model);
        if (model is null)
        {
            ReportOrphans(context, type);
            return;
        }

        var (problem, reason) = TypeShape.Check(type);
        var nameLocation = type.Locations.FirstOrDefault();
        if (problem == TypeShape.Problem.NotPartial)
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.ModelClassNotPartial, nameLocation, type.Name));
        else if (problem == TypeShape.Problem.Unsupported)
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.UnsupportedDeclaration, nameLocation, type.Name, reason));

        var result = ModelValidator.Validate(ModelReader.Read(type), type.Name);
        foreach (var issue in result.Issues)
            context.ReportDiagnostic(Diagnostic.Create(issue.Descriptor,
                AttributeLocations.Of(type, issue.Attribute, issue.Argument, context.CancellationToken), issue.MessageArguments));
    }

    private static void ReportOrphans(SymbolAnalysisContext context, INamedTypeSymbol type)
    {
        foreach (var name in AttributeNames.Parts)
        {
            var orphan = ModelReader.Find(type, name);
            if (orphan?.ApplicationSyntaxReference is { } reference)
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.OrphanAttribute,
                    reference.GetSyntax(context.CancellationToken).GetLocation(), AttributeNames.ShortName(name), type.Name));
        }
    }
}
