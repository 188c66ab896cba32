using LlmEff.Layers;
using static TorchSharp.torch;

namespace LlmEff;

/// <summary>Size facts of a declared model, as the generator computed them.</summary>
/// <param name="Name">Class name.</param>
/// <param name="Vocab">Vocabulary size.</param>
/// <param name="Dim">Model width.</param>
/// <param name="Layers">Blocks.</param>
/// <param name="Context">Maximum sequence length.</param>
/// <param name="ParameterCount">Trainable parameters.</param>
/// <param name="ActiveParameterCount">Parameters one token uses (less than <paramref name="ParameterCount"/> only with routed experts).</param>
/// <param name="KvCacheElementsPerToken">Cached key/value elements per token over all layers.</param>
/// <param name="FlopsPerToken">Forward FLOPs of one token at full context.</param>
/// <param name="MatmulFlopsPerToken">The part of <paramref name="FlopsPerToken"/> spent in weight matrices (the same at every
/// position); the rest is attention over the context and grows linearly with the position.</param>
/// <param name="Breakdown">Where the parameters are.</param>
/// <param name="Causal">Decoder (each position sees only the past) or encoder (every position sees the whole sequence).</param>
/// <param name="Quant">What <c>[Quant]</c> declares and the storage of the weights it targets; null without it.</param>
public sealed record ModelFacts(string Name, int Vocab, int Dim, int Layers, int Context, long ParameterCount, long ActiveParameterCount, long KvCacheElementsPerToken, long FlopsPerToken,
    long MatmulFlopsPerToken, ParameterBreakdown Breakdown, bool Causal = true, QuantFacts? Quant = null)
{
    /// <summary>KV cache bytes per token at <paramref name="bytesPerElement"/> bytes per element (2 for bf16).</summary>
    public long KvCacheBytesPerToken(int bytesPerElement = 2) => KvCacheElementsPerToken * bytesPerElement;

    /// <summary>The cache of one sequence after a number of tokens, when it is no multiple of them (compressed attention:
    /// a bounded window, an entry per window, fixed state; the generated <c>KvCacheElements</c>); null when it is
    /// <see cref="KvCacheElementsPerToken"/> per token.</summary>
    public System.Func<long, long>? KvCacheElements { get; init; }

    /// <summary>Cached elements of one sequence after <paramref name="tokens"/> tokens, over all layers.</summary>
    public long KvCacheElementsAt(long tokens) => KvCacheElements is { } exact ? exact(tokens) : checked(KvCacheElementsPerToken * tokens);
}

/// <summary>Parameters by component; the parts add up to <see cref="ModelFacts.ParameterCount"/>.</summary>
/// <param name="Embeddings">Token (and learned position) embeddings.</param>
/// <param name="Attention">Attention projections, their biases and any score mixers, all layers.</param>
/// <param name="Mlp">Feed-forward networks, all layers: dense MLPs, experts and their routers.</param>
/// <param name="Norms">Every norm, the final one included.</param>
/// <param name="OutputHead">Untied output head; 0 when tied.</param>
/// <param name="Convolution">Short-convolution blocks of a hybrid; 0 otherwise.</param>
/// <param name="ResidualStreams">The residual streams' maps (<c>[Residual]</c>, DeepSeek V4's mHC); 0 otherwise.</param>
public sealed record ParameterBreakdown(long Embeddings, long Attention, long Mlp, long Norms, long OutputHead, long Convolution = 0, long ResidualStreams = 0)
{
    /// <summary>Sum of the parts.</summary>
    public long Total => Embeddings + Attention + Mlp + Norms + OutputHead + Convolution + ResidualStreams;
}

/// <summary>The weights <c>[Quant]</c> targets and their storage, as the generator computed it.</summary>
/// <param name="Settings">Format, when fake quantization starts, and the estimator's options.</param>
/// <param name="Target">Which weights are quantized (the default resolved).</param>
/// <param name="Parameters">How many weights that is.</param>
/// <param name="Bytes">Their storage in <see cref="WeightQuantization.Format"/>: codes, block scales and any per-tensor
/// scales, exactly what a packed export holds for them.</param>
public sealed record QuantFacts(WeightQuantization Settings, QuantTarget Target, long Parameters, long Bytes)
{
    /// <summary>The same weights in fp32.</summary>
    public long Fp32Bytes => Parameters * 4;

    /// <summary>The same weights in bf16.</summary>
    public long Bf16Bytes => Parameters * 2;

    /// <summary>Storage bits per quantized weight (4.25 for MXFP4).</summary>
    public double BitsPerValue => 8.0 * Bytes / Parameters;
}

/// <summary>Implemented by every generated model, so tools can list, size and build models generically.</summary>
/// <typeparam name="TSelf">The model class.</typeparam>
public interface IDeclaredModel<TSelf> where TSelf : nn.Module<Tensor, Tensor>, IDeclaredModel<TSelf>
{
    /// <summary>The declaration's sizes.</summary>
    static abstract ModelFacts Facts { get; }

    /// <summary>Builds the module on <paramref name="device"/> (CPU when null) in <paramref name="dtype"/> (fp32 when null).</summary>
    static abstract TSelf Create(Device? device = null, ScalarType? dtype = null);

    /// <summary>The same architecture as a PyTorch module (Python source, same parameter names and shapes), or why the
    /// generator cannot write one.</summary>
    static abstract PyTorchExport PyTorch { get; }

    /// <summary>The model as llama.cpp reads it (architecture, metadata, tensor table), or why it cannot yet
    /// (see <see cref="Export.GgufExporter"/>).</summary>
    static abstract GgufExport Gguf { get; }
}

/// <summary>Generated models expose their attention score maps for inspection (symmetry checks, attention plots).</summary>
public interface IAttentionScores
{
    /// <summary>Pre-softmax scores [batch, heads, time, time] of 0-based <paramref name="layer"/>, unmasked.</summary>
    Tensor AttentionScores(Tensor tokens, int layer);
}
