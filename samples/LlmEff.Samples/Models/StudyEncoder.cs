using LlmEff;

namespace LlmEff.Samples;

/// <summary>An encoder of the QKV study's synthetic tasks: bidirectional attention over lists of the symbols 0-9,
/// learned positions, one 10-way prediction per token; queries are keys, with the symmetry-breaking term.</summary>
[Model(Vocab = 10, Dim = 64, Layers = 2, Context = 16, Causal = false, Positions = Positions.Learned, TiedEmbeddings = false)]
[Attention(Projections.NoQuery, Heads = 2, BreakSymmetry = true)]
public partial class StudyEncoder;
