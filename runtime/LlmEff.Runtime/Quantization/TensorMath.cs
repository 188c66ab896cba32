using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>Small exact building blocks for the vectorised codecs. TorchSharp 0.107 cannot reinterpret a tensor's
/// bits as another dtype, so exact powers of two and code values come from lookup tables built in C#.</summary>
internal static class TensorMath
{
    private const int SmallestExponent = -149; // 2^-149 is the smallest fp32 subnormal
    private const int LargestExponent = 127;

    private static readonly float[] PowersOfTwoTable = BuildPowersOfTwo();

    /// <summary>table[codes], elementwise, as an fp32 tensor with the shape and device of <paramref name="codes"/>.</summary>
    public static Tensor Lookup(float[] table, Tensor codes)
    {
        using var scope = NewDisposeScope();
        var values = torch.tensor(table, device: codes.device);
        var index = codes.flatten().to(ScalarType.Int64);
        return values.index_select(0, index).view(codes.shape).MoveToOuterDisposeScope();
    }

    /// <summary>2^k for an integer tensor of exponents k in [-149, 127], exactly, as fp32.</summary>
    public static Tensor PowersOfTwo(Tensor exponents, Device device)
    {
        using var scope = NewDisposeScope();
        var index = exponents.to(ScalarType.Int64) - SmallestExponent;
        var table = torch.tensor(PowersOfTwoTable, device: device);
        return table.index_select(0, index.flatten()).view(exponents.shape).MoveToOuterDisposeScope();
    }

    /// <summary>x / divisor in fp32, divided rather than multiplied by a reciprocal. The divisor is made a tensor on
    /// x's device because CUDA replaces division by a host scalar with a multiplication by its reciprocal, which
    /// rounds differently.</summary>
    public static Tensor DivideBy(Tensor x, float divisor)
    {
        using var divisorTensor = torch.tensor(divisor, dtype: ScalarType.Float32, device: x.device);
        return x / divisorTensor;
    }

    /// <summary>Zeros carrying the sign bit of each element of <paramref name="x"/> (±0).</summary>
    public static Tensor SignedZeros(Tensor x)
    {
        using var zeros = torch.zeros_like(x);
        return zeros.copysign(x);
    }

    private static float[] BuildPowersOfTwo()
    {
        var table = new float[LargestExponent - SmallestExponent + 1];
        for (var k = SmallestExponent; k <= LargestExponent; k++) table[k - SmallestExponent] = (float)Math.ScaleB(1.0, k);
        return table;
    }
}
