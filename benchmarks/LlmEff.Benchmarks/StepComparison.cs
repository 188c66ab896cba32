using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using LlmEff.Benchmarks.Reference;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare`: one training step (forward, backward, AdamW) of the generated Bench512, the
/// same architecture hand-written in TorchSharp, and in PyTorch eager, measured in one run on the same threads;
/// then every attention variant. Steps of the two TorchSharp models alternate, so drift of the machine hits both
/// alike; medians are reported.
/// </summary>
internal static class StepComparison
{
    private const int Vocab = 256, Batch = 8, Sequence = 256;

    public static int Run(string[] args)
    {
        var steps = BenchmarkArguments.Option(args, "--steps", 10, minimum: 1);
        var warmup = BenchmarkArguments.Option(args, "--warmup", 2);
        var threads = BenchmarkArguments.Option(args, "--threads", 0);
        // --headline: no per-variant table; --no-python: no PyTorch row (to measure one change quickly).
        var headline = args.Contains("--headline");
        if (threads > 0) set_num_threads(threads);
        threads = get_num_threads();
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"Training step, d 512, 8 layers, seq {Sequence}, batch {Batch}, fp32 CPU, {threads} threads, {steps} timed steps after {warmup} warm-up; {DateTime.UtcNow:yyyy-MM-dd}"));

        random.manual_seed(1);
        using var generated = new Bench512();
        using var handWritten = new HandWrittenLlama(Vocab, 512, 8, 8, 1408, Sequence);
        var handCount = handWritten.parameters().Sum(p => p.numel());
        if (handCount != Bench512.ParameterCount)
            throw new InvalidOperationException($"The hand-written model has {handCount:N0} parameters, the generated one {Bench512.ParameterCount:N0}: not the same architecture.");

        var models = new List<(string, nn.Module<Tensor, Tensor>)> { ("generated", generated), ("hand-written", handWritten) };
        // --ablate: the hand-written model with one of the generated code's specialisations each, interleaved with the rest.
        if (args.Contains("--ablate"))
        {
            models.Add(("hand-written + one matmul", new HandWrittenLlama(Vocab, 512, 8, 8, 1408, Sequence, oneMatmul: true)));
            models.Add(("hand-written + roll rotate", new HandWrittenLlama(Vocab, 512, 8, 8, 1408, Sequence, rollRotate: true)));
        }
        var timings = Measure(models, steps, warmup);
        var python = args.Contains("--no-python") ? (null, "", "skipped (--no-python)") : PyTorchEager(steps, warmup, threads);

        var baseline = timings["hand-written"];
        Console.WriteLine();
        Console.WriteLine("| implementation | median ms/step | vs hand-written TorchSharp |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var (name, median) in timings)
            Console.WriteLine(string.Create(inv, $"| {name} TorchSharp | {median:F0} | {median / baseline:F2} |"));
        if (python.Median is { } pythonMedian)
            Console.WriteLine(string.Create(inv, $"| PyTorch {python.Version} eager | {pythonMedian:F0} | {pythonMedian / baseline:F2} |"));
        else
            Console.WriteLine($"| PyTorch eager | not measured: {python.Reason} | |");
        var versusPython = python.Median is { } p ? string.Create(inv, $"; generated / PyTorch eager = {timings["generated"] / p:F3}") : "";
        Console.WriteLine(string.Create(inv, $"generated / hand-written = {timings["generated"] / baseline:F3}{versusPython}"));
        if (headline) return 0;

        Console.WriteLine();
        Console.WriteLine("| variant | parameters | KV bytes/token (bf16) | median ms/step | vs Full |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        var variants = new (string Name, ModelFacts Facts, Func<nn.Module<Tensor, Tensor>> Create)[]
        {
            ("Full", Bench512.Facts, () => new Bench512()),
            ("NoKey", Bench512NoKey.Facts, () => new Bench512NoKey()),
            ("NoQuery", Bench512NoQuery.Facts, () => new Bench512NoQuery()),
            ("Shared", Bench512Shared.Facts, () => new Bench512Shared()),
            ("GQA (2 KV heads)", Bench512Gqa.Facts, () => new Bench512Gqa()),
            ("MQA", Bench512Mqa.Facts, () => new Bench512Mqa()),
        };
        double? full = null;
        foreach (var (name, facts, create) in variants)
        {
            using var model = create();
            var median = Measure(new[] { (name, model) }, steps, warmup)[name];
            full ??= median;
            Console.WriteLine(string.Create(inv, $"| {name} | {facts.ParameterCount:N0} | {facts.KvCacheBytesPerToken():N0} | {median:F0} | {median / full.Value:F2} |"));
        }
        return 0;
    }

    /// <summary>Median milliseconds per training step of each model, their steps interleaved.</summary>
    private static Dictionary<string, double> Measure(IReadOnlyList<(string Name, nn.Module<Tensor, Tensor> Model)> models, int steps, int warmup)
    {
        var steppers = models.Select(m => (m.Name, Step: Stepper(m.Model, out var optimizer), Optimizer: optimizer)).ToList();
        var times = steppers.ToDictionary(s => s.Name, _ => new List<double>());
        for (var i = 0; i < warmup + steps; i++)
        {
            foreach (var (name, step, _) in steppers)
            {
                var clock = Stopwatch.StartNew();
                step();
                if (i >= warmup) times[name].Add(clock.Elapsed.TotalMilliseconds);
            }
        }
        foreach (var stepper in steppers) stepper.Optimizer.Dispose(); // AdamW moments: as large as the model
        return times.ToDictionary(t => t.Key, t => BenchmarkArguments.Median(t.Value));
    }

    /// <summary>A training step of <paramref name="model"/> with the optimizer settings of LlmEff's TrainingRun.</summary>
    private static Action Stepper(nn.Module<Tensor, Tensor> model, out AdamW optimizer)
    {
        var parameters = model.parameters().ToList();
        optimizer = optim.AdamW(new List<AdamW.ParamGroup>
        {
            new(parameters.Where(p => p.dim() >= 2), new AdamW.Options { weight_decay = 0.1 }),
            new(parameters.Where(p => p.dim() < 2), new AdamW.Options { weight_decay = 0.0 }),
        }, 3e-4, 0.9, 0.95, 1e-8, 0.1);
        var tokens = randint(0, Vocab, new long[] { Batch, Sequence });
        var targets = randint(0, Vocab, new long[] { Batch, Sequence });
        var adamW = optimizer;
        return () =>
        {
            using var scope = NewDisposeScope();
            var loss = nn.functional.cross_entropy(model.forward(tokens).view(-1, Vocab), targets.view(-1));
            adamW.zero_grad();
            loss.backward();
            adamW.step();
        };
    }

    private static (double? Median, string Version, string Reason) PyTorchEager(int steps, int warmup, int threads)
    {
        var script = FindUpwards(Path.Combine("benchmarks", "pytorch", "train_step.py"));
        if (script is null) return (null, "", "benchmarks/pytorch/train_step.py not found above the working directory");
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { script, "--steps", steps.ToString(CultureInfo.InvariantCulture), "--warmup", warmup.ToString(CultureInfo.InvariantCulture),
                     "--threads", threads.ToString(CultureInfo.InvariantCulture), "--seq", Sequence.ToString(CultureInfo.InvariantCulture), "--batch", Batch.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(argument);
        try
        {
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0) return (null, "", $"{python} exited with {process.ExitCode}: {error.Trim().Split('\n').LastOrDefault()}");
            using var json = JsonDocument.Parse(output.Trim().Split('\n').Last());
            return (json.RootElement.GetProperty("median_ms").GetDouble(), json.RootElement.GetProperty("torch").GetString() ?? "?", "");
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            return (null, "", $"{python} could not start ({error.Message})");
        }
    }

    private static string? FindUpwards(string relative)
    {
        for (var folder = new DirectoryInfo(Directory.GetCurrentDirectory()); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
