using LlmEff;

namespace LlmEff.Samples;

/// <summary>GPT-2 small (124M) exactly: learned positions, LayerNorm, biases, GELU, tied embeddings,
/// and GPT-2's own parameter names (transformer.h.0.attn.c_attn.weight, …).</summary>
[Model(Vocab = 50257, Dim = 768, Layers = 12, Context = 1024, TiedEmbeddings = true,
       Norm = Norm.LayerNorm, Positions = Positions.Learned, Bias = true, Naming = ParameterNaming.Gpt2)]
[Attention(Heads = 12)]
[Mlp(Hidden = 3072, Activation = Activation.Gelu)]
public partial class Gpt2Small;
