using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// DeepSeek V4's residual streams: manifold-constrained hyper-connections (mHC, Xie et al. 2026). The residual is
/// <c>n</c> streams [batch, time, n, dim] instead of one; around each sub-block a small map computes, from the streams
/// flattened to <c>n·dim</c> and RMS-normalised, three things: <c>pre</c> weights that mix the streams into the block's
/// input, <c>post</c> weights that spread the block's output over the streams, and an n×n mixing matrix made doubly
/// stochastic by Sinkhorn iterations. New streams = <c>post ⊗ out + combᵀ · streams</c>.
/// </summary>
/// <remarks>
/// The maths follows DeepSeek's V4 reference inference code (<c>inference/model.py</c>: <c>Block.hc_pre</c>,
/// <c>Block.hc_post</c>, <c>ParallelHead.hc_head</c>; <c>inference/kernel.py</c>: <c>hc_split_sinkhorn</c>) term by term:
/// <list type="bullet">
/// <item><c>mixes = (x_flat · fnᵀ) · rsqrt(mean(x_flat²) + norm_eps)</c>, in fp32; fn is [(2 + n)·n, n·dim];</item>
/// <item><c>pre = sigmoid(mixes[:n] · scale[0] + base[:n]) + hc_eps</c>;</item>
/// <item><c>post = 2 · sigmoid(mixes[n:2n] · scale[1] + base[n:2n])</c>;</item>
/// <item><c>comb = softmax_row(mixes[2n:] · scale[2] + base[2n:]) + hc_eps</c>, then one column normalisation, then
/// <c>iterations − 1</c> rounds of row then column normalisation, each dividing by (sum + hc_eps);</item>
/// <item>new stream j = <c>post_j · out + Σ_i comb[i, j] · stream_i</c> (the reference sums over comb's first index).</item>
/// </list>
/// Because the last step normalises columns, each new stream is a convex combination of the old ones to within
/// hc_eps. (The Hugging Face <c>deepseek_v4</c> port seen on 2026-11-30 differs: a sigmoid instead of the row softmax,
/// <c>post</c> without the factor 2, and <c>comb · streams</c> instead of <c>combᵀ</c>; we follow DeepSeek's code.)
/// The parameters themselves are the caller's (the generated layer owns <c>hc_attn_fn</c>, <c>hc_attn_base</c>,
/// <c>hc_attn_scale</c>, …, the stack <c>hc_head_fn</c>, …), so checkpoints carry DeepSeek's names.
/// </remarks>
public static class HyperConnections
{
    /// <summary>DeepSeek V4's <c>hc_eps</c>: added to <c>pre</c>, to the softmax and to every Sinkhorn denominator.</summary>
    public const double Eps = 1e-6;

    /// <summary>DeepSeek V4's <c>hc_sinkhorn_iters</c>.</summary>
    public const int DefaultIterations = 20;

    /// <summary>Rows of the mixing map <c>fn</c> around one sub-block: n for pre, n for post, n·n for comb.</summary>
    public static long MixRows(long streams) => checked((2 + streams) * streams);

    /// <summary>The n×n mixing matrices for logits [..., n, n]: a row softmax plus <paramref name="eps"/>, a column
    /// normalisation, then <paramref name="iterations"/> − 1 rounds of row and column normalisation (DeepSeek's order).
    /// Columns then sum to 1 within eps; rows converge towards 1.</summary>
    public static Tensor Sinkhorn(Tensor logits, int iterations = DefaultIterations, double eps = Eps)
    {
        if (iterations < 1) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "Sinkhorn needs at least one iteration.");
        if (logits.dim() < 2 || logits.shape[^1] != logits.shape[^2])
            throw new ArgumentException($"Sinkhorn takes square matrices [..., n, n]; got [{string.Join(", ", logits.shape)}].", nameof(logits));
        using var scope = NewDisposeScope();
        var comb = logits.softmax(-1) + eps;
        comb = comb / (comb.sum(-2, keepdim: true) + eps);
        for (var i = 1; i < iterations; i++)
        {
            comb = comb / (comb.sum(-1, keepdim: true) + eps);
            comb = comb / (comb.sum(-2, keepdim: true) + eps);
        }
        return comb.MoveToOuterDisposeScope();
    }

    /// <summary>DeepSeek's <c>hc_split_sinkhorn</c>: mixes [..., (2 + n)·n] → pre [..., n], post [..., n], comb [..., n, n].</summary>
    public static (Tensor Pre, Tensor Post, Tensor Comb) Split(Tensor mixes, Tensor scale, Tensor @base, int streams, int iterations = DefaultIterations, double eps = Eps)
    {
        if (streams < 1) throw new ArgumentOutOfRangeException(nameof(streams), streams, "There must be at least one residual stream.");
        if (mixes.shape[^1] != MixRows(streams))
            throw new ArgumentException($"{streams} streams need {MixRows(streams)} mixes per token; got {mixes.shape[^1]}.", nameof(mixes));
        using var scope = NewDisposeScope();
        var n = streams;
        var pre = (mixes.narrow(-1, 0, n) * scale[0] + @base.narrow(0, 0, n)).sigmoid() + eps;
        var post = 2 * (mixes.narrow(-1, n, n) * scale[1] + @base.narrow(0, n, n)).sigmoid();
        var logits = mixes.narrow(-1, 2 * n, (long)n * n) * scale[2] + @base.narrow(0, 2 * n, (long)n * n);
        var shape = mixes.shape[..^1];
        var comb = Sinkhorn(logits.reshape(Concat(shape, n, n)), iterations, eps);
        return (pre.MoveToOuterDisposeScope(), post.MoveToOuterDisposeScope(), comb.MoveToOuterDisposeScope());
    }

    /// <summary>The mixes of streams [batch, time, n, dim]: the flattened streams, RMS-normalised without a weight, times
    /// fnᵀ (DeepSeek folds the normalisation in after the matmul: <c>linear(x, fn) · rsqrt(mean(x²) + eps)</c>).</summary>
    public static Tensor Mixes(Tensor streams, Tensor fn, double normEps)
    {
        CheckStreams(streams);
        using var scope = NewDisposeScope();
        var flat = Wide(streams.flatten(2));
        var rsqrt = (flat.square().mean(new long[] { -1 }, keepdim: true) + normEps).rsqrt();
        return (nn.functional.linear(flat, fn.to(flat.dtype)) * rsqrt).MoveToOuterDisposeScope();
    }

    /// <summary>DeepSeek's <c>hc_pre</c>: the block input [batch, time, dim] = Σ_i pre_i · stream_i, and the post weights
    /// [batch, time, n] and mixing matrices [batch, time, n, n] that <see cref="Post"/> needs after the block.</summary>
    public static (Tensor Input, Tensor Post, Tensor Comb) Pre(Tensor streams, Tensor fn, Tensor scale, Tensor @base,
        int iterations = DefaultIterations, double normEps = 1e-6, double eps = Eps)
    {
        CheckStreams(streams);
        using var scope = NewDisposeScope();
        var n = (int)streams.shape[2];
        var (pre, post, comb) = Split(Mixes(streams, fn, normEps), Wide(scale), Wide(@base), n, iterations, eps);
        var input = (pre.unsqueeze(-1) * Wide(streams)).sum(2).to(streams.dtype);
        return (input.MoveToOuterDisposeScope(), post.MoveToOuterDisposeScope(), comb.MoveToOuterDisposeScope());
    }

    /// <summary>DeepSeek's <c>hc_post</c>: new stream j = post_j · output + Σ_i comb[i, j] · stream_i, for the block's
    /// output [batch, time, dim] and the streams [batch, time, n, dim] that entered it.</summary>
    public static Tensor Post(Tensor output, Tensor streams, Tensor post, Tensor comb)
    {
        CheckStreams(streams);
        using var scope = NewDisposeScope();
        // Σ_i comb[i, j] · stream_i as one batched matmul: combᵀ [.., n, n] · streams [.., n, dim].
        var mixed = matmul(comb.transpose(-1, -2).to(streams.dtype), streams);
        return (post.to(output.dtype).unsqueeze(-1) * output.unsqueeze(-2) + mixed).to(output.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>DeepSeek's <c>hc_head</c>, before the final norm: hidden [batch, time, dim] = Σ_i pre_i · stream_i with
    /// <c>pre = sigmoid(mixes · scale + base) + eps</c>, fn [n, n·dim], base [n], scale [1].</summary>
    public static Tensor Head(Tensor streams, Tensor fn, Tensor scale, Tensor @base, double normEps = 1e-6, double eps = Eps)
    {
        CheckStreams(streams);
        using var scope = NewDisposeScope();
        var mixes = Mixes(streams, fn, normEps);
        var pre = (mixes * Wide(scale) + Wide(@base)).sigmoid() + eps;
        return (pre.unsqueeze(-1) * Wide(streams)).sum(2).to(streams.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The embedding [batch, time, dim] copied into each of <paramref name="streams"/> streams: [batch, time, n, dim].</summary>
    public static Tensor Expand(Tensor hidden, int streams)
    {
        if (streams < 1) throw new ArgumentOutOfRangeException(nameof(streams), streams, "There must be at least one residual stream.");
        return hidden.unsqueeze(2).expand(hidden.shape[0], hidden.shape[1], streams, hidden.shape[2]).contiguous();
    }

    /// <summary>How the parameters of one sub-block's map start, as the Hugging Face <c>deepseek_v4</c> port initialises
    /// them (DeepSeek publishes trained weights, not an initialisation): fn normal with the port's initializer_range
    /// (0.02 here, the std of every other weight in this project), base 0, scale 1. With these, pre ≈ ½ and post ≈ 1 for
    /// every stream and comb ≈ the uniform doubly stochastic matrix.</summary>
    public static void Initialize(Tensor? fn, Tensor? @base, Tensor? scale)
    {
        Init.Normal(fn);
        Init.Zeros(@base);
        if (scale is not null)
            using (no_grad()) scale.fill_(1.0);
    }

    /// <summary>fp32 for anything narrower (DeepSeek computes the maps in fp32 even for bf16 streams); fp64 stays fp64.</summary>
    private static Tensor Wide(Tensor t) => t.dtype == ScalarType.Float64 ? t : t.to(ScalarType.Float32);

    private static void CheckStreams(Tensor streams)
    {
        if (streams.dim() != 4)
            throw new ArgumentException($"Residual streams are [batch, time, streams, dim]; got [{string.Join(", ", streams.shape)}].", nameof(streams));
    }

    private static long[] Concat(long[] shape, long a, long b)
    {
        var result = new long[shape.Length + 2];
        shape.CopyTo(result, 0);
        result[^2] = a;
        result[^1] = b;
        return result;
    }
}
