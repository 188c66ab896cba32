using System;

namespace LlmEff;

/// <summary>
/// Declares a transformer language model (decoder-only by default; an encoder with <c>Causal = false</c>). Put it on a <c>partial class</c>; the LlmEff generator emits
/// the TorchSharp module and its size facts into the other half of the class.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class ModelAttribute : Attribute
{
    /// <summary>Vocabulary size (rows of the token embedding). Required.</summary>
    public int Vocab { get; set; }

    /// <summary>Model width <c>d</c>. Required.</summary>
    public int Dim { get; set; }

    /// <summary>Number of transformer blocks. Required.</summary>
    public int Layers { get; set; }

    /// <summary>Maximum sequence length: sizes the learned position table and the rotary cache, and the
    /// context at which <c>FlopsPerToken</c> is counted. Required.</summary>
    public int Context { get; set; }

    /// <summary>Output head shares the token-embedding matrix. Default <c>true</c>.</summary>
    public bool TiedEmbeddings { get; set; }

    /// <summary>Normalization kind. Default <see cref="LlmEff.Norm.RmsNorm"/>.</summary>
    public Norm Norm { get; set; }

    /// <summary>Positional scheme. Default <see cref="LlmEff.Positions.Rope"/>.</summary>
    public Positions Positions { get; set; }

    /// <summary>Linear layers carry biases. Default <c>false</c>.</summary>
    public bool Bias { get; set; }

    /// <summary>Rotary base frequency θ. Default 10000.</summary>
    public double RopeTheta { get; set; }

    /// <summary>Epsilon of every norm. Default 1e-5.</summary>
    public double NormEps { get; set; }

    /// <summary>Causal (decoder, the default) or bidirectional attention (<c>false</c>: an encoder whose every
    /// position sees the whole sequence; the output is still one distribution per token).</summary>
    public bool Causal { get; set; }

    /// <summary>Parameter naming scheme. Default <see cref="ParameterNaming.Llama"/>.</summary>
    public ParameterNaming Naming { get; set; }

    /// <summary>Budget for the KV cache of one sequence at full <see cref="Context"/>, in bytes at bf16 (2 bytes per
    /// element). Over it, warning LLM014 names the cache size and the KvHeads or variant that would fit. Default: none.</summary>
    public long KvBudgetBytes { get; set; }

    /// <summary>How the weights start. Default <see cref="InitScheme.Gpt2"/>; <see cref="InitScheme.PyTorchDefault"/>
    /// reproduces code built from PyTorch's default layers (and gives every linear layer, the head included, a bias).</summary>
    public InitScheme Init { get; set; }

    /// <summary>Activation checkpointing: each block keeps only its input during training and recomputes its
    /// forward in backward (less peak memory for about one more forward per step). Default false.</summary>
    public bool Checkpointing { get; set; }
}

/// <summary>Self-attention of every block. Optional: without it, full multi-head attention with
/// <c>Heads = Dim / 64</c>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class AttentionAttribute : Attribute
{
    /// <summary>Declares attention with the given projection variant.</summary>
    public AttentionAttribute(Projections projections = Projections.Full) => Projections = projections;

    /// <summary>Which projections exist.</summary>
    public Projections Projections { get; }

    /// <summary>Query heads. Required when the attribute is present.</summary>
    public int Heads { get; set; }

    /// <summary>Key/value heads (GQA when fewer than <see cref="Heads"/>, MQA when 1). Default: <see cref="Heads"/>.</summary>
    public int KvHeads { get; set; }

    /// <summary>Width of one head. Default: <c>Dim / Heads</c>.</summary>
    public int HeadDim { get; set; }

    /// <summary>For <see cref="LlmEff.Projections.NoQuery"/> and <see cref="LlmEff.Projections.Shared"/>, whose scores
    /// are symmetric: add the study's 2-D sinusoidal positional term, mixed by a learned 1×1 convolution, to the
    /// score map (11 parameters per layer). Default <c>false</c>; other variants ignore it (warning LLM013).</summary>
    public bool BreakSymmetry { get; set; }

    /// <summary>Cross-layer KV sharing: in each group of this many consecutive layers only the first projects keys
    /// and values; the others reuse them (fewer parameters, a KV cache that many times smaller). Needs a query
    /// projection of each layer's own (<see cref="LlmEff.Projections.Full"/> or <see cref="LlmEff.Projections.NoKey"/>).
    /// Default 1: every layer has its own.</summary>
    public int ShareKvEvery { get; set; }

    /// <summary>How keys and values are formed: <see cref="AttentionKind.Standard"/> (projected per head, as the
    /// projection variant says) or <see cref="AttentionKind.Latent"/>, DeepSeek's multi-head latent attention, which
    /// caches one compressed vector of <see cref="KvRank"/> plus a shared rotary key of <see cref="RopeDim"/> per token
    /// and layer. Default <see cref="AttentionKind.Standard"/>.</summary>
    public AttentionKind Kind { get; set; }

    /// <summary>Latent attention: width of the compressed key/value vector (DeepSeek-V3: 512). Required with
    /// <see cref="AttentionKind.Latent"/>; at most <c>Dim</c>.</summary>
    public int KvRank { get; set; }

    /// <summary>Latent attention: width of the decoupled rotary part of queries and keys (DeepSeek-V3: 64). Required
    /// with <see cref="AttentionKind.Latent"/>; even.</summary>
    public int RopeDim { get; set; }

    /// <summary>Latent attention: width of the compressed query (DeepSeek-V3: 1536). Default 0: queries are projected
    /// directly, without compression.</summary>
    public int QRank { get; set; }

    /// <summary>Per-head RMSNorm of queries and keys before the rotation (LFM2, Qwen3, OLMo-2): steadier attention
    /// logits for 2·HeadDim parameters per layer. Default <c>false</c>.</summary>
    public bool QkNorm { get; set; }

    /// <summary>Compressed attention: groups of heads whose outputs share one low-rank projection (DeepSeek V4's
    /// <c>o_groups</c>; Flash: 8). Required with <see cref="AttentionKind.Compressed"/>; must divide <see cref="Heads"/>.</summary>
    public int OutputGroups { get; set; }

    /// <summary>Compressed attention: rank of each output group's projection (<c>o_lora_rank</c>; Flash: 1024).
    /// Required with <see cref="AttentionKind.Compressed"/>.</summary>
    public int OutputRank { get; set; }

    /// <summary>Compressed attention: tokens of the sliding window every layer attends to, the query's own included
    /// (<c>sliding_window</c>; Flash: 128). Required with <see cref="AttentionKind.Compressed"/>.</summary>
    public int SlidingWindow { get; set; }
}

/// <summary>
/// DeepSeek V4's per-layer attention kinds (its <c>compress_ratios</c>), with <c>[Attention(Kind = AttentionKind.Compressed)]</c>.
/// Layers listed in <see cref="Sparse"/> are CSA (overlapping windows of <see cref="SparseRatio"/> tokens compressed into
/// one entry each, of which an indexer keeps the <see cref="TopK"/> best per query); layers in <see cref="Heavy"/> are HCA
/// (every complete window of <see cref="HeavyRatio"/> tokens, no indexer); the layers in neither list attend to the
/// sliding window only. DeepSeek-V4-Flash: <c>Sparse = "2,4,...,42", Heavy = "3,5,...,41"</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class CompressedLayersAttribute : Attribute
{
    /// <summary>0-based CSA layers, comma-separated, ranges <c>a-b</c> inclusive, as <see cref="LayersAttribute.Attention"/>.</summary>
    public string? Sparse { get; set; }

    /// <summary>0-based HCA layers, in the same form; no layer may be in both lists.</summary>
    public string? Heavy { get; set; }

    /// <summary>Tokens per compressed entry in CSA layers (Flash: 4). Default 4; at least 2.</summary>
    public int SparseRatio { get; set; }

    /// <summary>Tokens per compressed entry in HCA layers (Flash: 128). Default 128; at least 2.</summary>
    public int HeavyRatio { get; set; }

    /// <summary>CSA: compressed entries each query keeps (<c>index_topk</c>; Flash: 512). Required with <see cref="Sparse"/>.</summary>
    public int TopK { get; set; }

    /// <summary>CSA: indexer heads (<c>index_n_heads</c>; Flash: 64). Required with <see cref="Sparse"/>.</summary>
    public int IndexerHeads { get; set; }

    /// <summary>CSA: width of an indexer head and of the index key cached per entry (<c>index_head_dim</c>; Flash: 128);
    /// a power of two (the Hadamard rotation) and a multiple of the precision's block. Required with <see cref="Sparse"/>.</summary>
    public int IndexerDim { get; set; }

    /// <summary>CSA: precision of the indexer's rotated queries and keys. Default <see cref="IndexKeyPrecision.Fp4"/>,
    /// DeepSeek's rule (E2M1 with a never-clipping power-of-two scale per 32).</summary>
    public IndexKeyPrecision IndexerPrecision { get; set; }

    /// <summary>CSA: round the index scores to bf16 before ranking, as DeepSeek's kernel does. Default <c>false</c>.</summary>
    public bool Bf16Scores { get; set; }
}

/// <summary>
/// Which layers are attention blocks when the model mixes block kinds (a hybrid). The other layers are the kind
/// another attribute declares, today <see cref="ShortConvAttribute"/>: LFM2-8B-A1B reads
/// <c>[Layers(Attention = "2,6,10,14,18,21")]</c> with <c>[ShortConv(Kernel = 3)]</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class LayersAttribute : Attribute
{
    /// <summary>0-based attention layers, comma-separated; ranges <c>a-b</c> are inclusive ("0-3, 8"). Required.</summary>
    public string? Attention { get; set; }
}

/// <summary>
/// LFM2's gated short convolution for the layers <see cref="LayersAttribute"/> does not make attention layers:
/// <c>B, C, x = in_proj(h)</c>, <c>out_proj(C ⊙ conv(B ⊙ x))</c> with a causal depthwise convolution. Its decoding
/// state is the last <c>Kernel − 1</c> inputs: constant, whatever the context.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class ShortConvAttribute : Attribute
{
    /// <summary>Convolution width in tokens. Default 3 (LFM2).</summary>
    public int Kernel { get; set; }
}

/// <summary>
/// DeepSeek-V3.2's sparse attention: a lightning indexer scores every past token with
/// <c>Σ_j w_j·ReLU(q_j·k)</c> and each query attends only to its <see cref="TopK"/> best. Causal models only.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class SparseAttentionAttribute : Attribute
{
    /// <summary>Indexer heads (DeepSeek-V3.2: 64). Required.</summary>
    public int IndexerHeads { get; set; }

    /// <summary>Width of one indexer head and of the index key cached per token (DeepSeek-V3.2: 128). Required.</summary>
    public int IndexerDim { get; set; }

    /// <summary>Keys each query attends to (DeepSeek-V3.2: 2048). Required, positive; at or beyond the sequence
    /// length the attention is dense.</summary>
    public int TopK { get; set; }
}

/// <summary>Feed-forward network of every block. Optional: without it, SwiGLU with the default width.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class MlpAttribute : Attribute
{
    /// <summary>Hidden width. Default: <c>4·Dim</c> for GELU; for SwiGLU <c>8·Dim/3</c> rounded up to a multiple of 64.</summary>
    public int Hidden { get; set; }

    /// <summary>Activation. Default <see cref="LlmEff.Activation.SwiGlu"/>.</summary>
    public Activation Activation { get; set; }

    /// <summary>SwiGLU clamping, as DeepSeek V4 stabilises low-precision training (V4: 10): before SiLU the gate branch
    /// is clamped to at most this and the linear (up) branch to [−limit, limit], in every SwiGLU feed-forward (dense
    /// MLPs and experts, shared ones included). Must be positive; SwiGLU only. Default: no clamping.</summary>
    public double ClampLimit { get; set; }
}

/// <summary>
/// Replaces the feed-forward network of layers <c>FirstLayer</c> and on with a mixture of experts: a router picks
/// <see cref="Active"/> of <see cref="Experts"/> feed-forward experts per token (only those run), plus
/// <see cref="Shared"/> always-on experts. Experts use the <see cref="MlpAttribute.Activation"/> of the model.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class MoEAttribute : Attribute
{
    /// <summary>Routed experts per layer. Required.</summary>
    public int Experts { get; set; }

    /// <summary>Routed experts each token uses (top-k). Required; at most <see cref="Experts"/>.</summary>
    public int Active { get; set; }

    /// <summary>Always-on shared experts, each <see cref="ExpertHidden"/> wide (DeepSeek-V3 has 1). Default 0.</summary>
    public int Shared { get; set; }

    /// <summary>Hidden width of each expert. Default: the dense MLP width (<see cref="MlpAttribute.Hidden"/>).</summary>
    public int ExpertHidden { get; set; }

    /// <summary>0-based first layer with experts; earlier layers keep the dense MLP (DeepSeek-V3: 3, LFM2-8B-A1B: 2). Default 0.</summary>
    public int FirstLayer { get; set; }

    /// <summary>Router scoring. Default <see cref="RouterScoring.Softmax"/>.</summary>
    public RouterScoring Router { get; set; }

    /// <summary>Load balancing. Default <see cref="ExpertBalance.AuxLoss"/>.</summary>
    public ExpertBalance Balance { get; set; }

    /// <summary>Whether the chosen experts' scores are renormalised to sum to one. Default true.</summary>
    public bool NormalizeWeights { get; set; }

    /// <summary>Factor on the routed experts' combined output (DeepSeek-V3: 2.5). Default 1.</summary>
    public double RoutedScale { get; set; }

    /// <summary>Weight of the auxiliary balancing loss (<see cref="ExpertBalance.AuxLoss"/>). Default 0.01.</summary>
    public double AuxLossWeight { get; set; }

    /// <summary>Step by which the selection bias moves per training step (<see cref="ExpertBalance.AuxLossFree"/>). Default 0.001.</summary>
    public double BiasUpdateRate { get; set; }

    /// <summary>Weight α of DeepSeek-V3's complementary sequence-wise balance loss, which keeps any one sequence from
    /// piling onto a few experts while the batch as a whole is balanced (V3: 0.0001; V4 keeps "a small" one). Works with
    /// every <see cref="Balance"/>. Default 0: none.</summary>
    public double SequenceAuxLossWeight { get; set; }

    /// <summary>Hash routing, as DeepSeek V4 routes its first 3 mixture layers: the first this many layers with experts
    /// choose each token's <see cref="Active"/> experts by its id, from a fixed table <c>tid2eid</c> [Vocab, Active]
    /// (a buffer drawn from the model's seed and saved in checkpoints); their router's scores still weigh the chosen.
    /// Hash layers keep no selection bias and add no balancing loss: the table, not the scores, decides the load.
    /// At most the layers with experts. Default 0: every layer routes by its scores.</summary>
    public int HashLayers { get; set; }
}

/// <summary>
/// Trains and stores the model's linear weights in a low-precision <see cref="QuantFormat"/>: once training reaches
/// <see cref="From"/>, every forward pass uses the targeted weights quantized and dequantized ("fake quantization"),
/// and gradients pass the rounding unchanged (the straight-through estimator), so the weights learn to sit where the
/// format can hold them. The fp32 weights and checkpoints keep their names and shapes; a trained model can then be
/// exported with the targeted weights packed (<c>LlmEff.Quantization.PackedWeights</c>).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class QuantAttribute : Attribute
{
    /// <summary>Declares quantization-aware training into <paramref name="format"/>.</summary>
    public QuantAttribute(QuantFormat format) => Format = format;

    /// <summary>The weight format. Blocks run along each weight's input dimension, which the block size (32 for
    /// MXFP4, 16 for NVFP4, <see cref="GroupSize"/> for Int4) must divide (else error LLM016).</summary>
    public QuantFormat Format { get; }

    /// <summary>Fraction of the training steps after which fake quantization switches on: step
    /// <c>floor(From · Steps)</c> is the first quantized one. 0 (the default) quantizes from the start; 0.8 trains in
    /// full precision for 80% of the steps, then adapts to the format for the rest. Must lie in [0, 1).</summary>
    public double From { get; set; }

    /// <summary>Which weights are quantized. Default: <see cref="QuantTarget.Experts"/> with <c>[MoE]</c>, else
    /// <see cref="QuantTarget.AllLinear"/>. Naming a part the model lacks (experts without <c>[MoE]</c>) is error LLM017.</summary>
    public QuantTarget Target { get; set; }

    /// <summary>Clipped straight-through estimator: weights whose scaled value saturated the format get no gradient.
    /// Default <c>false</c>: the gradient passes everywhere.</summary>
    public bool Clipped { get; set; }

    /// <summary>Int4 only: values per fp32 group scale, positive and even. Default 32. Other formats have a fixed
    /// block size and ignore it (warning LLM013).</summary>
    public int GroupSize { get; set; }
}

/// <summary>
/// DeepSeek V4's residual streams (mHC, manifold-constrained hyper-connections): the residual is <see cref="Streams"/>
/// copies of the hidden state instead of one. Around attention and around the feed-forward of every layer, a small
/// map from the RMS-normalised, flattened streams (<c>hc_attn_fn</c> [(2 + n)·n, n·Dim], biases <c>hc_attn_base</c>
/// and 3 gates <c>hc_attn_scale</c>; <c>hc_ffn_*</c> likewise) weights how the streams mix into the block's input
/// (<c>pre = sigmoid(·)</c>), how its output spreads over the streams (<c>post = 2·sigmoid(·)</c>), and mixes the
/// streams by a matrix made doubly stochastic by <see cref="SinkhornIterations"/> Sinkhorn iterations. The embedding
/// is copied into every stream; a last sigmoid-weighted collapse (<c>hc_head_*</c>) feeds the final norm. DeepSeek V4
/// uses 4 streams and 20 iterations. Not exportable to GGUF (llama.cpp has no hyper-connections).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class ResidualAttribute : Attribute
{
    /// <summary>Residual streams, <c>hc_mult</c> (DeepSeek V4: 4). Required, positive; 1 leaves nothing to mix (warning LLM027).
    /// The residual state per token and layer is <c>Streams · Dim</c> values.</summary>
    public int Streams { get; set; }

    /// <summary>Sinkhorn iterations that make the stream-mixing matrix doubly stochastic, <c>hc_sinkhorn_iters</c>.
    /// Default 20 (DeepSeek V4).</summary>
    public int SinkhornIterations { get; set; }
}
