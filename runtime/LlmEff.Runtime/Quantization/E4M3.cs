using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>FP8 E4M3 in its "FN" form (OCP FP8, as NVIDIA's <c>float8_e4m3fn</c>): sign bit 7, 4 exponent bits with
/// bias 7, 3 mantissa bits, subnormals (exponent field 0: <c>m·2⁻⁹</c>), largest magnitude 448, no infinities, and NaN
/// only at 0x7F and 0xFF. Serves as the NVFP4 block scale and as the <see cref="QuantFormat.Fp8E4M3"/> element.</summary>
public static class E4M3
{
    /// <summary>The largest finite magnitude, 448 (code 0x7E).</summary>
    public const float MaxValue = 448f;

    /// <summary>The NaN code produced for NaN and infinite inputs; 0xFF also decodes to NaN.</summary>
    public const byte NaNCode = 0x7F;

    private const byte MaxCode = 0x7E;

    /// <summary>The value of a code: NaN for 0x7F and 0xFF, −0 for 0x80.</summary>
    public static float Decode(byte code)
    {
        var exponentField = (code >> 3) & 0xF;
        var mantissa = code & 7;
        if (exponentField == 0xF && mantissa == 7) return float.NaN;
        var magnitude = exponentField == 0
            ? mantissa * MathF.ScaleB(1f, -9)
            : (8 + mantissa) * MathF.ScaleB(1f, exponentField - 10);
        return (code & 0x80) != 0 ? -magnitude : magnitude;
    }

    /// <summary>The code nearest to <paramref name="value"/>, ties to the even code (even mantissa). Finite magnitudes
    /// beyond 448 saturate to ±448 (no infinity to round to); NaN and ±∞ give <see cref="NaNCode"/>, since E4M3FN has
    /// no infinity and silently turning one into 448 would hide an overflow. The sign bit copies the input's (−0 → 0x80).
    /// This is the scalar reference: a nearest-neighbour search over all codes.</summary>
    public static byte Encode(float value)
    {
        if (!float.IsFinite(value)) return NaNCode;
        var magnitude = Math.Abs((double)value);
        var best = 0;
        if (magnitude >= MaxValue)
        {
            best = MaxCode;
        }
        else
        {
            var bestDistance = double.PositiveInfinity;
            for (var code = 0; code <= MaxCode; code++)
            {
                var distance = Math.Abs(Decode((byte)code) - magnitude);
                if (distance < bestDistance || (distance == bestDistance && code % 2 == 0))
                {
                    best = code;
                    bestDistance = distance;
                }
            }
        }
        return (byte)(float.IsNegative(value) ? best | 0x80 : best);
    }

    /// <summary>Vectorised <see cref="Encode"/> of an fp32 tensor into uint8 codes.</summary>
    internal static Tensor EncodeTensor(Tensor values)
    {
        using var scope = NewDisposeScope();
        var finite = values.isfinite();
        // Anything at or above 480 saturates; capping first keeps every intermediate small and finite.
        var magnitude = torch.where(finite, values.abs(), torch.zeros_like(values)).clamp_max(480f);
        // floor(log2 |v|), exactly, from frexp (|v| = f·2^e with f in [0.5, 1)); below the smallest normal exponent
        // the E4M3 step stays at 2^-9, so the exponent is held at -6 (this also covers zero).
        var (_, frexpExponent) = torch.frexp(magnitude);
        var exponent = torch.where(magnitude.gt(0f), frexpExponent - 1, torch.full_like(frexpExponent, -6)).clamp_min(-6);
        // Steps of the E4M3 grid in this binade: 8 + mantissa for normals, the mantissa for subnormals. Multiplying by
        // a power of two is exact and torch.round is round-half-to-even.
        var stepsPerUnit = TensorMath.PowersOfTwo(3 - exponent, values.device);
        var steps = (magnitude * stepsPerUnit).round().to(ScalarType.Int32);
        // code = 8·(exponent field) + mantissa, with exponent field = exponent + 7 for normals; the same sum gives
        // the subnormal codes (exponent -6) and carries a mantissa of 16 into the next binade.
        var code = (8 * (exponent + 6) + steps).clamp_max(MaxCode);
        code = code + values.signbit().to(ScalarType.Int32) * 0x80;
        code = torch.where(finite, code, torch.full_like(code, NaNCode));
        return code.to(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>Vectorised <see cref="Decode"/> of uint8 codes into fp32 values.</summary>
    internal static Tensor DecodeTensor(Tensor codes)
    {
        var table = new float[256];
        for (var code = 0; code < table.Length; code++) table[code] = Decode((byte)code);
        return TensorMath.Lookup(table, codes);
    }
}
