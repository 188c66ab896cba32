using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>The MX shared scale: an unsigned byte holding a power-of-two exponent with bias 127, so code <c>c</c> is
/// <c>2^(c−127)</c> (from 2⁻¹²⁷ to 2¹²⁷) and 0xFF is NaN.</summary>
public static class E8M0
{
    /// <summary>The NaN code.</summary>
    public const byte NaNCode = 0xFF;

    /// <summary>The exponent bias: code = exponent + 127.</summary>
    public const int Bias = 127;

    /// <summary>The scale a code stands for: <c>2^(code−127)</c>, or NaN for 0xFF. Code 0 (2⁻¹²⁷) is an fp32
    /// subnormal and is returned exactly.</summary>
    public static float Decode(byte code) =>
        code == NaNCode ? float.NaN : (float)Math.ScaleB(1.0, code - Bias);

    /// <summary>Vectorised <see cref="Decode"/> of uint8 codes into fp32 scales.</summary>
    internal static Tensor DecodeTensor(Tensor codes)
    {
        var table = new float[256];
        for (var code = 0; code < table.Length; code++) table[code] = Decode((byte)code);
        return TensorMath.Lookup(table, codes);
    }
}
