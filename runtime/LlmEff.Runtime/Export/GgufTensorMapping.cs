using System.Collections.Generic;

namespace LlmEff.Export;

/// <summary>What happens to a tensor's values between our state dict and the GGUF file.</summary>
public enum GgufTransform
{
    /// <summary>Written as it is.</summary>
    None,

    /// <summary>
    /// The rows of a query or key projection are reordered within each head so that llama.cpp, which rotates
    /// adjacent pairs of a head's channels (2i, 2i + 1), rotates the pairs our rotary embedding rotates, which are
    /// the two halves (i, i + HeadDim/2), as in Hugging Face Llama: row i of half h of a head moves to 2i + h.
    /// With <see cref="GgufTensorMapping.RotaryRows"/> only that many trailing rows of each head are rotated (latent
    /// attention's rotary part) and only they are reordered.
    /// </summary>
    RotaryPairs,

    /// <summary>
    /// Not a tensor of ours: a vector of zeros as long as the source has rows, for a tensor llama.cpp's architecture
    /// requires where our model has none and adds nothing (a zero selection bias changes no expert choice).
    /// </summary>
    ZeroBias,

    /// <summary>A depthwise convolution filter [channels, 1, taps] written as [channels, taps], the shape llama.cpp's
    /// ggml_ssm_conv reads (both correlate the last taps inputs with the taps in the same order).</summary>
    DepthwiseFilter,

    /// <summary>A weight stored input × output, as GPT-2's <c>Conv1D</c> (and our <c>TransposedLinear</c>) keeps it,
    /// written output × input: ggml's matmul reads a weight as rows of outputs (llama.cpp's convert_hf_to_gguf.py
    /// transposes GPT-2's c_attn, c_proj and c_fc weights for the same reason).</summary>
    Transposed,

    /// <summary>The <see cref="GgufTensorMapping.Stacked"/> tensors joined along their first dimension (rows of a
    /// weight, entries of a bias) instead of stacked under a new one: separate q, k and v projections written as the
    /// one fused projection llama.cpp's gpt2 reads (attn_qkv, rows [q | k | v]).</summary>
    Concatenated,
}

/// <summary>One row of a GGUF tensor table.</summary>
/// <param name="Source">The tensor's state-dict name ("model.layers.0.self_attn.q_proj.weight"); with
/// <paramref name="Stacked"/>, the first of them.</param>
/// <param name="Name">Its GGUF name ("blk.0.attn_q.weight").</param>
/// <param name="Transform">What happens to its values on the way.</param>
/// <param name="Heads">The heads its rows hold, for <see cref="GgufTransform.RotaryPairs"/>; 0 otherwise.</param>
/// <param name="Repeats">How many times each of the <paramref name="Heads"/> heads is written, its copies next to each
/// other (after any pairing): the query copy of a key projection when queries are the keys but there are fewer key
/// heads than query heads, since llama.cpp's query head h reads key head h / Repeats, as our module's
/// repeat_interleave gives query head h the result of key head h / Repeats. 1: written once.</param>
/// <param name="RotaryRows">For <see cref="GgufTransform.RotaryPairs"/>: the rows at the end of each head that are
/// rotated (the others are left in place); 0: the whole head.</param>
/// <param name="Stacked">Several state-dict tensors of one shape written as one GGUF tensor with a new outermost
/// dimension, in this order (each routed expert's matrix, as llama.cpp's ffn_*_exps hold them), or joined along their
/// first dimension with <see cref="GgufTransform.Concatenated"/>; null: one tensor.</param>
/// <param name="Type">The type the tensor is written in whatever type the other matrices take; null: that type. Only
/// <see cref="GgufTensorType.MXFP4"/>, for the weight of a layer the model quantizes to MXFP4 (<c>[Quant]</c>): it is
/// written as exactly the codes and scales our quantizer packs, the weights the model computes with once quantized.</param>
public sealed record GgufTensorMapping(string Source, string Name, GgufTransform Transform = GgufTransform.None, int Heads = 0, int Repeats = 1,
    int RotaryRows = 0, IReadOnlyList<string>? Stacked = null, GgufTensorType? Type = null)
{
    /// <summary>Every state-dict tensor this row reads.</summary>
    public IReadOnlyList<string> Sources => Stacked ?? new[] { Source };
}
