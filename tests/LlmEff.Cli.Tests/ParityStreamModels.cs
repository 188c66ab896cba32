using LlmEff;

// Small declarations with DeepSeek V4's residual streams for the PyTorch parity test: the generated TorchSharp module
// and its generated Python twin must agree on logits, loss and every gradient, the streams' maps included.
namespace LlmEff.Cli.Tests.Models;

/// <summary>Four residual streams around GQA attention and a SwiGLU MLP.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4, KvHeads = 2)]
[Residual(Streams = 4)]
public partial class ParityStreams;

/// <summary>Three streams, 7 Sinkhorn iterations, around a hybrid (short convolutions in layers 0 and 2, GQA with Q/K
/// norm in layer 1) with experts after a dense first layer.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32)]
[Layers(Attention = "1")]
[ShortConv(Kernel = 3)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
[MoE(Experts = 4, Active = 2, ExpertHidden = 32, FirstLayer = 1)]
[Residual(Streams = 3, SinkhornIterations = 7)]
public partial class ParityStreamsHybridMoe;

/// <summary>Two streams around latent attention with a compressed query, with activation checkpointing.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32, Checkpointing = true)]
[Attention(Heads = 4, HeadDim = 16, Kind = AttentionKind.Latent, KvRank = 24, RopeDim = 8, QRank = 32)]
[Residual(Streams = 2)]
public partial class ParityStreamsLatentCheckpointed;
