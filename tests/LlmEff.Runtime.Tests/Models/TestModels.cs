using LlmEff;

namespace LlmEff.Runtime.Tests.Models;

// Small declarations that cover every layout option; the generator compiles them like a user's models.

/// <summary>GPT-2 names (fused c_attn), grouped-query attention, untied head.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 2, Context = 32, Naming = ParameterNaming.Gpt2, TiedEmbeddings = false)]
[Attention(Heads = 4, KvHeads = 2)]
public partial class Gpt2NamesGqa;

/// <summary>Llama names with LayerNorm, learned positions, biases and GELU.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 2, Context = 32, Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true)]
[Attention(Heads = 2)]
[Mlp(Activation = Activation.Gelu)]
public partial class LayerNormLearned;

/// <summary>Multi-query attention, explicit head width, no positional signal.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 1, Context = 32, Positions = Positions.None)]
[Attention(Heads = 8, KvHeads = 1, HeadDim = 16)]
public partial class MultiQueryNoPositions;

/// <summary>GPT-2 names with a fused SwiGLU (c_fc holds gate and up) and biases.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 2, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)]
[Attention(Heads = 4)]
[Mlp(Hidden = 96)]
public partial class Gpt2NamesSwiGlu;

/// <summary>Activation checkpointing; otherwise as <see cref="PlainTwin"/>.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 3, Context = 32, Checkpointing = true)]
[Attention(Heads = 4, KvHeads = 2)]
public partial class CheckpointedTwin;

/// <summary>The same architecture as <see cref="CheckpointedTwin"/>, keeping its activations.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 3, Context = 32)]
[Attention(Heads = 4, KvHeads = 2)]
public partial class PlainTwin;

/// <summary>A Llama-style model with what the fused single-token step must handle off its 8-wide and 4-row paths: biases
/// on every linear layer, an untied head with a bias-free vocabulary of 61, grouped heads of width 14, a width of 52 and
/// a hidden width of 90.</summary>
[Model(Vocab = 61, Dim = 52, Layers = 2, Context = 40, Bias = true, TiedEmbeddings = false)]
[Attention(Heads = 4, KvHeads = 2, HeadDim = 14)]
[Mlp(Hidden = 90)]
public partial class OddShapedBiased;

/// <summary>A mixture with what the fused step's routing must get right beyond the samples': √softplus scores without
/// normalisation, a routed scale, two shared experts, biases on every expert (scaled by the routing weight), experts
/// narrower than the dense first layer, and a dense first layer.</summary>
[Model(Vocab = 97, Dim = 48, Layers = 3, Context = 40, Bias = true)]
[Attention(Heads = 4, KvHeads = 2)]
[MoE(Experts = 5, Active = 2, Shared = 2, ExpertHidden = 36, FirstLayer = 1, Router = RouterScoring.SqrtSoftplus, NormalizeWeights = false, RoutedScale = 1.5)]
public partial class MixtureOddShapedBiased;
