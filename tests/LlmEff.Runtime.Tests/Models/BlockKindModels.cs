using LlmEff;

namespace LlmEff.Runtime.Tests.Models;

// Issue 7's block kinds, small enough to build, decode and train in a test: hybrids of attention and short
// convolutions, per-head Q/K norm in every projection variant, latent attention, sparse attention, and mixes.

/// <summary>LFM2-style: GQA with Q/K norm in layer 1 only, short convolutions in layers 0 and 2.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 3, Context = 32)]
[Layers(Attention = "1")] [ShortConv(Kernel = 3)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
public partial class HybridGqa;

/// <summary>Hybrid with NoKey attention (values-only cache) in two of four layers and a wider convolution.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 4, Context = 32)]
[Layers(Attention = "0,2-3")] [ShortConv(Kernel = 4)]
[Attention(Projections.NoKey, Heads = 4, KvHeads = 2)]
public partial class HybridNoKey;

/// <summary>Hybrid under GPT-2 names with biases (convolution biases too) and learned positions (decoding offsets them).</summary>
[Model(Vocab = 256, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Positions = Positions.Learned, Norm = Norm.LayerNorm, Bias = true)]
[Layers(Attention = "2")] [ShortConv]
[Attention(Projections.NoQuery, Heads = 4)]
public partial class Gpt2Hybrid;

[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoKey, Heads = 4, KvHeads = 2, QkNorm = true)] public partial class QkNormNoKey;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoQuery, Heads = 4, KvHeads = 1, QkNorm = true)] public partial class QkNormNoQuery;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.Shared, Heads = 4, KvHeads = 2, QkNorm = true)] public partial class QkNormShared;

/// <summary>DeepSeek latent attention with a compressed query.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 24, RopeDim = 8, QRank = 32)]
public partial class LatentMla;

/// <summary>Latent attention with queries projected directly (QRank = 0, DeepSeek-V2-Lite style).</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 2, HeadDim = 32, Kind = AttentionKind.Latent, KvRank = 16, RopeDim = 16)]
public partial class LatentDirectQuery;

/// <summary>Sparse attention: each query keeps its 4 best past tokens of up to 32.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, KvHeads = 2)]
[SparseAttention(IndexerHeads = 2, IndexerDim = 8, TopK = 4)]
public partial class SparseGqa;

/// <summary>Sparse attention over a values-only cache.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Projections.Shared, Heads = 4)]
[SparseAttention(IndexerHeads = 2, IndexerDim = 8, TopK = 6)]
public partial class SparseShared;

/// <summary>DeepSeek-V3.2's combination: latent attention with the lightning indexer, and experts.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 24, RopeDim = 8, QRank = 32)]
[SparseAttention(IndexerHeads = 2, IndexerDim = 8, TopK = 5)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree)]
public partial class LatentSparseMoe;

/// <summary>LFM2-8B-A1B in miniature: hybrid, Q/K norm, latent-free GQA, experts after a dense layer.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 4, Context = 32)]
[Layers(Attention = "1,3")] [ShortConv]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
[MoE(Experts = 4, Active = 2, ExpertHidden = 32, FirstLayer = 1, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree)]
public partial class HybridMoe;
