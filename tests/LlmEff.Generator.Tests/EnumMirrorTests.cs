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
    public void Generator_mirror_has_the_same_names_and_values(Type runtime, Type mirror)
    {
        static string[] Describe(Type t) => Enum.GetNames(t).Select(n => $"{n}={Convert.ToInt32(Enum.Parse(t, n))}").ToArray();

        Assert.Equal(Describe(runtime), Describe(mirror));
    }
}
