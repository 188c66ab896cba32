using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>How a model's targeted weights are quantized (what <c>[Quant]</c> declares).</summary>
/// <param name="Format">The weight format.</param>
/// <param name="From">Fraction of the training steps after which fake quantization switches on, in [0, 1).</param>
/// <param name="Clipped">Clipped straight-through estimator: no gradient where the format saturated.</param>
/// <param name="GroupSize">Int4 only: values per group scale (null: 32).</param>
public sealed record WeightQuantization(QuantFormat Format, double From = 0, bool Clipped = false, int? GroupSize = null)
{
    /// <summary>The format.</summary>
    public QuantFormat Format { get; } = Enum.IsDefined(Format)
        ? Format
        : throw new ArgumentOutOfRangeException(nameof(Format), Format, "Not a defined QuantFormat.");

    /// <summary>Fraction of the steps in full precision before fake quantization starts.</summary>
    public double From { get; } = From is >= 0 and < 1
        ? From
        : throw new ArgumentOutOfRangeException(nameof(From), From, "From must lie in [0, 1): the fraction of training steps after which fake quantization switches on.");

    /// <summary>Values per block scale along each weight's input dimension (0 for FP8's per-tensor scale).</summary>
    public int BlockSize => QuantFormats.BlockSize(Format, GroupSize);

    /// <summary>The first 0-based step that trains with fake quantization when a run of <paramref name="steps"/>
    /// switches on after the fraction <paramref name="from"/>: <c>floor(from · steps)</c>, exactly (0.29 · 100 is
    /// 28.999… in binary floating point, but the 29th step is meant); <paramref name="steps"/> when
    /// <paramref name="from"/> is 1, i.e. never.</summary>
    public static int StartStep(double from, int steps)
    {
        if (from is not (>= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(from), from, "The switch-on fraction must lie in [0, 1].");
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        return (int)Math.Floor((decimal)from * steps);
    }
}

/// <summary>
/// A linear layer whose weight trains for, and can be stored in, a low-precision format. Its parameters are named
/// <c>weight</c> and <c>bias</c>, exactly as <c>nn.Linear</c>'s (or <see cref="TransposedLinear"/>'s), so checkpoints of
/// a quantized declaration are those of the same declaration without <c>[Quant]</c>. Three modes:
/// <list type="bullet">
/// <item>full precision (the default): <c>x·Wᵀ + b</c>;</item>
/// <item>fake quantization (<see cref="FakeQuantize"/>, set by the trainer from <see cref="WeightQuantization.From"/>
/// on): <c>x·Q(W)ᵀ + b</c> with <c>Q</c> = quantize then dequantize, differentiated straight through;</item>
/// <item>packed (<see cref="UsePacked"/>): the fp32 weight is gone, the layer keeps only codes and scales and
/// dequantizes them on the fly, bit-identical to the fake-quantized weight.</item>
/// </list>
/// Blocks run along the input dimension: a transposed (input × output) weight is quantized as its transpose.
/// </summary>
public sealed class QuantizedLinear : nn.Module<Tensor, Tensor>
{
    // Named like nn.Linear's parameters; TorchSharp registers fields under these names.
    [ComponentName(Name = "weight")]
    private Parameter? weight_;
    [ComponentName(Name = "bias")]
    private readonly Parameter? bias_;
    private PackedTensor? packed;
    private bool fakeQuantize;
    /// <summary>Creates the layer; the weight is left uninitialised (callers initialise it), the bias is zero.</summary>
    /// <param name="inFeatures">Input width.</param>
    /// <param name="outFeatures">Output width.</param>
    /// <param name="hasBias">Whether the layer adds a bias.</param>
    /// <param name="quantization">How the weight is quantized; null keeps the layer in full precision for good (a
    /// shared class whose instances are not all targeted).</param>
    /// <param name="transposed">Store the weight input × output, as GPT-2's <c>Conv1D</c> does.</param>
    /// <param name="device">Device of the parameters.</param>
    /// <param name="dtype">Element type of the parameters.</param>
    public QuantizedLinear(long inFeatures, long outFeatures, bool hasBias, WeightQuantization? quantization, bool transposed = false, Device? device = null, ScalarType? dtype = null)
        : base(nameof(QuantizedLinear))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Quantization = quantization;
        Transposed = transposed;
        weight_ = new Parameter(transposed
            ? torch.empty(inFeatures, outFeatures, dtype: dtype, device: device)
            : torch.empty(outFeatures, inFeatures, dtype: dtype, device: device));
        register_parameter("weight", weight_);
        if (hasBias)
        {
            bias_ = new Parameter(torch.zeros(outFeatures, dtype: dtype, device: device));
            register_parameter("bias", bias_);
        }
    }

    /// <summary>The weight, <c>[out, in]</c> (or <c>[in, out]</c> when <see cref="Transposed"/>); null once packed.</summary>
    public Parameter? weight => weight_;

    /// <summary>The bias, or null.</summary>
    public Parameter? bias => bias_;

    /// <summary>Input width.</summary>
    public long InFeatures { get; }

    /// <summary>Output width.</summary>
    public long OutFeatures { get; }

    /// <summary>How the weight is quantized; null for a layer that always stays in full precision.</summary>
    public WeightQuantization? Quantization { get; }

    /// <summary>Whether the weight is stored input × output.</summary>
    public bool Transposed { get; }

    /// <summary>Whether forward uses the fake-quantized weight (quantization-aware training). Only settable on layers
    /// with a <see cref="Quantization"/>.</summary>
    public bool FakeQuantize
    {
        get => fakeQuantize;
        set
        {
            if (value && Quantization is null) throw new InvalidOperationException("This layer is declared without quantization.");
            fakeQuantize = value;
        }
    }

    /// <summary>The packed weight this layer runs from, or null while it holds an fp32 weight.</summary>
    public PackedTensor? Packed => packed;

    /// <summary>
    /// A rounding applied to the input before the product, to compute what another engine computes with the same
    /// weights: llama.cpp's CPU back end rounds activations to Q8_0 before multiplying them by an MXFP4 matrix (its
    /// vec_dot_type, ggml-cpu.c), which the GGUF parity tests reproduce with it. Null (the default): the input as it is,
    /// in training and in inference.
    /// </summary>
    public Func<Tensor, Tensor>? InputRounding { get; set; }

    /// <summary><c>x·Wᵀ + b</c> with W in full precision, fake-quantized, or dequantized from its packed codes.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var input = InputRounding is { } round ? round(x) : x;
        return nn.functional.linear(input, EffectiveWeight().to(x.dtype), bias_).MoveToOuterDisposeScope();
    }

    /// <summary>The weight forward multiplies by, <c>[out, in]</c>: the fp32 weight, its fake-quantized form, or the
    /// packed codes dequantized.</summary>
    public Tensor EffectiveWeight()
    {
        if (packed is not null) return packed.Dequantize();
        var w = Transposed ? weight_!.t() : (Tensor)weight_!;
        if (!fakeQuantize) return w;
        var q = Quantization!;
        // The autograd node only where a gradient can flow; both paths give the same bits.
        return w.requires_grad && is_grad_enabled()
            ? StraightThrough.Apply(w, q.Format, q.Clipped, q.GroupSize)
            : Quantizer.FakeQuantize(w, q.Format, q.GroupSize);
    }

    /// <summary>Quantizes the current weight (as <c>[out, in]</c>) into a new packed tensor, which the caller owns.</summary>
    public PackedTensor Pack()
    {
        var q = Quantization ?? throw new InvalidOperationException("This layer is declared without quantization; there is nothing to pack.");
        if (packed is not null) throw new InvalidOperationException("The layer is already packed.");
        using var _ = no_grad();
        if (!Transposed) return Quantizer.Quantize(weight_!, q.Format, q.GroupSize);
        using var outputByInput = weight_!.t();
        return Quantizer.Quantize(outputByInput, q.Format, q.GroupSize);
    }

    /// <summary>
    /// Runs from <paramref name="weights"/> from now on: the layer takes ownership, drops its fp32 weight (it leaves
    /// <c>parameters()</c> and <c>state_dict()</c>) and dequantizes on the fly. For inference; a packed layer cannot train.
    /// </summary>
    /// <exception cref="ArgumentException">The packed tensor has another format, block size or shape than this layer's weight.</exception>
    public void UsePacked(PackedTensor weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var q = Quantization ?? throw new InvalidOperationException("This layer is declared without quantization; it cannot run from packed codes.");
        if (packed is not null) throw new InvalidOperationException("The layer is already packed.");
        if (weights.Format != q.Format || weights.BlockSize != q.BlockSize)
            throw new ArgumentException($"The packed weight is {weights.Format} in blocks of {weights.BlockSize}; this layer is declared {q.Format} in blocks of {q.BlockSize}.", nameof(weights));
        if (!weights.Shape.SequenceEqual(new[] { OutFeatures, InFeatures }))
            throw new ArgumentException($"The packed weight has shape [{string.Join(", ", weights.Shape)}]; this layer needs [{OutFeatures}, {InFeatures}] (output × input).", nameof(weights));
        packed = weights;
        ConditionallyRegisterParameter("weight", (Parameter?)null);
        weight_!.Dispose();
        weight_ = null;
        fakeQuantize = false;
    }

    /// <summary>Every layer of <paramref name="model"/> with a <see cref="Quantization"/>, with its full name
    /// (<c>model.layers.0.self_attn.q_proj</c>), in module order.</summary>
    public static IReadOnlyList<(string Name, QuantizedLinear Layer)> NamedIn(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.named_modules()
            .Where(m => m.module is QuantizedLinear { Quantization: not null })
            .Select(m => (m.name, (QuantizedLinear)m.module))
            .ToList();
    }

    /// <summary>Every layer of <paramref name="model"/> with a <see cref="Quantization"/>, in module order.</summary>
    public static IReadOnlyList<QuantizedLinear> In(nn.Module model) => NamedIn(model).Select(m => m.Layer).ToList();

    /// <summary>Switches fake quantization of every quantized layer of <paramref name="model"/> on or off, e.g. to
    /// evaluate a model trained in full precision as it would run after post-training quantization.</summary>
    /// <returns>How many layers were switched.</returns>
    public static int SetFakeQuantization(nn.Module model, bool on)
    {
        var layers = In(model);
        foreach (var layer in layers)
        {
            if (layer.Packed is null) layer.FakeQuantize = on;
        }
        return layers.Count;
    }

    /// <summary>Moves the packed codes with the module (they are not tensors TorchSharp knows about); their element
    /// types never change.</summary>
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        base._toEpilog(dtype, device, non_blocking);
        if (packed is null || device is null || packed.Codes.device == device) return;
        var moved = new PackedTensor(packed.Format, packed.Shape.ToArray(), packed.BlockSize,
            packed.Codes.to(device).DetachFromDisposeScope(), packed.BlockScales?.to(device).DetachFromDisposeScope(),
            packed.TensorScale?.to(device).DetachFromDisposeScope());
        packed.Dispose();
        packed = moved;
    }

    /// <summary>Releases the packed codes with the module.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) packed?.Dispose();
        base.Dispose(disposing);
    }
}
