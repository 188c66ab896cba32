using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Generation;

/// <summary>
/// What a model remembers between decoding steps: one <see cref="LayerState"/> per layer plus the number of
/// tokens consumed so far. Layers append to and read from their own state; the model calls
/// <see cref="Advance"/> once per forward, after every layer has run, so all layers of one step see the same
/// <see cref="Position"/>. Owns every tensor it holds, outside any dispose scope.
/// </summary>
public sealed class DecodingCache : IDisposable
{
    private readonly LayerState?[] layers;

    /// <summary>A cache for <paramref name="layers"/> layers and at most <paramref name="capacity"/> tokens (the model's context).</summary>
    public DecodingCache(int layers, long capacity)
    {
        if (layers <= 0) throw new ArgumentOutOfRangeException(nameof(layers), layers, "A decoding cache needs at least one layer.");
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "A decoding cache needs room for at least one token.");
        this.layers = new LayerState?[layers];
        Capacity = capacity;
    }

    /// <summary>Layers the cache serves.</summary>
    public int Layers => layers.Length;

    /// <summary>Most tokens it can hold (the model's context).</summary>
    public long Capacity { get; }

    /// <summary>Tokens consumed so far: the position of the next token.</summary>
    public long Position { get; private set; }

    /// <summary>The state of layer <paramref name="layer"/>, created on first use.</summary>
    public LayerState this[int layer]
    {
        get
        {
            if (layer < 0 || layer >= layers.Length)
                throw new ArgumentOutOfRangeException(nameof(layer), layer, $"Layer index must lie in 0..{layers.Length - 1}.");
            ObjectDisposedException.ThrowIf(disposed, this);
            return layers[layer] ??= new LayerState(Capacity);
        }
    }

    /// <summary>Records that the model consumed <paramref name="tokens"/> more tokens (once per forward, after all layers).</summary>
    public void Advance(long tokens)
    {
        if (tokens < 0) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "Cannot advance by a negative number of tokens.");
        if (Position + tokens > Capacity)
            throw new InvalidOperationException($"Advancing by {tokens} tokens from position {Position} would reach {Position + tokens}, past the cache's capacity of {Capacity} tokens.");
        Position += tokens;
    }

    /// <summary>Elements held in growing streams over all layers, per batch row: for a model whose layers cache
    /// <c>e</c> elements per token this is <c>e · Position</c>. Fixed-size states (convolution windows) are not counted.</summary>
    public long ElementsPerBatchRow() => layers.Sum(l => l?.ElementsPerBatchRow ?? 0);

    /// <summary>Forgets every layer's state and starts again at position 0 (a new prompt).</summary>
    public void Reset()
    {
        for (var i = 0; i < layers.Length; i++)
        {
            layers[i]?.Dispose();
            layers[i] = null;
        }
        Position = 0;
    }

    private bool disposed;

    /// <summary>Releases every tensor held.</summary>
    public void Dispose()
    {
        if (disposed) return;
        Reset();
        disposed = true;
    }
}

/// <summary>
/// One layer's decoding state: growing streams (keys, latents: one entry per token, appended every step) and
/// fixed-size states (a convolution's last inputs, replaced every step). Stream numbers are the layer's own;
/// one number is either a growing stream or a fixed state, not both. Everything stored is detached from autograd
/// and from dispose scopes: decoding runs under <c>no_grad</c> and the state must outlive each step's scope.
/// </summary>
public sealed class LayerState : IDisposable
{
    // The stream numbers the runtime's layers and the generated attention use. Numbers are per layer, so two kinds of
    // layer may give one number different meanings; a layer that has an index key always keeps it in the same stream.

    /// <summary>Attention: the keys, [batch, kvHeads, time, headDim] growing along dimension 2 (with keys that are the
    /// values, the values, cached once).</summary>
    public const int Keys = 0;

    /// <summary>Attention: the values, [batch, kvHeads, time, headDim] growing along dimension 2.</summary>
    public const int Values = 1;

    /// <summary>Sparse attention (standard or latent): the lightning indexer's keys, [batch, time, IndexDim] growing along dimension 1.</summary>
    public const int IndexerKeys = 2;

    /// <summary>Latent attention: the normalised key-value latents, [batch, time, KvRank] growing along dimension 1.</summary>
    public const int Latents = 0;

    /// <summary>Latent attention: the rotated rope key shared by all heads, [batch, time, RopeDim] growing along dimension 1.</summary>
    public const int RopeKeys = 1;

    /// <summary>Short convolution: the fixed-size window of its last <c>kernel − 1</c> gated inputs, [batch, dim, kernel − 1].</summary>
    public const int ConvolutionWindow = 0;

    /// <summary>Compressed attention (DeepSeek V4): the block's own <see cref="Layers.CompressedAttentionCache"/> (window,
    /// compressed entries, index keys, compressor state), kept here by <see cref="Block{T}"/>.</summary>
    public const int CompressedAttention = 3;

    private const long FirstAllocation = 16;

    private readonly long capacity;
    private readonly Dictionary<int, Growing> growing = new();
    private readonly Dictionary<int, Tensor> fixedStates = new();
    private readonly Dictionary<int, IDisposable> blocks = new();

    // A preallocated buffer of which the first `Length` entries along `Dim` are valid.
    private sealed class Growing(Tensor buffer, long dim)
    {
        public Tensor Buffer = buffer;
        public readonly long Dim = dim;
        public long Length;
        public long ElementsPerEntry => Buffer.NumberOfElements / Buffer.shape[Dim];
        public long BatchRows => Dim == 0 ? 1 : Buffer.shape[0];
    }

    internal LayerState(long capacity) => this.capacity = capacity;

    /// <summary>
    /// Appends <paramref name="items"/> along dimension <paramref name="dim"/> of growing stream
    /// <paramref name="stream"/> and returns a view of everything appended so far. The values are copied into a
    /// buffer that doubles when full (up to the cache's capacity), so a step costs the copy of its own tokens, not
    /// of the whole history. The view is a new tensor handle in the caller's dispose scope (disposing it leaves the
    /// buffer alone); it shows the stream's contents until the next append to this stream. No gradient flows
    /// through the stored values.
    /// </summary>
    public Tensor Append(int stream, Tensor items, long dim)
    {
        ArgumentNullException.ThrowIfNull(items);
        ObjectDisposedException.ThrowIf(disposed, this);
        if (fixedStates.ContainsKey(stream) || blocks.ContainsKey(stream))
            throw new InvalidOperationException($"Stream {stream} holds a fixed-size state (Set or Block); it cannot also be a growing stream.");
        var rank = items.dim();
        if (dim < -rank || dim >= rank) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Dimension must lie in {-rank}..{rank - 1} for a tensor of rank {rank}.");
        if (dim < 0) dim += rank;
        var count = items.shape[dim];

        if (!growing.TryGetValue(stream, out var entry))
        {
            var shape = items.shape.ToArray();
            shape[dim] = Math.Min(capacity, Math.Max(count, FirstAllocation));
            if (count > capacity) throw Overflow(stream, 0, count);
            entry = new Growing(torch.empty(shape, dtype: items.dtype, device: items.device).DetachFromDisposeScope(), dim);
            growing[stream] = entry;
        }
        else
        {
            if (entry.Dim != dim) throw new ArgumentException($"Stream {stream} grows along dimension {entry.Dim}, not {dim}.", nameof(dim));
            var expected = entry.Buffer.shape.ToArray();
            var actual = items.shape.ToArray();
            expected[dim] = actual[dim] = 0;
            if (!expected.SequenceEqual(actual) || items.dtype != entry.Buffer.dtype)
                throw new ArgumentException(
                    $"Stream {stream} holds {entry.Buffer.dtype} entries shaped [{string.Join(", ", entry.Buffer.shape.Select((s, i) => i == dim ? "*" : s.ToString()))}], " +
                    $"but {items.dtype} items [{string.Join(", ", items.shape)}] were appended.", nameof(items));
            MakeRoom(stream, entry, count);
        }

        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            entry.Buffer.narrow(dim, entry.Length, count).copy_(items);
        }
        entry.Length += count;
        return entry.Buffer.narrow(dim, 0, entry.Length);
    }

    // For the fused single-token step (Kernels.SingleTokenDecoder), which writes the new entry and the fixed states in
    // place instead of making tensors to append or set. `shape` is an fp32 CPU stream's shape with −1 at the dimension
    // it grows along (a key stream: [1, kvHeads, −1, headDim]; a latent stream: [1, −1, KvRank]).

    /// <summary>Whether growing stream <paramref name="stream"/> of entries shaped <paramref name="shape"/> can take one
    /// more after exactly <paramref name="length"/>: it holds such entries (or nothing yet, with <paramref name="length"/>
    /// 0), and the capacity has room. Changes nothing.</summary>
    internal bool TakesEntry(int stream, ReadOnlySpan<long> shape, long length)
    {
        if (disposed || fixedStates.ContainsKey(stream) || blocks.ContainsKey(stream) || length + 1 > capacity) return false;
        if (!growing.TryGetValue(stream, out var entry)) return length == 0;
        return entry.Length == length && entry.Dim == shape.IndexOf(-1) && Kernels.SingleTokenStep.Fits(entry.Buffer, shape);
    }

    /// <summary>After <see cref="TakesEntry"/> said yes: room for one more entry, made as <see cref="Append"/> makes it
    /// (creating or growing the buffer), and the buffer's first element and its length along the growing dimension. The
    /// entry is not counted until <see cref="CountEntry"/>, so a step that fails before then leaves the stream as it was
    /// (a larger buffer holds the same entries).</summary>
    internal unsafe float* ReserveEntry(int stream, ReadOnlySpan<long> shape, out long slots)
    {
        var dim = shape.IndexOf(-1);
        if (!growing.TryGetValue(stream, out var entry))
        {
            var first = shape.ToArray();
            first[dim] = Math.Min(capacity, FirstAllocation);
            entry = new Growing(torch.empty(first, dtype: ScalarType.Float32).DetachFromDisposeScope(), dim);
            growing[stream] = entry;
        }
        MakeRoom(stream, entry, 1);
        slots = entry.Buffer.shape[dim];
        return Kernels.SingleTokenStep.Address(entry.Buffer);
    }

    /// <summary>Counts the entry written into the room <see cref="ReserveEntry"/> made.</summary>
    internal void CountEntry(int stream)
    {
        var entry = growing[stream];
        if (entry.Length + 1 > entry.Buffer.shape[entry.Dim])
            throw new InvalidOperationException($"Stream {stream} has no reserved room for another entry (it holds {entry.Length}).");
        entry.Length += 1;
    }

    /// <summary>Whether stream <paramref name="stream"/> holds a fixed-size state of exactly <paramref name="shape"/>
    /// (contiguous fp32 on the CPU), or nothing yet. Changes nothing.</summary>
    internal bool HoldsState(int stream, ReadOnlySpan<long> shape)
    {
        if (disposed || growing.ContainsKey(stream) || blocks.ContainsKey(stream)) return false;
        return !fixedStates.TryGetValue(stream, out var value) || Kernels.SingleTokenStep.Fits(value, shape);
    }

    /// <summary>After <see cref="HoldsState"/> said yes: the state's first element, to update in place; zeros of
    /// <paramref name="shape"/> when the stream held nothing yet (what <c>ShortConv</c> starts from).</summary>
    internal unsafe float* StateInPlace(int stream, ReadOnlySpan<long> shape)
    {
        if (!fixedStates.TryGetValue(stream, out var value))
        {
            value = torch.zeros(shape.ToArray(), dtype: ScalarType.Float32).DetachFromDisposeScope();
            fixedStates[stream] = value;
        }
        return Kernels.SingleTokenStep.Address(value);
    }

    // Room for `count` more entries after those held, under the capacity.
    private void MakeRoom(int stream, Growing entry, long count)
    {
        if (entry.Length + count > capacity) throw Overflow(stream, entry.Length, count);
        if (entry.Length + count > entry.Buffer.shape[entry.Dim]) Grow(entry, entry.Length + count);
    }

    private InvalidOperationException Overflow(int stream, long length, long count) =>
        new($"Appending {count} entries to stream {stream}, which holds {length}, would exceed the cache's capacity of {capacity} tokens.");

    // Doubling (capped at the capacity) keeps the copying of old entries to O(capacity) over a whole generation.
    private void Grow(Growing entry, long needed)
    {
        var shape = entry.Buffer.shape.ToArray();
        shape[entry.Dim] = Math.Min(capacity, Math.Max(needed, 2 * shape[entry.Dim]));
        var bigger = torch.empty(shape, dtype: entry.Buffer.dtype, device: entry.Buffer.device).DetachFromDisposeScope();
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            bigger.narrow(entry.Dim, 0, entry.Length).copy_(entry.Buffer.narrow(entry.Dim, 0, entry.Length));
        }
        entry.Buffer.Dispose();
        entry.Buffer = bigger;
    }

    /// <summary>Entries appended so far to growing stream <paramref name="stream"/> (0 when it does not exist yet).</summary>
    public long Length(int stream) => growing.TryGetValue(stream, out var entry) ? entry.Length : 0;

    /// <summary>The fixed-size state of stream <paramref name="stream"/> last <see cref="Set"/>, or null. The result is a
    /// new handle in the caller's dispose scope sharing the stored values; treat it as read-only.</summary>
    public Tensor? Get(int stream)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return fixedStates.TryGetValue(stream, out var value) ? value.alias() : null;
    }

    /// <summary>Replaces the fixed-size state of stream <paramref name="stream"/> with a detached copy of
    /// <paramref name="value"/> (a copy, so it neither pins a larger tensor it is a view of nor changes with it).</summary>
    public void Set(int stream, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        ObjectDisposedException.ThrowIf(disposed, this);
        if (growing.ContainsKey(stream) || blocks.ContainsKey(stream))
            throw new InvalidOperationException($"Stream {stream} is a growing stream or a block's state; it cannot also hold a fixed-size state.");
        Tensor copy;
        using (no_grad())
        {
            copy = value.detach().clone().DetachFromDisposeScope();
        }
        if (fixedStates.TryGetValue(stream, out var previous)) previous.Dispose();
        fixedStates[stream] = copy;
    }

    /// <summary>
    /// The state a block keeps in its own form under stream <paramref name="stream"/> (compressed attention's
    /// <see cref="Layers.CompressedAttentionCache"/>, which bounds its window and compresses windows itself): made by
    /// <paramref name="create"/> on first use, then the same object every step, disposed with this state.
    /// </summary>
    public T Block<T>(int stream, Func<T> create) where T : class, IDisposable
    {
        ArgumentNullException.ThrowIfNull(create);
        ObjectDisposedException.ThrowIf(disposed, this);
        if (growing.ContainsKey(stream) || fixedStates.ContainsKey(stream))
            throw new InvalidOperationException($"Stream {stream} already holds tensors (Append or Set); it cannot also hold a block's state.");
        if (blocks.TryGetValue(stream, out var held))
            return held as T ?? throw new InvalidOperationException($"Stream {stream} holds a {held.GetType().Name}, not a {typeof(T).Name}.");
        var made = create() ?? throw new InvalidOperationException($"The state made for stream {stream} is null.");
        blocks[stream] = made;
        return made;
    }

    /// <summary>Elements held in the valid part of the growing streams, over the whole batch.</summary>
    public long Elements => growing.Values.Sum(e => e.Length * e.ElementsPerEntry);

    /// <summary><see cref="Elements"/> per batch row (dimension 0 is the batch unless a stream grows along it), plus what
    /// blocks keeping their own state count of theirs (<see cref="ICountedState"/>: compressed attention's window, entries,
    /// index keys and compressor state, which its sizing counts as cache).</summary>
    public long ElementsPerBatchRow => growing.Values.Sum(e => e.Length * e.ElementsPerEntry / e.BatchRows)
        + blocks.Values.OfType<ICountedState>().Sum(b => b.ElementsPerSequence);

    private bool disposed;

    /// <summary>Releases every tensor held.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var entry in growing.Values) entry.Buffer.Dispose();
        foreach (var value in fixedStates.Values) value.Dispose();
        foreach (var block in blocks.Values) block.Dispose();
        growing.Clear();
        fixedStates.Clear();
        blocks.Clear();
    }
}

/// <summary>A block's own decoding state (<see cref="LayerState.Block{T}"/>) that says how many elements it holds per
/// sequence, so the cache's size counts it.</summary>
public interface ICountedState : IDisposable
{
    /// <summary>Elements held for one sequence.</summary>
    long ElementsPerSequence { get; }
}
