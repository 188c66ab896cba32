using LlmEff;

namespace LlmEff.Samples;

/// <summary>The QKV study's encoder as its authors' code starts it (PyTorch's default layers): the symbols one-hot
/// through a biased linear layer, learned positions N(0, 1), every linear layer U(±1/√fan_in) with a bias, the
/// symmetry-breaking term's weights N(0, 0.02²); queries are keys and values, with that term.</summary>
[Model(Vocab = 10, Dim = 64, Layers = 2, Context = 16, Causal = false, Positions = Positions.Learned, Norm = Norm.LayerNorm, TiedEmbeddings = false,
    Init = InitScheme.PyTorchDefault)]
[Attention(Projections.Shared, Heads = 2, BreakSymmetry = true)]
[Mlp(Activation = Activation.Gelu)]
public partial class StudyEncoderTorchInit;
