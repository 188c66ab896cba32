using System;
using LlmEff.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// LFM2's gated short convolution, the token mixer of its non-attention layers:
/// <c>B, C, h = split3(in_proj(x))</c>, <c>y = out_proj(C ⊙ conv(B ⊙ h))</c> with a causal depthwise convolution
/// over a few tokens. Submodules carry Hugging Face <c>Lfm2ShortConv</c>'s names (<c>in_proj</c>, <c>conv</c>,
/// <c>out_proj</c>) so checkpoints line up. Decoding needs only the last <c>kernel − 1</c> values of <c>B ⊙ h</c>:
/// a fixed-size state, no growing cache.
/// </summary>
public sealed class ShortConv : nn.Module<Tensor, Tensor>
{
    private readonly Linear in_proj;
    private readonly Conv1d conv;
    private readonly Linear out_proj;
    private readonly int dim;
    private readonly int kernel;

    /// <summary>Creates the block for width <paramref name="dim"/> and a convolution over <paramref name="kernel"/> tokens
    /// (LFM2: 3); <paramref name="layers"/> scales the output projection's initialisation.</summary>
    public ShortConv(int dim, int kernel, bool bias, int layers, Device? device = null, ScalarType? dtype = null) : base(nameof(ShortConv))
    {
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "Width must be positive.");
        if (kernel <= 0) throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "Convolution kernel must cover at least one token.");
        if (layers <= 0) throw new ArgumentOutOfRangeException(nameof(layers), layers, "Layer count must be positive.");
        this.dim = dim;
        this.kernel = kernel;
        in_proj = new Linear(dim, 3L * dim, hasBias: bias, device: device, dtype: dtype);
        // Padding as in Hugging Face's module; forward pads on the left itself, so the module's own forward is unused.
        conv = nn.Conv1d(dim, dim, kernel, padding: kernel - 1, groups: dim, bias: bias, device: device, dtype: dtype);
        out_proj = new Linear(dim, dim, hasBias: bias, device: device, dtype: dtype);
        RegisterComponents();

        Init.Normal(in_proj.weight);
        Init.ResidualOutput(out_proj.weight, layers);
        // PyTorch's default for convolutions (kaiming-uniform, a = √5: U(±1/√kernel) for a depthwise filter), not
        // N(0, 0.02): a filter of `kernel` taps drawn at 0.02 would scale the mixed signal, and the gradient reaching
        // in_proj through it, by about 0.02·√kernel, so the block would start nearly dead. Hugging Face's LFM2 leaves
        // its Conv1d at this default too.
        using (no_grad()) nn.init.kaiming_uniform_(conv.weight, Math.Sqrt(5));
        Init.Zeros(in_proj.bias);
        Init.Zeros(conv.bias);
        Init.Zeros(out_proj.bias);
    }

    /// <summary>Tokens the convolution spans.</summary>
    public int Kernel => kernel;

    /// <summary>Width (channels).</summary>
    public int Dim => dim;

    /// <summary>The weights, for the fused single-token step (<see cref="Kernels.SingleTokenDecoder"/>): the filter is [Dim, 1, Kernel].</summary>
    internal (Linear In, Tensor Filter, Tensor? FilterBias, Linear Out) Weights => (in_proj, conv.weight!, conv.bias, out_proj);

    /// <summary>Full sequence [batch, time, dim] → [batch, time, dim]; output t depends on inputs ≤ t only.</summary>
    public override Tensor forward(Tensor x)
    {
        CheckInput(x);
        using var scope = NewDisposeScope();
        var (gate, mixed) = Gated(x);
        var convolved = Convolve(nn.functional.pad(mixed, new long[] { kernel - 1, 0 }));
        return Output(gate, convolved).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Incremental forward for decoding: <paramref name="x"/> [batch, n, dim] holds the n ≥ 1 new tokens; stream
    /// <see cref="LayerState.ConvolutionWindow"/> of <paramref name="state"/> keeps the last <c>kernel − 1</c> values
    /// of <c>B ⊙ h</c> as [batch, dim, kernel − 1] (zeros before the first token, like the full forward's left padding).
    /// The result equals the full forward's rows for these positions.
    /// </summary>
    public Tensor forward(Tensor x, LayerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        CheckInput(x);
        using var scope = NewDisposeScope();
        var (gate, mixed) = Gated(x);
        var history = kernel - 1;
        var past = state.Get(LayerState.ConvolutionWindow) ?? torch.zeros(x.shape[0], dim, history, dtype: mixed.dtype, device: mixed.device);
        if (past.dim() != 3 || past.shape[0] != x.shape[0] || past.shape[1] != dim || past.shape[2] != history)
            throw new ArgumentException($"The convolution state is [{string.Join(", ", past.shape)}], expected [{x.shape[0]}, {dim}, {history}]: was it made by another layer or batch?", nameof(state));
        var window = history == 0 ? mixed : torch.cat(new[] { past, mixed }, dim: -1);
        if (history > 0) state.Set(LayerState.ConvolutionWindow, window.narrow(-1, window.shape[^1] - history, history));
        return Output(gate, Convolve(window)).MoveToOuterDisposeScope();
    }

    private void CheckInput(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 3 || x.shape[2] != dim)
            throw new ArgumentException($"Expected input [batch, time, {dim}], got [{string.Join(", ", x.shape)}].", nameof(x));
    }

    // C as [batch, time, dim] and B ⊙ h channel-first [batch, dim, time], as the convolution wants it. Split order B, C, h
    // follows Hugging Face (`B, C, x = BCx.chunk(3)`).
    private (Tensor Gate, Tensor Mixed) Gated(Tensor x)
    {
        var parts = in_proj.forward(x).chunk(3, dim: -1);
        return (parts[1], (parts[0] * parts[2]).transpose(1, 2));
    }

    // Valid (unpadded) depthwise convolution of [batch, dim, kernel − 1 + n] → [batch, dim, n].
    private Tensor Convolve(Tensor window) => nn.functional.conv1d(window, conv.weight, conv.bias, groups: dim);

    private Tensor Output(Tensor gate, Tensor convolved) => out_proj.forward(gate * convolved.transpose(1, 2));
}
