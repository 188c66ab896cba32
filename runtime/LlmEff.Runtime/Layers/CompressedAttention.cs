using System;
using LlmEff.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>The three attention kinds of DeepSeek V4 (its per-layer <c>compress_ratios</c>: 0, 4, 128).</summary>
public enum CompressedAttentionKind
{
    /// <summary>Sliding window only (ratio 0).</summary>
    SlidingWindow,

    /// <summary>CSA: window plus overlapping compressed entries (ratio 4), of which an indexer keeps the top k.</summary>
    CompressedSparse,

    /// <summary>HCA: window plus every visible non-overlapping compressed entry (ratio 128).</summary>
    HeavilyCompressed,
}

/// <summary>Settings of one DeepSeek V4 attention layer. Flash's: Dim 4096, Heads 64, HeadDim 512, RopeDim 64,
/// QueryRank 1024, OutputGroups 8, OutputRank 1024, Window 128, Ratio 4 or 128, IndexerHeads 64, IndexerDim 128,
/// TopK 512 (deepseek-ai's DeepSeek-V4-Flash <c>config.json</c>).</summary>
/// <param name="Dim">Model width.</param>
/// <param name="Heads">Query heads; all share one key/value head.</param>
/// <param name="HeadDim">Width of a query head and of the shared key = value head.</param>
/// <param name="RopeDim">Rotary channels at the end of queries, keys and compressed entries.</param>
/// <param name="QueryRank">Width of the normalised query latent (<c>q_lora_rank</c>).</param>
/// <param name="OutputGroups">Groups of heads whose outputs share one low-rank projection (<c>o_groups</c>).</param>
/// <param name="OutputRank">Rank of each group's projection (<c>o_lora_rank</c>).</param>
/// <param name="Window">Tokens of the sliding window, the query's own included (<c>sliding_window</c>).</param>
/// <param name="Kind">Which of the three kinds.</param>
/// <param name="Ratio">Tokens per compressed entry (0 for <see cref="CompressedAttentionKind.SlidingWindow"/>).</param>
/// <param name="IndexerHeads">CSA only: indexer heads (<c>index_n_heads</c>).</param>
/// <param name="IndexerDim">CSA only: indexer head width (<c>index_head_dim</c>), a power of two.</param>
/// <param name="TopK">CSA only: compressed entries kept per query (<c>index_topk</c>).</param>
/// <param name="Precision">CSA only: the indexer's query/key precision.</param>
/// <param name="Bf16Scores">CSA only: index scores rounded to bf16 before ranking.</param>
/// <param name="Context">Longest sequence (rotary table length).</param>
/// <param name="RopeTheta">Rotary base (DeepSeek uses <c>rope_theta</c> for sliding layers and
/// <c>compress_rope_theta</c> with YaRN for compressed ones; YaRN is not implemented here).</param>
/// <param name="NormEps">Epsilon of every RMS norm.</param>
public sealed record CompressedAttentionOptions(int Dim, int Heads, int HeadDim, int RopeDim, int QueryRank, int OutputGroups, int OutputRank,
    int Window, CompressedAttentionKind Kind, int Ratio, int IndexerHeads, int IndexerDim, int TopK, IndexerPrecision Precision, bool Bf16Scores,
    int Context, double RopeTheta, double NormEps)
{
    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        if (Dim <= 0) throw new ArgumentOutOfRangeException(nameof(Dim), Dim, "Dim must be positive.");
        if (Heads <= 0) throw new ArgumentOutOfRangeException(nameof(Heads), Heads, "Heads must be positive.");
        if (HeadDim <= 0) throw new ArgumentOutOfRangeException(nameof(HeadDim), HeadDim, "HeadDim must be positive.");
        if (RopeDim < 0 || RopeDim % 2 != 0 || RopeDim > HeadDim)
            throw new ArgumentOutOfRangeException(nameof(RopeDim), RopeDim, $"RopeDim must be even and at most HeadDim ({HeadDim}).");
        if (QueryRank <= 0) throw new ArgumentOutOfRangeException(nameof(QueryRank), QueryRank, "QueryRank must be positive.");
        if (OutputGroups <= 0 || Heads % OutputGroups != 0)
            throw new ArgumentOutOfRangeException(nameof(OutputGroups), OutputGroups, $"OutputGroups must divide Heads ({Heads}).");
        if (OutputRank <= 0) throw new ArgumentOutOfRangeException(nameof(OutputRank), OutputRank, "OutputRank must be positive.");
        if (Window <= 0) throw new ArgumentOutOfRangeException(nameof(Window), Window, "Window must keep at least the query's own token.");
        if (Context <= 0) throw new ArgumentOutOfRangeException(nameof(Context), Context, "Context must be positive.");
        if (!(RopeTheta > 0) || double.IsInfinity(RopeTheta)) throw new ArgumentOutOfRangeException(nameof(RopeTheta), RopeTheta, "RopeTheta must be a positive number.");
        if (!(NormEps > 0) || double.IsInfinity(NormEps)) throw new ArgumentOutOfRangeException(nameof(NormEps), NormEps, "NormEps must be a positive number.");
        if (Kind == CompressedAttentionKind.SlidingWindow && Ratio != 0)
            throw new ArgumentOutOfRangeException(nameof(Ratio), Ratio, "A sliding-window layer compresses nothing: Ratio must be 0.");
        if (Kind != CompressedAttentionKind.SlidingWindow && Ratio < 2)
            throw new ArgumentOutOfRangeException(nameof(Ratio), Ratio, $"A {Kind} layer pools windows of at least 2 tokens.");
        if (Kind == CompressedAttentionKind.CompressedSparse)
        {
            if (IndexerHeads <= 0) throw new ArgumentOutOfRangeException(nameof(IndexerHeads), IndexerHeads, "IndexerHeads must be positive.");
            if (TopK <= 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "TopK must keep at least one entry.");
            if (IndexerDim <= 0 || (IndexerDim & (IndexerDim - 1)) != 0)
                throw new ArgumentOutOfRangeException(nameof(IndexerDim), IndexerDim, "IndexerDim must be a power of two (Hadamard rotation).");
            if (RopeDim > IndexerDim) throw new ArgumentOutOfRangeException(nameof(RopeDim), RopeDim, $"RopeDim must be at most IndexerDim ({IndexerDim}).");
        }
    }
}

/// <summary>
/// DeepSeek V4's attention (deepseek-ai's V4 <c>inference/model.py</c>, <c>Attention</c>), full-sequence form:
/// <list type="bullet">
/// <item>queries <c>q = wq_b(q_norm(wq_a x))</c>, then a weightless RMS norm per head and rotary on the last RopeDim channels;</item>
/// <item>one key head that is also the value head, <c>kv = kv_norm(wkv x)</c> with rotary on its last RopeDim channels;</item>
/// <item>each query sees the last <c>Window</c> tokens (itself included) plus compressed entries of complete windows
/// (<see cref="Compressor"/>): all of them (HCA) or the indexer's top k (CSA, <see cref="CompressedIndexer"/>);</item>
/// <item>a learnable per-head sink logit <c>attn_sink</c> (zero-initialised) joins each softmax denominator and adds no value;</item>
/// <item>the output's rotary channels are rotated back by the query's angle (the value carried the key's rotation);</item>
/// <item>grouped low-rank output: heads split into OutputGroups groups, each projected by its own slice of <c>wo_a</c> to
/// OutputRank, concatenated and projected to Dim by <c>wo_b</c>.</item>
/// </list>
/// Scores are scaled by HeadDim^−½ and softmaxed in fp32. Rotary pairs halves (this runtime's convention), not DeepSeek's
/// adjacent pairs; the FP8 storage simulation of DeepSeek's KV entries and YaRN are not implemented. <see cref="Decode"/> runs
/// it from a cache.
/// </summary>
public sealed class CompressedAttention : nn.Module<Tensor, Tensor>
{
    private readonly CompressedAttentionOptions o;
    private readonly Linear wq_a;
    private readonly RmsNorm q_norm;
    private readonly Linear wq_b;
    private readonly Linear wkv;
    private readonly RmsNorm kv_norm;
    private readonly Linear wo_a;
    private readonly Linear wo_b;
    private readonly Parameter attn_sink;
    private readonly Compressor? compressor;
    private readonly CompressedIndexer? indexer;
    private readonly RotaryEmbedding rotary;

    /// <summary>Creates the layer: projections N(0, 0.02²), norms one, sink zero.</summary>
    public CompressedAttention(CompressedAttentionOptions options, Device? device = null, ScalarType? dtype = null) : base(nameof(CompressedAttention))
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        o = options;
        wq_a = new Linear(o.Dim, o.QueryRank, hasBias: false, device: device, dtype: dtype);
        q_norm = new RmsNorm(o.QueryRank, o.NormEps, device, dtype);
        wq_b = new Linear(o.QueryRank, (long)o.Heads * o.HeadDim, hasBias: false, device: device, dtype: dtype);
        wkv = new Linear(o.Dim, o.HeadDim, hasBias: false, device: device, dtype: dtype);
        kv_norm = new RmsNorm(o.HeadDim, o.NormEps, device, dtype);
        // wo_a holds the groups' projections stacked: [groups · rank, heads · HeadDim / groups], DeepSeek's layout.
        wo_a = new Linear((long)o.Heads * o.HeadDim / o.OutputGroups, (long)o.OutputGroups * o.OutputRank, hasBias: false, device: device, dtype: dtype);
        wo_b = new Linear((long)o.OutputGroups * o.OutputRank, o.Dim, hasBias: false, device: device, dtype: dtype);
        attn_sink = new Parameter(torch.zeros(o.Heads, dtype: ScalarType.Float32, device: device));
        if (o.Kind != CompressedAttentionKind.SlidingWindow)
            compressor = new Compressor(o.Dim, o.HeadDim, o.Ratio, overlap: o.Kind == CompressedAttentionKind.CompressedSparse, o.RopeDim, o.NormEps, device);
        if (o.Kind == CompressedAttentionKind.CompressedSparse)
            indexer = new CompressedIndexer(o.Dim, o.QueryRank, o.IndexerHeads, o.IndexerDim, o.RopeDim, o.Ratio, o.TopK, o.Precision, o.Bf16Scores, o.NormEps, device, dtype);
        rotary = new RotaryEmbedding(Math.Max(o.RopeDim, 2), o.Context, o.RopeTheta, device);
        RegisterComponents();
        foreach (var linear in new[] { wq_a, wq_b, wkv, wo_a, wo_b }) Init.Normal(linear.weight);
    }

    /// <summary>The layer's settings.</summary>
    public CompressedAttentionOptions Options => o;

    /// <summary>The compressor (null for sliding-window layers).</summary>
    public Compressor? Compressor => compressor;

    /// <summary>The indexer (CSA layers only).</summary>
    public CompressedIndexer? Indexer => indexer;

    /// <summary>The rotary tables (RopeDim wide).</summary>
    public RotaryEmbedding Rotary => rotary;

    /// <summary>[time, entries]: the query at position offset + t sees compressed entry w when its window is complete,
    /// w &lt; (offset + t + 1) div ratio (DeepSeek's <c>get_compress_topk_idxs</c> mask).</summary>
    public static Tensor VisibleEntries(long time, long entries, int ratio, Device device, long offset = 0)
    {
        using var scope = NewDisposeScope();
        var complete = torch.arange(offset + 1, offset + time + 1, dtype: ScalarType.Int64, device: device).div(ratio, RoundingMode.floor).unsqueeze(1);
        return torch.arange(entries, dtype: ScalarType.Int64, device: device).unsqueeze(0).lt(complete).MoveToOuterDisposeScope();
    }

    /// <summary>[time, time]: query t sees token s when t − Window &lt; s ≤ t (DeepSeek's <c>get_window_topk_idxs</c>).</summary>
    public static Tensor VisibleWindow(long time, int window, Device device)
    {
        using var scope = NewDisposeScope();
        var t = torch.arange(time, dtype: ScalarType.Int64, device: device).unsqueeze(1);
        var s = torch.arange(time, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        return s.le(t).logical_and(s.gt(t - window)).MoveToOuterDisposeScope();
    }

    private Action<Tensor>? inputObserver;

    /// <summary>Calls <paramref name="observer"/> with the input of every full-sequence forward until the returned handle
    /// is disposed: how a tool reads what a layer of a whole model sees (generated modules call <c>forward</c> directly,
    /// which TorchSharp's forward hooks do not see). The tensor belongs to the caller of forward: copy what you keep.</summary>
    public IDisposable ObserveInputs(Action<Tensor> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        if (inputObserver is not null) throw new InvalidOperationException("This layer's inputs are observed already.");
        inputObserver = observer;
        return new Observation(() => inputObserver = null);
    }

    private sealed class Observation(Action end) : IDisposable
    {
        private Action? end = end;

        public void Dispose()
        {
            end?.Invoke();
            end = null;
        }
    }

    /// <summary>The indexer's queries, keys and head weights for normalised input <paramref name="x"/> at positions
    /// 0 …, before rotation and quantization (<see cref="CompressedIndexer.ScoreInputs"/>); CSA layers only.</summary>
    public (Tensor Queries, Tensor Keys, Tensor HeadWeights) IndexerScoreInputs(Tensor x)
    {
        if (indexer is null) throw new InvalidOperationException($"A {o.Kind} layer has no indexer: only {CompressedAttentionKind.CompressedSparse} layers select entries.");
        CheckInput(x, 0);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (queries, keys, weights) = indexer.ScoreInputs(x, q_norm.forward(wq_a.forward(x)), rotary);
        return (queries.MoveToOuterDisposeScope(), keys.MoveToOuterDisposeScope(), weights.MoveToOuterDisposeScope());
    }

    /// <summary>Normalised input [batch, time, Dim] at positions 0 … time − 1 → [batch, time, Dim].</summary>
    public override Tensor forward(Tensor x)
    {
        CheckInput(x, 0);
        inputObserver?.Invoke(x);
        long batch = x.shape[0], time = x.shape[1];
        using var scope = NewDisposeScope();
        var (queryLatent, q, kv, cos, sin) = Project(x, 0);
        var keys = kv;
        var keep = VisibleWindow(time, o.Window, x.device).unsqueeze(0).expand(batch, -1, -1);
        if (compressor is not null)
        {
            var entries = compressor.forward(x, rotary);
            // Training also leaves the indexer its distillation loss against this layer's attention over the entries.
            var visible = indexer is null ? VisibleEntries(time, entries.shape[1], o.Ratio, x.device).unsqueeze(0).expand(batch, -1, -1)
                : training && is_grad_enabled() ? indexer.SelectAndSupervise(x, queryLatent, rotary, q, entries)
                : indexer.Select(x, queryLatent, rotary);
            keys = torch.cat(new[] { kv, entries }, 1);
            keep = torch.cat(new[] { keep, visible }, 2);
        }
        return Attend(q, keys, keep, cos, sin).MoveToOuterDisposeScope();
    }

    /// <summary>An empty decoding cache for <paramref name="batch"/> sequences.</summary>
    public CompressedAttentionCache NewCache(long batch)
    {
        var device = wkv.weight.device;
        return new CompressedAttentionCache(
            torch.zeros(batch, 0, o.HeadDim, dtype: wkv.weight.dtype, device: device),
            torch.zeros(batch, 0, o.HeadDim, dtype: wkv.weight.dtype, device: device),
            indexer is null ? null : torch.zeros(batch, 0, o.IndexerDim, dtype: wkv.weight.dtype, device: device),
            compressor?.NewState(batch, device), indexer?.Compressor.NewState(batch, device));
    }

    /// <summary>
    /// Cached decoding: the next tokens <paramref name="x"/> [batch, n, Dim] (a prefill, one token or a chunk) at
    /// positions cache.Position … → [batch, n, Dim], equal to the rows of <see cref="forward"/> over the whole sequence.
    /// The cache keeps the last Window keys/values, every compressed entry and index key so far, and the compressors'
    /// unfinished-window state (<see cref="CompressedAttentionCache"/>). Inference only (no gradient).
    /// </summary>
    public Tensor Decode(Tensor x, CompressedAttentionCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var offset = cache.Position;
        CheckInput(x, offset);
        long batch = x.shape[0], time = x.shape[1];
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (queryLatent, q, kv, cos, sin) = Project(x, offset);
        // Window keys: the cached ones (positions offset − held … offset − 1), then the new tokens'.
        var held = cache.Window.shape[1];
        var windowKeys = torch.cat(new[] { cache.Window, kv }, 1);
        var t = torch.arange(offset, offset + time, dtype: ScalarType.Int64, device: x.device).unsqueeze(1);
        var s = torch.arange(offset - held, offset + time, dtype: ScalarType.Int64, device: x.device).unsqueeze(0);
        var keep = s.le(t).logical_and(s.gt(t - o.Window)).unsqueeze(0).expand(batch, -1, -1);
        var keys = windowKeys;
        if (compressor is not null)
        {
            var entries = torch.cat(new[] { cache.Entries, compressor.Step(x, offset, cache.MainState!, rotary) }, 1);
            cache.entries = CompressedAttentionCache.Swap(cache.entries, entries);
            Tensor visible;
            if (indexer is not null)
            {
                var newKeys = IndexerQuantizer.FakeQuantize(Hadamard.Rotate(indexer.Compressor.Step(x, offset, cache.IndexState!, rotary)), indexer.Precision);
                cache.indexKeys = CompressedAttentionCache.Swap(cache.indexKeys, torch.cat(new[] { cache.IndexKeys!, newKeys }, 1));
                visible = indexer.SelectAmong(x, queryLatent, cache.IndexKeys!, offset, rotary);
            }
            else visible = VisibleEntries(time, entries.shape[1], o.Ratio, x.device, offset).unsqueeze(0).expand(batch, -1, -1);
            keys = torch.cat(new[] { windowKeys, cache.Entries }, 1);
            keep = torch.cat(new[] { keep, visible }, 2);
        }
        var output = Attend(q, keys, keep, cos, sin);
        var kept = Math.Min(windowKeys.shape[1], o.Window);
        cache.window = CompressedAttentionCache.Swap(cache.window, windowKeys.narrow(1, windowKeys.shape[1] - kept, kept).contiguous());
        cache.Position = offset + time;
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Query latent, rotated normalised queries [batch, time, Heads, HeadDim], rotated key/values
    /// [batch, time, HeadDim] and the rotary tables of tokens at positions <paramref name="offset"/> ….</summary>
    private (Tensor QueryLatent, Tensor Q, Tensor Kv, Tensor Cos, Tensor Sin) Project(Tensor x, long offset)
    {
        long batch = x.shape[0], time = x.shape[1];
        var (cos, sin) = rotary.Angles(time, offset);
        var queryLatent = q_norm.forward(wq_a.forward(x));
        var q = wq_b.forward(queryLatent).view(batch, time, o.Heads, o.HeadDim);
        var q32 = q.to(ScalarType.Float32);
        // Weightless per-head RMS norm (DeepSeek: q *= rsqrt(mean(q²) + eps)).
        q = (q32 * torch.rsqrt(q32.square().mean(new long[] { -1 }, keepdim: true) + o.NormEps)).to(x.dtype);
        q = RotateTail(q, cos.unsqueeze(1), sin.unsqueeze(1));
        var kv = RotateTail(kv_norm.forward(wkv.forward(x)), cos, sin);
        return (queryLatent, q, kv, cos, sin);
    }

    /// <summary>Softmax over the kept keys plus the sink, the weighted sum of the keys (they are the values), the
    /// rotation back and the grouped low-rank output. <paramref name="keep"/> is [batch, time, keys].</summary>
    private Tensor Attend(Tensor q, Tensor keys, Tensor keep, Tensor cos, Tensor sin)
    {
        long batch = q.shape[0], time = q.shape[1];
        // [batch, heads, time, keys] in fp32; the sink is one more logit per head with no value.
        var keyValues = keys.to(ScalarType.Float32); // one key = value head: converted once, used twice
        var logits = torch.einsum("bthd,bsd->bhts", q.to(ScalarType.Float32), keyValues) * (float)(1 / Math.Sqrt(o.HeadDim));
        logits = logits.masked_fill(keep.unsqueeze(1).logical_not(), double.NegativeInfinity);
        var sink = attn_sink.view(1, o.Heads, 1, 1).expand(batch, -1, time, 1);
        var probabilities = torch.cat(new[] { logits, sink }, -1).softmax(-1).narrow(-1, 0, keys.shape[1]);
        var output = torch.einsum("bhts,bsd->bthd", probabilities, keyValues).to(q.dtype);
        // The value carried its key's rotation: rotate the output's rotary part back by the query's angle.
        output = RotateTail(output, cos.unsqueeze(1), -sin.unsqueeze(1));
        var grouped = output.reshape(batch, time, o.OutputGroups, -1);
        var projections = wo_a.weight.view(o.OutputGroups, o.OutputRank, -1);
        var low = torch.einsum("btgi,gri->btgr", grouped, projections).reshape(batch, time, -1);
        return wo_b.forward(low);
    }

    private void CheckInput(Tensor x, long offset)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 3 || x.shape[2] != o.Dim)
            throw new ArgumentException($"Expected input [batch, time, {o.Dim}], got [{string.Join(", ", x.shape)}].", nameof(x));
        if (offset + x.shape[1] > o.Context)
            throw new ArgumentException($"Positions up to {offset + x.shape[1]} exceed the layer's context {o.Context}.", nameof(x));
    }

    private Tensor RotateTail(Tensor x, Tensor cos, Tensor sin)
    {
        if (o.RopeDim == 0) return x;
        var split = o.HeadDim - o.RopeDim;
        var rotated = RotaryEmbedding.Rotate(x.narrow(-1, split, o.RopeDim), cos.to(x.dtype), sin.to(x.dtype));
        return torch.cat(new[] { x.narrow(-1, 0, split), rotated }, -1);
    }
}

/// <summary>
/// One <see cref="CompressedAttention"/> layer's decoding cache: the last Window rotated keys/values (position order),
/// every compressed entry and (CSA) index key so far, and the compressors' state for the unfinished window — what
/// DeepSeek's reference caches (<c>kv_cache</c>, the indexer's <c>kv_cache</c>, <c>kv_state</c>, <c>score_state</c>).
/// </summary>
public sealed class CompressedAttentionCache : Generation.ICountedState
{
    internal Tensor window;
    internal Tensor entries;
    internal Tensor? indexKeys;

    internal CompressedAttentionCache(Tensor window, Tensor entries, Tensor? indexKeys, CompressorState? mainState, CompressorState? indexState)
    {
        this.window = window.DetachFromDisposeScope();
        this.entries = entries.DetachFromDisposeScope();
        this.indexKeys = indexKeys?.DetachFromDisposeScope();
        MainState = mainState;
        IndexState = indexState;
    }

    /// <summary>Tokens fed so far (the next token's position).</summary>
    public long Position { get; internal set; }

    /// <summary>The last min(Position, Window) keys/values [batch, ·, HeadDim].</summary>
    public Tensor Window => window;

    /// <summary>Compressed entries of every complete window [batch, Position div Ratio, HeadDim].</summary>
    public Tensor Entries => entries;

    /// <summary>CSA: index keys of every complete window [batch, Position div Ratio, IndexerDim].</summary>
    public Tensor? IndexKeys => indexKeys;

    /// <summary>The attention compressor's state (null for sliding-window layers).</summary>
    public CompressorState? MainState { get; }

    /// <summary>The indexer compressor's state (CSA only).</summary>
    public CompressorState? IndexState { get; }

    /// <summary>Values held per sequence: window, entries, index keys and both states.</summary>
    public long ElementsPerSequence =>
        (window.numel() + entries.numel() + (indexKeys?.numel() ?? 0)) / window.shape[0]
        + (MainState?.ElementsPerSequence ?? 0) + (IndexState?.ElementsPerSequence ?? 0);

    /// <summary><paramref name="value"/>, kept beyond the caller's dispose scope, after disposing <paramref name="old"/>.</summary>
    internal static Tensor Swap(Tensor? old, Tensor value)
    {
        var kept = value.DetachFromDisposeScope();
        if (!ReferenceEquals(kept, old)) old?.Dispose();
        return kept;
    }

    /// <summary>Releases every tensor.</summary>
    public void Dispose()
    {
        window.Dispose();
        entries.Dispose();
        indexKeys?.Dispose();
        MainState?.Dispose();
        IndexState?.Dispose();
    }
}
