using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using static TorchSharp.torch;

namespace LlmEff;

/// <summary>A declared model found in an assembly: its facts and a way to build it.</summary>
public sealed class DeclaredModelType
{
    private readonly MethodInfo create;

    internal DeclaredModelType(Type type, ModelFacts facts, MethodInfo create, PyTorchExport pyTorch, GgufExport gguf)
    {
        Type = type;
        Facts = facts;
        this.create = create;
        PyTorch = pyTorch;
        Gguf = gguf;
    }

    /// <summary>The generated class.</summary>
    public Type Type { get; }

    /// <summary>Its size facts.</summary>
    public ModelFacts Facts { get; }

    /// <summary>Its PyTorch twin, or why it has none (see <see cref="IDeclaredModel{TSelf}.PyTorch"/>).</summary>
    public PyTorchExport PyTorch { get; }

    /// <summary>Its llama.cpp form, or why it has none (see <see cref="IDeclaredModel{TSelf}.Gguf"/>).</summary>
    public GgufExport Gguf { get; }

    /// <summary>Builds the module (see <see cref="IDeclaredModel{TSelf}.Create"/>).</summary>
    public nn.Module<Tensor, Tensor> Create(Device? device = null, ScalarType? dtype = null) =>
        (nn.Module<Tensor, Tensor>)create.Invoke(null, new object?[] { device, dtype })!;
}

/// <summary>Lists the models declared with [Model] in an assembly.</summary>
public static class ModelCatalog
{
    /// <summary>Every class in <paramref name="assembly"/> that the generator turned into a model, by name.</summary>
    public static IReadOnlyList<DeclaredModelType> In(Assembly assembly) =>
        assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && t.GetInterfaces().Any(IsDeclaredModel))
            .Select(t => new DeclaredModelType(
                t,
                (ModelFacts)t.GetProperty("Facts", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!,
                t.GetMethod("Create", BindingFlags.Public | BindingFlags.Static)!,
                (PyTorchExport)t.GetProperty("PyTorch", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!,
                (GgufExport)t.GetProperty("Gguf", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!))
            .OrderBy(m => m.Facts.Name, StringComparer.Ordinal)
            .ToList();

    /// <summary>The model called <paramref name="name"/> (case-insensitive); the error lists the known names.</summary>
    public static DeclaredModelType Find(Assembly assembly, string name) => Find(In(assembly), name, assembly.GetName().Name);

    /// <summary>The model called <paramref name="name"/> among <paramref name="models"/> listed once by <see cref="In"/>
    /// (looking up many names re-reflects nothing); the error names <paramref name="source"/> and the known names.</summary>
    public static DeclaredModelType Find(IReadOnlyList<DeclaredModelType> models, string name, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        return models.FirstOrDefault(m => string.Equals(m.Facts.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"No model named '{name}'{(source is null ? "" : " in " + source)}. Declared models: " +
                $"{string.Join(", ", models.Select(m => m.Facts.Name).Take(20))}{(models.Count > 20 ? $", … ({models.Count} in all)" : "")}.", nameof(name));
    }

    private static bool IsDeclaredModel(Type i) => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDeclaredModel<>);

}
