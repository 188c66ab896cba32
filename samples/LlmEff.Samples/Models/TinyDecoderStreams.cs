using LlmEff;

namespace LlmEff.Samples;

/// <summary>TinyDecoder with DeepSeek V4's residual streams (mHC): 4 copies of the residual, mixed around every
/// attention and MLP block by maps whose mixing matrices Sinkhorn makes doubly stochastic (20 iterations).</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4)]
[Residual(Streams = 4)]
public partial class TinyDecoderStreams;
