using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using LlmEff.Benchmarks.Reference;
using LlmEff.Cli.Reporting;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare`: one training step (forward, backward, AdamW) of the generated Bench512, the
/// same architecture hand-written in TorchSharp, and in PyTorch eager, measured in one run on the same threads;
/// then every attention variant. Steps of all models alternate (round i runs step i of each; PyTorch's in a child
/// process that steps on request), so drift of the machine hits all alike; medians are the headline, and each model's
/// step time is compared with the baseline's round by round: the geometric mean of the per-round ratios with a 95%
/// t-interval on their logs, marked not resolved where that interval contains 1.
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
        using var generatedModel = new Bench512();
        using var handWritten = new HandWrittenLlama(Vocab, 512, 8, 8, 1408, Sequence);
        var handCount = handWritten.parameters().Sum(p => p.numel());
        if (handCount != Bench512.ParameterCount)
            throw new InvalidOperationException($"The hand-written model has {handCount:N0} parameters, the generated one {Bench512.ParameterCount:N0}: not the same architecture.");

        var models = new List<(string, nn.Module<Tensor, Tensor>)> { ("generated", generatedModel), ("hand-written", handWritten) };
        // --ablate: the hand-written model with one of the generated code's specialisations each, interleaved with the rest.
        if (args.Contains("--ablate"))
        {
            models.Add(("hand-written + one matmul", new HandWrittenLlama(Vocab, 512, 8, 8, 1408, Sequence, oneMatmul: true)));
            models.Add(("hand-written + roll rotate", new HandWrittenLlama(Vocab, 512, 8, 8, 1408, Sequence, rollRotate: true)));
        }
        // The two above are owned here, unlike the `using` models: released when the comparison ends.
        using var ablated = new DisposeAll(models.Skip(2).Select(m => m.Item2));
        // PyTorch eager runs in a child process that steps on request, so its steps interleave with the TorchSharp ones.
        string? pythonReason = "skipped (--no-python)";
        using var python = args.Contains("--no-python") ? null : PyTorchServer.Start(threads, out pythonReason);
        var timings = Measure(models, steps, warmup, python);

        var baseline = timings["hand-written"];
        var baselineMedian = BenchmarkArguments.Median(baseline);
        Console.WriteLine();
        Console.WriteLine(RatioLegend(steps));
        Console.WriteLine();
        Console.WriteLine("| implementation | median ms/step | mean ± 95% ms/step | vs hand-written (medians) | vs hand-written, paired by round |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        foreach (var (name, times) in timings)
        {
            var label = name == PyTorchServer.Name ? $"PyTorch {python!.Version} eager" : $"{name} TorchSharp";
            Console.WriteLine(string.Create(inv, $"| {label} | {BenchmarkArguments.Median(times):N0} | {MeanText(times)} | {BenchmarkArguments.Median(times) / baselineMedian:F2} | {(name == "hand-written" ? "baseline" : Statistics.Ratio(times, baseline).Format())} |"));
        }
        if (python is null) Console.WriteLine($"| PyTorch eager | not measured: {pythonReason} | | | |");
        var generated = timings["generated"];
        var versusPython = python is null ? ""
            : string.Create(inv, $"; generated / PyTorch eager = {BenchmarkArguments.Median(generated) / BenchmarkArguments.Median(timings[PyTorchServer.Name]):F3} (medians), {Statistics.Ratio(generated, timings[PyTorchServer.Name]).Format()} (paired)");
        Console.WriteLine(string.Create(inv, $"generated / hand-written = {BenchmarkArguments.Median(generated) / baselineMedian:F3} (medians), {Statistics.Ratio(generated, baseline).Format()} (paired){versusPython}"));
        if (headline) return 0;

        // Every variant's steps interleaved in one loop, so each is paired with Full's step of the same round.
        var variants = new (string Name, ModelFacts Facts, Func<nn.Module<Tensor, Tensor>> Create)[]
        {
            ("Full", Bench512.Facts, () => new Bench512()),
            ("NoKey", Bench512NoKey.Facts, () => new Bench512NoKey()),
            ("NoQuery", Bench512NoQuery.Facts, () => new Bench512NoQuery()),
            ("Shared", Bench512Shared.Facts, () => new Bench512Shared()),
            ("GQA (2 KV heads)", Bench512Gqa.Facts, () => new Bench512Gqa()),
            ("MQA", Bench512Mqa.Facts, () => new Bench512Mqa()),
        };
        var variantModels = variants.Select(v => (v.Name, Model: v.Create())).ToList();
        try
        {
            var variantTimes = Measure(variantModels, steps, warmup);
            var full = variantTimes["Full"];
            var fullMedian = BenchmarkArguments.Median(full);
            Console.WriteLine();
            Console.WriteLine("| variant | parameters | KV bytes/token (bf16) | median ms/step | mean ± 95% ms/step | vs Full (medians) | vs Full, paired by round |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---|");
            foreach (var (name, facts, _) in variants)
            {
                var times = variantTimes[name];
                Console.WriteLine(string.Create(inv, $"| {name} | {facts.ParameterCount:N0} | {facts.KvCacheBytesPerToken():N0} | {BenchmarkArguments.Median(times):N0} | {MeanText(times)} | {BenchmarkArguments.Median(times) / fullMedian:F2} | {(name == "Full" ? "baseline" : Statistics.Ratio(times, full).Format())} |"));
            }
        }
        finally
        {
            foreach (var (_, model) in variantModels) model.Dispose();
        }
        return 0;
    }

    /// <summary>What the paired column means, printed above the tables.</summary>
    private static string RatioLegend(int rounds) => rounds < 2
        ? "Paired ratios: no interval from 1 round (use --steps 2 or more)."
        : string.Create(CultureInfo.InvariantCulture, $"Paired by round: step i of a model over step i of the baseline, {rounds} interleaved rounds (PyTorch's steps too: its process steps on request and times itself), as the geometric mean of the ratios (95% t-interval of their logs); \"not resolved\" where the interval contains 1.00.");

    /// <summary>"2,231 ± 45": the mean step time with its 95% t-interval (the mean alone from one step).</summary>
    private static string MeanText(IReadOnlyList<double> times) => Statistics.IntervalOf(times).Format(v => v.ToString("N0", CultureInfo.InvariantCulture));

    /// <summary>Milliseconds of each timed training step of each model, in round order; round i runs step i of every
    /// model in turn, then PyTorch's when <paramref name="python"/> is given.</summary>
    private static Dictionary<string, List<double>> Measure(IReadOnlyList<(string Name, nn.Module<Tensor, Tensor> Model)> models, int steps, int warmup, PyTorchServer? python = null)
    {
        var optimizers = new List<AdamW>();
        var steppers = new List<(string Name, Func<double> Step)>();
        foreach (var (name, model) in models)
        {
            var step = Stepper(model, out var optimizer);
            optimizers.Add(optimizer);
            steppers.Add((name, () =>
            {
                var clock = Stopwatch.StartNew();
                step();
                return clock.Elapsed.TotalMilliseconds;
            }));
        }
        if (python is not null) steppers.Add((PyTorchServer.Name, python.Step));
        var times = steppers.ToDictionary(s => s.Name, _ => new List<double>());
        for (var i = 0; i < warmup + steps; i++)
        {
            foreach (var (name, step) in steppers)
            {
                var milliseconds = step();
                if (i >= warmup) times[name].Add(milliseconds);
            }
        }
        foreach (var optimizer in optimizers) optimizer.Dispose(); // AdamW moments: as large as the model
        return times;
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

    /// <summary>
    /// benchmarks/pytorch/train_step.py --serve: the same model in PyTorch eager, in a child process that runs one
    /// training step per "step" line and answers with the milliseconds it measured itself (so the pipe's round trip is
    /// not counted).
    /// </summary>
    private sealed class PyTorchServer : IDisposable
    {
        /// <summary>The key of PyTorch's times among the models'.</summary>
        public const string Name = "PyTorch eager";

        private readonly Process process;
        private readonly string python;
        private string lastError = "";

        private PyTorchServer(Process process, string python)
        {
            this.process = process;
            this.python = python;
        }

        public string Version { get; private set; } = "?";

        /// <summary>The server set up and ready, or null with the reason PyTorch cannot run here.</summary>
        public static PyTorchServer? Start(int threads, out string? reason)
        {
            var script = FindUpwards(Path.Combine("benchmarks", "pytorch", "train_step.py"));
            if (script is null)
            {
                reason = "benchmarks/pytorch/train_step.py not found above the working directory";
                return null;
            }
            var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
            var start = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in new[] { script, "--serve", "--threads", threads.ToString(CultureInfo.InvariantCulture),
                         "--seq", Sequence.ToString(CultureInfo.InvariantCulture), "--batch", Batch.ToString(CultureInfo.InvariantCulture) })
                start.ArgumentList.Add(argument);
            Process process;
            try
            {
                process = Process.Start(start)!;
            }
            catch (System.ComponentModel.Win32Exception error)
            {
                reason = $"{python} could not start ({error.Message})";
                return null;
            }
            var server = new PyTorchServer(process, python);
            // Read standard error as it comes, so a chatty child cannot block on a full pipe; keep its last line for errors.
            process.ErrorDataReceived += (_, e) => { if (!string.IsNullOrWhiteSpace(e.Data)) server.lastError = e.Data; };
            process.BeginErrorReadLine();
            var ready = process.StandardOutput.ReadLine();
            if (ready is null)
            {
                process.WaitForExit();
                reason = $"{python} exited with {process.ExitCode}: {server.lastError}";
                server.Dispose();
                return null;
            }
            using var json = JsonDocument.Parse(ready);
            server.Version = json.RootElement.GetProperty("torch").GetString() ?? "?";
            reason = null;
            return server;
        }

        /// <summary>One training step in PyTorch; its milliseconds as PyTorch timed them.</summary>
        public double Step()
        {
            process.StandardInput.WriteLine("step");
            process.StandardInput.Flush();
            var answer = process.StandardOutput.ReadLine()
                ?? throw new InvalidOperationException($"{python} stopped during a PyTorch step: {lastError}");
            using var json = JsonDocument.Parse(answer);
            return json.RootElement.GetProperty("ms").GetDouble();
        }

        public void Dispose()
        {
            // Closing standard input ends the child's loop.
            if (!process.HasExited) process.StandardInput.Close();
            process.WaitForExit();
            process.Dispose();
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

/// <summary>Disposes every module it was given, for models created in a list rather than with <c>using</c>.</summary>
internal sealed class DisposeAll(IEnumerable<System.IDisposable> owned) : System.IDisposable
{
    private readonly List<System.IDisposable> owned = owned.ToList();

    public void Dispose() => owned.ForEach(o => o.Dispose());
}
