using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using LlmEff.Cli.Reporting;
using LlmEff.Kernels;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- matvec`: one token times every weight of Decode100M (its layer matrices, then its tied
/// head), libtorch's <c>linear</c> against <see cref="MatrixVector"/>, interleaved round by round. The
/// weights (4 bytes for each of Decode100M.ParameterCount) do not fit in cache, as in a decoding step. Reports each side's time and read rate, and checks that
/// both give the same products to float rounding.
/// </summary>
internal static class MatrixVectorComparison
{
    public static int Run(string[] args)
    {
        var rounds = BenchmarkArguments.Option(args, "--rounds", 10, minimum: 1);
        var threads = BenchmarkArguments.Option(args, "--threads", 2, minimum: 1);
        set_num_threads(threads);
        if (!SingleTokenStep.IsSupported)
        {
            Console.Error.WriteLine("This CPU has no AVX2/FMA: the kernel does not run here.");
            return 2;
        }
        var inv = CultureInfo.InvariantCulture;
        manual_seed(1);
        using var _ = no_grad();
        // The model's own weights: every layer matrix, and the tied embedding as the head.
        using var model = new Decode100M();
        var matrices = model.named_parameters().Where(p => p.parameter.dim() == 2).ToList();
        var head = matrices.Single(p => p.name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)).parameter;
        var layers = matrices.Where(p => p.parameter.Handle != head.Handle).Select(p => (Tensor)p.parameter).ToArray();
        var inputs = layers.Append(head).Select(w => w.shape[1]).Distinct().ToDictionary(width => width, width => randn(1, 1, width));
        var layerBytes = 4.0 * layers.Sum(w => w.NumberOfElements);
        var headBytes = 4.0 * head.NumberOfElements;

        // Same products, to float rounding (the sums run in another order).
        var worst = layers.Append(head).Max(w =>
        {
            using var scope = NewDisposeScope();
            var x = inputs[w.shape[1]];
            var reference = nn.functional.linear(x, w);
            return ((MatrixVector.TryLinear(x, w, null)! - reference).abs().max() / reference.abs().max()).item<float>();
        });

        var torchLayers = new List<double>(); var kernelLayers = new List<double>();
        var torchHead = new List<double>(); var kernelHead = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            torchLayers.Add(Time(() => { foreach (var w in layers) nn.functional.linear(inputs[w.shape[1]], w); }));
            kernelLayers.Add(Time(() => { foreach (var w in layers) MatrixVector.TryLinear(inputs[w.shape[1]], w, null); }));
            torchHead.Add(Time(() => nn.functional.linear(inputs[head.shape[1]], head)));
            kernelHead.Add(Time(() => MatrixVector.TryLinear(inputs[head.shape[1]], head, null)));
        }

        Console.WriteLine(string.Create(inv, $"One token through Decode100M's weights, fp32 CPU, {threads} threads, median of {rounds} interleaved rounds; {DateTime.UtcNow:yyyy-MM-dd}."));
        Console.WriteLine(string.Create(inv, $"Largest difference from linear's products, relative to their largest: {worst:E1}."));
        Console.WriteLine("Paired by round: the kernel's time over linear's in the same round, geometric mean (95% t-interval of the log ratios); \"not resolved\" where the interval contains 1.00.");
        Console.WriteLine();
        Console.WriteLine("| weights | MB | linear ms | linear GB/s | kernel ms | kernel GB/s | kernel / linear, paired by round |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---|");
        foreach (var (name, bytes, torch, kernel) in new[] { ($"{layers.Length} layer matrices", layerBytes, torchLayers, kernelLayers), ($"tied head {head.shape[0]:N0} × {head.shape[1]:N0}", headBytes, torchHead, kernelHead) })
        {
            double a = BenchmarkArguments.Median(torch), b = BenchmarkArguments.Median(kernel);
            Console.WriteLine(string.Create(inv, $"| {name} | {bytes / 1e6:F0} | {a:F2} | {bytes / a / 1e6:F1} | {b:F2} | {bytes / b / 1e6:F1} | {Statistics.Ratio(kernel, torch).Format(2)} |"));
        }
        return 0;
    }

    private static double Time(Action products)
    {
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        products();
        return clock.Elapsed.TotalMilliseconds;
    }
}
