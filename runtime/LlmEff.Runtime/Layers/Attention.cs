using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>The one place generated attention calls into scaled-dot-product attention.</summary>
public static class Attention
{
    /// <summary>
    /// Causal attention for queries [batch, heads, time, headDim] over keys and values
    /// [batch, kvHeads, time, headDim]. With fewer KV heads than query heads (GQA/MQA) each KV head serves
    /// <c>heads / kvHeads</c> consecutive query heads, as in Hugging Face's <c>repeat_kv</c>: TorchSharp's SDPA
    /// has no grouped mode, so K and V are repeated here.
    /// </summary>
    public static Tensor Causal(Tensor query, Tensor key, Tensor value) => Attend(query, key, value, causal: true);

    /// <summary>Bidirectional attention (encoders): every position attends to every position. Heads as in <see cref="Causal"/>.</summary>
    public static Tensor Bidirectional(Tensor query, Tensor key, Tensor value) => Attend(query, key, value);

    /// <summary>
    /// Attention restricted by a boolean mask <paramref name="keep"/> [batch, 1, time, keys] (true = attend), e.g. the
    /// sparse selection of a <see cref="LightningIndexer"/>. Every row must keep at least one key, else its softmax is
    /// empty (NaN). Heads as in <see cref="Causal"/>.
    /// </summary>
    public static Tensor Masked(Tensor query, Tensor key, Tensor value, Tensor keep)
    {
        if (keep.dtype != ScalarType.Bool) throw new ArgumentException($"The keep-mask must be boolean, got {keep.dtype}.", nameof(keep));
        return Attend(query, key, value, keep);
    }

    /// <summary>
    /// Causal attention for decoding: queries at positions <paramref name="offset"/> … offset + time − 1 over keys at
    /// positions 0 … offset + time − 1 (the cache plus the new tokens). SDPA's causal flag aligns its mask top-left
    /// (query i sees keys ≤ i), which is only right when there are as many queries as keys, hence this method: it
    /// needs no mask for a single query and builds the bottom-right-aligned one for a chunk. Heads as in <see cref="Causal"/>.
    /// </summary>
    public static Tensor CausalFrom(Tensor query, Tensor key, Tensor value, long offset)
    {
        var time = query.shape[2];
        var keys = key.shape[2];
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "Offset must not be negative.");
        if (keys != offset + time)
            throw new ArgumentException($"Queries at positions {offset}..{offset + time - 1} need keys for positions 0..{offset + time - 1} ({offset + time}), got {keys}.", nameof(key));
        if (offset == 0) return Causal(query, key, value);
        if (time == 1) return Kernels.SingleQueryAttention.TryAttend(query, key, value) ?? Attend(query, key, value);
        // Query t (position offset + t) sees key s when s ≤ offset + t.
        using var keep = CausalKeep(time, keys, offset, query.device);
        return Attend(query, key, value, keep);
    }

    /// <summary>
    /// Every query head [batch, heads, time, d] over one key/value head [batch, 1, keys, d] and [batch, 1, keys, dv]:
    /// multi-query attention, and latent attention with absorbed matrices, whose one head is the cached latent. The
    /// heads are folded into the query rows, so the keys and values are never repeated per head (at decoding time they
    /// are the whole cache). <paramref name="keep"/> is null (every key), [time, keys] or [batch, 1, time, keys] (true =
    /// attend), the same for every head; scaled by 1/√d as SDPA does. Returns [batch, heads, time, dv].
    /// </summary>
    public static Tensor OverOneKeyValueHead(Tensor query, Tensor key, Tensor value, Tensor? keep)
    {
        if (key.shape[1] != 1 || value.shape[1] != 1)
            throw new ArgumentException($"Expected one key/value head, got {key.shape[1]} and {value.shape[1]}.", nameof(key));
        if (keep is not null && keep.dtype != ScalarType.Bool) throw new ArgumentException($"The keep-mask must be boolean, got {keep.dtype}.", nameof(keep));
        using var scope = NewDisposeScope();
        long batch = query.shape[0], heads = query.shape[1], time = query.shape[2], keys = key.shape[2];
        var rows = query.reshape(batch, 1, heads * time, query.shape[3]);
        // Row h·time + t is head h's query t: the mask repeats over heads in the same order.
        var mask = keep is null ? null
            : keep.dim() == 2 ? keep.expand(heads, time, keys).reshape(heads * time, keys)
            : keep.expand(batch, heads, time, keys).reshape(batch, 1, heads * time, keys);
        return nn.functional.scaled_dot_product_attention(rows, key, value, mask)
            .view(batch, heads, time, value.shape[3]).MoveToOuterDisposeScope();
    }

    /// <summary>The causal keep-mask [time, keys] of queries at positions <paramref name="offset"/> … offset + time − 1:
    /// query t sees key s when s ≤ offset + t (true = attend).</summary>
    public static Tensor CausalKeep(long time, long keys, long offset, Device device) =>
        torch.ones(time, keys, dtype: ScalarType.Bool, device: device).tril(offset);

    /// <summary>Pre-softmax scores q·kᵀ/√headDim [batch, heads, time, time], without mask (for inspection).</summary>
    public static Tensor Scores(Tensor query, Tensor key)
    {
        using var scope = NewDisposeScope();
        return (query.matmul(PerQueryHead(key, query).transpose(-2, -1)) / System.Math.Sqrt(query.shape[^1])).MoveToOuterDisposeScope();
    }

    /// <summary>SDPA with an optional mask; grouped key/value heads repeated to the query heads (see <see cref="Causal"/>).</summary>
    private static Tensor Attend(Tensor query, Tensor key, Tensor value, Tensor? mask = null, bool causal = false)
    {
        if (query.shape[1] == key.shape[1]) return nn.functional.scaled_dot_product_attention(query, key, value, mask, is_casual: causal);
        using var scope = NewDisposeScope();
        return nn.functional.scaled_dot_product_attention(query, PerQueryHead(key, query), PerQueryHead(value, query), mask, is_casual: causal)
            .MoveToOuterDisposeScope();
    }

    /// <summary>Keys or values [batch, kvHeads, …] repeated so each of the query's heads has its group's (Hugging Face's repeat_kv).</summary>
    private static Tensor PerQueryHead(Tensor keysOrValues, Tensor query)
    {
        var groups = query.shape[1] / keysOrValues.shape[1];
        return groups == 1 ? keysOrValues : keysOrValues.repeat_interleave(groups, dim: 1);
    }

    /// <summary>[batch, time, heads·headDim] → [batch, heads, time, headDim].</summary>
    public static Tensor SplitHeads(Tensor x, long heads) =>
        x.view(x.shape[0], x.shape[1], heads, x.shape[2] / heads).transpose(1, 2);

    /// <summary>[batch, heads, time, headDim] → [batch, time, heads·headDim].</summary>
    public static Tensor MergeHeads(Tensor x) =>
        x.transpose(1, 2).reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]);
}
