using LlmEff;

// [Quant(Mxfp4)] declarations for the llama.cpp parity tests of the other architectures: the samples cover llama
// (TinyDecoderFp4 dense, TinyMoeFp4's experts); these put mxfp4 tensors where deepseek2, glm4moe, qwen3moe and lfm2moe
// read them. Every quantized weight's input width is a multiple of 32, as ggml's mxfp4 rows must be.
namespace LlmEff.Cli.Tests.Models;

/// <summary>Latent attention with a query latent, a dense first layer, sigmoid experts with a shared one: the dense MLP,
/// the routed and the shared experts MXFP4 (deepseek2; latent attention's projections cannot be quantized, LLM021).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 3, Context = 128)]
[Attention(Heads = 4, HeadDim = 32, Kind = AttentionKind.Latent, KvRank = 48, RopeDim = 16, QRank = 64)]
[Mlp(Hidden = 256)]
[MoE(Experts = 8, Active = 2, Shared = 1, ExpertHidden = 64, FirstLayer = 1, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree, RoutedScale = 2.5)]
[Quant(QuantFormat.Mxfp4, Target = QuantTarget.Mlp | QuantTarget.Experts)]
public partial class GgufLatentMoeFp4;

/// <summary>Unnormalised softmax experts with a shared one and GQA: the routed and shared experts MXFP4 (glm4moe).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128)]
[Attention(Heads = 4, KvHeads = 2)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 64, NormalizeWeights = false)]
[Quant(QuantFormat.Mxfp4, Target = QuantTarget.Experts | QuantTarget.Mlp)]
public partial class GgufSharedMoeFp4;

/// <summary>Per-head Q/K norm with Mixtral's router: every linear layer MXFP4 (qwen3moe).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 2, Context = 128)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
[MoE(Experts = 4, Active = 2, ExpertHidden = 64)]
[Quant(QuantFormat.Mxfp4, Target = QuantTarget.AllLinear)]
public partial class GgufQkNormMoeFp4;

/// <summary>A hybrid with sigmoid experts after a dense first layer: every linear layer MXFP4 (lfm2moe).</summary>
[Model(Vocab = 256, Dim = 128, Layers = 3, Context = 128)]
[Layers(Attention = "1")]
[ShortConv(Kernel = 3)]
[Attention(Heads = 4, KvHeads = 2, QkNorm = true)]
[Mlp(Hidden = 256)]
[MoE(Experts = 4, Active = 2, ExpertHidden = 64, FirstLayer = 1, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree)]
[Quant(QuantFormat.Mxfp4, Target = QuantTarget.AllLinear)]
public partial class GgufHybridMoeFp4;
