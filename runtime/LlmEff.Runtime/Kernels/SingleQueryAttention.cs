using System;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Kernels;

/// <summary>
/// softmax(q·Kᵀ/√d)·V for one query token over a decoding cache, fp32 on the CPU, the heads shared between threads. A
/// cached step's attention reads every cached key and value once (Decode100M at 640 tokens: 3.9 MB per layer), so it is
/// bound by reading them like the products are; inside <see cref="SingleTokenStep.HandOverThreads"/> libtorch's attention runs
/// on one thread, and with fewer key/value heads than query heads it first copies the cache once per query head
/// (<c>repeat_interleave</c>: SDPA has no grouped mode). This kernel reads each key/value head in place, once per query
/// head of its group, straight from the cache's buffer (a view whose rows are contiguous per head). Same values as
/// SDPA to float rounding (other summation order, <see cref="MathF.Exp(float)"/>).
/// </summary>
public static class SingleQueryAttention
{
    /// <summary>
    /// Attention [1, heads, 1, valueDim] of query [1, heads, 1, d] over keys [1, kvHeads, time, d] and values
    /// [1, kvHeads, time, valueDim], query head h reading key/value head h / (heads / kvHeads), scaled by 1/√d; or null
    /// where the kernel does not apply and SDPA should run (autograd on, not fp32 on the CPU, more than one query or
    /// sequence, key or value rows not contiguous, heads not a multiple of kvHeads).
    /// </summary>
    public static unsafe Tensor? TryAttend(Tensor query, Tensor key, Tensor value)
    {
        if (!SingleTokenStep.IsSupported || is_grad_enabled()) return null;
        var q = query.shape;
        var k = key.shape;
        var v = value.shape;
        if (q.Length != 4 || k.Length != 4 || v.Length != 4 || q[0] != 1 || q[2] != 1 || k[0] != 1 || v[0] != 1) return null;
        long heads = q[1], kvHeads = k[1], time = k[2], dim = q[3], valueDim = v[3];
        if (kvHeads < 1 || heads % kvHeads != 0 || v[1] != kvHeads || v[2] != time || k[3] != dim || time < 1 || time > int.MaxValue) return null;
        if (!SingleTokenStep.Fp32OnCpu(query) || !SingleTokenStep.Fp32OnCpu(key) || !SingleTokenStep.Fp32OnCpu(value)) return null;
        // Each head's [time, d] block must be one run of memory: a cache buffer narrowed along time is, per head.
        if (key.stride(3) != 1 || key.stride(2) != dim || value.stride(3) != 1 || value.stride(2) != valueDim) return null;

        using var queryRows = query.contiguous();
        using var firstKeys = key[0, 0];
        using var firstValues = value[0, 0];
        var output = empty(new[] { 1, heads, 1, valueDim }, ScalarType.Float32);
        var job = new Job(SingleTokenStep.Address(queryRows), SingleTokenStep.Address(firstKeys), SingleTokenStep.Address(firstValues), SingleTokenStep.Address(output),
            (int)heads, (int)(heads / kvHeads), (int)time, (int)dim, (int)valueDim, key.stride(1), value.stride(1),
            1 / MathF.Sqrt(dim));
        Run(&job, SingleTokenStep.Threads);
        return output;
    }

    /// <summary>The attention of <paramref name="job"/>, its heads shared between up to <paramref name="threads"/> threads.</summary>
    internal static unsafe void Run(Job* job, int threads)
    {
        var parts = Math.Min(threads, job->Heads);
        if (parts <= 1 || !KernelWorkers.TryRun(&Part, (nint)job, parts)) Part((nint)job, 0, 1);
    }

    /// <summary>One query's attention by address: query [heads, dim], each key/value head's rows [time, dim] and
    /// [time, valueDim] contiguous and the heads <paramref name="keyHeadStride"/> / <paramref name="valueHeadStride"/>
    /// elements apart, output [heads, valueDim]; query head h reads key/value head h / group.</summary>
    internal readonly unsafe struct Job(float* query, float* keys, float* values, float* output, int heads, int group, int time,
        int dim, int valueDim, long keyHeadStride, long valueHeadStride, float scale)
    {
        public readonly float* Query = query, Keys = keys, Values = values, Output = output;
        public readonly int Heads = heads, Group = group, Time = time, Dim = dim, ValueDim = valueDim;
        public readonly long KeyHeadStride = keyHeadStride, ValueHeadStride = valueHeadStride;
        public readonly float Scale = scale;

        /// <summary>Keys derived from the stored rows as the QKV study's NoKey derives them from the values: each row
        /// RMS-normalised by <see cref="KeyNorm"/> (when set), then rotated by row t of the rotary tables
        /// <see cref="KeyCos"/> / <see cref="KeySin"/> (when set, [positions, dim]) for position t.</summary>
        public float* KeyCos { get; init; }

        /// <summary>See <see cref="KeyCos"/>.</summary>
        public float* KeySin { get; init; }

        /// <summary>The per-head RMSNorm weight [dim] applied to stored rows before they score as keys (QK norm of NoKey), or null.</summary>
        public float* KeyNorm { get; init; }

        /// <summary>That norm's epsilon.</summary>
        public float KeyNormEps { get; init; }

        public bool DerivesKeys => KeyCos != null || KeyNorm != null;
    }

    // Heads part, part + parts, … of the job.
    private static unsafe void Part(nint state, int part, int parts)
    {
        var job = (Job*)state;
        VectorMath.ForHeads(state, job->Heads, job->Time, part, parts, &Head);
    }

    private static unsafe void Head(nint state, int head, float* scores)
    {
        var job = (Job*)state;
        var q = job->Query + (long)head * job->Dim;
        var keys = job->Keys + head / job->Group * job->KeyHeadStride;
        var values = job->Values + head / job->Group * job->ValueHeadStride;
        var output = job->Output + (long)head * job->ValueDim;
        int time = job->Time, dim = job->Dim, valueDim = job->ValueDim;

        var max = float.NegativeInfinity;
        var t0 = 0;
        if (job->DerivesKeys)
        {
            // Each stored row becomes its key in a scratch row first: normalised, then rotated for its position.
            var key = stackalloc float[dim];
            for (; t0 < time; t0++)
            {
                var row = keys + (long)t0 * dim;
                if (job->KeyNorm != null) VectorMath.RmsNormalize(row, key, job->KeyNorm, dim, job->KeyNormEps);
                else new ReadOnlySpan<float>(row, dim).CopyTo(new Span<float>(key, dim));
                if (job->KeyCos != null) VectorMath.RotateHalves(key, job->KeyCos + (long)t0 * dim, job->KeySin + (long)t0 * dim, dim);
                var score = VectorMath.Dot(q, key, dim) * job->Scale;
                scores[t0] = score;
                if (score > max) max = score;
            }
        }
        // Four keys at a time when the width is a multiple of 8: four independent sums hide the FMA latency that one
        // dot product's chain of dim / 8 multiply-adds waits on.
        else if (dim % 8 == 0)
        {
            for (; t0 + 4 <= time; t0 += 4)
            {
                float* k0 = keys + (long)t0 * dim, k1 = k0 + dim, k2 = k1 + dim, k3 = k2 + dim;
                Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
                for (var c = 0; c < dim; c += 8)
                {
                    var qv = Avx.LoadVector256(q + c);
                    s0 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k0 + c), s0);
                    s1 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k1 + c), s1);
                    s2 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k2 + c), s2);
                    s3 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k3 + c), s3);
                }
                scores[t0] = Vector256.Sum(s0) * job->Scale;
                scores[t0 + 1] = Vector256.Sum(s1) * job->Scale;
                scores[t0 + 2] = Vector256.Sum(s2) * job->Scale;
                scores[t0 + 3] = Vector256.Sum(s3) * job->Scale;
                max = MathF.Max(max, MathF.Max(MathF.Max(scores[t0], scores[t0 + 1]), MathF.Max(scores[t0 + 2], scores[t0 + 3])));
            }
        }
        for (var t = t0; t < time; t++)
        {
            var key = keys + (long)t * dim;
            var sum = Vector256<float>.Zero;
            var c = 0;
            for (; c + 8 <= dim; c += 8) sum = Fma.MultiplyAdd(Avx.LoadVector256(q + c), Avx.LoadVector256(key + c), sum);
            var score = Vector256.Sum(sum);
            for (; c < dim; c++) score += q[c] * key[c];
            score *= job->Scale;
            scores[t] = score;
            if (score > max) max = score;
        }
        var total = VectorMath.ExponentiateAndSum(scores, time, max);
        // Σ_t p_t·v_t, then divided by Σ p_t: 32 columns at a time in four accumulators, so one pass over the values
        // reads each row's 128 bytes together (a pass per 8 columns read every row eight times, a cache line apart).
        var c0 = 0;
        var norm = Vector256.Create(1 / total);
        for (; c0 + 32 <= valueDim; c0 += 32)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (var t = 0; t < time; t++)
            {
                var p = Vector256.Create(scores[t]);
                var row = values + (long)t * valueDim + c0;
                a0 = Fma.MultiplyAdd(p, Avx.LoadVector256(row), a0);
                a1 = Fma.MultiplyAdd(p, Avx.LoadVector256(row + 8), a1);
                a2 = Fma.MultiplyAdd(p, Avx.LoadVector256(row + 16), a2);
                a3 = Fma.MultiplyAdd(p, Avx.LoadVector256(row + 24), a3);
            }
            Avx.Store(output + c0, a0 * norm);
            Avx.Store(output + c0 + 8, a1 * norm);
            Avx.Store(output + c0 + 16, a2 * norm);
            Avx.Store(output + c0 + 24, a3 * norm);
        }
        for (; c0 + 8 <= valueDim; c0 += 8)
        {
            var acc = Vector256<float>.Zero;
            for (var t = 0; t < time; t++) acc = Fma.MultiplyAdd(Vector256.Create(scores[t]), Avx.LoadVector256(values + (long)t * valueDim + c0), acc);
            Avx.Store(output + c0, acc * norm);
        }
        for (; c0 < valueDim; c0++)
        {
            var acc = 0f;
            for (var t = 0; t < time; t++) acc += scores[t] * values[(long)t * valueDim + c0];
            output[c0] = acc / total;
        }
    }

}
