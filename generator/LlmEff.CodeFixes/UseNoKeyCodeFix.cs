using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LlmEff.Generator.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.CodeFixes;

/// <summary>Fix for LLM010: switch the model's attention to <c>Projections.NoKey</c>.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(UseNoKeyCodeFix)), Shared]
public sealed class UseNoKeyCodeFix : CodeFixProvider
{
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create("LLM010");

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || AttributeEdits.EnclosingAttribute(root, context.Span) is not { } attribute) return;
        var diagnostic = context.Diagnostics.First();
        context.RegisterCodeFix(
            CodeAction.Create("Use NoKey attention (keys are the values)",
                token => Task.FromResult(context.Document.WithSyntaxRoot(Fix(root, attribute, diagnostic, token))),
                equivalenceKey: nameof(UseNoKeyCodeFix)),
            diagnostic);
    }

    private static SyntaxNode Fix(SyntaxNode root, AttributeSyntax attribute, Diagnostic diagnostic, CancellationToken token)
    {
        token.ThrowIfCancellationRequested();
        var noKey = SyntaxFactory.AttributeArgument(SyntaxFactory.ParseExpression("Projections.NoKey"));
        if (AttributeEdits.Is(attribute, "Attention"))
        {
            var arguments = attribute.ArgumentList ?? SyntaxFactory.AttributeArgumentList();
            var positional = arguments.Arguments.FirstOrDefault(a => a.NameEquals is null && a.NameColon is null);
            var updated = positional is not null
                ? arguments.ReplaceNode(positional, noKey.WithTriviaFrom(positional))
                : arguments.WithArguments(arguments.Arguments.Insert(0, noKey));
            return root.ReplaceNode(attribute, attribute.WithArgumentList(updated));
        }

        // The diagnostic sits on [Model] when the class has no [Attention]: declare one with the same heads.
        var heads = diagnostic.Properties.TryGetValue(ParameterWasteAnalyzer.HeadsProperty, out var value) ? value : "1";
        return AttributeEdits.InsertAttributeAfter(root, attribute, $"Attention(Projections.NoKey, Heads = {heads})");
    }
}
