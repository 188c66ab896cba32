using static TorchSharp.torch;

namespace LlmEff.Generation;

/// <summary>
/// A causal model that decodes incrementally: each call feeds only the new tokens and reuses what
/// <see cref="DecodingCache"/> kept from earlier calls (keys and values, latent vectors, convolution state),
/// instead of recomputing the whole prefix. Generated for every causal model whose attention can be cached.
/// </summary>
public interface IDecoder
{
    /// <summary>An empty cache for one batch of sequences, sized to the model's context.</summary>
    DecodingCache NewCache();

    /// <summary>Logits [batch, time, vocab] for <paramref name="tokens"/> [batch, time] that continue what
    /// <paramref name="cache"/> holds (positions <c>cache.Position</c> on); the cache then holds them too.</summary>
    Tensor forward(Tensor tokens, DecodingCache cache);
}
