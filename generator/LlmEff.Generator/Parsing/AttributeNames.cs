namespace LlmEff.Generator.Parsing;

/// <summary>Metadata names of the attributes the generator reads (declared in runtime/LlmEff.Runtime/Attributes).</summary>
internal static class AttributeNames
{
    public const string Model = "LlmEff.ModelAttribute";
    public const string Attention = "LlmEff.AttentionAttribute";
    public const string Mlp = "LlmEff.MlpAttribute";
    public const string MoE = "LlmEff.MoEAttribute";
    public const string Quant = "LlmEff.QuantAttribute";
    public const string Layers = "LlmEff.LayersAttribute";
    public const string ShortConv = "LlmEff.ShortConvAttribute";
    public const string SparseAttention = "LlmEff.SparseAttentionAttribute";
    public const string CompressedLayers = "LlmEff.CompressedLayersAttribute";
    public const string Residual = "LlmEff.ResidualAttribute";

    /// <summary>Attributes that describe a part of a model and mean nothing without [Model].</summary>
    public static readonly string[] Parts = { Attention, Mlp, MoE, Quant, Layers, ShortConv, SparseAttention, CompressedLayers, Residual };

    /// <summary>"LlmEff.ModelAttribute" → "Model", the name users write.</summary>
    public static string ShortName(string metadataName)
    {
        var name = metadataName.Substring(metadataName.LastIndexOf('.') + 1);
        return name.EndsWith("Attribute") ? name.Substring(0, name.Length - "Attribute".Length) : name;
    }
}
