using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using LlmEff.Cli.LlamaCpp;
using LlmEff.Cli.Reporting;
using LlmEff.Export;
using LlmEff.Generation;
using LlmEff.Kernels;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- decode-llama`: our cached decoding against llama.cpp on the same weights (our GGUF export,
/// f32, f32 KV cache), batch 1, the same threads, greedy after a prompt. Each side's prefill and decode are timed
/// apart; decode tokens/s is what is compared. The bound is what memory bandwidth allows: weight bytes read per token
/// over the read bandwidth measured in the same run with the same threads. Models llama.cpp cannot run yet are listed with the reason.
/// --warmup rounds (default 1) run every side untimed first. Each of the --repeats rounds decodes with ours then llama.cpp, so ours / llama.cpp is also taken round by round
/// (geometric mean with a 95% t-interval of the log ratios) beside the ratio of the medians.
/// </summary>
internal static class LlamaCppDecodeComparison
{
    public static int Run(string[] args)
    {
        var prompt = BenchmarkArguments.Option(args, "--context", 512, minimum: 1);
        var tokens = BenchmarkArguments.Option(args, "--tokens", 128, minimum: 1);
        var repeats = BenchmarkArguments.Option(args, "--repeats", 3, minimum: 1);
        var threads = BenchmarkArguments.Option(args, "--threads", 2, minimum: 1);
        var warmup = BenchmarkArguments.Option(args, "--warmup", 1, minimum: 0);
        set_num_threads(threads);
        var inv = CultureInfo.InvariantCulture;
        var bandwidth = ReadBandwidth(threads);
        Console.WriteLine(string.Create(inv, $"Decoding {tokens} tokens after a {prompt}-token prompt, batch 1, greedy, f32 weights and cache, {threads} threads on both sides, median of {repeats} interleaved rounds after {warmup} untimed; {DateTime.UtcNow:yyyy-MM-dd}."));
        Console.WriteLine(string.Create(inv, $"Read bandwidth ({threads} threads summing 512 MiB, best of 5): {bandwidth / 1e9:F1} GB/s."));
        Console.WriteLine(repeats < 2
            ? "Paired ratio: no interval from 1 round (use --repeats 2 or more)."
            : "Paired ratio: our decode tokens/s over llama.cpp's in each round, geometric mean (95% t-interval of the log ratios); \"not resolved\" where the interval contains 1.00.");
        Console.WriteLine();
        Console.WriteLine("\"ours, op by op\": the same model with the fused single-token step turned off (SingleTokenDecoder.Disable), one libtorch or kernel call per operation, in the same rounds; \"—\" where the model's blocks are not fused anyway.");
        Console.WriteLine();
        Console.WriteLine("| model | parameters | weight MB read per token | bound tokens/s | ours: tokens/s | ours, op by op: tokens/s | llama.cpp: tokens/s | ours / llama.cpp (medians) | ours / llama.cpp, paired by round | prefill ours / llama.cpp (s) | same greedy tokens |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|");
        foreach (var (name, create, facts, export) in new (string, Func<nn.Module<Tensor, Tensor>>, ModelFacts, GgufExport)[]
                 {
                     ("Decode100M", () => new Decode100M(), Decode100M.Facts, Decode100M.Gguf),
                     ("DecodeFull", () => new DecodeFull(), DecodeFull.Facts, DecodeFull.Gguf),
                     ("DecodeHybrid", () => new DecodeHybrid(), DecodeHybrid.Facts, DecodeHybrid.Gguf),
                     ("DecodeLatent", () => new DecodeLatent(), DecodeLatent.Facts, DecodeLatent.Gguf),
                 })
        {
            if (!export.IsAvailable)
            {
                Console.WriteLine($"| {name} | {facts.ParameterCount:N0} | | | | | not exportable: {export.Refusal} | | | | |");
                continue;
            }
            if (prompt + tokens > facts.Context) throw new ArgumentException($"--context {prompt} plus --tokens {tokens} exceed {name}'s context of {facts.Context}.");
            manual_seed(1);
            using var model = create();
            model.eval();
            using var _ = no_grad();
            var path = Path.Combine(Path.GetTempPath(), $"llmeff-decode-{name}-{Environment.ProcessId}.gguf");
            try
            {
                GgufExporter.Export(model, export, name, path);
                var promptTokens = randint(0, facts.Vocab, new long[] { 1, prompt }, generator: new Generator(2));
                var promptIds = promptTokens[0].data<long>().Select(id => (int)id).ToArray();
                using var llama = new LlamaCppEngine(path, prompt + tokens, threads);
                var ours = new (double Prefill, double Decode)[repeats];
                var opByOp = new (double Prefill, double Decode)[repeats];
                var theirs = new (double Prefill, double Decode)[repeats];
                long[] ourTokens = Array.Empty<long>();
                int[] theirTokens = Array.Empty<int>();
                var fused = false;
                // Untimed rounds first, on every side: .NET compiles our hot loops again, optimised, after their first
                // calls (tiered compilation), and every side's first round also warms caches and allocators.
                for (var r = 0; r < warmup; r++)
                {
                    Ours((IDecoder)model, promptTokens, tokens);
                    using (SingleTokenDecoder.Disable()) Ours((IDecoder)model, promptTokens, tokens);
                    Theirs(llama, promptIds, tokens);
                }
                for (var r = 0; r < repeats; r++)
                {
                    var steps = SingleTokenDecoder.StepsOnThisThread;
                    (ours[r], ourTokens) = Ours((IDecoder)model, promptTokens, tokens);
                    fused = SingleTokenDecoder.StepsOnThisThread > steps;
                    if (fused)
                        using (SingleTokenDecoder.Disable())
                        {
                            long[] plainTokens;
                            (opByOp[r], plainTokens) = Ours((IDecoder)model, promptTokens, tokens);
                            if (!plainTokens.SequenceEqual(ourTokens)) throw new InvalidOperationException($"{name}: the fused step and the operation-by-operation path chose different tokens.");
                        }
                    (theirs[r], theirTokens) = Theirs(llama, promptIds, tokens);
                }
                // Weights read per decoded token: every matrix once, the tied embedding as the head (its lookup reads one row).
                var weightBytes = 4.0 * facts.ParameterCount;
                var bound = bandwidth / weightBytes;
                var ourRate = tokens / BenchmarkArguments.Median(ours.Select(o => o.Decode));
                var theirRate = tokens / BenchmarkArguments.Median(theirs.Select(t => t.Decode));
                var paired = Statistics.Ratio(ours.Select(o => tokens / o.Decode).ToList(), theirs.Select(t => tokens / t.Decode).ToList());
                var agree = ourTokens.Select(t => (int)t).Zip(theirTokens).TakeWhile(p => p.First == p.Second).Count();
                Console.WriteLine(string.Create(inv,
                    $"| {name} | {facts.ParameterCount:N0} | {weightBytes / 1e6:F0} | {bound:F1} | {ourRate:F1} | {(fused ? (tokens / BenchmarkArguments.Median(opByOp.Select(o => o.Decode))).ToString("F1", inv) : "—")} | {theirRate:F1} | {ourRate / theirRate:F2} | {paired.Format(2)} | {BenchmarkArguments.Median(ours.Select(o => o.Prefill)):F2} / {BenchmarkArguments.Median(theirs.Select(t => t.Prefill)):F2} | {(agree == tokens ? "all" : $"first {agree} of {tokens}")} |"));
            }
            finally
            {
                File.Delete(path);
            }
        }
        return 0;
    }

    /// <summary>Our cached decoding: the prompt once (prefill), then one token per step.</summary>
    private static ((double Prefill, double Decode), long[]) Ours(IDecoder model, Tensor prompt, int count)
    {
        var (chosen, prefill, steps) = CachedDecoding.Greedy(model, prompt, count);
        // The first token comes from the prefill; the decode rate counts the count − 1 steps after it, scaled to count.
        return ((prefill, steps * count / Math.Max(1, count - 1)), chosen);
    }

    /// <summary>llama.cpp the same way: the prompt in one batch, then one token per decode call.</summary>
    private static ((double Prefill, double Decode), int[]) Theirs(LlamaCppEngine llama, int[] prompt, int count)
    {
        var chosen = new int[count];
        var clock = Stopwatch.StartNew();
        var logits = llama.Start(prompt);
        var prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        for (var i = 0; i < count; i++)
        {
            chosen[i] = LlamaCppEngine.ArgMax(logits);
            if (i + 1 < count) logits = llama.Next(chosen[i]);
        }
        var decode = clock.Elapsed.TotalSeconds * count / Math.Max(1, count - 1);
        return ((prefill, decode), chosen);
    }

    /// <summary>Bytes read per second streaming 512 MiB of floats on <paramref name="threads"/> threads (a vector sum per
    /// thread over its share), best of five: a decode step reads every weight once, so weight bytes over this is the
    /// fastest a step can be.</summary>
    private static double ReadBandwidth(int threads)
    {
        const int Floats = 128 << 20;
        var data = new float[Floats];
        new Random(1).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        for (var i = 0; i < data.Length; i++) if (!float.IsFinite(data[i])) data[i] = 0;
        var best = double.MaxValue;
        var sink = 0f;
        for (var round = 0; round < 5; round++)
        {
            var sums = new float[threads];
            var clock = Stopwatch.StartNew();
            System.Threading.Tasks.Parallel.For(0, threads, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var share = Floats / threads;
                var span = System.Runtime.InteropServices.MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(data.AsSpan(t * share, share));
                var total = System.Numerics.Vector<float>.Zero;
                foreach (var vector in span) total += vector;
                sums[t] = System.Numerics.Vector.Sum(total);
            });
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
            sink += sums.Sum();
        }
        GC.KeepAlive(sink);
        return 4.0 * Floats / best;
    }
}
