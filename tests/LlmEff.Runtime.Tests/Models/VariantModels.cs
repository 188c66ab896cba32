using LlmEff;

namespace LlmEff.Runtime.Tests.Models;

// Every projection variant × {MHA, GQA, MQA}, small enough to build, run and train in a test.

[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.Full, Heads = 4)] public partial class FullMha;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.Full, Heads = 4, KvHeads = 2)] public partial class FullGqa;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.Full, Heads = 4, KvHeads = 1)] public partial class FullMqa;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoKey, Heads = 4)] public partial class NoKeyMha;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoKey, Heads = 4, KvHeads = 2)] public partial class NoKeyGqa;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoKey, Heads = 4, KvHeads = 1)] public partial class NoKeyMqa;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoQuery, Heads = 4)] public partial class NoQueryMha;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoQuery, Heads = 4, KvHeads = 2)] public partial class NoQueryGqa;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoQuery, Heads = 4, KvHeads = 1)] public partial class NoQueryMqa;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.Shared, Heads = 4)] public partial class SharedMha;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.Shared, Heads = 4, KvHeads = 2)] public partial class SharedGqa;
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.Shared, Heads = 4, KvHeads = 1)] public partial class SharedMqa;

/// <summary>GPT-2 names (fused c_attn) with a variant, no rotary positions.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32, Naming = ParameterNaming.Gpt2, Positions = Positions.Learned, Norm = Norm.LayerNorm, Bias = true)]
[Attention(Projections.NoKey, Heads = 4, KvHeads = 2)]
public partial class Gpt2NamesNoKey;

/// <summary>NoQuery with the study's symmetry-breaking positional term ("NoQuery+").</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.NoQuery, Heads = 4, BreakSymmetry = true)] public partial class NoQueryPlusMha;

/// <summary>Shared with the positional term, under GQA (queries repeated per group).</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 32)] [Attention(Projections.Shared, Heads = 4, KvHeads = 2, BreakSymmetry = true)] public partial class SharedPlusGqa;

/// <summary>Cross-layer KV sharing over an odd layer count: layers 0 and 2 own keys and values, layer 1 reuses layer 0's.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 3, Context = 32)] [Attention(Heads = 4, KvHeads = 2, ShareKvEvery = 2)] public partial class FullShareKv;

/// <summary>KV sharing with GPT-2 names (the fused c_attn is narrower in reusing layers), NoKey, biases, learned positions.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 4, Context = 32, Naming = ParameterNaming.Gpt2, Positions = Positions.Learned, Norm = Norm.LayerNorm, Bias = true)]
[Attention(Projections.NoKey, Heads = 4, ShareKvEvery = 2)]
public partial class Gpt2NamesNoKeyShareKv;

/// <summary>Encoders (Causal = false) as the QKV study's synthetic tasks use them: learned positions, 10 symbols.</summary>
[Model(Vocab = 10, Dim = 32, Layers = 2, Context = 16, Causal = false, Positions = Positions.Learned, TiedEmbeddings = false)]
[Attention(Heads = 2)] public partial class EncoderFull;

[Model(Vocab = 10, Dim = 32, Layers = 2, Context = 16, Causal = false, Positions = Positions.Learned, TiedEmbeddings = false)]
[Attention(Projections.NoQuery, Heads = 2)] public partial class EncoderNoQuery;

[Model(Vocab = 10, Dim = 32, Layers = 2, Context = 16, Causal = false, Positions = Positions.Learned, TiedEmbeddings = false)]
[Attention(Projections.Shared, Heads = 2, BreakSymmetry = true)] public partial class EncoderSharedPlus;
