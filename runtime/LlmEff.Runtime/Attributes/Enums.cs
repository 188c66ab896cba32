namespace LlmEff;

// The generator mirrors these values (generator/LlmEff.Generator/Model/Enums.cs); a test keeps them in step.

/// <summary>Normalization layer used before each sub-block and at the end of the stack.</summary>
public enum Norm
{
    /// <summary>Root-mean-square norm with a learned scale (Llama, LFM2, DeepSeek).</summary>
    RmsNorm = 0,
    /// <summary>Layer norm with learned scale and bias (GPT-2).</summary>
    LayerNorm = 1,
}

/// <summary>How token positions enter the model.</summary>
public enum Positions
{
    /// <summary>Rotary position embedding applied to queries and keys.</summary>
    Rope = 0,
    /// <summary>A learned absolute position embedding added to the token embedding (GPT-2).</summary>
    Learned = 1,
    /// <summary>No positional signal besides the causal mask.</summary>
    None = 2,
}

/// <summary>Feed-forward activation.</summary>
public enum Activation
{
    /// <summary>SiLU-gated linear unit: <c>down(silu(gate(x)) ⊙ up(x))</c>, three matrices.</summary>
    SwiGlu = 0,
    /// <summary>GELU (tanh approximation, as GPT-2): <c>down(gelu(up(x)))</c>, two matrices.</summary>
    Gelu = 1,
}

/// <summary>Which of the three attention projections exist ("Do Transformers Need Three Projections?").</summary>
public enum Projections
{
    /// <summary>Q, K and V are distinct projections; the cache holds K and V.</summary>
    Full = 0,
    /// <summary>Keys are the values (K := V = X·W_V): no W_K, and the cache holds one stream.</summary>
    NoKey = 1,
    /// <summary>Queries are the keys (Q := K = X·W_K): no W_Q; scores are symmetric; the cache holds K and V.</summary>
    NoQuery = 2,
    /// <summary>One projection serves as Q, K and V (Q = K = V = X·W): no W_K, no W_Q; the cache holds one stream.</summary>
    Shared = 3,
}

/// <summary>How attention forms its keys and values.</summary>
public enum AttentionKind
{
    /// <summary>Keys and values projected per head (the projection variant decides which projections exist).</summary>
    Standard = 0,

    /// <summary>DeepSeek's multi-head latent attention: keys and values expanded from a cached low-rank vector.</summary>
    Latent = 1,

    /// <summary>DeepSeek V4's attention: one key = value head, a sliding window, and in the layers
    /// <c>[CompressedLayers]</c> lists compressed entries of the older tokens (CSA with an indexer's top-k, or HCA);
    /// a per-head sink logit and a grouped low-rank output (<c>LlmEff.Layers.CompressedAttention</c>).</summary>
    Compressed = 2,
}

/// <summary>Precision of compressed attention's index queries and keys ([CompressedLayers] IndexerPrecision); the
/// declared twin of the runtime's <c>LlmEff.Quantization.IndexerPrecision</c> (same names and numbers, tested), kept
/// apart so that the attributes need nothing beyond this namespace.</summary>
public enum IndexKeyPrecision
{
    /// <summary>DeepSeek V4's rule: E2M1 values, one power-of-two scale per 32 that never clips.</summary>
    Fp4 = 0,
    /// <summary>E4M3 values, one power-of-two scale per 128 (DeepSeek-V3.2's indexer).</summary>
    Fp8 = 1,
    /// <summary>Rounded to bf16.</summary>
    Bf16 = 2,
    /// <summary>Unchanged fp32.</summary>
    Fp32 = 3,
}

/// <summary>Whose parameter names the module uses, so checkpoints map one to one.</summary>
public enum ParameterNaming
{
    /// <summary>Hugging Face Llama names: <c>model.layers.0.self_attn.q_proj.weight</c>.</summary>
    Llama = 0,
    /// <summary>Hugging Face GPT-2 names: <c>transformer.h.0.attn.c_attn.weight</c>, with fused QKV and
    /// GPT-2's <c>Conv1D</c> weight layout (input × output).</summary>
    Gpt2 = 1,
}

/// <summary>How a mixture-of-experts router turns its logits into expert scores.</summary>
public enum RouterScoring
{
    /// <summary>Softmax over all experts (Mixtral, Switch): scores compete, and sum to one before top-k.</summary>
    Softmax = 0,
    /// <summary>Independent sigmoid per expert (DeepSeek-V3, LFM2-8B-A1B): scores do not compete.</summary>
    Sigmoid = 1,
    /// <summary>Independent <c>√softplus(logit)</c> per expert (DeepSeek V4): scores do not compete and, unlike the
    /// sigmoid, do not saturate at 1 (they grow like √logit).</summary>
    SqrtSoftplus = 2,
}

/// <summary>How a mixture-of-experts layer keeps its experts evenly loaded.</summary>
public enum ExpertBalance
{
    /// <summary>An auxiliary loss <c>weight · Experts · Σ fraction_e · meanScore_e</c> added to the training loss (Switch, Mixtral).</summary>
    AuxLoss = 0,
    /// <summary>No extra loss: a per-expert bias, used for selection only, is nudged after every step toward
    /// equal load (DeepSeek-V3's auxiliary-loss-free balancing).</summary>
    AuxLossFree = 1,
    /// <summary>No balancing.</summary>
    None = 2,
}

/// <summary>Which linear weights <c>[Quant]</c> trains and stores in low precision. Flags: combine them with <c>|</c>.
/// Embeddings, the output head, norms, biases and expert routers always stay in full precision (they are small, or
/// they decide which expert runs). Left out, the target is <see cref="Experts"/> for a model with <c>[MoE]</c> (the
/// experts hold most of its memory) and <see cref="AllLinear"/> otherwise.</summary>
[System.Flags]
public enum QuantTarget
{
    /// <summary>The routed experts' feed-forward matrices (gate, up, down), every expert of every mixture layer.</summary>
    Experts = 1,
    /// <summary>Every other feed-forward matrix: the MLP of dense layers and the shared experts of mixture layers.</summary>
    Mlp = 2,
    /// <summary>The attention projections: Q, K, V (or the fused <c>c_attn</c>) and the output projection.</summary>
    Attention = 4,
    /// <summary>Every linear weight of attention, MLPs and experts.</summary>
    AllLinear = Mlp | Attention | Experts,
}

/// <summary>How a generated module's weights start.</summary>
public enum InitScheme
{
    /// <summary>GPT-2's scheme: weights N(0, 0.02²), residual output projections N(0, (0.02/√(2·layers))²), token
    /// embedding N(0, 0.02²), learned positions N(0, 0.01²), biases zero, norms one.</summary>
    Gpt2 = 0,
    /// <summary>What a model built from PyTorch's default layers starts with (the QKV study's published code): the
    /// symbols enter as one-hot vectors through a biased <c>nn.Linear</c> (an embedding U(±1/√Vocab) plus a bias
    /// U(±1/√Vocab)), learned positions N(0, 1) (<c>nn.Embedding</c>'s default), every linear layer, the output head
    /// included, U(±1/√fan_in) with a bias U(±1/√fan_in), the positional score mixer's weights N(0, 0.02²). Adds the
    /// biases to the parameter count.</summary>
    PyTorchDefault = 1,
}
