namespace LlmEff.Generator.Model;

// Mirrors of the runtime's public enums (runtime/LlmEff.Runtime/Attributes/Enums.cs). The generator cannot
// reference the runtime (netstandard2.0 vs net10.0 + TorchSharp), so it reads attribute arguments as
// these values; EnumMirrorTests keeps names and numbers identical.

internal enum NormKind { RmsNorm = 0, LayerNorm = 1 }

internal enum PositionKind { Rope = 0, Learned = 1, None = 2 }

internal enum InitKind { Gpt2 = 0, PyTorchDefault = 1 }

internal enum ActivationKind { SwiGlu = 0, Gelu = 1 }

internal enum ProjectionKind { Full = 0, NoKey = 1, NoQuery = 2, Shared = 3 }

/// <summary>Mirror of the runtime's AttentionKind (named apart: the runtime's name already ends in Kind).</summary>
internal enum AttentionForm { Standard = 0, Latent = 1, Compressed = 2 }

/// <summary>Mirror of the runtime's LlmEff.Quantization.IndexerPrecision.</summary>
internal enum IndexerPrecisionKind { Fp4 = 0, Fp8 = 1, Bf16 = 2, Fp32 = 3 }

internal enum NamingKind { Llama = 0, Gpt2 = 1 }

internal enum RouterKind { Softmax = 0, Sigmoid = 1, SqrtSoftplus = 2 }

internal enum BalanceKind { AuxLoss = 0, AuxLossFree = 1, None = 2 }

internal enum QuantFormatKind { Mxfp4 = 0, Nvfp4 = 1, Fp8E4M3 = 2, Int4 = 3, Fp4 = Mxfp4 }

[System.Flags]
internal enum QuantTargetKind { Experts = 1, Mlp = 2, Attention = 4, AllLinear = Mlp | Attention | Experts }

/// <summary>Mirror of the runtime's LlmEff.Layers.CompressedAttentionKind: DeepSeek V4's per-layer attention kinds.</summary>
internal enum CompressedKind { SlidingWindow = 0, CompressedSparse = 1, HeavilyCompressed = 2 }
