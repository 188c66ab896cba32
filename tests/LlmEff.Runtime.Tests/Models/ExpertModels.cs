using LlmEff;

namespace LlmEff.Runtime.Tests.Models;

// Mixture-of-experts declarations covering the layout options the samples leave out.

/// <summary>GPT-2 names and biases with GELU experts, two shared experts and un-normalised weights.</summary>
[Model(Vocab = 97, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true)]
[Attention(Heads = 4)]
[Mlp(Activation = Activation.Gelu, Hidden = 128)]
[MoE(Experts = 6, Active = 3, Shared = 2, ExpertHidden = 32, FirstLayer = 2, NormalizeWeights = false)]
public partial class Gpt2NamesExperts;

/// <summary>Many narrow experts, one active (Switch-style top-1), no balancing.</summary>
[Model(Vocab = 97, Dim = 32, Layers = 2, Context = 32)]
[Attention(Heads = 2)]
[MoE(Experts = 32, Active = 1, ExpertHidden = 16, Balance = ExpertBalance.None)]
public partial class SwitchTop1;

/// <summary>DeepSeek V4's hash routing between a dense and a scored layer: layer 0 dense, layer 1 routed by its
/// token→experts table, layer 2 by √softplus scores with a selection bias and the sequence-wise loss. The byte-level
/// vocabulary of the embedded corpus, so that it trains (ResumeTests).</summary>
[Model(Vocab = 256, Dim = 32, Layers = 3, Context = 32)]
[Attention(Heads = 2)]
[MoE(Experts = 6, Active = 2, ExpertHidden = 16, FirstLayer = 1, HashLayers = 1, Router = RouterScoring.SqrtSoftplus,
    Balance = ExpertBalance.AuxLossFree, SequenceAuxLossWeight = 0.01)]
public partial class HashRoutedExperts;
