using LlmEff;

namespace LlmEff.Samples;

/// <summary>TinyDecoder as an LFM2-style hybrid: attention (with per-head Q/K norm) in layers 1 and 3 only, gated
/// short convolutions in layers 0 and 2. Half the KV cache; the convolutions keep a constant decoding state.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Layers(Attention = "1,3")]
[ShortConv(Kernel = 3)]
[Attention(Heads = 4, QkNorm = true)]
public partial class TinyHybrid;

/// <summary>TinyDecoder with DeepSeek's multi-head latent attention: keys and values expanded from a cached 32-wide
/// latent, plus a shared 16-wide rotary key, so 48 cached elements per token and layer instead of 512.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4, HeadDim = 64, Kind = AttentionKind.Latent, KvRank = 32, RopeDim = 16, QRank = 96)]
public partial class TinyLatent;

/// <summary>TinyDecoder with DeepSeek-V3.2's sparse attention: a 4-head lightning indexer picks the 32 past tokens
/// each query attends to (of up to 256).</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4)]
[SparseAttention(IndexerHeads = 4, IndexerDim = 32, TopK = 32)]
public partial class TinySparse;
