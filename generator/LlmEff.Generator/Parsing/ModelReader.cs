using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using LlmEff.Generator.Model;

namespace LlmEff.Generator.Parsing;

/// <summary>Reads the LlmEff attributes of a class symbol into plain values. Used by the generator's
/// transform and by the analyzers, so both see the same declaration.</summary>
internal static class ModelReader
{
    public static DeclaredModel Read(INamedTypeSymbol type)
    {
        var attributes = type.GetAttributes();
        return new DeclaredModel(
            ReadOne(attributes, AttributeNames.Model),
            ReadOne(attributes, AttributeNames.Attention),
            ReadOne(attributes, AttributeNames.Mlp),
            ReadOne(attributes, AttributeNames.MoE),
            ReadOne(attributes, AttributeNames.Quant),
            ReadOne(attributes, AttributeNames.Layers),
            ReadOne(attributes, AttributeNames.ShortConv),
            ReadOne(attributes, AttributeNames.SparseAttention),
            ReadOne(attributes, AttributeNames.Residual))
        {
            CompressedLayers = ReadOne(attributes, AttributeNames.CompressedLayers),
        };
    }

    /// <summary>The attribute data of <paramref name="metadataName"/> on <paramref name="type"/>, if any.</summary>
    public static AttributeData? Find(INamedTypeSymbol type, string metadataName) =>
        type.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == metadataName);

    private static DeclaredAttribute ReadOne(IEnumerable<AttributeData> attributes, string metadataName)
    {
        var shortName = AttributeNames.ShortName(metadataName);
        var data = attributes.FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == metadataName);
        if (data is null) return DeclaredAttribute.Absent(shortName);

        var named = new Dictionary<string, object?>();
        var erroneous = new List<string>();
        foreach (var argument in data.NamedArguments)
        {
            if (argument.Value.Kind == TypedConstantKind.Error) erroneous.Add(argument.Key);
            else named[argument.Key] = argument.Value.Value;
        }
        object? first = null;
        if (data.ConstructorArguments.Length > 0)
        {
            var value = data.ConstructorArguments[0];
            if (value.Kind == TypedConstantKind.Error) erroneous.Add("(constructor)");
            else first = value.Value;
        }
        return new DeclaredAttribute(shortName, true, first, named, erroneous);
    }

    /// <summary>Namespace, name and enclosing type declarations of <paramref name="type"/>.</summary>
    public static TypeTarget Target(INamedTypeSymbol type)
    {
        var containing = new List<string>();
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
            containing.Insert(0, (outer.IsStatic ? "static " : "") + "partial " + (outer.TypeKind == TypeKind.Struct ? (outer.IsRecord ? "record struct " : "struct ") : outer.IsRecord ? "record " : "class ") + outer.Name);
        var ns = type.ContainingNamespace is { IsGlobalNamespace: false } n ? n.ToDisplayString() : "";
        return new TypeTarget(ns, type.Name, containing.ToEquatableArray());
    }
}
