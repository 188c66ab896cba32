using System;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using LlmEff.Cli.Reporting;
using LlmEff.Generation;
using LlmEff.Kernels;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- decode`: tokens per second when generating after a 512-token prompt, with the
/// decoding cache (each step feeds one token) versus recomputing the whole prefix every step, for each block kind.
/// Greedy argmax, batch 1, fp32 CPU; both paths pick the same tokens, which the run checks. Each of the --repeats rounds
/// runs recomputing then cached decoding, so the speed-up is also taken round by round (geometric mean with a 95%
/// t-interval of the log ratios) beside the ratio of the medians, after --warmup untimed rounds (default 1). The cached run's steps after its first token are also
/// timed alone (without the prompt's forward), with whether they ran in the fused single-token kernel, and again in the
/// same round with that kernel turned off.
/// </summary>
internal static class DecodeComparison
{
    public static int Run(string[] args)
    {
        var prompt = BenchmarkArguments.Option(args, "--context", 512, minimum: 1);
        var tokens = BenchmarkArguments.Option(args, "--tokens", 32, minimum: 1);
        var repeats = BenchmarkArguments.Option(args, "--repeats", 3, minimum: 1);
        var threads = BenchmarkArguments.Option(args, "--threads", 0);
        var warmup = BenchmarkArguments.Option(args, "--warmup", 1, minimum: 0);
        if (threads > 0) set_num_threads(threads);
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"Decoding after a {prompt}-token prompt, {tokens} new tokens, batch 1, fp32 CPU, {get_num_threads()} threads, median of {repeats} interleaved rounds after {warmup} untimed; {DateTime.UtcNow:yyyy-MM-dd}"));
        Console.WriteLine(repeats < 2
            ? "Paired speed-up: no interval from 1 round (use --repeats 2 or more)."
            : "Paired speed-up: cached over recomputing tokens/s in each round, geometric mean (95% t-interval of the log ratios); \"not resolved\" where the interval contains 1.00.");
        Console.WriteLine();
        Console.WriteLine("\"cached steps alone\": the cached run's steps after its first token, without reading the prompt; \"fused\": whether those steps ran in the fused single-token kernel; " +
                          "\"op by op\": the same steps with it turned off (SingleTokenDecoder.Disable) in the same rounds, and fused over op by op paired by round.");
        Console.WriteLine();
        Console.WriteLine("| model | cache bytes/token (bf16) | recompute tokens/s | cached tokens/s | speed-up (medians) | speed-up, paired by round | cached steps alone: tokens/s | fused | op by op: tokens/s | fused / op by op, paired by round |");
        Console.WriteLine("|---|---:|---:|---:|---:|---|---:|---|---:|---|");
        foreach (var (name, create, facts) in new (string, Func<nn.Module<Tensor, Tensor>>, ModelFacts)[]
                 {
                     ("DecodeFull", () => new DecodeFull(), DecodeFull.Facts),
                     ("DecodeNoKey", () => new DecodeNoKey(), DecodeNoKey.Facts),
                     ("DecodeHybrid", () => new DecodeHybrid(), DecodeHybrid.Facts),
                     ("DecodeLatent", () => new DecodeLatent(), DecodeLatent.Facts),
                     ("DecodeSparse", () => new DecodeSparse(), DecodeSparse.Facts),
                     ("DecodeMoe", () => new DecodeMoe(), DecodeMoe.Facts),
                 })
        {
            if (prompt + tokens > facts.Context) throw new ArgumentException($"--context {prompt} plus --tokens {tokens} exceed {name}'s context of {facts.Context}.");
            manual_seed(1);
            using var model = create();
            model.eval();
            using var _ = no_grad();
            var promptTokens = randint(0, facts.Vocab, new long[] { 1, prompt });
            var recompute = new double[repeats];
            var cached = new double[repeats];
            var steps = new double[repeats];
            var plainSteps = new double[repeats];
            long[] recomputed = Array.Empty<long>(), decoded = Array.Empty<long>();
            var fusedBefore = SingleTokenDecoder.StepsOnThisThread;
            // Untimed first (tiered compilation optimises the hot loops after their first calls).
            for (var r = 0; r < warmup; r++)
            {
                Recompute(model, promptTokens, tokens);
                CachedDecoding.Greedy((IDecoder)model, promptTokens, tokens);
            }
            for (var r = 0; r < repeats; r++)
            {
                (recompute[r], recomputed) = Time(() => Recompute(model, promptTokens, tokens));
                var (chosen, prefill, stepSeconds) = CachedDecoding.Greedy((IDecoder)model, promptTokens, tokens);
                (decoded, cached[r], steps[r]) = (chosen, prefill + stepSeconds, stepSeconds);
                using (SingleTokenDecoder.Disable())
                {
                    var plain = CachedDecoding.Greedy((IDecoder)model, promptTokens, tokens);
                    if (!plain.Tokens.SequenceEqual(decoded))
                        throw new InvalidOperationException($"{name}: the fused step chose different tokens than the operation-by-operation path.");
                    plainSteps[r] = plain.Steps;
                }
            }
            var fused = SingleTokenDecoder.StepsOnThisThread > fusedBefore;
            if (!recomputed.SequenceEqual(decoded)) throw new InvalidOperationException($"{name}: the cached path chose different tokens than recomputing.");
            var slow = tokens / BenchmarkArguments.Median(recompute);
            var fast = tokens / BenchmarkArguments.Median(cached);
            var paired = Statistics.Ratio(cached.Select(t => tokens / t).ToList(), recompute.Select(t => tokens / t).ToList());
            string Rate(double[] seconds) => tokens > 1 ? ((tokens - 1) / BenchmarkArguments.Median(seconds)).ToString("F1", inv) : "—";
            var fusedOverPlain = fused && tokens > 1
                ? Statistics.Ratio(steps.Select(t => (tokens - 1) / t).ToList(), plainSteps.Select(t => (tokens - 1) / t).ToList()).Format(2)
                : "—";
            Console.WriteLine(string.Create(inv,
                $"| {name} | {facts.KvCacheBytesPerToken():N0} | {slow:F1} | {fast:F1} | {fast / slow:F1}x | {paired.Format(2)} | {Rate(steps)} | {(fused ? "yes" : "no")} | {(fused ? Rate(plainSteps) : "—")} | {fusedOverPlain} |"));
        }
        return 0;
    }

    private static (double Seconds, long[] Tokens) Time(Func<long[]> run)
    {
        var clock = Stopwatch.StartNew();
        var result = run();
        return (clock.Elapsed.TotalSeconds, result);
    }

    /// <summary>Every step runs the model over the prompt and everything generated so far.</summary>
    private static long[] Recompute(nn.Module<Tensor, Tensor> model, Tensor prompt, int count)
    {
        var sequence = prompt.alias();
        var chosen = new long[count];
        for (var i = 0; i < count; i++)
        {
            using var scope = NewDisposeScope();
            var next = model.forward(sequence)[0, -1].argmax().reshape(1, 1);
            chosen[i] = next.item<long>();
            var longer = cat(new[] { sequence, next }, dim: 1).DetachFromDisposeScope();
            sequence.Dispose();
            sequence = longer;
        }
        sequence.Dispose();
        return chosen;
    }
}
