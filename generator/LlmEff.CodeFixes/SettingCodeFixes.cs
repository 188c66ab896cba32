using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading.Tasks;
using LlmEff.Generator.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.CodeFixes;

/// <summary>Fix for LLM012: tie the output head to the embedding.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(TieEmbeddingsCodeFix)), Shared]
public sealed class TieEmbeddingsCodeFix : CodeFixProvider
{
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create("LLM012");

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || AttributeEdits.EnclosingAttribute(root, context.Span) is not { } model || !AttributeEdits.Is(model, "Model")) return;
        context.RegisterCodeFix(
            CodeAction.Create("Tie the output head to the embedding",
                _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(model, AttributeEdits.SetNamedArgument(model, "TiedEmbeddings", "true")))),
                equivalenceKey: nameof(TieEmbeddingsCodeFix)),
            context.Diagnostics.First());
    }
}

/// <summary>Fix for LLM014: set KvHeads to the largest value whose cache fits the budget.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(FitKvHeadsCodeFix)), Shared]
public sealed class FitKvHeadsCodeFix : CodeFixProvider
{
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create("LLM014");

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var diagnostic = context.Diagnostics.First();
        if (!diagnostic.Properties.TryGetValue(ParameterWasteAnalyzer.KvHeadsProperty, out var kvHeads) || kvHeads is null) return;
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || AttributeEdits.EnclosingAttribute(root, context.Span) is not { } model) return;
        var attention = model.FirstAncestorOrSelf<ClassDeclarationSyntax>()?.AttributeLists
            .SelectMany(l => l.Attributes).FirstOrDefault(a => AttributeEdits.Is(a, "Attention"));
        var heads = diagnostic.Properties.TryGetValue(ParameterWasteAnalyzer.HeadsProperty, out var h) ? h : null;
        var fixedRoot = attention is not null
            ? root.ReplaceNode(attention, AttributeEdits.SetNamedArgument(attention, "KvHeads", kvHeads))
            : AttributeEdits.InsertAttributeAfter(root, model, $"Attention(Heads = {heads}, KvHeads = {kvHeads})");
        context.RegisterCodeFix(
            CodeAction.Create($"Set KvHeads = {kvHeads}", _ => Task.FromResult(context.Document.WithSyntaxRoot(fixedRoot)),
                equivalenceKey: nameof(FitKvHeadsCodeFix)),
            diagnostic);
    }
}
