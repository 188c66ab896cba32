using System;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Threading.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Kernels;

/// <summary>
/// y = W·x (+ b) for one fp32 row x on the CPU, spread over libtorch's thread count. A decoding step multiplies one
/// token by every weight, so it is bound by reading the weights; libtorch's CPU matrix-vector product (MKL's sgemv,
/// as bundled with TorchSharp) runs on one thread whatever <c>torch.set_num_threads</c> says and reads about 13 GB/s
/// on the 2-core development machine, where two threads read 39 (the decode-llama benchmark measures both). This
/// kernel reads four weight rows at a time with AVX2 fused multiply-adds on each thread's share of the rows.
/// It computes the same sums as <c>linear</c> in another order, so results agree to float rounding, not bit for bit.
/// </summary>
public static class MatrixVector
{
    /// <summary>Below this many weights one thread does the product: handing work to a second thread costs a few
    /// microseconds, about what a 256 × 256 product takes.</summary>
    public const long ParallelThreshold = 1L << 17;

    // Set on a thread while it holds a StepThreads handover: the threads libtorch had before it was given one.
    [ThreadStatic] private static int handedOver;

    /// <summary>
    /// Held over one decoding step of a single token in a single sequence, where every product is a matrix-vector
    /// product: libtorch's own operations run on one thread, and this kernel on the threads libtorch had. Without it
    /// the two contend: libgomp's idle workers spin for a while after each parallel region of libtorch's (an
    /// attention product, say) on the core the kernel's second thread needs, and a decoding step of Decode100M took
    /// 40 ms instead of 25 (2026-11-30, 2 threads; with <c>OMP_WAIT_POLICY=PASSIVE</c>, 24.5 ms, but that setting
    /// costs training steps about a fifth). Returns null, changing nothing, where the kernel would not run (autograd
    /// on, more than one token, one thread, no AVX2). libtorch's count is per calling thread under OpenMP; it is
    /// restored on disposal.
    /// </summary>
    public static IDisposable? StepThreads(Tensor tokens)
    {
        if (!IsSupported || handedOver > 0 || is_grad_enabled() || tokens.NumberOfElements != 1) return null;
        var threads = get_num_threads();
        if (threads <= 1) return null;
        set_num_threads(1);
        handedOver = threads;
        return new Handover(threads);
    }

    private sealed class Handover(int threads) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            handedOver = 0;
            set_num_threads(threads);
        }
    }

    /// <summary>Whether this machine has the instructions the kernel uses (AVX2 and FMA).</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>
    /// Whether <see cref="Linear"/> takes the product of <paramref name="x"/> and <paramref name="weight"/>: autograd
    /// off (the kernel records no graph), every tensor fp32 on the CPU, the weight contiguous [outputs, inputs] and
    /// x a single row of <c>inputs</c> values in any shape [..., inputs].
    /// </summary>
    public static bool Applies(Tensor x, Tensor weight, Tensor? bias)
    {
        if (!IsSupported || is_grad_enabled()) return false;
        if (weight.dim() != 2 || x.dim() < 1 || x.shape[^1] != weight.shape[1] || x.NumberOfElements != weight.shape[1]) return false;
        if (weight.shape[0] > int.MaxValue || weight.shape[1] > int.MaxValue) return false;
        if (x.dtype != ScalarType.Float32 || weight.dtype != ScalarType.Float32 || bias is { dtype: not ScalarType.Float32 }) return false;
        if (x.device_type != DeviceType.CPU || weight.device_type != DeviceType.CPU || bias is { device_type: not DeviceType.CPU }) return false;
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != weight.shape[0])) return false;
        return weight.is_contiguous();
    }

    /// <summary>x · Wᵀ + b shaped [..., outputs] like <c>nn.functional.linear</c>; callers check <see cref="Applies"/> first.</summary>
    public static unsafe Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        var rows = (int)weight.shape[0];
        var columns = (int)weight.shape[1];
        var shape = x.shape;
        shape[^1] = rows;
        using var row = x.contiguous();
        using var biasRow = bias?.contiguous();
        var y = bias is null ? empty(shape, ScalarType.Float32) : biasRow!.reshape(shape).clone();
        fixed (byte* w = weight.bytes)
        fixed (byte* v = row.bytes)
        fixed (byte* o = y.bytes)
        {
            Multiply((float*)w, (float*)v, (float*)o, rows, columns, accumulate: bias is not null, handedOver > 0 ? handedOver : get_num_threads());
        }
        return y;
    }

    /// <summary>y[r] (+)= Σ_c w[r, c]·x[c] for r in 0..rows−1 on up to <paramref name="threads"/> threads.</summary>
    private static unsafe void Multiply(float* w, float* x, float* y, int rows, int columns, bool accumulate, int threads)
    {
        threads = (int)Math.Min(threads, rows / 4);
        if (threads <= 1 || (long)rows * columns < ParallelThreshold)
        {
            Rows(w, x, y, 0, rows, columns, accumulate);
            return;
        }
        nint wp = (nint)w, xp = (nint)x, yp = (nint)y;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, part =>
        {
            // Shares start on multiples of four rows, so every share but the last runs the four-row loop only.
            var start = (int)((long)rows / 4 * part / threads * 4);
            var end = part == threads - 1 ? rows : (int)((long)rows / 4 * (part + 1) / threads * 4);
            Rows((float*)wp, (float*)xp, (float*)yp, start, end, columns, accumulate);
        });
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
