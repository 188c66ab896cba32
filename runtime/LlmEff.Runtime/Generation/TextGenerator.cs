using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace LlmEff.Generation;

/// <summary>How the next token is chosen.</summary>
/// <param name="Temperature">0 picks the most likely token (greedy); above 0 samples from softmax(logits / T).</param>
/// <param name="TopP">Nucleus sampling: sample only among the most likely tokens whose probabilities add up to this (1 = all).</param>
/// <param name="Seed">Seed of the sampler.</param>
public sealed record SamplingOptions(double Temperature = 0.8, double TopP = 0.95, int Seed = 1)
{
    /// <summary>Throws naming the first setting out of range.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || double.IsInfinity(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be 0 (greedy) or positive.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "TopP must lie in (0, 1].");
    }
}

/// <summary>
/// Autoregressive generation from any next-token model. Models that implement <see cref="IDecoder"/> (every
/// generated causal model whose attention can be cached) feed each new token alone and reuse their cache; others
/// run over the last <c>context</c> tokens at every step. Both give the same tokens.
/// </summary>
public static class TextGenerator
{
    /// <summary>Continues <paramref name="prompt"/> by <paramref name="count"/> tokens; returns only the new ones. With
    /// <paramref name="useCache"/> false the window is recomputed every step even for an <see cref="IDecoder"/> (for comparison).</summary>
    public static long[] Generate(nn.Module<Tensor, Tensor> model, IReadOnlyList<long> prompt, int count, int context, SamplingOptions sampling, bool useCache = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        sampling.Validate();
        if (prompt.Count == 0) throw new ArgumentException("The prompt is empty: give at least one token.", nameof(prompt));
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "Token count must not be negative.");
        if (context <= 0) throw new ArgumentOutOfRangeException(nameof(context), context, "The context must hold at least one token.");
        var device = model.parameters().First().device;
        var generator = new Generator((ulong)sampling.Seed);
        var tokens = prompt.ToList();
        var wasTraining = model.training;
        model.eval();
        try
        {
            using (no_grad())
            {
                if (useCache && model is IDecoder decoder) GenerateCached(decoder, tokens, count, context, sampling, generator, device);
                else
                {
                    for (var i = 0; i < count; i++)
                    {
                        using var scope = NewDisposeScope();
                        var window = Window(tokens, context);
                        var logits = model.forward(tensor(window, new long[] { 1, window.Length }).to(device))[0, -1].to(ScalarType.Float32).cpu();
                        tokens.Add(Choose(logits, sampling, generator));
                    }
                }
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
        return tokens.Skip(prompt.Count).ToArray();
    }

    /// <summary>
    /// Prefills the cache with the prompt's last <paramref name="context"/> tokens, then feeds one token per step. When the
    /// window is full the cache is refilled from the last <paramref name="context"/> tokens, as the uncached path would
    /// see them (positions restart, so keys cannot simply be shifted).
    /// </summary>
    private static void GenerateCached(IDecoder decoder, List<long> tokens, int count, int context, SamplingOptions sampling, Generator generator, Device device)
    {
        DecodingCache? cache = null;
        try
        {
            long[] pending = Window(tokens, context);
            for (var i = 0; i < count; i++)
            {
                using var scope = NewDisposeScope();
                if (cache is null || cache.Position + pending.Length > Math.Min(context, cache.Capacity))
                {
                    cache?.Dispose();
                    cache = decoder.NewCache();
                    pending = Window(tokens, (int)Math.Min(context, cache.Capacity));
                }
                var logits = decoder.forward(tensor(pending, new long[] { 1, pending.Length }).to(device), cache)[0, -1].to(ScalarType.Float32).cpu();
                var next = Choose(logits, sampling, generator);
                tokens.Add(next);
                pending = new[] { next };
            }
        }
        finally
        {
            cache?.Dispose();
        }
    }

    private static long[] Window(List<long> tokens, int context) => tokens.Skip(Math.Max(0, tokens.Count - context)).ToArray();

    /// <summary>The next token from logits [vocab].</summary>
    public static long Choose(Tensor logits, SamplingOptions sampling, Generator generator)
    {
        if (sampling.Temperature == 0) return logits.argmax().item<long>();
        using var scope = NewDisposeScope();
        var probabilities = (logits / sampling.Temperature).softmax(-1);
        if (sampling.TopP < 1)
        {
            var (sorted, order) = probabilities.sort(descending: true);
            // Keep a token while the mass before it is below TopP: the most likely token always stays.
            var before = sorted.cumsum(0) - sorted;
            var kept = sorted.masked_fill(before >= sampling.TopP, 0);
            probabilities = zeros_like(probabilities).scatter(0, order, kept);
        }
        return probabilities.multinomial(1, generator: generator).item<long>();
    }
}
