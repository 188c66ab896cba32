using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using LlmEff.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// DeepSeek-V3.2's lightning indexer: a small, cheap scorer that picks which past keys each query attends to.
/// Index score <c>I(t, s) = c · Σ_j w_j(t) · ReLU(q_j(t) · k(s))</c> over <see cref="Heads"/> heads of width
/// <see cref="IndexDim"/>, with one key per token shared by all heads (so decoding caches only <see cref="IndexDim"/>
/// elements per token) and <c>c = 1/√(Heads · IndexDim)</c> as DeepSeek scales it. Each query keeps its top
/// <see cref="TopK"/> visible keys; with <see cref="TopK"/> at least the number of visible keys this is exactly dense
/// causal attention. Parameter names follow DeepSeek-V3.2's <c>Indexer</c> (<c>wq</c>, <c>wk</c>, <c>weights_proj</c>).
/// </summary>
/// <remarks>
/// Simplified against DeepSeek's: the indexer reads the layer's normalised input directly (not the query's low-rank
/// latent), has no key norm and no rotary part, and runs in the model's dtype, not FP8. Selection is a discrete choice
/// and passes no gradient; the indexer learns from <see cref="Supervise"/>, a KL loss toward the attention it stands in
/// for, computed on a detached input so that it trains the indexer alone.
/// </remarks>
public sealed class LightningIndexer : nn.Module, IAuxiliaryLoss
{
    private readonly Linear wq;
    private readonly Linear wk;
    private readonly Linear weights_proj;
    private readonly double scale;
    private Tensor? auxiliaryLoss;

    /// <summary>Creates an indexer over inputs <paramref name="dim"/> wide with <paramref name="heads"/> heads of width
    /// <paramref name="indexDim"/> that keeps <paramref name="topK"/> keys per query.</summary>
    public LightningIndexer(int dim, int heads, int indexDim, int topK, Device? device = null, ScalarType? dtype = null) : base(nameof(LightningIndexer))
    {
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "Width must be positive.");
        if (heads <= 0) throw new ArgumentOutOfRangeException(nameof(heads), heads, "Indexer heads must be positive.");
        if (indexDim <= 0) throw new ArgumentOutOfRangeException(nameof(indexDim), indexDim, "Indexer head width must be positive.");
        if (topK <= 0) throw new ArgumentOutOfRangeException(nameof(topK), topK, "TopK must keep at least one key.");
        Dim = dim;
        Heads = heads;
        IndexDim = indexDim;
        TopK = topK;
        scale = 1 / Math.Sqrt((double)heads * indexDim);
        wq = new Linear(dim, (long)heads * indexDim, hasBias: false, device: device, dtype: dtype);
        wk = new Linear(dim, indexDim, hasBias: false, device: device, dtype: dtype);
        weights_proj = new Linear(dim, heads, hasBias: false, device: device, dtype: dtype);
        RegisterComponents();
        Init.Normal(wq.weight);
        Init.Normal(wk.weight);
        Init.Normal(weights_proj.weight);
    }

    /// <summary>Input width.</summary>
    public int Dim { get; }

    /// <summary>Indexer heads.</summary>
    public int Heads { get; }

    /// <summary>Width of an index query head and of the one index key per token (what decoding caches per token).</summary>
    public int IndexDim { get; }

    /// <summary>Keys kept per query.</summary>
    public int TopK { get; }

    /// <summary>Every indexer inside <paramref name="model"/>, in layer order.</summary>
    public static IReadOnlyList<LightningIndexer> In(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.modules().OfType<LightningIndexer>().ToList();
    }

    /// <summary>Index keys [batch, time, IndexDim] of tokens <paramref name="x"/> [batch, time, Dim].</summary>
    public Tensor Keys(Tensor x)
    {
        CheckInput(x, nameof(x));
        return wk.forward(x);
    }

    /// <summary>Index scores I(t, s) [batch, time, keys] of queries <paramref name="x"/> over <paramref name="keys"/>, unmasked.</summary>
    public Tensor Scores(Tensor x, Tensor keys)
    {
        CheckInput(x, nameof(x));
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.dim() != 3 || keys.shape[0] != x.shape[0] || keys.shape[2] != IndexDim)
            throw new ArgumentException($"Expected index keys [{x.shape[0]}, keys, {IndexDim}], got [{string.Join(", ", keys.shape)}].", nameof(keys));
        using var scope = NewDisposeScope();
        long batch = x.shape[0], time = x.shape[1];
        // [batch, time·heads, IndexDim] · [batch, IndexDim, keys] → [batch, time, heads, keys]
        var queries = wq.forward(x).view(batch, time * Heads, IndexDim);
        var dots = queries.matmul(keys.transpose(1, 2)).view(batch, time, Heads, keys.shape[1]).relu();
        var weights = weights_proj.forward(x).unsqueeze(-1);
        return ((dots * weights).sum(2) * scale).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Keep-mask [batch, 1, time, keys] for queries <paramref name="x"/> [batch, time, Dim] at positions
    /// <paramref name="offset"/> … offset + time − 1 over <paramref name="keys"/> [batch, keys, IndexDim] at positions 0 …:
    /// true where key s is visible (s ≤ position of t) and among t's <see cref="TopK"/> highest index scores (rounded to
    /// bf16 for ranking). Rows with
    /// at most <see cref="TopK"/> visible keys keep them all. Ties go to the more recent key (a stable sort over the keys
    /// in reverse), so where the scores carry no information, e.g. all zero after the ReLU, selection is a sliding window.
    /// </summary>
    public Tensor Select(Tensor x, Tensor keys, long offset)
    {
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "Offset must not be negative.");
        CheckInput(x, nameof(x));
        ArgumentNullException.ThrowIfNull(keys);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var visible = Attention.CausalKeep(x.shape[1], keys.shape[1], offset, x.device);
        return Keep(keys.shape[1] <= TopK ? null : Scores(x, keys), visible, x.shape[0]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Training: <see cref="Select"/>'s keep-mask and <see cref="Supervise"/>'s loss from one computation of the index
    /// scores (calling both would compute them twice: once without gradient to rank, once with it for the loss).
    /// Arguments as in <see cref="Supervise"/>; <paramref name="indexKeys"/> from the detached input.
    /// </summary>
    public Tensor SelectAndSupervise(Tensor queries, Tensor keys, Tensor x, Tensor indexKeys, long offset)
    {
        CheckSupervision(queries, keys, x, indexKeys, offset);
        using var scope = NewDisposeScope();
        var visible = Attention.CausalKeep(x.shape[1], indexKeys.shape[1], offset, x.device);
        var scores = Scores(x.detach(), indexKeys);
        SuperviseFrom(scores, queries, keys, visible);
        using var _ = no_grad();
        return Keep(scores.detach(), visible, x.shape[0]).MoveToOuterDisposeScope();
    }

    // The keep-mask [batch, 1, time, keys] from index scores (null when every visible key is kept anyway).
    private Tensor Keep(Tensor? scores, Tensor visible, long batch)
    {
        var count = visible.shape[1];
        Tensor keep;
        if (scores is null || count <= TopK) keep = visible.expand(batch, -1, -1);
        else
        {
            // Ranked at bf16 precision (DeepSeek ranks in FP8): scores that differ only in their last bits, as the full and
            // the cached forward's do (different matmul shapes), or as two copies of one token's key do, tie instead of
            // ordering by rounding noise, so both paths choose the same keys.
            var ranked = scores.to(ScalarType.BFloat16).to(ScalarType.Float32);
            // Reversed key order + stable descending sort: among equal scores the later key comes first.
            var reversed = ranked.masked_fill(visible.logical_not(), double.NegativeInfinity).flip(-1);
            var order = reversed.sort(-1, descending: true, stable: true).Indices.narrow(-1, 0, TopK);
            var chosen = torch.zeros(ranked.shape, dtype: ScalarType.Bool, device: ranked.device)
                .scatter_(-1, (count - 1) - order, torch.ones(order.shape, dtype: ScalarType.Bool, device: ranked.device));
            // Rows seeing fewer than TopK keys picked some invisible ones too; drop them.
            keep = chosen.logical_and(visible);
        }
        return keep.unsqueeze(1);
    }

    /// <summary>
    /// Training only: keeps a KL loss <c>KL(p_attention ‖ p_index)</c> per query, averaged over queries, for
    /// <see cref="TakeAuxiliaryLoss"/>. <c>p_attention</c> is the causal softmax of <paramref name="queries"/>
    /// [batch, heads, time, d] over <paramref name="keys"/> [batch, kvHeads, keys, d] (scaled by 1/√d, averaged over
    /// heads, detached); <c>p_index</c> the softmax of the index scores of <c>x.detach()</c> over
    /// <paramref name="indexKeys"/> with the same visibility. Pass index keys computed from the detached input too
    /// (<c>Keys(x.detach())</c>), as DeepSeek does: then the loss trains the indexer's weights and nothing else.
    /// The target is dense (all visible keys), DeepSeek's warm-up form. With selection as well, <see cref="SelectAndSupervise"/>.
    /// </summary>
    public void Supervise(Tensor queries, Tensor keys, Tensor x, Tensor indexKeys, long offset)
    {
        CheckSupervision(queries, keys, x, indexKeys, offset);
        using var scope = NewDisposeScope();
        var visible = Attention.CausalKeep(x.shape[1], indexKeys.shape[1], offset, x.device);
        SuperviseFrom(Scores(x.detach(), indexKeys), queries, keys, visible);
    }

    private static void CheckSupervision(Tensor queries, Tensor keys, Tensor x, Tensor indexKeys, long offset)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(indexKeys);
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "Offset must not be negative.");
        if (queries.dim() != 4 || keys.dim() != 4 || queries.shape[2] != x.shape[1] || keys.shape[2] != indexKeys.shape[1])
            throw new ArgumentException(
                $"Queries [{string.Join(", ", queries.shape)}] and keys [{string.Join(", ", keys.shape)}] must be [batch, heads, time, d] " +
                $"matching x [{string.Join(", ", x.shape)}] and index keys [{string.Join(", ", indexKeys.shape)}].", nameof(queries));
    }

    // The KL loss of Supervise from index scores of the detached input (with gradient to the indexer's weights).
    private void SuperviseFrom(Tensor indexScores, Tensor queries, Tensor keys, Tensor visible)
    {
        var hidden = visible.logical_not();
        Tensor target;
        using (no_grad())
        {
            var scores = Attention.Scores(queries.detach(), keys.detach()).to(ScalarType.Float32);
            target = scores.masked_fill(hidden, double.NegativeInfinity).softmax(-1).mean(new long[] { 1 });
        }
        var logIndex = indexScores.to(ScalarType.Float32).masked_fill(hidden, double.NegativeInfinity).log_softmax(-1);
        // Hidden keys have p = 0 on both sides; zero their terms instead of computing 0 · (−∞).
        var terms = (target * (target.clamp_min(1e-30).log() - logIndex)).masked_fill(hidden, 0);
        var loss = terms.sum(-1).mean();
        auxiliaryLoss?.Dispose();
        // Outlives the layer's dispose scope until the trainer takes it.
        auxiliaryLoss = loss.DetachFromDisposeScope();
    }

    /// <summary>The loss of the last <see cref="Supervise"/>, once (the caller disposes it); null when there is none.</summary>
    public Tensor? TakeAuxiliaryLoss()
    {
        var loss = auxiliaryLoss;
        auxiliaryLoss = null;
        return loss;
    }

    /// <summary>Releases a pending loss with the module.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) auxiliaryLoss?.Dispose();
        base.Dispose(disposing);
    }


    private void CheckInput(Tensor x, string name)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (x.dim() != 3 || x.shape[2] != Dim)
            throw new ArgumentException($"Expected input [batch, time, {Dim}], got [{string.Join(", ", x.shape)}].", name);
    }
}
