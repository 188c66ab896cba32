using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.Generator.Parsing;

/// <summary>Whether a class can receive a generated half. Shared by generator and analyzer.</summary>
internal static class TypeShape
{
    public enum Problem { None, NotPartial, Unsupported }

    /// <summary>The problem with <paramref name="type"/>, and for <see cref="Problem.Unsupported"/> why.</summary>
    public static (Problem Problem, string Reason) Check(INamedTypeSymbol type)
    {
        if (type.TypeKind != TypeKind.Class || type.IsRecord) return (Problem.Unsupported, "only a class can be a model");
        if (!IsPartial(type)) return (Problem.NotPartial, "");
        if (type.IsGenericType) return (Problem.Unsupported, "a generic class cannot be a model (its sizes must be constants)");
        if (type.IsStatic) return (Problem.Unsupported, "a static class cannot be a module");
        if (type.IsAbstract) return (Problem.Unsupported, "an abstract class cannot be built");
        if (type.BaseType is { } baseType && baseType.SpecialType != SpecialType.System_Object && !IsTorchModule(baseType))
            return (Problem.Unsupported, $"it declares the base class '{type.BaseType.Name}', but the generated half derives it from TorchSharp's Module");
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            if (!IsPartial(outer)) return (Problem.Unsupported, $"the enclosing type '{outer.Name}' is not partial");
            if (outer.IsGenericType) return (Problem.Unsupported, $"the enclosing type '{outer.Name}' is generic");
            if (outer.TypeKind == TypeKind.Interface) return (Problem.Unsupported, $"the enclosing type '{outer.Name}' is an interface");
        }
        return (Problem.None, "");
    }

    private static bool IsPartial(INamedTypeSymbol type) =>
        type.DeclaringSyntaxReferences.Any(r => r.GetSyntax() is TypeDeclarationSyntax t && t.Modifiers.Any(SyntaxKind.PartialKeyword));

    // The generator sees the class without its own output, the analyzer with it: both accept the base the
    // generated half declares, and nothing else.
    private static bool IsTorchModule(INamedTypeSymbol baseType) =>
        baseType.OriginalDefinition.ToDisplayString() == "TorchSharp.torch.nn.Module<T, TResult>";
}
