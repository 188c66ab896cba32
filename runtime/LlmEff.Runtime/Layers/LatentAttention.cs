using System;
using LlmEff.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>Settings of one multi-head latent attention layer (DeepSeek-V2/V3 MLA).</summary>
/// <param name="Dim">Model width.</param>
/// <param name="Heads">Query heads (every head has its own key and value, expanded from the shared latent).</param>
/// <param name="HeadDim">Width of a head's position-free query/key part and of its value (<c>qk_nope_head_dim = v_head_dim</c>).</param>
/// <param name="KvRank">Width of the compressed key-value latent (<c>kv_lora_rank</c>).</param>
/// <param name="RopeDim">Width of the rotary query/key part (<c>qk_rope_head_dim</c>); the rotary key is one head shared by all.</param>
/// <param name="QRank">Width of the compressed query (<c>q_lora_rank</c>); 0 projects queries directly.</param>
/// <param name="Context">Longest sequence (rotary table length).</param>
/// <param name="RopeTheta">Rotary base.</param>
/// <param name="NormEps">Epsilon of the latent RMS norms.</param>
/// <param name="Layers">Layers of the model (scales <c>o_proj</c>'s initialisation).</param>
/// <param name="Causal">Causal (decoder) or bidirectional attention.</param>
/// <param name="Bias">Biases where DeepSeek's <c>attention_bias</c> puts them: <c>q_a_proj</c> or <c>q_proj</c>,
/// <c>kv_a_proj_with_mqa</c>, <c>o_proj</c> (never on <c>q_b_proj</c> or <c>kv_b_proj</c>).</param>
public sealed record LatentAttentionOptions(int Dim, int Heads, int HeadDim, int KvRank, int RopeDim, int QRank, int Context, double RopeTheta, double NormEps, int Layers,
    bool Causal = true, bool Bias = false)
{
    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first setting that is out of range.</summary>
    public void Validate()
    {
        if (Dim <= 0) throw new ArgumentOutOfRangeException(nameof(Dim), Dim, "Dim must be positive.");
        if (Heads <= 0) throw new ArgumentOutOfRangeException(nameof(Heads), Heads, "Heads must be positive.");
        if (HeadDim <= 0) throw new ArgumentOutOfRangeException(nameof(HeadDim), HeadDim, "HeadDim must be positive.");
        if (KvRank <= 0) throw new ArgumentOutOfRangeException(nameof(KvRank), KvRank, "KvRank must be positive.");
        if (RopeDim <= 0 || RopeDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(RopeDim), RopeDim, "RopeDim must be positive and even.");
        if (QRank < 0) throw new ArgumentOutOfRangeException(nameof(QRank), QRank, "QRank must be 0 (no query compression) or positive.");
        if (Context <= 0) throw new ArgumentOutOfRangeException(nameof(Context), Context, "Context must be positive.");
        if (!(RopeTheta > 0) || double.IsInfinity(RopeTheta)) throw new ArgumentOutOfRangeException(nameof(RopeTheta), RopeTheta, "RopeTheta must be a positive number.");
        if (!(NormEps > 0) || double.IsInfinity(NormEps)) throw new ArgumentOutOfRangeException(nameof(NormEps), NormEps, "NormEps must be a positive number.");
        if (Layers <= 0) throw new ArgumentOutOfRangeException(nameof(Layers), Layers, "Layers must be positive.");
    }
}

/// <summary>
/// DeepSeek's multi-head latent attention. Keys and values of every head are expanded (<c>kv_b_proj</c>) from one
/// normalised latent of <see cref="LatentAttentionOptions.KvRank"/> elements per token; position enters only through a
/// separate rotary part, one head of <see cref="LatentAttentionOptions.RopeDim"/> shared by all query heads. Decoding
/// therefore caches <c>KvRank + RopeDim</c> elements per token and layer, against <c>2 · Heads · HeadDim</c> for
/// multi-head attention. Parameter names are Hugging Face <c>DeepseekV3Attention</c>'s. With a
/// <see cref="LightningIndexer"/> (DeepSeek-V3.2) every query attends only to the keys the indexer selects.
/// </summary>
/// <remarks>
/// Decoding absorbs <c>kv_b_proj</c> into the query and the output (see <c>AttendAbsorbed</c>), as DeepSeek's
/// inference does, so a step attends over the cached latents as they are instead of re-expanding every one of them.
/// </remarks>
public sealed class LatentAttention : nn.Module<Tensor, Tensor>
{
    private readonly LatentAttentionOptions o;
    private readonly Linear? q_a_proj;
    private readonly RmsNorm? q_a_layernorm;
    private readonly Linear? q_b_proj;
    private readonly Linear? q_proj;
    private readonly Linear kv_a_proj_with_mqa;
    private readonly RmsNorm kv_a_layernorm;
    private readonly Linear kv_b_proj;
    private readonly Linear o_proj;
    private readonly LightningIndexer? indexer;
    private readonly RotaryEmbedding rotary;

    /// <summary>Creates the layer; projections N(0, 0.02²), <c>o_proj</c> scaled for depth, biases zero, norms one.</summary>
    public LatentAttention(LatentAttentionOptions options, LightningIndexer? indexer = null, Device? device = null, ScalarType? dtype = null) : base(nameof(LatentAttention))
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (indexer is not null && !options.Causal)
            throw new ArgumentException("A lightning indexer selects among past keys only: it needs causal attention.", nameof(indexer));
        if (indexer is not null && indexer.Dim != options.Dim)
            throw new ArgumentException($"The indexer reads inputs {indexer.Dim} wide, the layer's are {options.Dim}.", nameof(indexer));
        o = options;
        long qk = options.HeadDim + options.RopeDim;
        if (options.QRank > 0)
        {
            q_a_proj = new Linear(options.Dim, options.QRank, hasBias: options.Bias, device: device, dtype: dtype);
            q_a_layernorm = new RmsNorm(options.QRank, options.NormEps, device, dtype);
            q_b_proj = new Linear(options.QRank, options.Heads * qk, hasBias: false, device: device, dtype: dtype);
        }
        else q_proj = new Linear(options.Dim, options.Heads * qk, hasBias: options.Bias, device: device, dtype: dtype);
        kv_a_proj_with_mqa = new Linear(options.Dim, options.KvRank + options.RopeDim, hasBias: options.Bias, device: device, dtype: dtype);
        kv_a_layernorm = new RmsNorm(options.KvRank, options.NormEps, device, dtype);
        kv_b_proj = new Linear(options.KvRank, (long)options.Heads * 2 * options.HeadDim, hasBias: false, device: device, dtype: dtype);
        o_proj = new Linear((long)options.Heads * options.HeadDim, options.Dim, hasBias: options.Bias, device: device, dtype: dtype);
        this.indexer = indexer;
        rotary = new RotaryEmbedding(options.RopeDim, options.Context, options.RopeTheta, device, dtype);
        RegisterComponents();

        foreach (var linear in new[] { q_a_proj, q_b_proj, q_proj, kv_a_proj_with_mqa, kv_b_proj })
        {
            if (linear is null) continue;
            Init.Normal(linear.weight);
            Init.Zeros(linear.bias);
        }
        Init.ResidualOutput(o_proj.weight, options.Layers);
        Init.Zeros(o_proj.bias);
    }

    /// <summary>The layer's settings.</summary>
    public LatentAttentionOptions Options => o;

    /// <summary>The sparse-attention indexer, or null for dense attention.</summary>
    public LightningIndexer? Indexer => indexer;

    /// <summary>The weights, for the fused single-token step (<see cref="Kernels.SingleTokenDecoder"/>): the query path
    /// (q_a_proj, q_a_layernorm, q_b_proj with a query rank, else q_proj alone), the latent path, the output and the rotary tables.</summary>
    internal (Linear? QueryDown, RmsNorm? QueryNorm, Linear QueryUp, Linear LatentDown, RmsNorm LatentNorm, Linear LatentUp, Linear Output, RotaryEmbedding Rotary) Weights =>
        (q_a_proj, q_a_layernorm, q_b_proj ?? q_proj!, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj, rotary);

    /// <summary>Elements decoding caches per token: the latent, the rotated shared key, and the index key with an indexer.</summary>
    public long CacheElementsPerToken => o.KvRank + o.RopeDim + (indexer?.IndexDim ?? 0);

    /// <summary>
    /// Full sequence: normalised input [batch, time, Dim] at positions 0 … time − 1 → [batch, time, Dim]. With an
    /// indexer each query attends to its selected keys only, and in training mode the indexer's loss is kept for the trainer.
    /// </summary>
    public override Tensor forward(Tensor x)
    {
        CheckInput(x);
        using var scope = NewDisposeScope();
        var time = x.shape[1];
        CheckPositions(0, time);
        var (queryNope, queryRope) = Queries(x, 0);
        var (latents, keyRope) = Latents(x, 0);
        Tensor? indexKeys = null;
        // The indexer learns on a detached input (see LightningIndexer.Supervise); selection passes no gradient anyway.
        if (indexer is not null) indexKeys = indexer.Keys(x.detach());
        return Attend(x, queryNope, queryRope, latents, keyRope, indexKeys, 0, supervise: training).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Incremental forward for decoding: <paramref name="x"/> [batch, n, Dim] holds the n ≥ 1 new tokens at positions
    /// <paramref name="offset"/> … offset + n − 1, and <paramref name="state"/> this layer's cache of the tokens before.
    /// Caches per token only the normalised latent (<see cref="LayerState.Latents"/>, KvRank), the rotated shared rope key
    /// (<see cref="LayerState.RopeKeys"/>, RopeDim) and, with an indexer, the index key (<see cref="LayerState.IndexerKeys"/>,
    /// IndexDim). Equals the full forward's rows for these positions. For inference: cached values carry no gradient.
    /// </summary>
    public Tensor forward(Tensor x, LayerState state, long offset)
    {
        ArgumentNullException.ThrowIfNull(state);
        CheckInput(x);
        if (!o.Causal) throw new InvalidOperationException("Incremental decoding needs causal attention; this layer is bidirectional.");
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "Offset must not be negative.");
        if (state.Length(LayerState.Latents) != offset)
            throw new ArgumentException($"The layer's cache holds {state.Length(LayerState.Latents)} tokens, but the new ones start at position {offset}.", nameof(offset));
        var time = x.shape[1];
        CheckPositions(offset, time);
        using var scope = NewDisposeScope();
        var (queryNope, queryRope) = Queries(x, offset);
        var (latent, keyRope) = Latents(x, offset);
        var latents = state.Append(LayerState.Latents, latent, dim: 1);
        var keyRopes = state.Append(LayerState.RopeKeys, keyRope.squeeze(1), dim: 1).unsqueeze(1);
        var indexKeys = indexer is null ? null : state.Append(LayerState.IndexerKeys, indexer.Keys(x), dim: 1);
        return AttendAbsorbed(x, queryNope, queryRope, latents, keyRopes, indexKeys, offset).MoveToOuterDisposeScope();
    }

    // Position-free and rotated query parts, [batch, Heads, time, HeadDim] and [batch, Heads, time, RopeDim].
    private (Tensor Nope, Tensor Rope) Queries(Tensor x, long offset)
    {
        var projected = q_proj is not null ? q_proj.forward(x) : q_b_proj!.forward(q_a_layernorm!.forward(q_a_proj!.forward(x)));
        var query = Attention.SplitHeads(projected, o.Heads);
        var (cos, sin) = rotary.Angles(x.shape[1], offset);
        return (query.narrow(-1, 0, o.HeadDim), RotaryEmbedding.Rotate(query.narrow(-1, o.HeadDim, o.RopeDim), cos, sin));
    }

    // What is cached: the normalised latent [batch, time, KvRank] and the rotated shared rope key [batch, 1, time, RopeDim].
    private (Tensor Latent, Tensor KeyRope) Latents(Tensor x, long offset)
    {
        var compressed = kv_a_proj_with_mqa.forward(x);
        var latent = kv_a_layernorm.forward(compressed.narrow(-1, 0, o.KvRank));
        var (cos, sin) = rotary.Angles(x.shape[1], offset);
        var keyRope = RotaryEmbedding.Rotate(compressed.narrow(-1, o.KvRank, o.RopeDim).unsqueeze(1), cos, sin);
        return (latent, keyRope);
    }

    private Tensor Attend(Tensor x, Tensor queryNope, Tensor queryRope, Tensor latents, Tensor keyRope, Tensor? indexKeys, long offset, bool supervise)
    {
        long batch = latents.shape[0], keys = latents.shape[1];
        // kv_b_proj's rows are laid out per head as [k_nope | v].
        var expanded = Attention.SplitHeads(kv_b_proj.forward(latents), o.Heads);
        var key = torch.cat(new[] { expanded.narrow(-1, 0, o.HeadDim), keyRope.expand(batch, o.Heads, keys, o.RopeDim) }, dim: -1);
        var value = expanded.narrow(-1, o.HeadDim, o.HeadDim);
        var query = torch.cat(new[] { queryNope, queryRope }, dim: -1);
        // SDPA scales by 1/√(query width) = 1/√(HeadDim + RopeDim), DeepSeek's softmax scale (without YaRN's mscale).
        Tensor attended;
        if (indexer is not null)
        {
            // In training, one computation of the index scores serves selection and the indexer's loss.
            var keep = supervise ? indexer.SelectAndSupervise(query, key, x, indexKeys!, offset) : indexer.Select(x, indexKeys!, offset);
            attended = Attention.Masked(query, key, value, keep);
        }
        else if (!o.Causal) attended = Attention.Bidirectional(query, key, value);
        else attended = Attention.CausalFrom(query, key, value, offset);
        return o_proj.forward(Attention.MergeHeads(attended));
    }

    /// <summary>
    /// Decoding without re-expanding the cache (DeepSeek-V2's absorbed matrices): each head's key-up matrix
    /// W_uk (its k_nope rows of kv_b_proj) is applied to the query instead of to every cached latent, since
    /// q·(W_uk c) = (W_ukᵀ q)·c, and its value-up matrix W_uv to the attended latent instead of to every cached one,
    /// since Σ p·(W_uv c) = W_uv (Σ p·c). Attention then runs over the cache as it is, one head of [latent | rope key]
    /// keys and latent values shared by all query heads: O(KvRank) per head and cached token instead of
    /// O(KvRank·HeadDim). The full forward keeps the expanded form, which is cheaper when all positions are queries.
    /// </summary>
    private Tensor AttendAbsorbed(Tensor x, Tensor queryNope, Tensor queryRope, Tensor latents, Tensor keyRope, Tensor? indexKeys, long offset)
    {
        long time = queryNope.shape[2], keys = latents.shape[1];
        // kv_b_proj.weight [Heads·2·HeadDim, KvRank]: rows per head [k_nope | v].
        var perHead = kv_b_proj.weight!.view(o.Heads, 2L * o.HeadDim, o.KvRank);
        var keyUp = perHead.narrow(1, 0, o.HeadDim);
        var valueUp = perHead.narrow(1, o.HeadDim, o.HeadDim);
        // SDPA scales by 1/√(KvRank + RopeDim), the absorbed width; DeepSeek's scale is 1/√(HeadDim + RopeDim).
        var rescale = Math.Sqrt((double)(o.KvRank + o.RopeDim) / (o.HeadDim + o.RopeDim));
        var query = torch.cat(new[] { queryNope.matmul(keyUp), queryRope }, dim: -1) * rescale;
        var key = torch.cat(new[] { latents.unsqueeze(1), keyRope }, dim: -1);
        Tensor? keep = indexer is not null ? indexer.Select(x, indexKeys!, offset)
            : time > 1 ? Attention.CausalKeep(time, keys, offset, x.device)
            : null;
        var context = Attention.OverOneKeyValueHead(query, key, latents.unsqueeze(1), keep);
        return o_proj.forward(Attention.MergeHeads(context.matmul(valueUp.transpose(1, 2))));
    }

    private void CheckInput(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 3 || x.shape[2] != o.Dim)
            throw new ArgumentException($"Expected input [batch, time, {o.Dim}], got [{string.Join(", ", x.shape)}].", nameof(x));
    }

    private void CheckPositions(long offset, long time)
    {
        if (offset + time > o.Context)
            throw new ArgumentException($"Positions {offset}..{offset + time - 1} exceed the context of {o.Context} tokens.", nameof(offset));
    }
}
