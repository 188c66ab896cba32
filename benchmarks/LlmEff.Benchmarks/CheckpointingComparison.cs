using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- checkpointing`: peak memory and step time of Bench512 at sequence 1024, with and
/// without activation checkpointing. Each configuration runs in a child process of its own, so the kernel's
/// peak-resident-set figure (VmHWM) belongs to that configuration alone.
/// </summary>
internal static class CheckpointingComparison
{
    private const int Sequence = 1024;

    public static int Run(string[] args)
    {
        var batch = BenchmarkArguments.Option(args, "--batch", 8, minimum: 1);
        var steps = BenchmarkArguments.Option(args, "--steps", 3, minimum: 1);
        if (args.Length > 0 && args[0] == "child") return Child(args[1], batch, steps);

        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"Activation checkpointing, Bench512 (d 512, 8 layers) at seq {Sequence}, batch {batch}, fp32 CPU, {steps} timed steps after one warm-up; {DateTime.UtcNow:yyyy-MM-dd}"));
        var plain = Spawn("plain", batch, steps);
        var checkpointed = Spawn("checkpointed", batch, steps);
        Console.WriteLine();
        Console.WriteLine("| configuration | peak RSS | peak above weights + optimizer | median ms/step |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (name, r) in new[] { ("activations kept", plain), ("checkpointing", checkpointed) })
            Console.WriteLine(string.Create(inv, $"| {name} | {r.PeakMiB:N0} MiB | {r.ActivationMiB:N0} MiB | {r.MedianMs:F0} |"));
        Console.WriteLine(string.Create(inv,
            $"peak memory {100 * (1 - checkpointed.PeakMiB / plain.PeakMiB):F1}% lower (activation part {100 * (1 - checkpointed.ActivationMiB / plain.ActivationMiB):F1}% lower), step time {100 * (checkpointed.MedianMs / plain.MedianMs - 1):F1}% higher"));
        return 0;
    }

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
