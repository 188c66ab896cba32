using LlmEff;

namespace LlmEff.Samples;

/// <summary>A 3.3M-parameter Llama-style model over bytes that trains in minutes on two CPU cores:
/// the default model of the command-line program.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4)]
public partial class TinyDecoder;
