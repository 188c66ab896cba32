using LlmEff;

namespace LlmEff.Runtime.Tests.Models;

/// <summary>DeepSeek V4 whole, small, so that every test over the zoo (cached decoding against the full forward, the
/// cache's size, gradients, checkpoints) meets the combination DeepSeekV4Flash declares: compressed attention (window,
/// CSA with its FP4 indexer, HCA), residual streams, the first routed layer hash-routed, √softplus scores, clamped
/// SwiGLU. The byte-level vocabulary of the embedded corpus, so that it trains.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 3, Context = 32)]
[Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Compressed, RopeDim = 8, QRank = 32, OutputGroups = 2, OutputRank = 16, SlidingWindow = 4)]
[CompressedLayers(Sparse = "1", Heavy = "2", SparseRatio = 2, HeavyRatio = 4, TopK = 3, IndexerHeads = 2, IndexerDim = 32)]
[Mlp(ClampLimit = 10)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, HashLayers = 1, Router = RouterScoring.SqrtSoftplus, Balance = ExpertBalance.AuxLossFree, RoutedScale = 1.5)]
[Residual(Streams = 2)]
public partial class WholeV4;
