using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Quantization;

/// <summary>The precision the sparse-attention indexer's queries and keys are fake-quantized to before scoring.</summary>
public enum IndexerPrecision
{
    /// <summary>DeepSeek V4's rule: E2M1 elements, one power-of-two scale per 32 values (see <see cref="IndexerQuantizer"/>).</summary>
    Fp4,

    /// <summary>E4M3 elements, one power-of-two scale per 128 values (DeepSeek V3.2's indexer: <c>act_quant</c> with
    /// block 128 and ue8m0 scales).</summary>
    Fp8,

    /// <summary>Rounded to bf16 (round to nearest even).</summary>
    Bf16,

    /// <summary>Unchanged fp32.</summary>
    Fp32,
}

/// <summary>
/// Fake quantization of activations with DeepSeek's never-clipping power-of-two block scale: per block of values the
/// scale is <c>s = 2^ceil(log2(amax / max))</c>, the smallest power of two with <c>amax ≤ max·s</c> (max = 6 for E2M1,
/// 448 for E4M3), and each value becomes <c>round(v / s)·s</c> with round-half-to-even to the element grid. Because
/// <c>|v / s| ≤ max</c> nothing clips, unlike OCP MXFP4's <c>2^(floor(log2 amax) − 2)</c> (<see cref="Quantizer"/>),
/// whose largest value can exceed 6·s and saturate. Sources: deepseek-ai's V4 <c>inference/model.py</c>
/// (<c>fp4_act_quant(x, 32, True)</c> on the indexer's q and compressed k after <c>rotate_activation</c>) and its
/// kernel's scale rounding to a power of two (ue8m0), and V3.2's <c>act_quant(x, 128, "ue8m0")</c> for FP8.
/// </summary>
/// <remarks>
/// <para>Blocks run along the last dimension, which must be a multiple of the block size (DeepSeek asserts the same).
/// The block maximum is floored as DeepSeek's kernels floor it, at 6·2⁻¹²⁶ for FP4 (so the scale is at least the
/// smallest normal fp32, 2⁻¹²⁶) and 10⁻⁴ for FP8; an all-zero block stays zero. A block holding NaN or ±∞ comes back
/// all NaN (the OCP convention <see cref="Quantizer"/> follows; DeepSeek's kernels do not define it).</para>
/// <para>Every step is exact: the exponent comes from <c>frexp</c> (amax = f·2^E, f ∈ [0.5, 1); max = g·2^G likewise;
/// then <c>s = 2^(E−G)</c> when f ≤ g, else <c>2^(E−G+1)</c>), dividing by a power of two is exact, and the grids round
/// half to even, so the result is bit-exact with <see cref="ReferenceQuantizer.IndexerFakeQuantize"/> and with the
/// Python twin <c>indexer_quantizer.py</c>.</para>
/// </remarks>
public static class IndexerQuantizer
{
    /// <summary>Values per FP4 scale (DeepSeek's <c>fp4_block_size</c>).</summary>
    public const int Fp4BlockSize = 32;

    /// <summary>Values per FP8 scale (DeepSeek V3.2's indexer <c>block_size</c>).</summary>
    public const int Fp8BlockSize = 128;

    /// <summary>Values per scale of <paramref name="precision"/> along the last dimension (1 for BF16 and FP32, which
    /// round each value alone): a width must be a multiple of it to be quantized.</summary>
    public static int BlockSize(IndexerPrecision precision) =>
        precision switch { IndexerPrecision.Fp4 => Fp4BlockSize, IndexerPrecision.Fp8 => Fp8BlockSize, _ => 1 };

    /// <summary>DeepSeek's FP4 amax floor, 6·2⁻¹²⁶: the scale never drops below 2⁻¹²⁶.</summary>
    public static readonly float Fp4AmaxFloor = 6f * MathF.ScaleB(1f, -126);

    /// <summary>DeepSeek's FP8 <c>act_quant</c> amax floor.</summary>
    public const float Fp8AmaxFloor = 1e-4f;

    /// <summary><paramref name="x"/> fake-quantized to <paramref name="precision"/>, in x's dtype and shape.</summary>
    public static Tensor FakeQuantize(Tensor x, IndexerPrecision precision)
    {
        ArgumentNullException.ThrowIfNull(x);
        return precision switch
        {
            IndexerPrecision.Fp4 => PowerOfTwo(x, Fp4BlockSize, E2M1.MaxMagnitude, Fp4AmaxFloor, fp8: false),
            IndexerPrecision.Fp8 => PowerOfTwo(x, Fp8BlockSize, E4M3.MaxValue, Fp8AmaxFloor, fp8: true),
            IndexerPrecision.Bf16 => x.to(ScalarType.BFloat16).to(x.dtype),
            IndexerPrecision.Fp32 => x.to(ScalarType.Float32).to(x.dtype),
            _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Not an indexer precision."),
        };
    }

    private static Tensor PowerOfTwo(Tensor x, int blockSize, float max, float amaxFloor, bool fp8)
    {
        var columns = x.shape.Length == 0 ? 1 : x.shape[^1];
        if (columns % blockSize != 0)
            throw new ArgumentException($"The last dimension ({columns}) must be a multiple of the block size {blockSize}.", nameof(x));
        using var scope = NewDisposeScope();
        var blocks = x.to(ScalarType.Float32).reshape(-1, columns / blockSize, blockSize);
        var finite = blocks.isfinite();
        var blockFinite = finite.all(-1, keepdim: true);
        var amax = torch.where(finite, blocks.abs(), torch.zeros_like(blocks)).amax(new long[] { -1 }, keepdim: true).clamp_min(amaxFloor);
        var scale = TensorMath.PowersOfTwo(ScaleExponent(amax, max), x.device);
        var scaled = blocks / scale;
        var grid = fp8 ? E4M3.DecodeTensor(E4M3.EncodeTensor(scaled)) : E2M1.DecodeTensor(E2M1.EncodeTensor(scaled));
        var values = torch.where(blockFinite, grid * scale, torch.full_like(blocks, float.NaN));
        return values.reshape(x.shape).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>ceil(log2(amax / max)) exactly: with amax = f·2^E and max = g·2^G (f, g in [0.5, 1)),
    /// amax ≤ max·2^(E−G) exactly when f ≤ g.</summary>
    private static Tensor ScaleExponent(Tensor amax, float max)
    {
        var (maxFraction, maxExponent) = Frexp(max);
        var (fraction, exponent) = torch.frexp(amax);
        return exponent - maxExponent + fraction.gt(maxFraction).to(exponent.dtype);
    }

    /// <summary>(f, e) with x = f·2^e and f in [0.5, 1), for a positive normal fp32 constant.</summary>
    private static (float Fraction, int Exponent) Frexp(float x)
    {
        var exponent = Math.ILogB(x) + 1;
        return ((float)Math.ScaleB(x, -exponent), exponent);
    }
}
