using LlmEff;

namespace LlmEff.Benchmarks;

// The training-step benchmark's architecture (issue sizes: d 512, 8 layers, seq 256, batch 8; byte vocabulary,
// tied head) in each attention variant. Bench512 is the one compared with hand-written TorchSharp and PyTorch.

/// <summary>Full attention, 8 heads: the reference architecture.</summary>
[Model(Vocab = 256, Dim = 512, Layers = 8, Context = 256)]
[Attention(Heads = 8)]
public partial class Bench512;

/// <summary>Keys are the values.</summary>
[Model(Vocab = 256, Dim = 512, Layers = 8, Context = 256)]
[Attention(Projections.NoKey, Heads = 8)]
public partial class Bench512NoKey;

/// <summary>Queries are the keys.</summary>
[Model(Vocab = 256, Dim = 512, Layers = 8, Context = 256)]
[Attention(Projections.NoQuery, Heads = 8)]
public partial class Bench512NoQuery;

/// <summary>One projection for Q, K and V.</summary>
[Model(Vocab = 256, Dim = 512, Layers = 8, Context = 256)]
[Attention(Projections.Shared, Heads = 8)]
public partial class Bench512Shared;

/// <summary>Grouped-query attention, 2 KV heads.</summary>
[Model(Vocab = 256, Dim = 512, Layers = 8, Context = 256)]
[Attention(Heads = 8, KvHeads = 2)]
public partial class Bench512Gqa;

/// <summary>Multi-query attention.</summary>
[Model(Vocab = 256, Dim = 512, Layers = 8, Context = 256)]
[Attention(Heads = 8, KvHeads = 1)]
public partial class Bench512Mqa;

/// <summary>Bench512 with activation checkpointing: each block recomputes its forward in backward.</summary>
[Model(Vocab = 256, Dim = 512, Layers = 8, Context = 1024, Checkpointing = true)]
[Attention(Heads = 8)]
public partial class Bench512Checkpointed;

/// <summary>Bench512 at the checkpointing benchmark's context, keeping activations.</summary>
[Model(Vocab = 256, Dim = 512, Layers = 8, Context = 1024)]
[Attention(Heads = 8)]
public partial class Bench512Long;

// The decoding benchmark's models: TinyDecoder's width and depth with room for a 512-token prompt and the tokens after it.

/// <summary>Full attention: the cache holds keys and values of every layer.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 1024)]
[Attention(Heads = 4)]
public partial class DecodeFull;

/// <summary>Keys are the values: half the cache, keys re-rotated from it each step.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 1024)]
[Attention(Projections.NoKey, Heads = 4)]
public partial class DecodeNoKey;

/// <summary>LFM2-style hybrid: attention in layers 1 and 3, short convolutions (constant state) in 0 and 2.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 1024)]
[Layers(Attention = "1,3")]
[ShortConv]
[Attention(Heads = 4, QkNorm = true)]
public partial class DecodeHybrid;

/// <summary>Latent attention: a 32-wide latent and a 16-wide rotary key per token and layer.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 1024)]
[Attention(Heads = 4, HeadDim = 64, Kind = AttentionKind.Latent, KvRank = 32, RopeDim = 16, QRank = 96)]
public partial class DecodeLatent;

/// <summary>Sparse attention: each token attends to 64 past tokens its indexer picks.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 1024)]
[Attention(Heads = 4)]
[SparseAttention(IndexerHeads = 4, IndexerDim = 32, TopK = 64)]
public partial class DecodeSparse;

/// <summary>A mixture: 2 of 8 experts of half TinyDecoder's MLP width per token (TinyMoe's layout, 1,024-token context).</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 1024)]
[Attention(Heads = 4)]
[MoE(Experts = 8, Active = 2, ExpertHidden = 352)]
public partial class DecodeMoe;

/// <summary>The llama.cpp decode comparison's ~100M-parameter Llama-style model (GPT-2 small's width and depth, a
/// 32,000-token vocabulary, tied head): large enough that reading the weights bounds a decode step.</summary>
[Model(Vocab = 32000, Dim = 768, Layers = 12, Context = 1024)]
[Attention(Heads = 12)]
public partial class Decode100M;
