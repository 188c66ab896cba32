namespace LlmEff;

/// <summary>A low-precision number format for weights, with its scaling scheme
/// (implemented in <c>LlmEff.Quantization</c>).</summary>
public enum QuantFormat
{
    /// <summary>OCP Microscaling MXFP4: E2M1 elements in blocks of 32 along the last dimension, each block sharing a
    /// power-of-two E8M0 scale. 4.25 bits per value.</summary>
    Mxfp4 = 0,
    /// <summary>NVIDIA NVFP4: E2M1 elements in blocks of 16, each block with an E4M3 scale, times one fp32 scale for
    /// the whole tensor. 4.5 bits per value plus the tensor scale.</summary>
    Nvfp4 = 1,
    /// <summary>FP8 E4M3 (the "FN" variant: no infinities) elements with one fp32 scale for the whole tensor.</summary>
    Fp8E4M3 = 2,
    /// <summary>Symmetric 4-bit integers in groups (32 by default) along the last dimension, each group with an fp32
    /// scale.</summary>
    Int4 = 3,
    /// <summary>Plain "FP4" means the open standard, MXFP4.</summary>
    Fp4 = Mxfp4,
}
