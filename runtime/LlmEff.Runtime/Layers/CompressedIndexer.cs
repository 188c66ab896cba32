using System;
using LlmEff.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// DeepSeek V4's indexer for compressed sparse attention (CSA): scores every visible compressed entry for each query and
/// keeps the <see cref="TopK"/> best. Queries come from the layer's query latent (<c>wq_b</c>: <see cref="Heads"/> heads
/// of <see cref="IndexDim"/>, rotary on the last RopeDim channels at the token's position); keys from the indexer's own
/// overlapping <see cref="Compressor"/> (IndexDim wide). Both are rotated by <see cref="Hadamard"/> and fake-quantized to
/// <see cref="Precision"/> (FP4 in DeepSeek V4); the score of entry s is <c>Σ_h w_h(t)·ReLU(q_h(t)·k_s)</c> with
/// <c>w = weights_proj(x)·IndexDim^−½·Heads^−½</c>, optionally rounded to bf16 before ranking (<see cref="Bf16Scores"/>:
/// the report's BF16 index scores). Source: <c>Indexer</c> in deepseek-ai's V4 <c>inference/model.py</c>.
/// </summary>
/// <remarks>Selection is discrete and passes no gradient; in training the indexer learns from its own distillation loss
/// instead (<see cref="SelectAndSupervise"/>, taken by the trainer through <see cref="Training.IAuxiliaryLoss"/>).</remarks>
public sealed class CompressedIndexer : nn.Module, Training.IAuxiliaryLoss
{
    private readonly Linear wq_b;
    private readonly Linear weights_proj;
    private readonly Compressor compressor;
    private readonly int ropeDim;
    private Tensor? auxiliaryLoss;

    /// <summary>Creates the indexer for a layer of width <paramref name="dim"/> whose query latent is
    /// <paramref name="queryRank"/> wide.</summary>
    public CompressedIndexer(int dim, int queryRank, int heads, int indexDim, int ropeDim, int ratio, int topK,
        IndexerPrecision precision, bool bf16Scores, double normEps, Device? device = null, ScalarType? dtype = null) : base(nameof(CompressedIndexer))
    {
        if (queryRank <= 0) throw new ArgumentOutOfRangeException(nameof(queryRank), queryRank, "The query latent width must be positive.");
        if (heads <= 0) throw new ArgumentOutOfRangeException(nameof(heads), heads, "Indexer heads must be positive.");
        if (indexDim <= 0 || (indexDim & (indexDim - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(indexDim), indexDim, "The indexer head width must be a power of two (Hadamard rotation).");
        if (ropeDim < 0 || ropeDim % 2 != 0 || ropeDim > indexDim)
            throw new ArgumentOutOfRangeException(nameof(ropeDim), ropeDim, $"The rotary part must be even and at most the indexer head width {indexDim}.");
        if (topK <= 0) throw new ArgumentOutOfRangeException(nameof(topK), topK, "TopK must keep at least one entry.");
        var block = IndexerQuantizer.BlockSize(precision);
        if (indexDim % block != 0)
            throw new ArgumentOutOfRangeException(nameof(indexDim), indexDim, $"{precision} quantizes blocks of {block}: the indexer head width must be a multiple.");
        Heads = heads;
        IndexDim = indexDim;
        TopK = topK;
        Precision = precision;
        Bf16Scores = bf16Scores;
        this.ropeDim = ropeDim;
        wq_b = new Linear(queryRank, (long)heads * indexDim, hasBias: false, device: device, dtype: dtype);
        weights_proj = new Linear(dim, heads, hasBias: false, device: device, dtype: dtype);
        compressor = new Compressor(dim, indexDim, ratio, overlap: true, ropeDim, normEps, device);
        RegisterComponents();
        Init.Normal(wq_b.weight);
        Init.Normal(weights_proj.weight);
    }

    /// <summary>Indexer heads.</summary>
    public int Heads { get; }

    /// <summary>Width of an index query head and of one index key.</summary>
    public int IndexDim { get; }

    /// <summary>Compressed entries kept per query.</summary>
    public int TopK { get; }

    /// <summary>What queries and keys are fake-quantized to.</summary>
    public IndexerPrecision Precision { get; }

    /// <summary>Whether scores are rounded to bf16 before ranking.</summary>
    public bool Bf16Scores { get; }

    /// <summary>The indexer's compressor (its keys).</summary>
    public Compressor Compressor => compressor;

    /// <summary>Index keys [batch, time div Ratio, IndexDim]: compressed, rotated and quantized.</summary>
    public Tensor Keys(Tensor x, RotaryEmbedding rotary)
    {
        using var scope = NewDisposeScope();
        return IndexerQuantizer.FakeQuantize(Hadamard.Rotate(compressor.forward(x, rotary)), Precision).MoveToOuterDisposeScope();
    }

    /// <summary>Index queries [batch, time, Heads, IndexDim] of the query latent <paramref name="queryLatent"/> at
    /// positions <paramref name="offset"/> …: rotary, rotated and quantized.</summary>
    public Tensor Queries(Tensor queryLatent, RotaryEmbedding rotary, long offset = 0)
    {
        using var scope = NewDisposeScope();
        return IndexerQuantizer.FakeQuantize(Hadamard.Rotate(RotaryQueries(queryLatent, rotary, offset)), Precision).MoveToOuterDisposeScope();
    }

    /// <summary>wq_b's heads [batch, time, Heads, IndexDim] with rotary on their last RopeDim channels at positions
    /// <paramref name="offset"/> ….</summary>
    private Tensor RotaryQueries(Tensor queryLatent, RotaryEmbedding rotary, long offset)
    {
        long batch = queryLatent.shape[0], time = queryLatent.shape[1];
        var q = wq_b.forward(queryLatent).view(batch, time, Heads, IndexDim);
        if (ropeDim == 0) return q;
        var (cos, sin) = rotary.Angles(time, offset);
        var rotated = RotaryEmbedding.Rotate(q.narrow(-1, IndexDim - ropeDim, ropeDim), cos.unsqueeze(1), sin.unsqueeze(1));
        return torch.cat(new[] { q.narrow(-1, 0, IndexDim - ropeDim), rotated }, -1);
    }

    /// <summary>
    /// What <see cref="Scores"/> is computed from, before the Hadamard rotation and the quantization: index queries
    /// [batch, time, Heads, IndexDim] (rotary applied), index keys [batch, time div Ratio, IndexDim] and head weights
    /// [batch, time, Heads] (scaled as in <see cref="Scores"/>), all fp32. <see cref="IndexerRecall.MeasureOn"/> scores
    /// them at every precision to see which entries each would choose.
    /// </summary>
    public (Tensor Queries, Tensor Keys, Tensor HeadWeights) ScoreInputs(Tensor x, Tensor queryLatent, RotaryEmbedding rotary)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var q = RotaryQueries(queryLatent, rotary, 0);
        var keys = compressor.forward(x, rotary);
        return (q.to(ScalarType.Float32).MoveToOuterDisposeScope(), keys.to(ScalarType.Float32).MoveToOuterDisposeScope(), HeadWeights(x).MoveToOuterDisposeScope());
    }

    /// <summary>Each head's weight per token [batch, time, Heads], fp32: <c>weights_proj(x)·IndexDim^−½·Heads^−½</c>.</summary>
    private Tensor HeadWeights(Tensor x) => weights_proj.forward(x).to(ScalarType.Float32) * (float)(1 / Math.Sqrt((double)IndexDim * Heads));

    /// <summary>Index scores [batch, time, entries] (fp32, unmasked) of <paramref name="queries"/> over
    /// <paramref name="keys"/>, with head weights from the layer input <paramref name="x"/>.</summary>
    public Tensor Scores(Tensor x, Tensor queries, Tensor keys)
    {
        using var scope = NewDisposeScope();
        var dots = torch.einsum("bthd,bsd->bths", queries.to(ScalarType.Float32), keys.to(ScalarType.Float32)).relu();
        var scores = (dots * HeadWeights(x).unsqueeze(-1)).sum(2);
        if (Bf16Scores) scores = scores.to(ScalarType.BFloat16).to(ScalarType.Float32);
        return scores.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Keep-mask [batch, time, entries] for queries at positions 0 … time − 1 over the index keys of the same
    /// sequence: entry w is kept when it is visible (w &lt; (t + 1) div Ratio: its window is complete) and among the
    /// <see cref="TopK"/> highest visible scores. Ties go to the later entry (a stable sort over the entries in reverse),
    /// so both twins choose alike.
    /// </summary>
    public Tensor Select(Tensor x, Tensor queryLatent, RotaryEmbedding rotary)
    {
        using var keys = Keys(x, rotary);
        return SelectAmong(x, queryLatent, keys, 0, rotary);
    }

    /// <summary>Like <see cref="Select"/> for queries at positions <paramref name="offset"/> … over index keys already
    /// computed (decoding: the cached keys of every complete window so far).</summary>
    public Tensor SelectAmong(Tensor x, Tensor queryLatent, Tensor keys, long offset, RotaryEmbedding rotary)
    {
        ArgumentNullException.ThrowIfNull(keys);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var visible = CompressedAttention.VisibleEntries(x.shape[1], keys.shape[1], compressor.Ratio, x.device, offset);
        var count = keys.shape[1];
        if (count <= TopK) return visible.expand(x.shape[0], -1, -1).MoveToOuterDisposeScope();
        return KeepTopK(Scores(x, Queries(queryLatent, rotary, offset), keys), visible).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Training: <see cref="Select"/>'s keep-mask, and a distillation loss for the indexer kept for
    /// <see cref="TakeAuxiliaryLoss"/>: <c>KL(p_attention ‖ p_index)</c> per query over the compressed entries it sees,
    /// averaged over the queries that see any. <c>p_attention</c> is the layer's own attention over those entries
    /// (<paramref name="attentionQueries"/> [batch, time, heads, HeadDim] against <paramref name="entries"/>
    /// [batch, entries, HeadDim], scaled by HeadDim^−½, softmaxed per head, averaged over heads, detached);
    /// <c>p_index</c> the softmax of the index scores. Everything the indexer reads is detached, so the loss trains the
    /// indexer (wq_b, weights_proj and its compressor) and nothing else, and quantization passes gradients straight
    /// through. DeepSeek-V3.2's dense warm-up target (all visible entries, not only the selected ones), which our
    /// LightningIndexer uses too; DeepSeek's V4 code is inference only.
    /// </summary>
    public Tensor SelectAndSupervise(Tensor x, Tensor queryLatent, RotaryEmbedding rotary, Tensor attentionQueries, Tensor entries)
    {
        ArgumentNullException.ThrowIfNull(attentionQueries);
        ArgumentNullException.ThrowIfNull(entries);
        using var scope = NewDisposeScope();
        var input = x.detach();
        var keys = StraightThrough(Hadamard.Rotate(compressor.forward(input, rotary)));
        var queries = StraightThrough(Hadamard.Rotate(RotaryQueries(queryLatent.detach(), rotary, 0)));
        var scores = Scores(input, queries, keys);
        var visible = CompressedAttention.VisibleEntries(x.shape[1], keys.shape[1], compressor.Ratio, x.device);
        Supervise(scores, attentionQueries, entries, visible);
        using var _ = no_grad();
        var keep = keys.shape[1] <= TopK ? visible.expand(x.shape[0], -1, -1) : KeepTopK(scores.detach(), visible);
        return keep.MoveToOuterDisposeScope();
    }

    /// <summary>The quantized values forward, the gradient of the unquantized ones backward.</summary>
    private Tensor StraightThrough(Tensor x) => x + (IndexerQuantizer.FakeQuantize(x, Precision) - x).detach();

    /// <summary>[batch, time, entries]: the TopK highest of <paramref name="scores"/> among the <paramref name="visible"/>
    /// [time, entries] entries; ties go to the later entry (a stable sort over the entries in reverse), so both twins
    /// choose alike.</summary>
    private Tensor KeepTopK(Tensor scores, Tensor visible)
    {
        var count = scores.shape[^1];
        var order = scores.masked_fill(visible.logical_not(), double.NegativeInfinity).flip(-1).sort(-1, descending: true, stable: true).Indices.narrow(-1, 0, TopK);
        var chosen = torch.zeros(scores.shape, dtype: ScalarType.Bool, device: scores.device)
            .scatter_(-1, (count - 1) - order, torch.ones(order.shape, dtype: ScalarType.Bool, device: scores.device));
        // Rows seeing fewer than TopK entries picked hidden ones too; drop them.
        return chosen.logical_and(visible);
    }

    private void Supervise(Tensor indexScores, Tensor attentionQueries, Tensor entries, Tensor visible)
    {
        var hidden = visible.logical_not();
        // Queries that see no complete window yet have no distribution to learn.
        var seeing = visible.any(-1);
        Tensor target;
        using (no_grad())
        {
            var logits = torch.einsum("bthd,bsd->bths", attentionQueries.detach().to(ScalarType.Float32), entries.detach().to(ScalarType.Float32))
                * (float)(1 / Math.Sqrt(attentionQueries.shape[^1]));
            target = logits.masked_fill(hidden.unsqueeze(1), double.NegativeInfinity).softmax(-1).nan_to_num(0).mean(new long[] { 2 });
        }
        // Rows that see nothing stay unmasked here (their terms are zeroed below): a row of −∞ would give NaN gradients.
        var logIndex = indexScores.masked_fill(hidden.logical_and(seeing.unsqueeze(-1)), double.NegativeInfinity).log_softmax(-1);
        // Hidden entries have p = 0 on both sides; zero their terms instead of computing 0 · (−∞).
        var terms = (target * (target.clamp_min(1e-30).log() - logIndex)).masked_fill(hidden, 0);
        var rows = seeing.sum().to(ScalarType.Float32).clamp_min(1) * indexScores.shape[0];
        var loss = terms.sum(-1).masked_fill(seeing.logical_not(), 0).sum() / rows;
        auxiliaryLoss?.Dispose();
        // Outlives the layer's dispose scope until the trainer takes it.
        auxiliaryLoss = loss.DetachFromDisposeScope();
    }

    /// <summary>The loss of the last <see cref="SelectAndSupervise"/>, once (the caller disposes it); null when there is none.</summary>
    public Tensor? TakeAuxiliaryLoss()
    {
        var loss = auxiliaryLoss;
        auxiliaryLoss = null;
        return loss;
    }
}
