using LlmEff;

namespace LlmEff.Samples;

// Models that train for 4-bit weights: full precision for most of the run, then fake quantization (straight-through)
// so the weights settle where the format can hold them; 'llmeff qat' compares this with quantizing after training.

/// <summary>TinyDecoder trained for MXFP4 weights: every attention and MLP matrix is fake-quantized over the last fifth
/// of training, then packs at 4.25 bits per value.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4)]
[Quant(QuantFormat.Fp4, From = 0.8)]
public partial class TinyDecoderFp4;

/// <summary>TinyMoe with its routed experts, 88% of its parameters, trained for MXFP4 (the default target of a
/// mixture); attention, router and embeddings stay in full precision.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4)]
[MoE(Experts = 8, Active = 2, ExpertHidden = 352)]
[Quant(QuantFormat.Fp4, From = 0.8, Target = QuantTarget.Experts)]
public partial class TinyMoeFp4;
