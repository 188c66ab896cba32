using LlmEff;
using static TorchSharp.torch;

// Small declarations for the PyTorch parity tests, covering what the sample models leave out. Kept tiny: every one
// is built, checkpointed and run forward and backward on both sides in one test.
namespace LlmEff.Cli.Tests.Models;

/// <summary>GPT-2 naming (fused c_attn/c_fc, input × output weights), LayerNorm, biases, learned positions, GELU,
/// GQA, an untied head, bidirectional.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32, Naming = ParameterNaming.Gpt2, Norm = Norm.LayerNorm, Positions = Positions.Learned,
    Bias = true, Causal = false, TiedEmbeddings = false)]
[Attention(Heads = 4, KvHeads = 2)]
[Mlp(Activation = Activation.Gelu)]
public partial class ParityGpt2Encoder;

/// <summary>GPT-2 naming with fused SwiGLU, NoKey, cross-layer KV sharing and NVFP4 with a clipped estimator.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)]
[Attention(Projections.NoKey, Heads = 4, KvHeads = 2, ShareKvEvery = 2)]
[Mlp(Hidden = 48)]
[Quant(QuantFormat.Nvfp4, Clipped = true)]
public partial class ParityGpt2SharedKv;

/// <summary>Shared projections with GQA (queries repeated per group), no positions, a dense first layer, sigmoid routing
/// with the auxiliary loss, a shared expert, Int4 experts in groups of 16.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32, Positions = Positions.None)]
[Attention(Projections.Shared, Heads = 4, KvHeads = 2)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLoss)]
[Quant(QuantFormat.Int4, GroupSize = 16, From = 0.5)]
public partial class ParitySharedMoeInt4;

/// <summary>SwiGLU clamping with a limit small enough to bite at initialisation (gate and up outputs have a standard
/// deviation near 0.16 here), in the dense layer, the routed experts and the shared expert; DeepSeek V4's √softplus
/// router, with the auxiliary loss on its per-token renormalised scores.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, KvHeads = 2)]
[Mlp(Hidden = 64, ClampLimit = 0.1)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1, Router = RouterScoring.SqrtSoftplus, Balance = ExpertBalance.AuxLoss)]
public partial class ParityClampedMoe;

/// <summary>DeepSeek V4's router: √softplus scores and a selection bias, with the sequence-wise balance loss on top
/// (weighted far above V3's 0.0001 so the parity of the loss is measurable).</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, KvHeads = 2)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, Router = RouterScoring.SqrtSoftplus, Balance = ExpertBalance.AuxLossFree, SequenceAuxLossWeight = 0.5)]
public partial class ParitySequenceBalancedMoe;

/// <summary>DeepSeek V4's hash routing after a dense layer: layers 1 and 2 choose experts from the token→experts table
/// (loaded from the checkpoint on both sides), layer 3 by its sigmoid scores with a selection bias and the sequence-wise
/// loss.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 4, Context = 32)]
[Attention(Heads = 4, KvHeads = 2)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1, HashLayers = 2, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree,
    RoutedScale = 1.5, SequenceAuxLossWeight = 0.5)]
public partial class ParityHashRoutedMoe;

/// <summary>SwiGLU clamping on GPT-2's fused gate-and-up projection (c_fc), biases included.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)]
[Attention(Heads = 4)]
[Mlp(Hidden = 48, ClampLimit = 0.1)]
public partial class ParityGpt2Clamped;

/// <summary>FP8 weights everywhere, activation checkpointing, a head width unrelated to Dim / Heads.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32, Checkpointing = true)]
[Attention(Heads = 2, HeadDim = 48)]
[Mlp(Hidden = 96)]
[Quant(QuantFormat.Fp8E4M3)]
public partial class ParityFp8Checkpointed;

/// <summary>A byte-level model small enough for the two-process torchrun test.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 64)]
[Attention(Heads = 4, KvHeads = 2)]
public partial class ParityDistributed;

/// <summary>A hybrid (LFM2-style): short convolutions in layers 0 and 2, GQA with per-head Q/K norm in layer 1, a dense
/// first layer and softmax-routed experts with the auxiliary loss after it.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32)]
[Layers(Attention = "1")]
[ShortConv(Kernel = 3)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
[MoE(Experts = 4, Active = 2, ExpertHidden = 32, FirstLayer = 1)]
public partial class ParityHybridMoe;

/// <summary>A hybrid under GPT-2 names: LayerNorm, biases (on the convolutions too), learned positions, GELU,
/// attention in layers 0 and 2, a kernel of 4.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true)]
[Layers(Attention = "0,2")]
[ShortConv(Kernel = 4)]
[Attention(Heads = 4)]
[Mlp(Activation = Activation.Gelu)]
public partial class ParityGpt2Hybrid;

/// <summary>NoKey with per-head Q/K norm (keys are the normalised values) and GQA.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32)]
[Attention(Projections.NoKey, Heads = 4, KvHeads = 2, QkNorm = true)]
public partial class ParityNoKeyQkNorm;

/// <summary>Shared projections with per-head Q/K norm: one normalised projection is query, key and value.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32)]
[Attention(Projections.Shared, Heads = 4, QkNorm = true)]
public partial class ParitySharedQkNorm;

/// <summary>Latent attention with a compressed query (QRank).</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 24, RopeDim = 8, QRank = 32)]
public partial class ParityLatent;

/// <summary>Latent attention with directly projected queries, as a bidirectional encoder.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32, Causal = false)]
[Attention(Heads = 2, HeadDim = 24, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 8)]
public partial class ParityLatentEncoder;

/// <summary>Sparse attention over GQA: each query keeps the 4 of up to 16 past tokens a 2-head indexer picks.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, KvHeads = 2)]
[SparseAttention(IndexerHeads = 2, IndexerDim = 16, TopK = 4)]
public partial class ParitySparseGqa;

/// <summary>DeepSeek-V3.2 in small: latent attention with a compressed query, a lightning indexer keeping 5 keys, and
/// experts (softmax, auxiliary loss, a shared expert) after a dense first layer: two kinds of auxiliary loss.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 24, RopeDim = 8, QRank = 32)]
[SparseAttention(IndexerHeads = 2, IndexerDim = 16, TopK = 5)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1)]
public partial class ParityLatentSparseMoe;

/// <summary>A model whose declaration has a feature without a PyTorch port, as a generated model reports it (the
/// generator writes the refusal; written by hand here because every current feature has a port).</summary>
public sealed class ParityUnported : nn.Module<Tensor, Tensor>, IDeclaredModel<ParityUnported>
{
    private ParityUnported() : base(nameof(ParityUnported)) { }

    public static ModelFacts Facts { get; } = new(nameof(ParityUnported), Vocab: 256, Dim: 64, Layers: 1, Context: 16, ParameterCount: 0, ActiveParameterCount: 0,
        KvCacheElementsPerToken: 0, FlopsPerToken: 0, MatmulFlopsPerToken: 0, Breakdown: new(0, 0, 0, 0, 0));

    public static PyTorchExport PyTorch { get; } = PyTorchExport.Refused("state-space blocks have no PyTorch port yet");

    public static GgufExport Gguf { get; } = GgufExport.Refused("state-space blocks: no GGUF export yet");

    public static ParityUnported Create(Device? device = null, ScalarType? dtype = null) => new();

    public override Tensor forward(Tensor input) => input;
}

/// <summary>For the llama.cpp parity test: queries that are the keys with 2 key heads for 4 query heads (the GGUF
/// query copy repeats each key head for its group).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128)]
[Attention(Projections.NoQuery, Heads = 4, KvHeads = 2)]
public partial class GgufNoQueryGqa;

/// <summary>For the llama.cpp parity test: one projection for queries, keys and values, with one key head for 4 query heads.</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128)]
[Attention(Projections.Shared, Heads = 4, KvHeads = 1)]
public partial class GgufSharedMqa;

/// <summary>For the llama.cpp tokenizer test: room for GPT-2's 50,257 tokens, as a model trained with --tokenizer gpt2 has.</summary>
[Model(Vocab = 50257, Dim = 32, Layers = 1, Context = 64)]
[Attention(Heads = 2)]
public partial class GgufGpt2Vocab;

/// <summary>For the llama.cpp parity test: latent attention with directly projected queries (no query latent), as
/// DeepSeek-V2-Lite has.</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128)]
[Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Latent, KvRank = 48, RopeDim = 16)]
public partial class GgufLatentDirectQuery;

/// <summary>For the llama.cpp parity test: DeepSeek-V3 in small, latent attention with a query latent, a dense first
/// layer, then 8 experts (top-2, sigmoid scores, a selection bias, routed scale 2.5) and a shared expert.</summary>
[Model(Vocab = 256, Dim = 128, Layers = 3, Context = 128)]
[Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Latent, KvRank = 48, RopeDim = 16, QRank = 64)]
[Mlp(Hidden = 256)]
[MoE(Experts = 8, Active = 2, Shared = 1, ExpertHidden = 64, FirstLayer = 1, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree, RoutedScale = 2.5)]
public partial class GgufLatentMoe;

/// <summary>For the llama.cpp parity test: a softmax router whose weights are not renormalised, with a shared expert
/// and GQA (glm4moe, its selection bias written as zeros).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128)]
[Attention(Heads = 4, KvHeads = 2)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 64, NormalizeWeights = false)]
public partial class GgufSoftmaxSharedMoe;

/// <summary>For the llama.cpp parity test: LFM2-8B-A1B in small, short convolutions with attention (GQA, QkNorm) in
/// layers 1 and 3, a dense first layer, then 4 experts (top-2, sigmoid scores with a selection bias).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 4, Context = 128)]
[Layers(Attention = "1,3")]
[ShortConv(Kernel = 3)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
[Mlp(Hidden = 256)]
[MoE(Experts = 4, Active = 2, ExpertHidden = 64, FirstLayer = 1, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree)]
public partial class GgufHybridMoe;

/// <summary>For the llama.cpp parity test: a hybrid with attention in layers 0 and 2, short convolutions over 4 tokens,
/// and softmax-routed experts in every layer (lfm2moe, its selection bias written as zeros).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 3, Context = 128)]
[Layers(Attention = "0,2")]
[ShortConv(Kernel = 4)]
[Attention(Heads = 4, QkNorm = true)]
[MoE(Experts = 4, Active = 2, ExpertHidden = 64)]
public partial class GgufHybridSoftmaxMoe;

/// <summary>For the llama.cpp parity test: GQA with per-head Q/K norm (qwen3).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
public partial class GgufQkNorm;

/// <summary>For the llama.cpp parity test: per-head Q/K norm with Mixtral's router over 4 experts (qwen3moe).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
[MoE(Experts = 4, Active = 2, ExpertHidden = 64)]
public partial class GgufQkNormMoe;

/// <summary>For the llama.cpp parity test: GPT-2 in small (gpt2), as Gpt2Small is declared: GPT-2's names and
/// input × output weights, learned positions, LayerNorm, biases, GELU, 4 heads, the head tied to the embedding.</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128, TiedEmbeddings = true,
       Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true, Naming = ParameterNaming.Gpt2)]
[Attention(Heads = 4)]
[Mlp(Activation = Activation.Gelu)]
public partial class GgufGpt2;

/// <summary>For the llama.cpp parity test: GPT-2's computation with 2 key/value heads for 4 query heads and an untied
/// head (gpt2's attn_qkv is then [q | k | v] of 128 + 64 + 64 rows).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128, TiedEmbeddings = false,
       Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true, Naming = ParameterNaming.Gpt2)]
[Attention(Heads = 4, KvHeads = 2)]
[Mlp(Activation = Activation.Gelu)]
public partial class GgufGpt2Gqa;

/// <summary>For the llama.cpp parity test: GPT-2's computation under Hugging Face Llama names (separate q_proj, k_proj,
/// v_proj joined into gpt2's attn_qkv), 2 key/value heads.</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128, TiedEmbeddings = true,
       Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true)]
[Attention(Heads = 4, KvHeads = 2)]
[Mlp(Activation = Activation.Gelu)]
public partial class GgufGpt2LlamaNames;

/// <summary>DeepSeek V4's attention at a size where everything happens within 16 tokens: a 4-token window, CSA entries of
/// 2 tokens of which the FP4 indexer keeps 3, HCA entries of 4 tokens.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32)]
[Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 4)]
[CompressedLayers(Sparse = "1", Heavy = "2", SparseRatio = 2, HeavyRatio = 4, TopK = 3, IndexerHeads = 2, IndexerDim = 32)]
public partial class ParityCompressed;

/// <summary>DeepSeek V4 whole, small: compressed attention (window, CSA with its FP4 indexer, HCA), two residual streams,
/// the first routed layer hash-routed by the token→experts table and the others scored by √softplus, clamped SwiGLU:
/// every V4 part DeepSeekV4Flash combines, at a size both back ends run.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32)]
[Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 4)]
[CompressedLayers(Sparse = "1", Heavy = "2", SparseRatio = 2, HeavyRatio = 4, TopK = 3, IndexerHeads = 2, IndexerDim = 32)]
[Mlp(ClampLimit = 10)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, HashLayers = 1, Router = RouterScoring.SqrtSoftplus, Balance = ExpertBalance.AuxLossFree, RoutedScale = 1.5)]
[Residual(Streams = 2)]
public partial class ParityV4Whole;
