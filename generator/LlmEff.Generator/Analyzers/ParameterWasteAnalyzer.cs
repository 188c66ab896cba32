using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using LlmEff.Generator.Diagnostics;
using LlmEff.Generator.Model;
using LlmEff.Generator.Parsing;
using LlmEff.Generator.Sizing;
using LlmEff.Generator.Validation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace LlmEff.Generator.Analyzers;

/// <summary>
/// Suggestions that trade a little quality for a lot of size, with this model's own numbers. Runs only on
/// declarations that validate: an invalid model has nothing to save yet.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ParameterWasteAnalyzer : DiagnosticAnalyzer
{
    /// <summary>Diagnostic property telling the code fix how many heads to declare when [Attention] is absent.</summary>
    public const string HeadsProperty = "Heads";

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(DiagnosticDescriptors.KeysCouldBeValues);

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
        if (model is null) return;
        var result = ModelValidator.Validate(ModelReader.Read(type), type.Name);
        if (result.Spec is not { } spec || result.Sizes is not { } sizes) return;
        if (spec.Attention.Projections != ProjectionKind.Full) return;

        var noKey = ModelSizing.Compute(spec with { Attention = spec.Attention with { Projections = ProjectionKind.NoKey } });
        var saved = sizes.Parameters - noKey.Parameters;
        var attention = ModelReader.Find(type, AttributeNames.Attention);
        var location = (attention ?? model).ApplicationSyntaxReference?.GetSyntax(context.CancellationToken).GetLocation()
                       ?? type.Locations.FirstOrDefault();
        var properties = ImmutableDictionary<string, string?>.Empty.Add(HeadsProperty, spec.Attention.Heads.ToString(CultureInfo.InvariantCulture));
        context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.KeysCouldBeValues, location, properties,
            type.Name,
            saved.ToString("N0", CultureInfo.InvariantCulture),
            (100.0 * saved / sizes.Parameters).ToString("F1", CultureInfo.InvariantCulture) + "%",
            (sizes.KvCacheElementsPerToken * 2).ToString("N0", CultureInfo.InvariantCulture),
            (noKey.KvCacheElementsPerToken * 2).ToString("N0", CultureInfo.InvariantCulture)));
    }
}
