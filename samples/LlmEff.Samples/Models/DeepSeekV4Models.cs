using LlmEff;

namespace LlmEff.Samples;

/// <summary>TinyDecoder with DeepSeek V4's attention (<c>LlmEff.Layers.CompressedAttention</c>): every layer attends to
/// its last 32 tokens through one 64-wide key = value head; layer 2 adds CSA (overlapping entries of 4 tokens, the top 8
/// of a 4-head FP4 indexer), layer 3 HCA (every entry of 16 tokens); layers 0 and 1 are sliding-window only, as
/// DeepSeek-V4-Flash's first two. Ratios are small so windows complete within a short training sequence.</summary>
[Model(Vocab = 256, Dim = 256, Layers = 4, Context = 256)]
[Attention(Heads = 4, HeadDim = 64, Kind = AttentionKind.Compressed, RopeDim = 16, QRank = 96, OutputGroups = 2, OutputRank = 64, SlidingWindow = 32)]
[CompressedLayers(Sparse = "2", Heavy = "3", SparseRatio = 4, HeavyRatio = 16, TopK = 8, IndexerHeads = 4, IndexerDim = 32)]
public partial class TinyV4;

/// <summary>
/// DeepSeek-V4-Flash's main stack (deepseek-ai's <c>config.json</c> and V4 <c>inference/model.py</c>; without the
/// multi-token-prediction layer): 43 layers of width 4,096, vocabulary 129,280, untied head; compressed attention with 64
/// query heads of 512 and one key = value head, 64 rotary channels, a 1,024-wide query latent, 8 output groups of rank
/// 1,024 and a 128-token window; layers 0–1 sliding-window only, then CSA in even layers (ratio 4, top 512 of a 64 × 128
/// FP4 indexer, bf16 scores) and HCA in odd ones (ratio 128); in every layer 256 routed experts (top 6, √softplus scores,
/// routed scale 1.5, auxiliary-loss-free) plus one shared, all 2,048 wide with SwiGLU clamped at 10, trained and stored
/// in MXFP4. Sizes only (its weights would take about a terabyte in fp32).
/// <para>Four residual streams (mHC, hc_mult 4, 20 Sinkhorn iterations): per layer hc_attn_fn and hc_ffn_fn
/// [24, 16,384], hc_*_base [24] and hc_*_scale [3], plus the head's hc_head_fn [4, 16,384], hc_head_base [4] and
/// hc_head_scale [1]: 33,884,439 parameters. Layers 0–2 route by a fixed token→experts table (tid2eid [129,280, 6], a
/// buffer, 2,327,040 entries in all) and keep their gate weight, which still weights the chosen experts.</para>
/// <para>How the count (284,332,230,231 parameters, 13,799,622,231 active) relates to the report's 284B total and 13B
/// active: the total rounds to 284B. The active count includes the input embedding (129,280 × 4,096 = 529,530,880, a
/// lookup, not a matrix product); without it, 13,270,091,351, which is the report's 13B. Not counted: the
/// multi-token-prediction layer (not part of the inference stack), the selection bias [256] of the 40 scored layers
/// (10,240 values, a parameter in the reference and a buffer here). YaRN on the compressed layers' rotary
/// (compress_rope_theta) is not modelled; it has no parameters.</para>
/// </summary>
[Model(Vocab = 129280, Dim = 4096, Layers = 43, Context = 1048576, TiedEmbeddings = false, NormEps = 1e-6)]
[Attention(Heads = 64, HeadDim = 512, Kind = AttentionKind.Compressed, RopeDim = 64, QRank = 1024, OutputGroups = 8, OutputRank = 1024, SlidingWindow = 128)]
[CompressedLayers(Sparse = "2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34,36,38,40,42", Heavy = "3,5,7,9,11,13,15,17,19,21,23,25,27,29,31,33,35,37,39,41",
    SparseRatio = 4, HeavyRatio = 128, TopK = 512, IndexerHeads = 64, IndexerDim = 128, Bf16Scores = true)]
[Mlp(Hidden = 2048, ClampLimit = 10)]
[MoE(Experts = 256, Active = 6, Shared = 1, ExpertHidden = 2048, Router = RouterScoring.SqrtSoftplus, Balance = ExpertBalance.AuxLossFree, RoutedScale = 1.5, HashLayers = 3)]
[Residual(Streams = 4)]
[Quant(QuantFormat.Mxfp4, Target = QuantTarget.Experts)]
public partial class DeepSeekV4Flash;
