using System;
using System.Diagnostics;
using LlmEff.Generation;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>Greedy decoding with the cache, as the decode benchmarks time it: the prompt in one forward (which gives the
/// first token), then one token per step.</summary>
internal static class CachedDecoding
{
    /// <summary>The <paramref name="count"/> tokens chosen, the seconds of the prompt's forward and of the count − 1
    /// steps after it.</summary>
    public static (long[] Tokens, double Prefill, double Steps) Greedy(IDecoder model, Tensor prompt, int count)
    {
        using var cache = model.NewCache();
        var chosen = new long[count];
        var clock = Stopwatch.StartNew();
        var input = prompt.alias();
        double prefill = 0;
        for (var i = 0; i < count; i++)
        {
            using var scope = NewDisposeScope();
            var next = model.forward(input, cache)[0, -1].argmax().reshape(1, 1);
            chosen[i] = next.item<long>();
            if (i == 0)
            {
                prefill = clock.Elapsed.TotalSeconds;
                clock.Restart();
            }
            input.Dispose();
            input = next.DetachFromDisposeScope();
        }
        input.Dispose();
        return (chosen, prefill, clock.Elapsed.TotalSeconds);
    }
}
