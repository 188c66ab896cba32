using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Kernels;

/// <summary>
/// What the single-token kernels (<see cref="MatrixVector"/>, <see cref="SingleQueryAttention"/>) share: whether they can
/// run here and on which tensors, how many threads they use, and the handover of libtorch's threads to them for one
/// decoding step.
/// </summary>
public static class SingleTokenStep
{
    // Set on a thread while it holds a handover: the threads libtorch had before it was given one.
    [ThreadStatic] private static int handedOver;

    /// <summary>Whether this machine has the instructions the kernels use (AVX2 and FMA).</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>
    /// Held over one decoding step of a single token in a single sequence, where every product is a matrix-vector
    /// product: libtorch's own operations run on one thread, and the kernels on the threads libtorch had. Without it
    /// the two contend: libgomp's idle workers spin for a while after each parallel region of libtorch's (an
    /// attention product, say) on the core the kernel's second thread needs, and a decoding step of Decode100M took
    /// 40 ms instead of 25 (2026-11-30, 2 threads; with <c>OMP_WAIT_POLICY=PASSIVE</c>, 24.5 ms, but that setting
    /// costs training steps about a fifth). <paramref name="weight"/> is one of the model's weights, which tells its
    /// dtype and device. Returns null, changing nothing, where the kernels would not run: autograd on, more than one
    /// token, weights that are not fp32 on the CPU, one thread, no AVX2. The generator holds it only for models whose
    /// every product can reach the kernels (<c>LayoutPlan.DecodesOnKernels</c>). Restored on disposal, also after
    /// an exception. libtorch's count is per thread under OpenMP, but libtorch also keeps the last value set as the
    /// count a thread starts with when it first uses libtorch, so a thread that makes its first libtorch call during
    /// another thread's step starts with one.
    /// </summary>
    public static IDisposable? HandOverThreads(Tensor tokens, Tensor weight)
    {
        if (!IsSupported || handedOver > 0 || is_grad_enabled() || tokens.NumberOfElements != 1 || !Fp32OnCpu(weight)) return null;
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

    /// <summary>Threads the kernels use: those handed over by <see cref="HandOverThreads"/> on this thread, else libtorch's.</summary>
    internal static int Threads => handedOver > 0 ? handedOver : get_num_threads();

    /// <summary>The kernels' element type and device.</summary>
    internal static bool Fp32OnCpu(Tensor tensor) => tensor.dtype == ScalarType.Float32 && tensor.device_type == DeviceType.CPU;

    /// <summary>Whether <paramref name="tensor"/> is a contiguous fp32 CPU tensor of <paramref name="shape"/>, any size
    /// where the shape says −1: what the kernels read and write by address.</summary>
    internal static bool Fits(Tensor tensor, ReadOnlySpan<long> shape)
    {
        if (!Fp32OnCpu(tensor) || !tensor.is_contiguous()) return false;
        var actual = tensor.shape;
        if (actual.Length != shape.Length) return false;
        for (var d = 0; d < shape.Length; d++)
            if (shape[d] != -1 && actual[d] != shape[d]) return false;
        return true;
    }

    /// <summary>The first element of a contiguous tensor or view: libtorch's memory, which does not move while the tensor lives.</summary>
    internal static unsafe float* Address(Tensor contiguous)
    {
        if (contiguous.NumberOfElements <= int.MaxValue / sizeof(float))
            return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(contiguous.bytes));
        // Tensor.bytes refuses spans over 2 GiB (DeepSeek-V3's head is 3.7 GB in fp32): its first element's one-element view.
        using var flat = contiguous.view(-1);
        using var first = flat.narrow(0, 0, 1);
        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(first.bytes));
    }
}
