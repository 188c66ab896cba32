using LlmEff;

namespace LlmEff.Runtime.Tests.Models;

// [Quant] declarations covering every format, target and layout the generator can combine.

/// <summary>Every linear weight in MXFP4, fake quantization from half the steps; byte vocabulary, so it trains on the corpus.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4)]
[Mlp(Hidden = 128)]
[Quant(QuantFormat.Mxfp4, From = 0.5)]
public partial class QuantDense;

/// <summary><see cref="QuantDense"/> without [Quant]: the same parameters, names and shapes.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4)]
[Mlp(Hidden = 128)]
public partial class PlainDense;

/// <summary>GPT-2 names (fused, input × output weights), biases, cross-layer KV sharing; NVFP4 with the clipped estimator.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)]
[Attention(Heads = 4, ShareKvEvery = 2)]
[Mlp(Hidden = 96)]
[Quant(QuantFormat.Nvfp4, Clipped = true)]
public partial class QuantGpt2Nvfp4;

/// <summary>A mixture with a dense first layer and a shared expert: only the routed experts are quantized (Int4, groups of 16).</summary>
[Model(Vocab = 97, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 4)]
[Mlp(Hidden = 128)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1)]
[Quant(QuantFormat.Int4, GroupSize = 16)]
public partial class QuantExpertsInt4;

/// <summary>The same kind of mixture with everything but the routed experts quantized, in FP8.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 2, Context = 32)]
[Attention(Heads = 2)]
[MoE(Experts = 4, Active = 1, ExpertHidden = 48, FirstLayer = 1)]
[Quant(QuantFormat.Fp8E4M3, Target = QuantTarget.Attention | QuantTarget.Mlp)]
public partial class QuantFp8NotExperts;
