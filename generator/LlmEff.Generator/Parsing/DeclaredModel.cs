using System.Collections.Generic;

namespace LlmEff.Generator.Parsing;

/// <summary>The arguments written on one attribute, before defaults and checks.</summary>
internal sealed class DeclaredAttribute
{
    public DeclaredAttribute(string name, bool present, object? firstConstructorArgument, IReadOnlyDictionary<string, object?> named, IReadOnlyCollection<string> erroneous)
    {
        Name = name;
        Present = present;
        FirstConstructorArgument = firstConstructorArgument;
        Named = named;
        Erroneous = erroneous;
    }

    /// <summary>Short name as users write it: "Model", "Attention", "Mlp", "MoE", "Quant", "Layers", "ShortConv", "SparseAttention", "Residual".</summary>
    public string Name { get; }

    /// <summary>Whether the declaration carries this attribute at all.</summary>
    public bool Present { get; }

    /// <summary>Value of the first positional argument, if written.</summary>
    public object? FirstConstructorArgument { get; }

    /// <summary>Named arguments as written (boxed constants; enums as their underlying int).</summary>
    public IReadOnlyDictionary<string, object?> Named { get; }

    /// <summary>Arguments whose value did not bind (a type error the compiler already reports).</summary>
    public IReadOnlyCollection<string> Erroneous { get; }

    public static DeclaredAttribute Absent(string name) =>
        new(name, false, null, new Dictionary<string, object?>(), new List<string>());
}

/// <summary>Everything the LlmEff attributes on one class say, as written.</summary>
internal sealed class DeclaredModel
{
    public DeclaredModel(DeclaredAttribute model, DeclaredAttribute attention, DeclaredAttribute mlp, DeclaredAttribute moe, DeclaredAttribute quant,
        DeclaredAttribute layers, DeclaredAttribute shortConv, DeclaredAttribute sparseAttention, DeclaredAttribute? residual = null)
    {
        Residual = residual ?? DeclaredAttribute.Absent("Residual");
        Layers = layers;
        ShortConv = shortConv;
        SparseAttention = sparseAttention;
        Model = model;
        Attention = attention;
        Mlp = mlp;
        MoE = moe;
        Quant = quant;
    }

    public DeclaredAttribute Model { get; }
    public DeclaredAttribute Attention { get; }
    public DeclaredAttribute Mlp { get; }
    public DeclaredAttribute MoE { get; }
    public DeclaredAttribute Quant { get; }
    public DeclaredAttribute Layers { get; }
    public DeclaredAttribute ShortConv { get; }
    public DeclaredAttribute SparseAttention { get; }
    public DeclaredAttribute Residual { get; }

    /// <summary>DeepSeek V4's per-layer attention kinds ([CompressedLayers]); absent unless written.</summary>
    public DeclaredAttribute CompressedLayers { get; init; } = DeclaredAttribute.Absent("CompressedLayers");
}
