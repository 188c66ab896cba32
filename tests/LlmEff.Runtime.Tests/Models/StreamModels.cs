using LlmEff;

namespace LlmEff.Runtime.Tests.Models;

// DeepSeek V4's residual streams (mHC) with every block kind they must work with, small enough to build, decode and
// train in a test: standard attention (GQA), checkpointing under GPT-2 names and learned positions, a hybrid of
// attention and short convolutions, latent attention with the lightning indexer and experts, and an encoder.

/// <summary>Residual streams around GQA attention.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, KvHeads = 2)]
[Residual(Streams = 4)]
public partial class StreamsGqa;

/// <summary>Two streams, few Sinkhorn iterations, GPT-2 names with learned positions, biases and activation checkpointing.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Positions = Positions.Learned, Norm = Norm.LayerNorm, Bias = true, Checkpointing = true)]
[Attention(Heads = 4)]
[Residual(Streams = 2, SinkhornIterations = 5)]
public partial class StreamsGpt2Checkpointed;

/// <summary>Three streams around a hybrid: attention in layer 1, short convolutions in layers 0 and 2.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 3, Context = 32)]
[Layers(Attention = "1")] [ShortConv(Kernel = 3)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
[Residual(Streams = 3)]
public partial class StreamsHybrid;

/// <summary>DeepSeek-style: latent attention with the lightning indexer and experts, inside 4 residual streams.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 24, RopeDim = 8, QRank = 32)]
[SparseAttention(IndexerHeads = 2, IndexerDim = 8, TopK = 5)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1, Router = RouterScoring.SqrtSoftplus, Balance = ExpertBalance.AuxLossFree)]
[Residual(Streams = 4)]
public partial class StreamsLatentSparseMoe;

/// <summary>An encoder (bidirectional attention) with residual streams.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32, Causal = false)]
[Attention(Heads = 4)]
[Residual(Streams = 2)]
public partial class StreamsEncoder;

/// <summary>StreamsGqa's twin with activation checkpointing: the same parameters, blocks recomputed in backward.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32, Checkpointing = true)]
[Attention(Heads = 4, KvHeads = 2)]
[Residual(Streams = 4)]
public partial class StreamsGqaCheckpointed;
