using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.CodeFixes;

/// <summary>Small syntax edits on attribute arguments shared by the code fixes.</summary>
internal static class AttributeEdits
{
    /// <summary>The attribute enclosing the diagnostic's span, if any.</summary>
    public static AttributeSyntax? EnclosingAttribute(SyntaxNode root, Microsoft.CodeAnalysis.Text.TextSpan span)
    {
        var node = root.FindNode(span);
        return node as AttributeSyntax ?? node.FirstAncestorOrSelf<AttributeSyntax>();
    }

    /// <summary>Sets <c>Name = value</c> on <paramref name="attribute"/>, replacing an existing argument of that name.</summary>
    public static AttributeSyntax SetNamedArgument(AttributeSyntax attribute, string name, string value)
    {
        var argument = SyntaxFactory.AttributeArgument(
            SyntaxFactory.NameEquals(SyntaxFactory.IdentifierName(name)), null, SyntaxFactory.ParseExpression(value));
        var list = attribute.ArgumentList ?? SyntaxFactory.AttributeArgumentList();
        var existing = list.Arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == name);
        var updated = existing is not null
            ? list.ReplaceNode(existing, argument.WithTriviaFrom(existing))
            : list.AddArguments(argument);
        return attribute.WithArgumentList(updated);
    }

    /// <summary>Whether <paramref name="attribute"/> is [<paramref name="shortName"/>] or [<paramref name="shortName"/>Attribute].</summary>
    public static bool Is(AttributeSyntax attribute, string shortName)
    {
        var name = attribute.Name.ToString();
        name = name.Substring(name.LastIndexOf('.') + 1);
        return name == shortName || name == shortName + "Attribute";
    }

    /// <summary>Adds <c>[<paramref name="attributeText"/>]</c> on its own line after the list holding <paramref name="sibling"/>.</summary>
    public static SyntaxNode InsertAttributeAfter(SyntaxNode root, AttributeSyntax sibling, string attributeText)
    {
        var list = sibling.FirstAncestorOrSelf<AttributeListSyntax>()!;
        var parsed = (AttributeListSyntax)SyntaxFactory.ParseCompilationUnit($"[{attributeText}] class C {{ }}").Members[0].AttributeLists[0];
        var added = parsed
            .WithTrailingTrivia(list.GetTrailingTrivia())
            .WithLeadingTrivia(list.GetLeadingTrivia().Where(t => t.IsKind(SyntaxKind.WhitespaceTrivia)));
        return root.InsertNodesAfter(list, new[] { added });
    }
}
