using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using LlmEff.Cli.Reporting;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- checkpointing`: peak memory and step time of Bench512 at sequence 1024, with and
/// without activation checkpointing. Each configuration runs in a child process of its own, so the kernel's
/// peak-resident-set figure (VmHWM) belongs to that configuration alone. With --rounds R the two children alternate R
/// times (plain, checkpointed, plain, …), and the step-time cost is taken round by round: checkpointed median over
/// plain median per round, as a geometric mean with a 95% t-interval of the log ratios.
/// </summary>
internal static class CheckpointingComparison
{
    private const int Sequence = 1024;

    public static int Run(string[] args)
    {
        var batch = BenchmarkArguments.Option(args, "--batch", 8, minimum: 1);
        var steps = BenchmarkArguments.Option(args, "--steps", 3, minimum: 1);
        if (args.Length > 0 && args[0] == "child") return Child(args[1], batch, steps);

        var rounds = BenchmarkArguments.Option(args, "--rounds", 3, minimum: 1);
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"Activation checkpointing, Bench512 (d 512, 8 layers) at seq {Sequence}, batch {batch}, fp32 CPU, {steps} timed steps after one warm-up per process, {rounds} round{(rounds == 1 ? "" : "s")} of one process per configuration, alternating; {DateTime.UtcNow:yyyy-MM-dd}"));
        var plain = new List<ChildResult>();
        var checkpointed = new List<ChildResult>();
        for (var round = 0; round < rounds; round++)
        {
            plain.Add(Spawn("plain", batch, steps));
            checkpointed.Add(Spawn("checkpointed", batch, steps));
        }
        Console.WriteLine(rounds < 2
            ? "Paired step-time ratio: no interval from 1 round (use --rounds 2 or more)."
            : "Paired step-time ratio: the checkpointed process's median step over the plain one's in each round, geometric mean (95% t-interval of the log ratios); \"not resolved\" where the interval contains 1.00.");
        Console.WriteLine();
        Console.WriteLine("| configuration | peak RSS | peak above weights + optimizer | median ms/step | vs activations kept, paired by round |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        var timeRatio = Statistics.Ratio(checkpointed.Select(r => r.MedianMs).ToList(), plain.Select(r => r.MedianMs).ToList());
        foreach (var (name, results, versus) in new[] { ("activations kept", plain, "baseline"), ("checkpointing", checkpointed, timeRatio.Format(2)) })
            Console.WriteLine(string.Create(inv,
                $"| {name} | {Median(results, r => r.PeakMiB):N0} MiB | {Median(results, r => r.ActivationMiB):N0} MiB | {Median(results, r => r.MedianMs):N0} | {versus} |"));
        var (plainPeak, checkpointedPeak) = (Median(plain, r => r.PeakMiB), Median(checkpointed, r => r.PeakMiB));
        var (plainActivations, checkpointedActivations) = (Median(plain, r => r.ActivationMiB), Median(checkpointed, r => r.ActivationMiB));
        Console.WriteLine(string.Create(inv,
            $"peak memory {100 * (1 - checkpointedPeak / plainPeak):F1}% lower (activation part {100 * (1 - checkpointedActivations / plainActivations):F1}% lower), step time {StepTimeChange(Median(checkpointed, r => r.MedianMs) / Median(plain, r => r.MedianMs))} (medians over {rounds} round{(rounds == 1 ? "" : "s")}); paired: {timeRatio.Format(2)}"));
        // Peak memory barely moves between processes of one configuration; its spread says whether the medians above can be read as one number.
        Console.WriteLine(string.Create(inv,
            $"peak RSS across rounds: activations kept {plain.Min(r => r.PeakMiB):N0}–{plain.Max(r => r.PeakMiB):N0} MiB, checkpointing {checkpointed.Min(r => r.PeakMiB):N0}–{checkpointed.Max(r => r.PeakMiB):N0} MiB"));
        return 0;
    }

    /// <summary>"32.0% higher" or, on a machine where checkpointing came out faster, "9.0% lower" rather than "-9.0% higher".</summary>
    private static string StepTimeChange(double ratio) =>
        string.Create(CultureInfo.InvariantCulture, $"{100 * Math.Abs(ratio - 1):F1}% {(ratio >= 1 ? "higher" : "lower")}");

    private static double Median(IEnumerable<ChildResult> results, Func<ChildResult, double> value) => BenchmarkArguments.Median(results.Select(value));

    private sealed record ChildResult(double PeakMiB, double ActivationMiB, double MedianMs);

    private static ChildResult Spawn(string configuration, int batch, int steps)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        foreach (var argument in new[] { typeof(CheckpointingComparison).Assembly.Location, "checkpointing", "child", configuration,
                     "--batch", batch.ToString(CultureInfo.InvariantCulture), "--steps", steps.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(argument);
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) != "dotnet") start.ArgumentList.RemoveAt(0); // an apphost runs itself
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"The {configuration} run failed with exit code {process.ExitCode}.");
        return JsonSerializer.Deserialize<ChildResult>(output.Trim().Split('\n').Last())!;
    }

    private static int Child(string configuration, int batch, int steps)
    {
        // As in every training run: freed activations go back to the system, so the peak is what is live at once.
        LlmEff.Training.NativeAllocator.ReturnFreedMemory();
        random.manual_seed(1);
        using nn.Module<Tensor, Tensor> model = configuration == "checkpointed" ? new Bench512Checkpointed() : new Bench512Long();
        var optimizer = optim.AdamW(model.parameters(), 3e-4);
        var tokens = randint(0, 256, new long[] { batch, Sequence });
        var targets = randint(0, 256, new long[] { batch, Sequence });
        var times = new double[steps];
        for (var i = -1; i < steps; i++)
        {
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                var loss = nn.functional.cross_entropy(model.forward(tokens).view(-1, 256), targets.view(-1));
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
            }
            if (i >= 0) times[i] = clock.Elapsed.TotalMilliseconds;
        }
        // Between steps only weights, gradients and AdamW moments stay resident: the peak above that is the step's working set.
        var (peak, resident) = (StatusKiB("VmHWM:") / 1024.0, StatusKiB("VmRSS:") / 1024.0);
        Console.WriteLine(JsonSerializer.Serialize(new ChildResult(peak, peak - resident, BenchmarkArguments.Median(times))));
        return 0;
    }

    private static long StatusKiB(string field) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
}
