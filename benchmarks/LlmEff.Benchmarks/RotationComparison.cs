using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using LlmEff.Cli.Reporting;
using LlmEff.Layers;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- rotation`: the rotary rotation alone, Hugging Face's rotate_half form (neg, cat, two muls,
/// add) against the runtime's <see cref="RotaryEmbedding.Rotate"/> (roll and a signed sine table), interleaved, on the
/// shapes that matter: a NoKey decoding step re-rotating a 512-token cache of DecodeNoKey, and Bench512's training queries.
/// </summary>
internal static class RotationComparison
{
    public static int Run(string[] args)
    {
        var repeats = BenchmarkArguments.Option(args, "--repeats", 200, minimum: 1);
        var threads = BenchmarkArguments.Option(args, "--threads", 0);
        if (threads > 0) set_num_threads(threads);
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"Rotary rotation, fp32 CPU, {get_num_threads()} threads, median of {repeats} interleaved calls; {DateTime.UtcNow:yyyy-MM-dd}"));
        Console.WriteLine("Paired by call: the roll form's time over the rotate_half form's just before it, geometric mean (95% t-interval of the log ratios); \"not resolved\" where the interval contains 1.00.");
        Console.WriteLine();
        Console.WriteLine("| shape | rotate_half form µs | roll form µs | ratio (medians) | ratio, paired by call |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        foreach (var (name, shape, backward) in new (string, long[], bool)[]
                 {
                     ("decode cache [1, 4, 512, 64], forward", new long[] { 1, 4, 512, 64 }, false),
                     ("training queries [8, 8, 256, 64], forward + backward", new long[] { 8, 8, 256, 64 }, true),
                 })
        {
            manual_seed(1);
            using var rotary = new RotaryEmbedding((int)shape[3], (int)shape[2], 10000);
            var (cos, sin) = rotary.Angles(shape[2]);
            using var x = randn(shape).requires_grad_(backward);
            var old = new List<double>();
            var current = new List<double>();
            for (var i = 0; i < repeats; i++)
            {
                old.Add(Time(() => RotateHalf(x, cos, sin), backward));
                current.Add(Time(() => RotaryEmbedding.Rotate(x, cos, sin), backward));
            }
            double a = BenchmarkArguments.Median(old), b = BenchmarkArguments.Median(current);
            Console.WriteLine(string.Create(inv, $"| {name} | {a:F0} | {b:F0} | {b / a:F2} | {Statistics.Ratio(current, old).Format(2)} |"));
        }
        return 0;
    }

    private static double Time(Func<Tensor> rotate, bool backward)
    {
        using var scope = NewDisposeScope();
        using var grad = backward ? null : no_grad();
        var clock = Stopwatch.StartNew();
        var y = rotate();
        if (backward) y.sum().backward();
        return clock.Elapsed.TotalMilliseconds * 1000;
    }

    // The form the runtime used before (Hugging Face's rotate_half).
    private static Tensor RotateHalf(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        return x * cos + cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1) * sin;
    }
}
