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
        using var biasRow = bias?.reshape(shape);
        var y = biasRow is null ? empty(shape, ScalarType.Float32) : biasRow.clone();
        // The weight's address from its first row: Tensor.bytes refuses a span over 2 GiB (DeepSeek-V3's head is 3.7 GB).
        using var firstRow = weight[0];
        var product = new Product(SingleTokenStep.Address(firstRow), SingleTokenStep.Address(row), SingleTokenStep.Address(y), rows, columns, accumulate: bias is not null);
        Multiply(&product, SingleTokenStep.Threads);
        return y;
    }

    // One product's operands, handed to the workers by address (it lives on the caller's stack until all parts are done).
    private readonly unsafe struct Product(float* weight, float* input, float* output, int rows, int columns, bool accumulate)
    {
        public readonly float* Weight = weight, Input = input, Output = output;
        public readonly int Rows = rows, Columns = columns;
        public readonly bool Accumulate = accumulate;
    }

    private static unsafe void Multiply(Product* product, int threads)
    {
        threads = Math.Min(threads, product->Rows / 4);
        if (threads > 1 && (long)product->Rows * product->Columns >= ParallelThreshold
            && KernelWorkers.TryRun(&Part, (nint)product, threads)) return;
        Rows(product->Weight, product->Input, product->Output, 0, product->Rows, product->Columns, product->Accumulate);
    }

    // Part `part` of `parts`: shares start on multiples of four rows, so every share but the last runs the four-row loop only.
    private static unsafe void Part(nint state, int part, int parts)
    {
        var product = (Product*)state;
        var quads = (long)product->Rows / 4;
        var start = (int)(quads * part / parts * 4);
        var end = part == parts - 1 ? product->Rows : (int)(quads * (part + 1) / parts * 4);
        Rows(product->Weight, product->Input, product->Output, start, end, product->Columns, product->Accumulate);
    }

    private static unsafe void Rows(float* w, float* x, float* y, int start, int end, int columns, bool accumulate)
    {
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
            y[r] = accumulate ? y[r] + s : s;
        }
    }
}
