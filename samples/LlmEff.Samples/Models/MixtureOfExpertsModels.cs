using LlmEff;

namespace LlmEff.Samples;

/// <summary>Mixtral-8x7B: Mistral-7B's attention (grouped-query, 8 KV heads) with 8 SwiGLU experts of width 14,336
/// in every layer, 2 active per token (softmax router, renormalised top-2). 46,702,792,704 parameters,
/// 12,879,925,248 active. Sizes only: far too large to build here.</summary>
[Model(Vocab = 32000, Dim = 4096, Layers = 32, Context = 32768, TiedEmbeddings = false, RopeTheta = 1000000)]
[Attention(Heads = 32, KvHeads = 8)]
[Mlp(Hidden = 14336)]
[MoE(Experts = 8, Active = 2)]
public partial class Mixtral8x7B;

/// <summary>DeepSeek-V3 (without its multi-token-prediction module): multi-head latent attention (128 heads; keys and
/// values expanded from a cached 512-wide latent plus a shared 64-wide rotary key; queries through a 1,536-wide latent),
/// 3 dense layers of width 18,432, then 58 layers of 256 routed experts (top-8, sigmoid scores, routed scale 2.5,
/// auxiliary-loss-free balancing) plus one shared expert, all 2,048 wide. Caches 35,136 elements (70,272 bytes in bf16)
/// per token. Group-limited routing is not modelled (it changes which experts run, not the sizes). Sizes only.</summary>
[Model(Vocab = 129280, Dim = 7168, Layers = 61, Context = 4096, TiedEmbeddings = false)]
[Attention(Heads = 128, HeadDim = 128, Kind = AttentionKind.Latent, KvRank = 512, RopeDim = 64, QRank = 1536)]
[Mlp(Hidden = 18432)]
[MoE(Experts = 256, Active = 8, Shared = 1, ExpertHidden = 2048, FirstLayer = 3,
    Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree, RoutedScale = 2.5)]
public partial class DeepSeekV3Like;

/// <summary>LFM2-8B-A1B: a hybrid of 18 gated short-convolution blocks (kernel 3) and 6 grouped-query attention
/// layers (32 heads, 8 KV heads, per-head Q/K norm) at layers 2, 6, 10, 14, 18 and 21; 2 dense SwiGLU layers of
/// width 7,168, then 22 layers of 32 experts (top-4, width 1,792, sigmoid scores with a selection bias). Only the
/// 6 attention layers cache keys and values: 6 × 2 × 8 × 64 = 6,144 elements per token. Sizes only.</summary>
[Model(Vocab = 65536, Dim = 2048, Layers = 24, Context = 32768, RopeTheta = 1000000)]
[Layers(Attention = "2,6,10,14,18,21")]
[ShortConv(Kernel = 3)]
[Attention(Heads = 32, KvHeads = 8, QkNorm = true)]
[Mlp(Hidden = 7168)]
[MoE(Experts = 32, Active = 4, ExpertHidden = 1792, FirstLayer = 2, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree)]
public partial class Lfm2MoeLike;

/// <summary>LFM2.5-8B-A1B (Liquid, May 2026): LFM2-8B-A1B's architecture (<see cref="Lfm2MoeLike"/>) with a vocabulary
/// of 128,000, RoPE θ 5·10⁶ and a 131,072-token context (REFERENCES §3; the attention layers and tied embeddings are
/// assumed unchanged, as the card does not list them). The larger vocabulary adds (128,000 − 65,536) × 2,048 tied
/// embedding parameters; the cache per token is LFM2's.</summary>
[Model(Vocab = 128000, Dim = 2048, Layers = 24, Context = 131072, RopeTheta = 5000000)]
[Layers(Attention = "2,6,10,14,18,21")]
[ShortConv(Kernel = 3)]
[Attention(Heads = 32, KvHeads = 8, QkNorm = true)]
[Mlp(Hidden = 7168)]
[MoE(Experts = 32, Active = 4, ExpertHidden = 1792, FirstLayer = 2, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree)]
public partial class Lfm25_8B_A1B;

/// <summary>TinyDecoder with its MLP split into 8 experts of half its width, 2 active per token (Mixtral-style
/// softmax router with an auxiliary balancing loss): the same compute per token for 4x the MLP parameters.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4)]
[MoE(Experts = 8, Active = 2, ExpertHidden = 352)]
public partial class TinyMoe;

/// <summary>A tiny DeepSeek-style mixture: a dense first layer, then 16 narrow experts (2 active) plus a shared one,
/// sigmoid router, routed scale 2.5 and auxiliary-loss-free balancing. The bias moves 10x faster than DeepSeek's
/// 0.001 per step, since runs here are hundreds of steps, not hundreds of thousands.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4)]
[MoE(Experts = 16, Active = 2, Shared = 1, ExpertHidden = 176, FirstLayer = 1,
    Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLossFree, RoutedScale = 2.5, BiasUpdateRate = 0.01)]
public partial class TinyMoeDeepSeek;

/// <summary>TinyMoe with DeepSeek V4's routing: √softplus scores, and the first layer hash-routed (V4 hashes its first 3):
/// each token's 2 experts there come from a fixed table indexed by its id, and the router's scores only weigh them.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4)]
[MoE(Experts = 8, Active = 2, ExpertHidden = 352, Router = RouterScoring.SqrtSoftplus, HashLayers = 1)]
public partial class TinyMoeHash;
