using System;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Kernels;

/// <summary>
/// y = W·x (+ b) for one fp32 row x on the CPU, spread over libtorch's thread count. A decoding step multiplies one
/// token by every weight, so it is bound by reading the weights; libtorch's CPU matrix-vector product (MKL's sgemv,
/// as bundled with TorchSharp) runs on one thread whatever <c>torch.set_num_threads</c> says and reads about 13 GB/s
/// on the 2-core development machine, where two threads read 39 (the decode-llama benchmark measures both). This
/// kernel reads four weight rows at a time with AVX2 fused multiply-adds on each thread's share of the rows, the
/// shares handed to <see cref="KernelWorkers"/>.
/// It computes the same sums as <c>linear</c> in another order, so results agree to float rounding, not bit for bit.
/// </summary>
public static class MatrixVector
{
    /// <summary>Below this many weights one thread does the product. On DecodeFull's step (256 wide; 2026-11-30, 2
    /// threads) sharing every product from 256 × 256 up took 1.7–1.9 ms, sharing none 2.4 ms, and sharing only those
    /// above 2^17 weights 3.5 ms: with few products to do, the workers fell asleep between them (<see cref="KernelWorkers"/>).</summary>
    public const long ParallelThreshold = 1L << 15;

    /// <summary>
    /// x · Wᵀ + b shaped [..., outputs] like <c>nn.functional.linear</c>, or null where the kernel does not apply and
    /// <c>linear</c> should run: autograd on (the kernel records no graph), a tensor that is not fp32 on the CPU, a
    /// weight that is not a contiguous [outputs, inputs] matrix, or more than one row of inputs.
    /// </summary>
    public static unsafe Tensor? TryLinear(Tensor x, Tensor weight, Tensor? bias)
    {
        if (!SingleTokenStep.IsSupported || is_grad_enabled()) return null;
        // Shapes are read once: each read is a native call that allocates, and this runs for every product of a step.
        var weightShape = weight.shape;
        if (weightShape.Length != 2 || weightShape[0] > int.MaxValue || weightShape[1] > int.MaxValue) return null;
        var shape = x.shape;
        if (shape.Length < 1 || shape[^1] != weightShape[1]) return null;
        for (var d = 0; d < shape.Length - 1; d++) if (shape[d] != 1) return null;
        if (!SingleTokenStep.Fp32OnCpu(x) || !SingleTokenStep.Fp32OnCpu(weight) || bias is not null && !SingleTokenStep.Fp32OnCpu(bias)) return null;
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != weightShape[0])) return null;
        if (!weight.is_contiguous()) return null;

        var rows = (int)weightShape[0];
        var columns = (int)weightShape[1];
        shape[^1] = rows;
        using var row = x.contiguous();
        using var biasRow = bias?.contiguous();
        var y = empty(shape, ScalarType.Float32);
        var product = new Product(SingleTokenStep.Address(weight), SingleTokenStep.Address(row), SingleTokenStep.Address(y),
            biasRow is null ? null : SingleTokenStep.Address(biasRow), rows, columns, accumulate: false);
        Multiply(&product, SingleTokenStep.Threads);
        return y;
    }

    /// <summary>One product's operands, handed to the workers by address (it lives on the caller's stack until all parts are
    /// done): y = W·x + b, or y += W·x + b when <see cref="Accumulate"/> (a residual add in the same pass); b may be null.</summary>
    internal readonly unsafe struct Product(float* weight, float* input, float* output, float* bias, int rows, int columns, bool accumulate)
    {
        public readonly float* Weight = weight, Input = input, Output = output, Bias = bias;
        public readonly int Rows = rows, Columns = columns;
        public readonly bool Accumulate = accumulate;

        public long Weights => (long)Rows * Columns;

        /// <summary>Rows <paramref name="start"/> … end − 1 of the product.</summary>
        public void Run(int start, int end) => MatrixVector.Rows(this, start, end);
    }

    /// <summary>The whole product, its rows shared between up to <paramref name="threads"/> threads when it is large enough.</summary>
    internal static unsafe void Multiply(Product* product, int threads)
    {
        threads = Math.Min(threads, product->Rows / 4);
        if (threads > 1 && product->Weights >= ParallelThreshold
            && KernelWorkers.TryRun(&Part, (nint)product, threads)) return;
        product->Run(0, product->Rows);
    }

    // Part `part` of `parts`: shares start on multiples of four rows, so every share but the last runs the four-row loop only.
    private static unsafe void Part(nint state, int part, int parts)
    {
        var product = (Product*)state;
        var (start, end) = Share(product->Rows, part, parts);
        product->Run(start, end);
    }

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of <paramref name="rows"/> rows, starting on a multiple of four.</summary>
    internal static (int Start, int End) Share(int rows, int part, int parts)
    {
        var quads = (long)rows / 4;
        var start = (int)(quads * part / parts * 4);
        var end = part == parts - 1 ? rows : (int)(quads * (part + 1) / parts * 4);
        return (start, end);
    }

    private static unsafe void Rows(in Product product, int start, int end)
    {
        float* w = product.Weight, x = product.Input, y = product.Output, b = product.Bias;
        var columns = product.Columns;
        var accumulate = product.Accumulate;
        var r = start;
        // Four rows at a time: each load of x serves four rows, and four independent accumulators hide the FMA latency.
        for (; r + 4 <= end; r += 4)
        {
            float* w0 = w + (long)r * columns, w1 = w0 + columns, w2 = w1 + columns, w3 = w2 + columns;
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            var c = 0;
            for (; c + 8 <= columns; c += 8)
            {
                var xv = Avx.LoadVector256(x + c);
                a0 = Fma.MultiplyAdd(Avx.LoadVector256(w0 + c), xv, a0);
                a1 = Fma.MultiplyAdd(Avx.LoadVector256(w1 + c), xv, a1);
                a2 = Fma.MultiplyAdd(Avx.LoadVector256(w2 + c), xv, a2);
                a3 = Fma.MultiplyAdd(Avx.LoadVector256(w3 + c), xv, a3);
            }
            float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
            for (; c < columns; c++)
            {
                s0 += w0[c] * x[c];
                s1 += w1[c] * x[c];
                s2 += w2[c] * x[c];
                s3 += w3[c] * x[c];
            }
            if (b is not null)
            {
                s0 += b[r]; s1 += b[r + 1]; s2 += b[r + 2]; s3 += b[r + 3];
            }
            if (accumulate)
            {
                y[r] += s0; y[r + 1] += s1; y[r + 2] += s2; y[r + 3] += s3;
            }
            else
            {
                y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3;
            }
        }
        for (; r < end; r++)
        {
            float* wr = w + (long)r * columns;
            var a = Vector256<float>.Zero;
            var c = 0;
            for (; c + 8 <= columns; c += 8) a = Fma.MultiplyAdd(Avx.LoadVector256(wr + c), Avx.LoadVector256(x + c), a);
            var s = Vector256.Sum(a);
            for (; c < columns; c++) s += wr[c] * x[c];
            if (b is not null) s += b[r];
            y[r] = accumulate ? y[r] + s : s;
        }
    }
}
