namespace LlmEff.Generator.Planning;

/// <summary>Stream numbers of a layer's decoding cache, mirroring the runtime's <c>LayerState</c> constants (the
/// generator cannot reference the runtime; EnumMirrorTests keeps names and numbers equal).</summary>
internal static class CacheSlots
{
    /// <summary>Standard attention's keys, or its values when the keys are the values.</summary>
    public const int Keys = 0;

    /// <summary>Standard attention's values (when keys are projected separately).</summary>
    public const int Values = 1;

    /// <summary>Latent attention's normalised key-value latent.</summary>
    public const int Latents = 0;

    /// <summary>Latent attention's shared rotary key.</summary>
    public const int RopeKeys = 1;

    /// <summary>The lightning indexer's keys.</summary>
    public const int IndexerKeys = 2;

    /// <summary>A short convolution's last inputs (a fixed-size state).</summary>
    public const int ConvolutionWindow = 0;

    /// <summary>Compressed attention's own cache (window, compressed entries, index keys, compressor state), one object.</summary>
    public const int CompressedAttention = 3;
}
