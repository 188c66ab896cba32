using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Generation;
using LlmEff.Kernels;
using LlmEff.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests.Kernels;

/// <summary>
/// The fused step through its public API on shapes drawn fresh each run (widths off the 8-wide and 4-row paths, odd head
/// counts and widths, every grouping of key/value heads, NoKey, QK norm, biases, no positions, mixtures of experts with
/// every scoring, with and without a selection bias, normalisation and a shared expert), against attention
/// written out here in plain tensor operations over the whole prefix, not the generated module's path: a second
/// implementation that shares only libtorch with the kernel.
/// </summary>
public sealed class SingleTokenDecoderFuzzTests
{
    /// <summary>A mixture's settings (null: a dense feed-forward).</summary>
    private sealed record Mixture(int Experts, int Active, RouterScoring Scoring, bool SelectionBias, bool Normalize, double RoutedScale, bool Shared)
    {
        public override string ToString() =>
            $"{Active} of {Experts} experts, {Scoring}{(SelectionBias ? ", selection bias" : "")}{(Normalize ? ", normalised" : "")}, scale {RoutedScale}{(Shared ? ", shared expert" : "")}";
    }

    private sealed record Case(int Vocab, int Dim, int Heads, int KvHeads, int HeadDim, int Hidden, int Layers, bool Rotary, bool KeysAreValues, bool QkNorm, bool Bias, int Tokens,
        Mixture? Experts)
    {
        public override string ToString() =>
            $"vocab {Vocab}, dim {Dim}, {Heads}/{KvHeads} heads of {HeadDim}, hidden {Hidden}, {Layers} layers, {(Rotary ? "rotary" : "no positions")}" +
            $"{(KeysAreValues ? ", NoKey" : "")}{(QkNorm ? ", QK norm" : "")}{(Bias ? ", biases" : "")}, {Tokens} tokens{(Experts is null ? "" : $", {Experts}")}";
    }

    [Fact]
    public void Fresh_shapes_decode_as_attention_written_out_over_the_whole_prefix()
    {
        if (!SingleTokenStep.IsSupported) return;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        for (var round = 0; round < 24; round++)
        {
            var kvHeads = random.Next(1, 4);
            var rotary = random.Next(3) > 0;
            var experts = random.Next(1, 7);
            var mixture = random.Next(3) > 0 ? null
                : new Mixture(experts, random.Next(1, experts + 1), (RouterScoring)random.Next(3), SelectionBias: random.Next(2) == 0, Normalize: random.Next(2) == 0,
                    RoutedScale: random.Next(2) == 0 ? 1.0 : 2.5, Shared: random.Next(2) == 0);
            var c = new Case(Vocab: random.Next(5, 41), Dim: random.Next(4, 73), Heads: kvHeads * random.Next(1, 4), KvHeads: kvHeads,
                HeadDim: rotary ? 2 * random.Next(1, 11) : random.Next(1, 21), Hidden: random.Next(1, 81), Layers: random.Next(1, 3),
                Rotary: rotary, KeysAreValues: random.Next(3) == 0, QkNorm: random.Next(2) == 0, Bias: random.Next(2) == 0, Tokens: random.Next(1, 21), mixture);
            Check(c, seed * 31 + round);
        }
    }

    private static void Check(Case c, int seed)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(seed);
        const double Theta = 10000, Eps = 1e-5;
        var context = c.Tokens + 4;
        var embedding = randn(c.Vocab, c.Dim);
        var blocks = new List<DecoderBlockWeights>();
        var layers = new List<nn.Module>();
        RmsNorm Norm(long width)
        {
            var norm = new RmsNorm(width, Eps);
            norm.Weight.add_(randn(width) * 0.2);
            layers.Add(norm);
            return norm;
        }
        Linear Dense(int inputs, int outputs)
        {
            var linear = new Linear(inputs, outputs, hasBias: c.Bias);
            linear.bias?.add_(randn(outputs) * 0.2);
            layers.Add(linear);
            return linear;
        }
        for (var l = 0; l < c.Layers; l++)
        {
            var inputNorm = Norm(c.Dim);
            var mixer = new AttentionMixer(Dense(c.Dim, c.Heads * c.HeadDim), c.KeysAreValues ? null : Dense(c.Dim, c.KvHeads * c.HeadDim),
                Dense(c.Dim, c.KvHeads * c.HeadDim), Dense(c.Heads * c.HeadDim, c.Dim), c.Heads, c.KvHeads,
                c.QkNorm ? Norm(c.HeadDim) : null, c.QkNorm ? Norm(c.HeadDim) : null);
            var feedForwardNorm = Norm(c.Dim);
            SwiGluWeights SwiGlu() => new(Dense(c.Dim, c.Hidden), Dense(c.Dim, c.Hidden), Dense(c.Hidden, c.Dim));
            BlockFeedForward feedForward;
            if (c.Experts is { } m)
            {
                var router = new ExpertRouter(new RouterOptions(c.Dim, m.Experts, m.Active, m.Scoring,
                    m.SelectionBias ? ExpertBalance.AuxLossFree : ExpertBalance.AuxLoss, m.Normalize, m.RoutedScale));
                // Logits of about ±2: sigmoid scores far from 1 stay distinct, so no two experts tie at the top-k cut,
                // where libtorch's topk promises no order and the kernel takes the lower index.
                router.weight.add_(randn_like(router.weight) * (2 / Math.Sqrt(c.Dim)));
                router.e_score_correction_bias?.add_(randn_like(router.e_score_correction_bias) * 0.2);
                router.eval();
                layers.Add(router);
                feedForward = new MixtureWeights(router, Enumerable.Range(0, m.Experts).Select(_ => SwiGlu()).ToList(), m.Shared ? SwiGlu() : null);
            }
            else feedForward = SwiGlu();
            blocks.Add(new DecoderBlockWeights(inputNorm, mixer, feedForwardNorm, feedForward));
        }
        var finalNorm = Norm(c.Dim);
        var head = Dense(c.Dim, c.Vocab);
        using var tables = c.Rotary ? new RotaryEmbedding(c.HeadDim, context, Theta) : null;
        var ids = randint(0, c.Vocab, new long[] { c.Tokens });

        var expected = Reference(c, embedding, blocks, finalNorm, head, ids, Theta, Eps);
        using var cache = new DecodingCache(c.Layers, context);
        for (var t = 0; t < c.Tokens; t++)
        {
            using var token = ids.narrow(0, t, 1).reshape(1, 1);
            using var logits = SingleTokenDecoder.TryStep(token, cache, context, embedding, tables, blocks, finalNorm, head.weight, head.bias);
            Assert.True(logits is not null, $"{c}: the kernel refused step {t}");
            var difference = (logits!.reshape(-1) - expected[t]).abs().max().item<float>();
            var scale = Math.Max(1f, expected[t].abs().max().item<float>());
            Assert.True(difference <= 1e-4 * scale, $"{c} (seed {seed}): step {t} differs by {difference} (logits up to {scale})");
        }
        foreach (var layer in layers) layer.Dispose();
    }

    /// <summary>Logits [tokens, vocab] of the whole prefix at once: causal attention with a mask, keys and values repeated
    /// to the query heads, the rotation written out as x·cos + [−x₂, x₁]·sin.</summary>
    private static Tensor Reference(Case c, Tensor embedding, List<DecoderBlockWeights> blocks, RmsNorm finalNorm, Linear head, Tensor ids, double theta, double eps)
    {
        Tensor RmsNorm(Tensor x, RmsNorm norm) => x * rsqrt(x.square().mean(new long[] { -1 }, keepdim: true) + eps) * norm.Weight;
        Tensor Apply(Linear linear, Tensor x) => nn.functional.linear(x, linear.weight, linear.bias);
        var time = c.Tokens;
        var half = c.HeadDim / 2;
        var frequencies = pow(theta, -arange(0, c.HeadDim, 2, dtype: ScalarType.Float64) / c.HeadDim);
        var angles = outer(arange(time, dtype: ScalarType.Float64), frequencies);
        var cos = cat(new[] { angles, angles }, dim: -1).cos().to(ScalarType.Float32);
        var sin = cat(new[] { angles, angles }, dim: -1).sin().to(ScalarType.Float32);
        Tensor Rotate(Tensor x) => !c.Rotary ? x
            : x * cos + cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, dim: -1) * sin;
        Tensor Heads(Tensor x, int heads) => x.reshape(time, heads, c.HeadDim).transpose(0, 1); // [heads, time, headDim]

        var x = embedding.index_select(0, ids);
        var mask = ones(time, time, dtype: ScalarType.Bool).tril().logical_not();
        foreach (var block in blocks)
        {
            var mixer = (AttentionMixer)block.Mixer;
            var h = RmsNorm(x, block.InputNorm);
            var q = Heads(Apply(mixer.Query, h), c.Heads);
            var v = Heads(Apply(mixer.Value, h), c.KvHeads);
            Tensor k;
            if (mixer.Key is null) k = mixer.KeyNorm is null ? v : RmsNorm(v, mixer.KeyNorm);
            else
            {
                k = Heads(Apply(mixer.Key, h), c.KvHeads);
                if (mixer.KeyNorm is not null) k = RmsNorm(k, mixer.KeyNorm);
            }
            if (mixer.QueryNorm is not null) q = RmsNorm(q, mixer.QueryNorm);
            q = Rotate(q);
            k = Rotate(k);
            var group = c.Heads / c.KvHeads;
            var keys = k.repeat_interleave(group, dim: 0);
            var values = v.repeat_interleave(group, dim: 0);
            var scores = q.matmul(keys.transpose(1, 2)) / Math.Sqrt(c.HeadDim);
            var mixed = scores.masked_fill(mask, float.NegativeInfinity).softmax(-1).matmul(values); // [heads, time, headDim]
            x = x + Apply(mixer.Output, mixed.transpose(0, 1).reshape(time, c.Heads * c.HeadDim));
            var f = RmsNorm(x, block.FeedForwardNorm);
            Tensor SwiGlu(SwiGluWeights w, Tensor input) => Apply(w.Down, nn.functional.silu(Apply(w.Gate, input)) * Apply(w.Up, input));
            if (block.FeedForward is MixtureWeights mixture)
            {
                // Token by token: scores, the top Active by score + selection bias, their scores as weights.
                var m = c.Experts!;
                var rows = new List<Tensor>();
                for (var t = 0; t < time; t++)
                {
                    var row = f.narrow(0, t, 1);
                    var logits = nn.functional.linear(row, mixture.Router.weight);
                    var expertScores = m.Scoring switch
                    {
                        RouterScoring.Softmax => logits.softmax(-1),
                        RouterScoring.Sigmoid => logits.sigmoid(),
                        _ => nn.functional.softplus(logits).sqrt(),
                    };
                    var selection = mixture.Router.e_score_correction_bias is { } bias ? expertScores + bias : expertScores;
                    var chosen = selection.topk(m.Active, dim: -1).indexes[0];
                    var weights = expertScores[0].index_select(0, chosen);
                    if (m.Normalize) weights = weights / weights.sum();
                    weights = weights * m.RoutedScale;
                    var output = zeros_like(row);
                    for (var j = 0; j < m.Active; j++) output = output + weights[j] * SwiGlu(mixture.Experts[(int)chosen[j].item<long>()], row);
                    if (mixture.Shared is not null) output = output + SwiGlu(mixture.Shared, row);
                    rows.Add(output);
                }
                x = x + cat(rows, dim: 0);
            }
            else x = x + SwiGlu((SwiGluWeights)block.FeedForward, f);
        }
        return Apply(head, RmsNorm(x, finalNorm));
    }
}
