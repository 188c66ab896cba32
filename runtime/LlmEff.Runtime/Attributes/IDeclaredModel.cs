using static TorchSharp.torch;

namespace LlmEff;

/// <summary>Size facts of a declared model, as the generator computed them.</summary>
/// <param name="Name">Class name.</param>
/// <param name="Vocab">Vocabulary size.</param>
/// <param name="Dim">Model width.</param>
/// <param name="Layers">Blocks.</param>
/// <param name="Context">Maximum sequence length.</param>
/// <param name="ParameterCount">Trainable parameters.</param>
/// <param name="KvCacheElementsPerToken">Cached key/value elements per token over all layers.</param>
/// <param name="FlopsPerToken">Forward FLOPs of one token at full context.</param>
public sealed record ModelFacts(string Name, int Vocab, int Dim, int Layers, int Context, long ParameterCount, long KvCacheElementsPerToken, long FlopsPerToken)
{
    /// <summary>KV cache bytes per token at <paramref name="bytesPerElement"/> bytes per element (2 for bf16).</summary>
    public long KvCacheBytesPerToken(int bytesPerElement = 2) => KvCacheElementsPerToken * bytesPerElement;
}

/// <summary>Implemented by every generated model, so tools can list, size and build models generically.</summary>
/// <typeparam name="TSelf">The model class.</typeparam>
public interface IDeclaredModel<TSelf> where TSelf : nn.Module<Tensor, Tensor>, IDeclaredModel<TSelf>
{
    /// <summary>The declaration's sizes.</summary>
    static abstract ModelFacts Facts { get; }

    /// <summary>Builds the module on <paramref name="device"/> (CPU when null) in <paramref name="dtype"/> (fp32 when null).</summary>
    static abstract TSelf Create(Device? device = null, ScalarType? dtype = null);
}
