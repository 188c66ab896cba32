using LlmEff;

namespace LlmEff.Samples;

/// <summary>Llama-3-8B exactly: RMSNorm, RoPE (θ = 500,000), grouped-query attention with 8 KV heads,
/// SwiGLU of width 14,336, untied output head, Hugging Face Llama parameter names.</summary>
[Model(Vocab = 128256, Dim = 4096, Layers = 32, Context = 8192, TiedEmbeddings = false, RopeTheta = 500000)]
[Attention(Heads = 32, KvHeads = 8)]
[Mlp(Hidden = 14336, Activation = Activation.SwiGlu)]
public partial class Llama3_8B;
