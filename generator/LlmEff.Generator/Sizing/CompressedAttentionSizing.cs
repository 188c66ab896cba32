using System;

namespace LlmEff.Generator.Sizing;

/// <summary>The shape of DeepSeek V4's attention, shared by all its layers (names as in the runtime's
/// <c>CompressedAttentionOptions</c>; DeepSeek's config keys in brackets).</summary>
/// <param name="Dim">Model width [hidden_size].</param>
/// <param name="Heads">Query heads [num_attention_heads].</param>
/// <param name="HeadDim">Query head and shared key = value head width [head_dim].</param>
/// <param name="RopeDim">Rotary channels [qk_rope_head_dim].</param>
/// <param name="QueryRank">Query latent [q_lora_rank].</param>
/// <param name="OutputGroups">Output groups [o_groups].</param>
/// <param name="OutputRank">Rank per output group [o_lora_rank].</param>
/// <param name="Window">Sliding window [sliding_window].</param>
/// <param name="IndexerHeads">Indexer heads [index_n_heads].</param>
/// <param name="IndexerDim">Indexer head width [index_head_dim].</param>
internal readonly record struct CompressedAttentionShape(int Dim, int Heads, int HeadDim, int RopeDim, int QueryRank, int OutputGroups,
    int OutputRank, int Window, int IndexerHeads, int IndexerDim);

/// <summary>What one layer's decoding cache holds after some tokens: entries HeadDim wide (window and compressed), index
/// keys IndexerDim wide, and the compressors' fp32 state for the unfinished window.</summary>
internal readonly record struct CompressedCacheContents(long WindowEntries, long CompressedEntries, long IndexerKeys, long StateValues, int HeadDim, int IndexerDim)
{
    /// <summary>Cached values (elements), state included.</summary>
    public long Elements => checked((WindowEntries + CompressedEntries) * HeadDim + IndexerKeys * IndexerDim + StateValues);
}

/// <summary>Bytes of one cached item (scale bytes included where the format has them).</summary>
/// <param name="Entry">One window or compressed entry.</param>
/// <param name="IndexerKey">One index key.</param>
/// <param name="StateValue">One compressor state value.</param>
internal readonly record struct CompressedCacheStorage(long Entry, long IndexerKey, long StateValue)
{
    /// <summary>DeepSeek V4's storage (report): entries in FP8 on the HeadDim − RopeDim position-free channels and bf16 on
    /// the RopeDim rotary ones; index keys in FP4 (half a byte per value plus one E8M0 scale byte per 32); the state in
    /// fp32 (the reference code's <c>kv_state</c>/<c>score_state</c>). FP8 scale bytes are not counted: the report does
    /// not give their layout.</summary>
    public static CompressedCacheStorage DeepSeekV4(CompressedAttentionShape shape) => new(
        checked((long)(shape.HeadDim - shape.RopeDim) + 2L * shape.RopeDim),
        checked((long)shape.IndexerDim / 2 + shape.IndexerDim / 32),
        4);
}

/// <summary>
/// Exact parameter and KV-cache counts of DeepSeek V4's attention (the runtime's <c>CompressedAttention</c>), as pure
/// checked arithmetic. A layer's kind is its compression ratio: 0 is sliding window only, and a positive ratio with
/// <c>sparse</c> is CSA (overlapping compressor and indexer), without it HCA. Source for what the cache holds:
/// deepseek-ai's V4 <c>inference/model.py</c> (<c>kv_cache</c> of window + max_seq_len / ratio entries, the indexer's
/// <c>kv_cache</c> of max_seq_len / ratio keys, the compressors' <c>kv_state</c> and <c>score_state</c>).
/// </summary>
internal static class CompressedAttentionSizing
{
    /// <summary>Parameters of one attention layer: query path, key/value, sink, grouped output, compressor and indexer.</summary>
    public static long Parameters(CompressedAttentionShape s, int ratio, bool sparse)
    {
        Check(s, ratio, sparse);
        checked
        {
            long dim = s.Dim, heads = s.Heads, d = s.HeadDim;
            var query = dim * s.QueryRank + s.QueryRank + (long)s.QueryRank * heads * d; // wq_a, q_norm, wq_b
            var keyValue = dim * d + d; // wkv, kv_norm
            var output = heads * d * s.OutputRank + (long)s.OutputGroups * s.OutputRank * dim; // wo_a (per group), wo_b
            var total = query + keyValue + output + heads; // attn_sink
            if (ratio == 0) return total;
            total += CompressorParameters(dim, d, ratio, overlap: sparse);
            if (sparse)
                total += (long)s.QueryRank * s.IndexerHeads * s.IndexerDim + dim * s.IndexerHeads // wq_b, weights_proj
                    + CompressorParameters(dim, s.IndexerDim, ratio, overlap: true);
            return total;
        }
    }

    /// <summary>wkv and wgate (c·width outputs each, c = 2 when overlapping), the position bias ape [ratio, c·width] and
    /// the norm.</summary>
    public static long CompressorParameters(long dim, long width, int ratio, bool overlap)
    {
        checked
        {
            var c = overlap ? 2L : 1L;
            return 2 * dim * c * width + ratio * c * width + width;
        }
    }

    /// <summary>What one layer caches after <paramref name="tokens"/> tokens: min(tokens, Window) window entries,
    /// tokens div ratio compressed entries (complete windows only) and as many index keys for CSA, and the compressors'
    /// fixed state: values and gate logits of c·ratio slots × c·width channels each (c = 2 when overlapping), as
    /// DeepSeek's reference allocates it.</summary>
    public static CompressedCacheContents Cache(CompressedAttentionShape s, int ratio, bool sparse, long tokens)
    {
        Check(s, ratio, sparse);
        if (tokens < 0) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "A token count cannot be negative.");
        checked
        {
            var window = Math.Min(tokens, s.Window);
            if (ratio == 0) return new CompressedCacheContents(window, 0, 0, 0, s.HeadDim, s.IndexerDim);
            var entries = tokens / ratio;
            var state = CompressorState(s.HeadDim, ratio, overlap: sparse) + (sparse ? CompressorState(s.IndexerDim, ratio, overlap: true) : 0);
            return new CompressedCacheContents(window, entries, sparse ? entries : 0, state, s.HeadDim, s.IndexerDim);
        }
    }

    /// <summary>Bytes of <paramref name="contents"/> under <paramref name="storage"/>.</summary>
    public static long Bytes(CompressedCacheContents contents, CompressedCacheStorage storage) =>
        checked((contents.WindowEntries + contents.CompressedEntries) * storage.Entry + contents.IndexerKeys * storage.IndexerKey
            + contents.StateValues * storage.StateValue);

    private static long CompressorState(long width, int ratio, bool overlap)
    {
        checked
        {
            var c = overlap ? 2L : 1L;
            return 2 * (c * ratio) * (c * width); // kv_state and score_state
        }
    }

    private static void Check(CompressedAttentionShape s, int ratio, bool sparse)
    {
        if (s.Dim <= 0 || s.Heads <= 0 || s.HeadDim <= 0 || s.QueryRank <= 0 || s.OutputRank <= 0 || s.Window <= 0)
            throw new ArgumentOutOfRangeException(nameof(s), s, "Widths, heads, ranks and the window must be positive.");
        if (s.OutputGroups <= 0 || s.Heads % s.OutputGroups != 0)
            throw new ArgumentOutOfRangeException(nameof(s), s.OutputGroups, $"OutputGroups must divide Heads ({s.Heads}).");
        if (ratio < 0 || ratio == 1) throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "The ratio is 0 (sliding window only) or at least 2.");
        if (sparse && ratio == 0) throw new ArgumentOutOfRangeException(nameof(sparse), sparse, "A sliding-window layer has no indexer.");
        if (sparse && (s.IndexerHeads <= 0 || s.IndexerDim <= 0))
            throw new ArgumentOutOfRangeException(nameof(s), s, "A CSA layer needs indexer heads and width.");
    }
}
