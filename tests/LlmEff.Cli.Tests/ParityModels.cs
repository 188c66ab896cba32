using LlmEff;
using static TorchSharp.torch;

// Small declarations for the PyTorch parity tests, covering what the sample models leave out. Kept tiny: every one
// is built, checkpointed and run forward and backward on both sides in one test.
namespace LlmEff.Cli.Tests.Models;

/// <summary>GPT-2 naming (fused c_attn/c_fc, input × output weights), LayerNorm, biases, learned positions, GELU,
/// GQA, an untied head, bidirectional.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32, Naming = ParameterNaming.Gpt2, Norm = Norm.LayerNorm, Positions = Positions.Learned,
    Bias = true, Causal = false, TiedEmbeddings = false)]
[Attention(Heads = 4, KvHeads = 2)]
[Mlp(Activation = Activation.Gelu)]
public partial class ParityGpt2Encoder;

/// <summary>GPT-2 naming with fused SwiGLU, NoKey, cross-layer KV sharing and NVFP4 with a clipped estimator.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32, Naming = ParameterNaming.Gpt2, Bias = true)]
[Attention(Projections.NoKey, Heads = 4, KvHeads = 2, ShareKvEvery = 2)]
[Mlp(Hidden = 48)]
[Quant(QuantFormat.Nvfp4, Clipped = true)]
public partial class ParityGpt2SharedKv;

/// <summary>Shared projections with GQA (queries repeated per group), no positions, a dense first layer, sigmoid routing
/// with the auxiliary loss, a shared expert, Int4 experts in groups of 16.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 2, Context = 32, Positions = Positions.None)]
[Attention(Projections.Shared, Heads = 4, KvHeads = 2)]
[MoE(Experts = 4, Active = 2, Shared = 1, ExpertHidden = 32, FirstLayer = 1, Router = RouterScoring.Sigmoid, Balance = ExpertBalance.AuxLoss)]
[Quant(QuantFormat.Int4, GroupSize = 16, From = 0.5)]
public partial class ParitySharedMoeInt4;

/// <summary>FP8 weights everywhere, activation checkpointing, a head width unrelated to Dim / Heads.</summary>
[Model(Vocab = 64, Dim = 64, Layers = 3, Context = 32, Checkpointing = true)]
[Attention(Heads = 2, HeadDim = 48)]
[Mlp(Hidden = 96)]
[Quant(QuantFormat.Fp8E4M3)]
public partial class ParityFp8Checkpointed;

/// <summary>A byte-level model small enough for the two-process torchrun test.</summary>
[Model(Vocab = 256, Dim = 64, Layers = 2, Context = 64)]
[Attention(Heads = 4, KvHeads = 2)]
public partial class ParityDistributed;

/// <summary>A model whose declaration has a feature without a PyTorch port, as a generated model reports it (the
/// generator writes the refusal; written by hand here because every current feature has a port).</summary>
public sealed class ParityUnported : nn.Module<Tensor, Tensor>, IDeclaredModel<ParityUnported>
{
    private ParityUnported() : base(nameof(ParityUnported)) { }

    public static ModelFacts Facts { get; } = new(nameof(ParityUnported), Vocab: 256, Dim: 64, Layers: 1, Context: 16, ParameterCount: 0, ActiveParameterCount: 0,
        KvCacheElementsPerToken: 0, FlopsPerToken: 0, MatmulFlopsPerToken: 0, Breakdown: new(0, 0, 0, 0, 0));

    public static PyTorchExport PyTorch { get; } = PyTorchExport.Refused("short-convolution blocks have no PyTorch port yet");

    public static ParityUnported Create(Device? device = null, ScalarType? dtype = null) => new();

    public override Tensor forward(Tensor input) => input;
}
