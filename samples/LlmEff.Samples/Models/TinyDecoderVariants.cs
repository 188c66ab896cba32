using LlmEff;

namespace LlmEff.Samples;

// TinyDecoder with each attention variant of the QKV study and with grouped/multi-query attention:
// the same width, depth, data and budget, so that trained side by side they isolate the attention choice.

/// <summary>TinyDecoder whose keys are its values (K := V): no W_K, half the KV cache.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Projections.NoKey, Heads = 4)]
public partial class TinyNoKey;

/// <summary>TinyDecoder whose queries are its keys (Q := K): no W_Q, symmetric attention scores.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Projections.NoQuery, Heads = 4)]
public partial class TinyNoQuery;

/// <summary>TinyDecoder with one projection for Q, K and V.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Projections.Shared, Heads = 4)]
public partial class TinyShared;

/// <summary>TinyDecoder with grouped-query attention: 2 key/value heads for 4 query heads.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4, KvHeads = 2)]
public partial class TinyGqa;

/// <summary>TinyDecoder with multi-query attention: one key/value head.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4, KvHeads = 1)]
public partial class TinyMqa;

/// <summary>TinyNoQuery plus the study's symmetry-breaking positional term on the score map.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Projections.NoQuery, Heads = 4, BreakSymmetry = true)]
public partial class TinyNoQueryPlus;

/// <summary>TinyShared plus the study's symmetry-breaking positional term on the score map.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Projections.Shared, Heads = 4, BreakSymmetry = true)]
public partial class TinySharedPlus;

/// <summary>TinyDecoder with cross-layer KV sharing: layers 1 and 3 reuse the keys and values of layers 0 and 2.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4, ShareKvEvery = 2)]
public partial class TinyShareKv;
