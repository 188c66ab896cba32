using System.Linq;
using LlmEff.Generator.Model;

namespace LlmEff.Generator.Planning;

// The layout plan: every architectural decision a back end needs, made once by LayoutPlanner from a ModelSpec.
// Back ends (the TorchSharp module, the PyTorch twin) and sizing read it and decide nothing of their own. Plain
// equatable values, like the rest of the pipeline, so the incremental driver can compare plans between runs.

/// <summary>How a weight starts (GPT-2's scheme, which both back ends follow).</summary>
internal enum WeightInit
{
    /// <summary>N(0, 0.02²).</summary>
    Normal,

    /// <summary>N(0, (0.02 / √(2 · layers))²): projections that write into the residual stream, so the stream's
    /// variance does not grow with depth.</summary>
    ResidualOutput,

    /// <summary>PyTorch's nn.Linear default: weight and bias U(±1/√fan_in) (kaiming_uniform with a = √5).</summary>
    PyTorchUniform,
}

/// <summary>What mixes tokens in a layer.</summary>
internal enum TokenMixer { Attention, LatentAttention, ShortConvolution, CompressedAttention }

/// <summary>What a layer's feed-forward is.</summary>
internal enum FeedForwardKind { Dense, Mixture }

/// <summary>What layers take besides the hidden states, in the order they take them.</summary>
[System.Flags]
internal enum LayerInputs
{
    None = 0,

    /// <summary>The stack's rotary cos/sin tables for the positions in flight.</summary>
    RotaryAngles = 1,

    /// <summary>The keys and values a group's first layer projected, for the layers that reuse them.</summary>
    KeyValueShare = 2,
}

/// <summary>Which tensors of standard attention are the same tensor (what the QKV study varies).</summary>
internal enum QueryKeyAliasing
{
    /// <summary>Full: q, k and v are projected separately.</summary>
    None,

    /// <summary>NoKey: k := v (rotated for scoring where positions are rotary).</summary>
    KeysAreValues,

    /// <summary>NoQuery: q := k, so scores are symmetric.</summary>
    QueriesAreKeys,

    /// <summary>Shared: q := k := v, one projection.</summary>
    OneProjection,
}

/// <summary>How the model's one feed-forward class learns whether its linear layers are quantized.</summary>
internal enum FeedForwardQuantization
{
    /// <summary>No feed-forward network is quantized.</summary>
    None,

    /// <summary>Every one is: the class uses the model's settings.</summary>
    All,

    /// <summary>Some are and some are not (dense and shared vs routed experts): each is told at construction.</summary>
    PerInstance,
}

/// <summary>One linear layer: weight [Outputs, Inputs] (stored [Inputs, Outputs] when <see cref="Transposed"/>, GPT-2's
/// Conv1D) and a bias of <see cref="Outputs"/> when <see cref="Bias"/>.</summary>
/// <param name="Name">Its tensor name inside its block ("q_proj", "c_attn", …).</param>
/// <param name="Role">What it is, for messages ("query projection").</param>
/// <param name="InputName">The declared size its input width comes from ("Dim", "Hidden"), for messages.</param>
/// <param name="Target">The [Quant] target it belongs to.</param>
/// <param name="Quantized">Trained with fake quantization (a QuantizedLinear).</param>
internal sealed record LinearPlan(string Name, string Role, string InputName, long Inputs, long Outputs, bool Bias, bool Transposed,
    QuantTargetKind Target, bool Quantized, WeightInit Init)
{
    public long Weights => checked(Inputs * Outputs);

    public long Parameters => checked(Weights + (Bias ? Outputs : 0));
}

/// <summary>A norm over the last <see cref="Width"/> features: a weight, and a bias for LayerNorm.</summary>
internal sealed record NormPlan(string Name, NormKind Kind, long Width, double Eps)
{
    public long Parameters => Kind == NormKind.LayerNorm ? 2 * Width : Width;
}

/// <summary>A distinct input projection of standard attention, in q, k, v order: its short name ("q", "k", "v" or
/// "qkv" for Shared), its output width and whether it makes query heads (else key/value heads).</summary>
internal sealed record ProjectionPart(string Name, long Width, bool QueryHeads)
{
    /// <summary>Projections that layers reusing a group's keys and values do not have.</summary>
    public bool KeyValue => !QueryHeads;
}

/// <summary>Standard (per-head) self-attention.</summary>
/// <param name="Parts">The variant's distinct projections; with fused names they are slices of one matrix.</param>
/// <param name="Projections">The linear layers of a layer that projects its own keys and values.</param>
/// <param name="QueryOnlyProjections">The linear layers of a layer that reuses its group's keys and values (empty without sharing).</param>
/// <param name="RepeatedQueries">Queries are the keys but there are more query heads than key heads: attend once per
/// key head and repeat the result.</param>
/// <param name="QueryNorm">Per-head RMSNorm of the queries (QkNorm, when queries have their own projection).</param>
/// <param name="KeyNorm">Per-head RMSNorm of the keys (QkNorm; of the values when keys are the values).</param>
/// <param name="ScoreMixer">The QKV study's learned positional score term (PositionalScoreMixer: weight [1, 10, 1, 1], bias [1]).</param>
internal sealed record AttentionPlan(
    ProjectionKind Variant,
    int Heads,
    int KvHeads,
    int HeadDim,
    EquatableArray<ProjectionPart> Parts,
    EquatableArray<LinearPlan> Projections,
    EquatableArray<LinearPlan> QueryOnlyProjections,
    LinearPlan Output,
    QueryKeyAliasing Aliasing,
    bool RepeatedQueries,
    NormPlan? QueryNorm,
    NormPlan? KeyNorm,
    bool ScoreMixer,
    int ShareKvEvery,
    bool Quantized)
{
    /// <summary>Channels of the positional score term's fixed 2-D encoding (the QKV study's P[i, j]).</summary>
    public const int ScoreMixerChannels = 10;

    /// <summary>Parameters of the score term: a 1×1 convolution from <see cref="ScoreMixerChannels"/> channels to 1, with bias.</summary>
    public const long ScoreMixerParameters = ScoreMixerChannels + 1;

    public bool SharesKeyValues => ShareKvEvery > 1;

    /// <summary>Keys are not projected separately from values: the cache holds the values alone.</summary>
    public bool KeysAreValues => Aliasing is QueryKeyAliasing.KeysAreValues or QueryKeyAliasing.OneProjection;

    /// <summary>Queries are the keys: scores are symmetric.</summary>
    public bool QueriesAreKeys => Aliasing is QueryKeyAliasing.QueriesAreKeys or QueryKeyAliasing.OneProjection;

    public long QueryWidth => (long)Heads * HeadDim;

    /// <summary>The aliasing in words, for the generated code's comments.</summary>
    public string AliasingSummary => Aliasing switch
    {
        QueryKeyAliasing.KeysAreValues => "keys are the values",
        QueryKeyAliasing.QueriesAreKeys => "queries are the keys",
        QueryKeyAliasing.OneProjection => "one projection for Q, K and V",
        _ => "distinct Q, K and V",
    };

    public long KvWidth => (long)KvHeads * HeadDim;
}

/// <summary>DeepSeek's multi-head latent attention (the runtime's LatentAttention, Hugging Face DeepseekV3Attention names).</summary>
/// <param name="QueryDown">q_a_proj, with a query rank (else null).</param>
/// <param name="QueryNorm">q_a_layernorm over the compressed query, with a query rank.</param>
/// <param name="QueryUp">q_b_proj with a query rank, or q_proj projecting queries directly.</param>
/// <param name="LatentDown">kv_a_proj_with_mqa: the latent and the shared rotary key.</param>
/// <param name="LatentNorm">kv_a_layernorm over the latent.</param>
/// <param name="LatentUp">kv_b_proj: every head's key and value from the latent.</param>
internal sealed record LatentPlan(int Heads, int HeadDim, int KvRank, int RopeDim, int QRank, double RopeTheta,
    LinearPlan? QueryDown, NormPlan? QueryNorm, LinearPlan QueryUp, LinearPlan LatentDown, NormPlan LatentNorm, LinearPlan LatentUp, LinearPlan Output)
{
    /// <summary>The linear layers in the order the module registers them.</summary>
    public System.Collections.Generic.IEnumerable<LinearPlan> Linears
    {
        get
        {
            if (QueryDown is not null) yield return QueryDown;
            yield return QueryUp;
            yield return LatentDown;
            yield return LatentUp;
            yield return Output;
        }
    }

    public long Parameters => checked((QueryNorm?.Parameters ?? 0) + LatentNorm.Parameters + Linears.Sum(l => l.Parameters));
}

/// <summary>DeepSeek-V3.2's lightning indexer (the runtime's LightningIndexer): wq, wk, weights_proj, no biases.</summary>
internal sealed record IndexerPlan(int Heads, int Dim, int TopK, EquatableArray<LinearPlan> Linears)
{
    // Enumerable.Sum over longs is checked: an overflowing total throws rather than wraps.
    public long Parameters => Linears.Sum(l => l.Parameters);
}

/// <summary>LFM2's gated short convolution (the runtime's ShortConv): in_proj (Dim → 3·Dim), a causal depthwise
/// filter of <see cref="Kernel"/> taps per channel (conv.weight [Dim, 1, Kernel], conv.bias [Dim] with biases), out_proj.</summary>
internal sealed record ConvPlan(int Kernel, long Channels, bool Bias, LinearPlan InProjection, LinearPlan OutProjection)
{
    /// <summary>The block's name in its layer and its filter's name inside the block (Hugging Face Lfm2's conv.conv).</summary>
    public const string BlockName = "conv", FilterName = "conv";

    /// <summary>Filter taps: multiply-accumulates per token like matrix weights.</summary>
    public long FilterWeights => checked(Channels * Kernel);

    public long Parameters => checked(InProjection.Parameters + OutProjection.Parameters + FilterWeights + (Bias ? Channels : 0));

    /// <summary>Decoding state per sequence: the last Kernel − 1 inputs of every channel (constant, whatever the context).</summary>
    public long StateElements => checked(Channels * (Kernel - 1));
}

/// <summary>DeepSeek V4's KV compressor (the runtime's Compressor): wkv and wgate project to <see cref="Channels"/>, a
/// learned position bias ape [Ratio, Channels] and an RMS norm over <see cref="Width"/>; always fp32.</summary>
/// <param name="Width">Width of one compressed entry.</param>
/// <param name="Ratio">Tokens per entry.</param>
/// <param name="Overlap">Each entry also pools the previous window (CSA, and every indexer's compressor).</param>
internal sealed record CompressorPlan(long Width, int Ratio, bool Overlap)
{
    /// <summary>Tensor names inside the compressor (DeepSeek's).</summary>
    public const string Values = "wkv", Gates = "wgate", PositionBias = "ape", Norm = "norm";

    /// <summary>Outputs of wkv and wgate: twice the width when overlapping.</summary>
    public long Channels => checked((Overlap ? 2L : 1L) * Width);

    /// <summary>Multiply-accumulates per token: wkv and wgate.</summary>
    public long Weights(long dim) => checked(2 * dim * Channels);

    public long Parameters(long dim) => checked(Weights(dim) + Ratio * Channels + Width);

    /// <summary>Decoding state per sequence: values and gate logits of the unfinished window(s), c·Ratio slots × c·Width
    /// each (c = 2 when overlapping), as DeepSeek's reference allocates kv_state and score_state.</summary>
    public long StateElements => checked(2 * ((Overlap ? 2L : 1L) * Ratio) * Channels);
}

/// <summary>One compressed-attention layer's kind and ratio (DeepSeek's compress_ratios entry: 0, SparseRatio or HeavyRatio).</summary>
internal sealed record CompressedLayer(CompressedKind Kind, int Ratio);

/// <summary>
/// DeepSeek V4's attention (the runtime's CompressedAttention, deepseek-ai's V4 names): wq_a, q_norm, wq_b, wkv, kv_norm,
/// wo_a (the groups' projections stacked), wo_b and the sink attn_sink [Heads] in every layer; a compressor in CSA and HCA
/// layers; in CSA layers an indexer (wq_b, weights_proj and its own overlapping compressor). No biases. The runtime block
/// builds all of it from one CompressedAttentionOptions per layer kind; listed so sizing and checks see every tensor.
/// </summary>
internal sealed record CompressedPlan(int Heads, int HeadDim, int RopeDim, int QueryRank, int OutputGroups, int OutputRank, int Window,
    int SparseRatio, int HeavyRatio, int IndexerHeads, int IndexerDim, int TopK, IndexerPrecisionKind Precision, bool Bf16Scores,
    double RopeTheta, double NormEps,
    LinearPlan QueryDown, NormPlan QueryNorm, LinearPlan QueryUp, LinearPlan KeyValue, NormPlan KeyValueNorm, LinearPlan OutputDown, LinearPlan OutputUp,
    LinearPlan IndexerQuery, LinearPlan IndexerWeights)
{
    /// <summary>Names of the sink parameter, the compressor and the indexer inside the block.</summary>
    public const string SinkName = "attn_sink", CompressorName = "compressor", IndexerName = "indexer";

    /// <summary>The linear layers every kind has, in the order the block registers them.</summary>
    public System.Collections.Generic.IEnumerable<LinearPlan> Linears
    {
        get
        {
            yield return QueryDown;
            yield return QueryUp;
            yield return KeyValue;
            yield return OutputDown;
            yield return OutputUp;
        }
    }

    /// <summary>The attention compressor of a layer (null for sliding-window layers).</summary>
    public CompressorPlan? Compressor(CompressedLayer layer) =>
        layer.Kind == CompressedKind.SlidingWindow ? null : new CompressorPlan(HeadDim, layer.Ratio, Overlap: layer.Kind == CompressedKind.CompressedSparse);

    /// <summary>The indexer's compressor (CSA layers only; always overlapping).</summary>
    public CompressorPlan? IndexerCompressor(CompressedLayer layer) =>
        layer.Kind == CompressedKind.CompressedSparse ? new CompressorPlan(IndexerDim, layer.Ratio, Overlap: true) : null;

    /// <summary>Multiply-accumulates per token of a layer's weights: projections, compressors, indexer.</summary>
    public long Weights(CompressedLayer layer, long dim) => checked(Linears.Sum(l => l.Weights)
        + (Compressor(layer)?.Weights(dim) ?? 0)
        + (layer.Kind == CompressedKind.CompressedSparse ? IndexerQuery.Weights + IndexerWeights.Weights + IndexerCompressor(layer)!.Weights(dim) : 0));

    /// <summary>Every parameter of a layer of this kind (equal to CompressedAttentionSizing.Parameters).</summary>
    public long Parameters(CompressedLayer layer, long dim) => checked(Linears.Sum(l => l.Parameters) + QueryNorm.Parameters + KeyValueNorm.Parameters + Heads
        + (Compressor(layer)?.Parameters(dim) ?? 0)
        + (layer.Kind == CompressedKind.CompressedSparse ? IndexerQuery.Parameters + IndexerWeights.Parameters + IndexerCompressor(layer)!.Parameters(dim) : 0));
}

/// <summary>One feed-forward network <see cref="Hidden"/> wide.</summary>
/// <param name="Linears">gate_proj (SwiGLU), up_proj, down_proj; or c_fc (gate and up fused for SwiGLU), c_proj.</param>
/// <param name="ClampLimit">SwiGLU clamping (DeepSeek V4): before SiLU the gate is clamped to at most it, the up branch
/// to [−it, it]; null: none. Only SwiGLU feed-forwards carry one.</param>
internal sealed record FeedForwardPlan(string Role, long Hidden, ActivationKind Activation, EquatableArray<LinearPlan> Linears, bool Quantized,
    double? ClampLimit = null)
{
    /// <summary>The input projections: gate then up (SwiGLU) or up; or c_fc alone, gate and up fused for SwiGLU.</summary>
    public System.Collections.Generic.IEnumerable<LinearPlan> Inputs => Linears.Take(Linears.Count - 1);

    public LinearPlan Output => Linears[Linears.Count - 1];

    public long Weights => Linears.Sum(l => l.Weights);

    public long Parameters => Linears.Sum(l => l.Parameters);
}

/// <summary>A mixture of experts: a router (weight [Experts, Dim]; a persistent selection-bias buffer
/// e_score_correction_bias [Experts] with auxiliary-loss-free balancing), the routed experts and the shared ones.</summary>
internal sealed record MixturePlan(MoeSpec Settings, FeedForwardPlan Expert, FeedForwardPlan? Shared)
{
    /// <summary>Component names inside the mixture (DeepSeek-V3's, so checkpoints line up): the router, the routed
    /// experts (a list: experts.0, experts.1, …), the shared experts fused into one feed-forward, and the router's
    /// selection-bias buffer.</summary>
    public const string RouterName = "gate", ExpertsName = "experts", SharedName = "shared_experts", SelectionBiasName = "e_score_correction_bias";

    public long RouterWeights => checked((long)Settings.Experts * Expert.Linears[0].Inputs);

    public bool SelectionBias => Settings.Balance == BalanceKind.AuxLossFree;

    /// <summary>The token→experts table of a hash-routed layer's router (DeepSeek V4's name): [Vocab, Active] int64, a
    /// persistent buffer.</summary>
    public const string TokenTableName = "tid2eid";

    /// <summary>Some routed layers choose experts from the token→experts table, so the layers take the token ids.</summary>
    public bool HashRouted => Settings.HashLayers > 0;

    /// <summary>Whether 0-based layer <paramref name="index"/> routes by the table. Its router keeps its weight, has the
    /// table and no selection bias (DeepSeek V4's hash <c>Gate</c>: <c>tid2eid</c>, <c>bias = None</c>).</summary>
    public bool IsHashRouted(int index) => Settings.IsHashRouted(index);

    /// <summary>Whether 0-based routed layer <paramref name="index"/> keeps a selection bias.</summary>
    public bool SelectionBiasIn(int index) => SelectionBias && !IsHashRouted(index);

    public long Parameters => checked(RouterWeights + Settings.Experts * Expert.Parameters + (Shared?.Parameters ?? 0));
}

/// <summary>DeepSeek V4's residual streams (mHC, the runtime's HyperConnections): the residual is
/// <see cref="Streams"/> copies of the hidden state. Every layer owns two maps, named as DeepSeek's reference does:
/// <c>hc_attn_fn</c> [(2 + n)·n, n·Dim], <c>hc_attn_base</c> [(2 + n)·n], <c>hc_attn_scale</c> [3] around attention (or the
/// short convolution), <c>hc_ffn_*</c> around the feed-forward; the stack owns the final collapse <c>hc_head_fn</c>
/// [n, n·Dim], <c>hc_head_base</c> [n], <c>hc_head_scale</c> [1]. All are parameters of the layer (the stack) itself.</summary>
/// <param name="NormEps">Epsilon of the RMS normalisation of the flattened streams (the model's NormEps; DeepSeek's norm_eps).</param>
internal sealed record StreamsPlan(int Streams, int SinkhornIterations, long Dim, double NormEps)
{
    /// <summary>Name prefixes of the maps around attention, around the feed-forward, and of the final collapse.</summary>
    public const string AttentionMap = "hc_attn", FeedForwardMap = "hc_ffn", HeadMap = "hc_head";

    /// <summary>DeepSeek V4's hc_eps: added to pre, to the softmax and to every Sinkhorn denominator.</summary>
    public const double Eps = 1e-6;

    /// <summary>Rows of a block map: n for pre, n for post, n·n for the mixing matrix.</summary>
    public long MixRows => checked((2L + Streams) * Streams);

    /// <summary>Width of the flattened streams, the maps' input: n·Dim.</summary>
    public long Width => checked(Streams * Dim);

    /// <summary>The tensors of one block map (<paramref name="map"/>: hc_attn or hc_ffn) or of the head, in the order
    /// the layer registers them: fn, base, scale.</summary>
    public System.Collections.Generic.IEnumerable<(string Name, long[] Shape)> Tensors(string map)
    {
        var head = map == HeadMap;
        var rows = head ? Streams : MixRows;
        yield return (map + "_fn", new[] { rows, Width });
        yield return (map + "_base", new[] { rows });
        yield return (map + "_scale", new long[] { head ? 1 : 3 });
    }

    /// <summary>Weights of one block map's matrix: multiply-accumulates per token, like any linear layer's.</summary>
    public long MapWeights => checked(MixRows * Width);

    public long HeadWeights => checked((long)Streams * Width);

    /// <summary>Parameters of one block map: the matrix, the biases and 3 gates.</summary>
    public long MapParameters => checked(MapWeights + MixRows + 3);

    /// <summary>Parameters of the final collapse: the matrix, n biases and 1 gate.</summary>
    public long HeadParameters => checked(HeadWeights + Streams + 1);
}

/// <summary>One stream of a layer's decoding cache.</summary>
/// <param name="Slot">Its stream number in the runtime's LayerState.</param>
/// <param name="Name">What it holds ("keys", "values", "latent", …).</param>
/// <param name="ElementsPerToken">Elements it adds per token (one sequence); 0 for a fixed-size state.</param>
/// <param name="StateElements">Elements of a fixed-size state (a convolution's last inputs); 0 for a growing stream.</param>
/// <param name="TokensPerEntry">Tokens per entry the stream adds (compressed entries: one per window of this many tokens);
/// <paramref name="ElementsPerToken"/> is then the elements of one entry.</param>
/// <param name="MostEntries">Entries the stream keeps at most (a sliding window); 0: it keeps every entry.</param>
internal sealed record CacheStream(int Slot, string Name, long ElementsPerToken, long StateElements = 0, int TokensPerEntry = 1, long MostEntries = 0)
{
    /// <summary>Elements one sequence's stream holds after <paramref name="tokens"/> tokens, a fixed state included.</summary>
    public long Elements(long tokens)
    {
        checked
        {
            var entries = tokens / TokensPerEntry;
            if (MostEntries > 0) entries = System.Math.Min(entries, MostEntries);
            return StateElements + ElementsPerToken * entries;
        }
    }

    /// <summary>A stream that grows by <see cref="ElementsPerToken"/> with every token, without bound.</summary>
    public bool PerToken => TokensPerEntry == 1 && MostEntries == 0;
}

/// <summary>One layer of the stack: what mixes its tokens, whether it projects its own keys and values, its
/// feed-forward, and what decoding caches for it.</summary>
/// <param name="Compressed">A compressed-attention layer's kind and ratio; null for other mixers.</param>
internal sealed record LayerPlan(int Index, TokenMixer Mixer, bool OwnsKeysAndValues, FeedForwardKind FeedForward, EquatableArray<CacheStream> Cache,
    CompressedLayer? Compressed = null);

/// <summary>Rotary tables of <see cref="Dims"/> channels for positions 0 … Context − 1.</summary>
internal sealed record RotaryPlan(int Dims, int Context, double Theta);

/// <summary>Every decision about a model's module layout, in one place.</summary>
/// <param name="StackRotary">Rotary tables the stack owns and hands to every attention layer (null: no rotary
/// positions, or latent attention, which rotates its own decoupled key).</param>
/// <param name="Dense">The dense feed-forward of layers without experts (null when every layer routes).</param>
/// <param name="OutputHead">lm_head; null when tied to the token embedding.</param>
/// <param name="Decodes">Cached decoding is generated: causal models whose scores do not need the whole score map.</param>
/// <param name="ExposesScores">Pre-softmax scores can be inspected (standard attention).</param>
/// <param name="Streams">DeepSeek V4's residual streams around every block; null: one ordinary residual.</param>
internal sealed record LayoutPlan(
    NamingScheme Names,
    int Vocab,
    int Dim,
    int Context,
    bool Causal,
    bool Bias,
    bool LearnedPositions,
    RotaryPlan? StackRotary,
    LayerInputs LayerInputs,
    NormPlan MixerNorm,
    NormPlan FeedForwardNorm,
    NormPlan FinalNorm,
    AttentionPlan? Attention,
    LatentPlan? Latent,
    IndexerPlan? Indexer,
    ConvPlan? Conv,
    FeedForwardPlan? Dense,
    MixturePlan? Mixture,
    FeedForwardQuantization FeedForwardQuantization,
    LinearPlan? OutputHead,
    EquatableArray<LayerPlan> Layers,
    bool Decodes,
    bool ExposesScores,
    bool Checkpointing,
    QuantSpec? Quant,
    InitKind Init = InitKind.Gpt2,
    CompressedPlan? Compressed = null,
    StreamsPlan? Streams = null)
{
    /// <summary>The token input carries a bias of Dim (the one-hot symbols through a biased linear layer, as with
    /// PyTorch's defaults): <c>x = E[token] + b (+ positions)</c>.</summary>
    public bool InputBias => Init == InitKind.PyTorchDefault;

    /// <summary>Standard deviation the learned position table starts with: N(0, 1) is nn.Embedding's default,
    /// 0.01 GPT-2's scheme here.</summary>
    public double PositionStd => Init == InitKind.PyTorchDefault ? 1.0 : 0.01;

    /// <summary>Half-width of the uniform start of the token embedding and its bias with PyTorch's defaults: the
    /// one-hot layer's fan-in is the vocabulary, so U(±1/√Vocab).</summary>
    public double InputBound => 1.0 / System.Math.Sqrt(Vocab);

    /// <summary>Standard deviation of the positional score mixer's weights with PyTorch's defaults (the study's code
    /// draws them N(0, 0.02²)); null: the mixer's own start (Σw ≈ 1).</summary>
    public double? ScoreMixerStd => Init == InitKind.PyTorchDefault ? 0.02 : null;

    public bool Hybrid => Conv is not null;

    /// <summary>Some layers keep the dense feed-forward and later ones route to experts.</summary>
    public bool MixedFeedForward => Dense is not null && Mixture is not null;

    public bool TiedEmbeddings => OutputHead is null;

    public bool SharesKeyValues => Attention is { SharesKeyValues: true };

    /// <summary>Some layer has an indexer that trains on a distillation loss of its own (V3.2's lightning indexer, V4's
    /// CSA indexer), which the trainer adds to the next-token loss.</summary>
    public bool TrainsIndexers => Indexer is not null || Layers.Any(l => l.Compressed is { Kind: CompressedKind.CompressedSparse });

    /// <summary>A one-token decoding step hands libtorch's threads to the runtime's single-token kernels
    /// (<c>SingleTokenStep.HandOverThreads</c>). Only where every product of the step can reach them: a fake-quantized or packed
    /// layer (<c>[Quant]</c>) dequantizes through libtorch, and a weight stored transposed (GPT-2's Conv1D) is not the
    /// kernel's layout, so those steps would lose libtorch's threads and gain nothing.</summary>
    public bool DecodesOnKernels => Decodes && Quant is null && !Names.FusedProjections;

    /// <summary>
    /// A one-token decoding step runs whole in the runtime's fused kernel (<c>SingleTokenDecoder</c>): every layer a
    /// pre-norm block that the kernel computes as the module does. That is RMSNorm everywhere, plain SwiGLU feed-forwards
    /// (no clamp; dense, or a mixture of them chosen by scores, not by a hash table), and as token mixer one of: standard attention with its own q and v projections and its own
    /// k or the values as keys (Full or NoKey; rotary or no positions, any number of key/value heads, QK norm or none; no
    /// queries that are keys, no score term, no shared keys and values),
    /// LFM2's short convolution, or latent attention without an indexer. Nothing else in the stack (no learned positions,
    /// input bias or residual streams). Biases on the linear layers and an untied head are fine. For a small model a step
    /// through libtorch is mostly the cost of its dozens of operations per layer, not their arithmetic; other layouts
    /// take the operation-by-operation path.
    /// </summary>
    public bool DecodesInOneKernel =>
        DecodesOnKernels && !LearnedPositions && !InputBias && Streams is null
        && (Attention is null || Attention is { Aliasing: QueryKeyAliasing.None or QueryKeyAliasing.KeysAreValues, ScoreMixer: false, SharesKeyValues: false, RepeatedQueries: false })
        && Indexer is null && Compressed is null
        && (Dense is null || PlainSwiGlu(Dense))
        && (Mixture is null || Mixture is { HashRouted: false } && PlainSwiGlu(Mixture.Expert) && (Mixture.Shared is null || PlainSwiGlu(Mixture.Shared)))
        && MixerNorm.Kind == NormKind.RmsNorm && FeedForwardNorm.Kind == NormKind.RmsNorm && FinalNorm.Kind == NormKind.RmsNorm
        && Layers.All(l => l.OwnsKeysAndValues && l.Mixer is TokenMixer.Attention or TokenMixer.ShortConvolution or TokenMixer.LatentAttention);

    private static bool PlainSwiGlu(FeedForwardPlan feedForward) => feedForward is { Activation: ActivationKind.SwiGlu, ClampLimit: null, Quantized: false };

    public bool Takes(LayerInputs input) => (LayerInputs & input) != 0;
}
