using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using LlmEff.Generator.Model;
using Microsoft.CodeAnalysis;

namespace LlmEff.Generator.Tests;

/// <summary>The incremental pipeline's models hold plain values only, so the driver can cache them across edits.</summary>
public sealed class PipelineModelTests
{
    private static readonly Type[] Forbidden = { typeof(ISymbol), typeof(SyntaxNode), typeof(SyntaxTree), typeof(Compilation), typeof(SemanticModel), typeof(Location), typeof(AttributeData) };

    [Fact]
    public void No_model_type_reachable_from_the_pipeline_output_holds_symbols_syntax_or_compilations()
    {
        var seen = new HashSet<Type>();
        var offenders = new List<string>();

        void Walk(Type type, string path)
        {
            if (type.IsGenericType) foreach (var argument in type.GetGenericArguments()) Walk(argument, $"{path}<{argument.Name}>");
            if (!seen.Add(type) || type.IsPrimitive || type == typeof(string) || type.IsEnum) return;
            if (Forbidden.Any(f => f.IsAssignableFrom(type))) offenders.Add($"{path}: {type.Name}");
            if (type.Namespace?.StartsWith("LlmEff", StringComparison.Ordinal) != true) return;
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
                Walk(field.FieldType, $"{path}.{field.Name}");
        }

        Walk(typeof(ModelToEmit), nameof(ModelToEmit));

        Assert.Empty(offenders);
        Assert.Contains(typeof(AttentionSpec), seen); // the walk did reach the nested records
        Assert.Contains(typeof(EquatableArray<string>), seen);
        Assert.Contains(typeof(Planning.LayerPlan), seen); // and the layout plan, layer by layer
    }
}
