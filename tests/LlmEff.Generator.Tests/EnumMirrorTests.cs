using System;
using System.Linq;
using LlmEff.Generator.Model;

namespace LlmEff.Generator.Tests;

/// <summary>The generator reads attribute enums as numbers; its mirrors must match the runtime's enums exactly.</summary>
public sealed class EnumMirrorTests
{
    [Theory]
    [InlineData(typeof(Norm), typeof(NormKind))]
    [InlineData(typeof(Positions), typeof(PositionKind))]
    [InlineData(typeof(Activation), typeof(ActivationKind))]
    [InlineData(typeof(Projections), typeof(ProjectionKind))]
    [InlineData(typeof(ParameterNaming), typeof(NamingKind))]
    [InlineData(typeof(RouterScoring), typeof(RouterKind))]
    [InlineData(typeof(ExpertBalance), typeof(BalanceKind))]
    [InlineData(typeof(QuantFormat), typeof(QuantFormatKind))]
    [InlineData(typeof(QuantTarget), typeof(QuantTargetKind))]
    [InlineData(typeof(AttentionKind), typeof(AttentionForm))]
    [InlineData(typeof(InitScheme), typeof(InitKind))]
    [InlineData(typeof(IndexKeyPrecision), typeof(IndexerPrecisionKind))]
    [InlineData(typeof(LlmEff.Quantization.IndexerPrecision), typeof(IndexerPrecisionKind))]
    [InlineData(typeof(LlmEff.Layers.CompressedAttentionKind), typeof(CompressedKind))]
    public void Generator_mirror_has_the_same_names_and_values(Type runtime, Type mirror)
    {
        static string[] Describe(Type t) => Enum.GetNames(t).Select(n => $"{n}={Convert.ToInt32(Enum.Parse(t, n))}").ToArray();

        Assert.Equal(Describe(runtime), Describe(mirror));
    }

    [Fact]
    public void Generator_cache_slots_mirror_the_runtime_LayerState_streams()
    {
        static string[] Constants(Type t) => t.GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(int)).Select(f => $"{f.Name}={f.GetRawConstantValue()}").OrderBy(x => x, StringComparer.Ordinal).ToArray();

        Assert.Equal(Constants(typeof(LlmEff.Generation.LayerState)), Constants(typeof(LlmEff.Generator.Planning.CacheSlots)));
    }
}
