using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>Comparisons shared by the decoding-block tests.</summary>
internal static class DecodingTestMath
{
    /// <summary>Largest absolute elementwise difference, in double whatever the dtype.</summary>
    public static double MaxDifference(Tensor a, Tensor b)
    {
        using var difference = (a - b).abs().max();
        return difference.to(ScalarType.Float64).item<double>();
    }

    /// <summary>Parameter name → shape.</summary>
    public static Dictionary<string, long[]> Shapes(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
}
