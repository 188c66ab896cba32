using System;
using System.Collections.Generic;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlmEff.Generation;
using LlmEff.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Kernels;

/// <summary>The weights of one pre-norm Llama block as the fused single-token step reads them: RMSNorm, the q, k, v and
/// o projections, RMSNorm, and the SwiGLU feed-forward's gate, up and down projections. Biases are read where the layers
/// have them.</summary>
public sealed record DecoderBlockWeights(RmsNorm InputNorm, Linear Query, Linear Key, Linear Value, Linear Output,
    RmsNorm FeedForwardNorm, Linear Gate, Linear Up, Linear Down);

/// <summary>
/// A whole decoding step of one token in one sequence of a Llama-style decoder (pre-norm RMSNorm blocks, rotary or no
/// positions, q/k/v attention with any number of key/value heads, SwiGLU) in one call, fp32 on the CPU: embedding
/// lookup, every block, the final norm and the output head, writing the new keys and values into the decoding cache in
/// place. A step of a small model through libtorch is dozens of operations per layer of a few microseconds each, where
/// the arithmetic is a few microseconds in all: DecodeFull's step (TinyDecoder's shape, 13 MB of weights, which this
/// machine's 32 MB L3 holds) took about 2 ms through libtorch against llama.cpp's 0.5 ms. Here the products are
/// <see cref="MatrixVector"/>'s (q, k and v as one job; gate, up and SiLU(gate)·up as one job; o and down added onto the
/// residual in the same pass) and the attention is <see cref="SingleQueryAttention"/>'s, on the threads
/// <see cref="SingleTokenStep.Threads"/> gives. The generator calls it only for models whose plan says every block is
/// of this kind (<c>LayoutPlan.DecodesInOneKernel</c>); the values equal the operation-by-operation path's to float
/// rounding (another summation order), which the tests check model by model.
/// </summary>
public static class SingleTokenDecoder
{
    [ThreadStatic] private static int disabled;
    [ThreadStatic] private static long stepsRun;
    [ThreadStatic] private static float[]? scratch;

    /// <summary>Steps this thread has run in the kernel: how tests and benchmarks tell that the fused path ran.</summary>
    public static long StepsOnThisThread => stepsRun;

    /// <summary>Until disposed, this thread's steps go through libtorch operation by operation, as they would without
    /// the kernel: to compare the two (the decode benchmarks) and to test one against the other. Dispose it on the
    /// thread that called this (not after an <c>await</c> that may resume elsewhere): the switch is per thread.</summary>
    public static IDisposable Disable()
    {
        disabled++;
        return new Enabling(Environment.CurrentManagedThreadId);
    }

    private sealed class Enabling(int thread) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            // Another thread's count is out of reach: decrementing this one would leave that thread off for good.
            if (Environment.CurrentManagedThreadId != thread)
                throw new InvalidOperationException($"SingleTokenDecoder.Disable() was called on thread {thread} and must be disposed there, not on thread {Environment.CurrentManagedThreadId}.");
            disposed = true;
            disabled--;
        }
    }

    /// <summary>
    /// Logits [1, 1, vocab] for the one token in <paramref name="tokens"/> [1, 1] at position <c>cache.Position</c>, with
    /// the cache advanced by it; or null, changing nothing, where the kernel does not apply and the caller runs its
    /// operation-by-operation path (which also reports any error): turned off on this thread (<see cref="Disable"/>),
    /// autograd on, no AVX2, more than one token or sequence, a weight that is not a contiguous fp32 CPU tensor of the
    /// shape the blocks imply, a token outside the vocabulary, or a cache that was not filled for this model's shape
    /// (another batch size or dtype) or is full.
    /// </summary>
    /// <param name="tokens">The token id, int64 [1, 1].</param>
    /// <param name="cache">The model's decoding cache: the new keys and values are written into it, and it advances by one.</param>
    /// <param name="context">The model's context: the step refuses a cache made for more tokens.</param>
    /// <param name="embedding">The token embedding [vocab, dim].</param>
    /// <param name="rotary">The stack's rotary tables, or null when the model has no positional encoding.</param>
    /// <param name="blocks">Every layer's weights, in order.</param>
    /// <param name="finalNorm">The norm before the output head.</param>
    /// <param name="headWeight">The output head [vocab, dim] (the embedding when tied).</param>
    /// <param name="headBias">The output head's bias, or null.</param>
    /// <param name="heads">Query heads; their width is the query projection's outputs over them.</param>
    /// <param name="kvHeads">Key/value heads, dividing <paramref name="heads"/>.</param>
    public static unsafe Tensor? TryStep(Tensor tokens, DecodingCache cache, long context, Tensor embedding, RotaryEmbedding? rotary,
        IReadOnlyList<DecoderBlockWeights> blocks, RmsNorm finalNorm, Tensor headWeight, Tensor? headBias, int heads, int kvHeads)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(blocks);
        if (disabled > 0 || !SingleTokenStep.IsSupported || is_grad_enabled()) return null;
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0 || blocks.Count == 0 || cache.Layers != blocks.Count) return null;
        var position = cache.Position;
        if (cache.Capacity > context || position + 1 > cache.Capacity) return null;
        if (tokens.dtype != ScalarType.Int64 || tokens.device_type != DeviceType.CPU || tokens.NumberOfElements != 1 || tokens.dim() != 2) return null;

        var embeddingShape = embedding.shape;
        if (embeddingShape.Length != 2 || embeddingShape[0] > int.MaxValue || embeddingShape[1] > int.MaxValue) return null;
        int vocab = (int)embeddingShape[0], dim = (int)embeddingShape[1];
        var queryRows = blocks[0].Query.weight.shape[0];
        if (queryRows % heads != 0) return null;
        var headDim = (int)(queryRows / heads);
        var hidden = (int)blocks[0].Gate.weight.shape[0];
        var shape = new Shape(dim, heads, kvHeads, headDim, hidden);

        // Every address is taken, and every check made, before anything is written: a step that returns null has changed nothing.
        if (!Matrix(embedding, vocab, dim) || !Matrix(headWeight, vocab, dim) || !Vector(headBias, vocab) || !Norm(finalNorm, dim)) return null;
        var layers = new Layer[blocks.Count];
        for (var i = 0; i < blocks.Count; i++)
        {
            if (!Resolve(blocks[i], shape, out layers[i])) return null;
            var state = cache[i];
            if (!state.TakesRow(LayerState.Keys, kvHeads, headDim, position) || !state.TakesRow(LayerState.Values, kvHeads, headDim, position)) return null;
        }
        float* cos = null, sin = null;
        if (rotary is not null)
        {
            var (cosTable, sinTable) = rotary.Tables;
            if (!Matrix(cosTable, -1, headDim) || !Matrix(sinTable, -1, headDim) || cosTable.shape[0] <= position || sinTable.shape[0] <= position) return null;
            cos = SingleTokenStep.Address(cosTable) + position * headDim;
            sin = SingleTokenStep.Address(sinTable) + position * headDim;
        }
        var token = tokens.item<long>();
        if (token < 0 || token >= vocab) return null;

        var logits = empty(new long[] { 1, 1, vocab }, ScalarType.Float32);
        var buffers = Scratch(shape);
        fixed (float* memory = buffers)
        {
            var step = new Buffers(memory, shape);
            var threads = SingleTokenStep.Threads;
            new ReadOnlySpan<float>(SingleTokenStep.Address(embedding) + token * dim, dim).CopyTo(new Span<float>(step.X, dim));
            for (var i = 0; i < layers.Length; i++)
                Block(layers[i], cache[i], step, shape, cos, sin, position, threads);
            RmsNormalize(step.X, step.Normed, SingleTokenStep.Address(finalNorm.Weight), dim, (float)finalNorm.Eps);
            var head = new MatrixVector.Product(SingleTokenStep.Address(headWeight), step.Normed, SingleTokenStep.Address(logits),
                headBias is null ? null : SingleTokenStep.Address(headBias), vocab, dim, accumulate: false);
            MatrixVector.Multiply(&head, threads);
        }
        cache.Advance(1);
        stepsRun++;
        return logits;
    }

    /// <summary>The widths of one step.</summary>
    private readonly record struct Shape(int Dim, int Heads, int KvHeads, int HeadDim, int Hidden)
    {
        public int QueryWidth => Heads * HeadDim;

        public int KvWidth => KvHeads * HeadDim;

        /// <summary>Floats of scratch a step needs: x, norm(x), q, k, v, attention output, gate, up.</summary>
        public int ScratchFloats => 2 * Dim + 2 * QueryWidth + 2 * KvWidth + 2 * Hidden;
    }

    /// <summary>The step's activations in one pinned block of scratch.</summary>
    private readonly unsafe struct Buffers
    {
        public readonly float* X, Normed, Query, Key, Value, Attended, Gate, Up;

        public Buffers(float* memory, Shape shape)
        {
            X = memory;
            Normed = X + shape.Dim;
            Query = Normed + shape.Dim;
            Key = Query + shape.QueryWidth;
            Value = Key + shape.KvWidth;
            Attended = Value + shape.KvWidth;
            Gate = Attended + shape.QueryWidth;
            Up = Gate + shape.Hidden;
        }
    }

    // Pinned, kept per thread: a step allocates nothing on the managed heap it does not have to.
    private static float[] Scratch(Shape shape)
    {
        if (scratch is null || scratch.Length < shape.ScratchFloats)
            scratch = GC.AllocateUninitializedArray<float>(shape.ScratchFloats, pinned: true);
        return scratch;
    }

    /// <summary>One block's resolved addresses (null biases where a layer has none).</summary>
    private readonly unsafe struct Layer
    {
        public float* InputNorm { get; init; }
        public float InputEps { get; init; }
        public float* FeedForwardNorm { get; init; }
        public float FeedForwardEps { get; init; }
        public Weight Query { get; init; }
        public Weight Key { get; init; }
        public Weight Value { get; init; }
        public Weight Output { get; init; }
        public Weight Gate { get; init; }
        public Weight Up { get; init; }
        public Weight Down { get; init; }
    }

    private readonly unsafe struct Weight(float* matrix, float* bias)
    {
        public readonly float* Matrix = matrix, Bias = bias;
    }

    private static unsafe bool Resolve(DecoderBlockWeights block, Shape shape, out Layer layer)
    {
        layer = default;
        if (!Norm(block.InputNorm, shape.Dim) || !Norm(block.FeedForwardNorm, shape.Dim)) return false;
        if (!Linear(block.Query, shape.QueryWidth, shape.Dim, out var query) || !Linear(block.Key, shape.KvWidth, shape.Dim, out var key)
            || !Linear(block.Value, shape.KvWidth, shape.Dim, out var value) || !Linear(block.Output, shape.Dim, shape.QueryWidth, out var output)
            || !Linear(block.Gate, shape.Hidden, shape.Dim, out var gate) || !Linear(block.Up, shape.Hidden, shape.Dim, out var up)
            || !Linear(block.Down, shape.Dim, shape.Hidden, out var down)) return false;
        layer = new Layer
        {
            InputNorm = SingleTokenStep.Address(block.InputNorm.Weight), InputEps = (float)block.InputNorm.Eps,
            FeedForwardNorm = SingleTokenStep.Address(block.FeedForwardNorm.Weight), FeedForwardEps = (float)block.FeedForwardNorm.Eps,
            Query = query, Key = key, Value = value, Output = output, Gate = gate, Up = up, Down = down,
        };
        return true;
    }

    private static unsafe bool Linear(Linear linear, int outputs, int inputs, out Weight weight)
    {
        weight = default;
        var bias = linear.bias;
        if (!Matrix(linear.weight, outputs, inputs) || !Vector(bias, outputs)) return false;
        weight = new Weight(SingleTokenStep.Address(linear.weight), bias is null ? null : SingleTokenStep.Address(bias));
        return true;
    }

    private static bool Norm(RmsNorm norm, int width) => Vector(norm.Weight, width);

    // A contiguous fp32 CPU matrix [rows, columns] (rows −1: any).
    private static bool Matrix(Tensor tensor, long rows, long columns)
    {
        if (!SingleTokenStep.Fp32OnCpu(tensor) || !tensor.is_contiguous()) return false;
        var shape = tensor.shape;
        return shape.Length == 2 && (rows < 0 || shape[0] == rows) && shape[1] == columns;
    }

    // Absent, or a contiguous fp32 CPU vector of `length`.
    private static bool Vector(Tensor? tensor, long length)
    {
        if (tensor is null) return true;
        if (!SingleTokenStep.Fp32OnCpu(tensor) || !tensor.is_contiguous()) return false;
        var shape = tensor.shape;
        return shape.Length == 1 && shape[0] == length;
    }

    private static unsafe void Block(in Layer layer, LayerState state, in Buffers step, Shape shape, float* cos, float* sin, long position, int threads)
    {
        // Attention: x += o(attend(rotate(q), rotate(k) appended to the cache, v appended)).
        RmsNormalize(step.X, step.Normed, layer.InputNorm, shape.Dim, layer.InputEps);
        var projections = new Projections(
            Product(layer.Query, step.Normed, step.Query, shape.QueryWidth, shape.Dim),
            Product(layer.Key, step.Normed, step.Key, shape.KvWidth, shape.Dim),
            Product(layer.Value, step.Normed, step.Value, shape.KvWidth, shape.Dim));
        Run(&ProjectionPart, &projections, projections.Rows, projections.Weights, threads);
        if (cos is not null)
        {
            for (var h = 0; h < shape.Heads; h++) Rotate(step.Query + h * shape.HeadDim, cos, sin, shape.HeadDim);
            for (var h = 0; h < shape.KvHeads; h++) Rotate(step.Key + h * shape.HeadDim, cos, sin, shape.HeadDim);
        }
        var keys = state.AppendRowInPlace(LayerState.Keys, shape.KvHeads, shape.HeadDim, out var keySlots);
        var values = state.AppendRowInPlace(LayerState.Values, shape.KvHeads, shape.HeadDim, out var valueSlots);
        for (var h = 0; h < shape.KvHeads; h++)
        {
            var width = (long)shape.HeadDim;
            Buffer.MemoryCopy(step.Key + h * width, keys + (h * keySlots + position) * width, width * sizeof(float), width * sizeof(float));
            Buffer.MemoryCopy(step.Value + h * width, values + (h * valueSlots + position) * width, width * sizeof(float), width * sizeof(float));
        }
        var attention = new SingleQueryAttention.Job(step.Query, keys, values, step.Attended, shape.Heads, shape.Heads / shape.KvHeads,
            checked((int)(position + 1)), shape.HeadDim, shape.HeadDim, keySlots * shape.HeadDim, valueSlots * shape.HeadDim, 1 / MathF.Sqrt(shape.HeadDim));
        SingleQueryAttention.Run(&attention, threads);
        var output = Product(layer.Output, step.Attended, step.X, shape.Dim, shape.QueryWidth, accumulate: true);
        MatrixVector.Multiply(&output, threads);

        // Feed-forward: x += down(silu(gate(norm(x))) · up(norm(x))).
        RmsNormalize(step.X, step.Normed, layer.FeedForwardNorm, shape.Dim, layer.FeedForwardEps);
        var gated = new Gated(Product(layer.Gate, step.Normed, step.Gate, shape.Hidden, shape.Dim), Product(layer.Up, step.Normed, step.Up, shape.Hidden, shape.Dim));
        Run(&GatedPart, &gated, shape.Hidden, gated.Gate.Weights * 2, threads);
        var down = Product(layer.Down, step.Gate, step.X, shape.Dim, shape.Hidden, accumulate: true);
        MatrixVector.Multiply(&down, threads);
    }

    private static unsafe MatrixVector.Product Product(in Weight weight, float* input, float* output, int rows, int columns, bool accumulate = false) =>
        new(weight.Matrix, input, output, weight.Bias, rows, columns, accumulate);

    // A job over `rows` rows shared between threads (in multiples of four) when it has enough weights to be worth it.
    private static unsafe void Run<T>(delegate*<nint, int, int, void> part, T* job, int rows, long weights, int threads) where T : unmanaged
    {
        var parts = Math.Min(threads, rows / 4);
        if (parts > 1 && weights >= MatrixVector.ParallelThreshold && KernelWorkers.TryRun(part, (nint)job, parts)) return;
        part((nint)job, 0, 1);
    }

    /// <summary>q, k and v from one input, as one job over their rows stacked: one hand-off to the workers instead of three.</summary>
    private readonly struct Projections(MatrixVector.Product query, MatrixVector.Product key, MatrixVector.Product value)
    {
        public readonly MatrixVector.Product Query = query, Key = key, Value = value;

        public int Rows => Query.Rows + Key.Rows + Value.Rows;

        public long Weights => Query.Weights + Key.Weights + Value.Weights;
    }

    private static unsafe void ProjectionPart(nint state, int part, int parts)
    {
        var job = (Projections*)state;
        var (start, end) = MatrixVector.Share(job->Rows, part, parts);
        RunShare(job->Query, start, end, 0);
        RunShare(job->Key, start, end, job->Query.Rows);
        RunShare(job->Value, start, end, job->Query.Rows + job->Key.Rows);
    }

    // The rows of [start, end) of the stacked rows that fall in `product`, which starts at stacked row `offset`.
    private static void RunShare(in MatrixVector.Product product, int start, int end, int offset)
    {
        int from = Math.Max(start - offset, 0), to = Math.Min(end - offset, product.Rows);
        if (from < to) product.Run(from, to);
    }

    /// <summary>SwiGLU's gate and up products and silu(gate)·up, per share of the hidden rows, into the gate buffer.</summary>
    private readonly struct Gated(MatrixVector.Product gate, MatrixVector.Product up)
    {
        public readonly MatrixVector.Product Gate = gate, Up = up;
    }

    private static unsafe void GatedPart(nint state, int part, int parts)
    {
        var job = (Gated*)state;
        var (start, end) = MatrixVector.Share(job->Gate.Rows, part, parts);
        job->Gate.Run(start, end);
        job->Up.Run(start, end);
        float* gate = job->Gate.Output, up = job->Up.Output;
        for (var i = start; i < end; i++) gate[i] = gate[i] / (1 + MathF.Exp(-gate[i])) * up[i];
    }

    /// <summary>x / √(mean(x²) + eps) · weight, as <see cref="RmsNorm"/>.</summary>
    private static unsafe void RmsNormalize(float* x, float* output, float* weight, int width, float eps)
    {
        var squares = Vector256<float>.Zero;
        var c = 0;
        for (; c + 8 <= width; c += 8)
        {
            var v = Avx.LoadVector256(x + c);
            squares = Fma.MultiplyAdd(v, v, squares);
        }
        var sum = Vector256.Sum(squares);
        for (; c < width; c++) sum += x[c] * x[c];
        var scale = 1 / MathF.Sqrt(sum / width + eps);
        for (c = 0; c < width; c++) output[c] = x[c] * scale * weight[c];
    }

    /// <summary>One head rotated in place as <see cref="RotaryEmbedding.Rotate"/> does: x·cos + rotate_half(x)·sin, with
    /// rotate_half(x) = [−x₂, x₁] over the two halves.</summary>
    private static unsafe void Rotate(float* x, float* cos, float* sin, int width)
    {
        var half = width / 2;
        for (var i = 0; i < half; i++)
        {
            float first = x[i], second = x[i + half];
            x[i] = first * cos[i] - second * sin[i];
            x[i + half] = second * cos[i + half] + first * sin[i + half];
        }
    }
}
