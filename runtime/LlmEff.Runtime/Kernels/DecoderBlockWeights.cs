using System.Collections.Generic;
using LlmEff.Layers;

namespace LlmEff.Kernels;

/// <summary>The weights of one pre-norm block as the fused single-token step (<see cref="SingleTokenDecoder"/>) reads
/// them: RMSNorm, the token mixer, RMSNorm, and the feed-forward. Biases are read where the layers have them.</summary>
public sealed record DecoderBlockWeights(RmsNorm InputNorm, BlockMixer Mixer, RmsNorm FeedForwardNorm, BlockFeedForward FeedForward);

/// <summary>What a block's feed-forward is, for the fused step: one of the records below.</summary>
public abstract record BlockFeedForward
{
    private protected BlockFeedForward()
    {
    }
}

/// <summary>A SwiGLU feed-forward: down(silu(gate(x)) ⊙ up(x)).</summary>
public sealed record SwiGluWeights(Linear Gate, Linear Up, Linear Down) : BlockFeedForward;

/// <summary>A mixture of SwiGLU experts chosen by <paramref name="Router"/> (not hash-routed), plus the shared experts
/// fused into one feed-forward when there are any: Σ over the chosen experts of weight · expert(x), + shared(x).</summary>
public sealed record MixtureWeights(ExpertRouter Router, IReadOnlyList<SwiGluWeights> Experts, SwiGluWeights? Shared) : BlockFeedForward;

/// <summary>What mixes tokens in a block the fused step can run: one of the records below.</summary>
public abstract record BlockMixer
{
    private protected BlockMixer()
    {
    }
}

/// <summary>Standard attention with its own q and v projections, <paramref name="Heads"/> query heads sharing
/// <paramref name="KvHeads"/> key/value heads, rotated by the stack's rotary tables where the model has them; with
/// <paramref name="QueryNorm"/> and <paramref name="KeyNorm"/> (QK norm, LFM2's), every query and key head is
/// RMS-normalised before rotation. <paramref name="Key"/> null: the keys are the values (the QKV study's NoKey), only the
/// values are cached, and each scores as its key normalised (with QK norm) and rotated for its position.</summary>
public sealed record AttentionMixer(Linear Query, Linear? Key, Linear Value, Linear Output, int Heads, int KvHeads,
    RmsNorm? QueryNorm = null, RmsNorm? KeyNorm = null) : BlockMixer;

/// <summary>LFM2's gated short convolution (<see cref="ShortConv"/>).</summary>
public sealed record ConvolutionMixer(ShortConv Block) : BlockMixer;

/// <summary>Multi-head latent attention without an indexer (<see cref="LatentAttention"/>), decoded with absorbed matrices.</summary>
public sealed record LatentMixer(LatentAttention Block) : BlockMixer;
