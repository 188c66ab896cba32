using System.Linq;
using System.Threading;
using LlmEff.Generator.Parsing;
using LlmEff.Generator.Validation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.Generator.Analyzers;

/// <summary>Where on a model class a diagnostic belongs: the argument that caused it, else its attribute, else the class name.</summary>
internal static class AttributeLocations
{
    /// <summary>The syntax of [<paramref name="shortName"/>] on <paramref name="type"/>, if written.</summary>
    public static AttributeSyntax? Syntax(INamedTypeSymbol type, string shortName, CancellationToken token) =>
        ModelReader.Find(type, "LlmEff." + shortName + "Attribute")?.ApplicationSyntaxReference?.GetSyntax(token) as AttributeSyntax;

    /// <summary>
    /// The location of <paramref name="argument"/> (a property name, or <see cref="ConfigurationIssue.ConstructorArgument"/>)
    /// of [<paramref name="attribute"/>]; with a null argument, or one not written, the attribute itself.
    /// </summary>
    public static Location? Of(INamedTypeSymbol type, string? attribute, string? argument, CancellationToken token)
    {
        var fallback = type.Locations.FirstOrDefault();
        if (attribute is null || Syntax(type, attribute, token) is not { } syntax) return fallback;
        var arguments = syntax.ArgumentList?.Arguments;
        if (argument is null || arguments is null) return syntax.GetLocation();
        var match = argument == ConfigurationIssue.ConstructorArgument
            ? arguments.Value.FirstOrDefault(a => a.NameEquals is null && a.NameColon is null)
            : arguments.Value.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == argument);
        return (match ?? (SyntaxNode)syntax).GetLocation();
    }

    /// <summary>The location of an argument only when it is written; null otherwise.</summary>
    public static Location? IfWritten(INamedTypeSymbol type, string attribute, string argument, CancellationToken token) =>
        Syntax(type, attribute, token)?.ArgumentList?.Arguments
            .FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == argument)?.GetLocation();
}
