using System;
using System.Globalization;
using LlmEff.Training;
using Spectre.Console;

namespace LlmEff.Cli.Commands;

/// <summary>
/// Shows training progress: a live bar per run (step, loss, tokens/s, time left) on a terminal, and a plain
/// line every few steps when output is redirected, so logs stay readable.
/// </summary>
internal static class RunView
{
    /// <summary>Append the process's resident memory to progress lines (train --log-memory).</summary>
    public static bool LogMemory { get; set; }

    /// <summary>Whether output goes to a terminal that can redraw bars.</summary>
    public static bool Live => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="train"/>, handing it a step callback that drives the display.</summary>
    public static T Track<T>(string label, int totalSteps, int alreadyDone, Func<Action<StepReport>, T> train)
    {
        if (!Live)
        {
            var every = Math.Max(1, totalSteps / 10);
            return train(report =>
            {
                if (report.Step == alreadyDone + 1 || report.Step % every == 0 || report.Step == report.TotalSteps)
                    Console.WriteLine(Line(label, report, alreadyDone));
            });
        }

        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                var task = context.AddTask(Markup.Escape(label), maxValue: totalSteps);
                task.Value = alreadyDone;
                result = train(report =>
                {
                    task.Value = report.Step;
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                        $"{label}  step {report.Step}/{report.TotalSteps}  loss {report.Loss:F3}  {report.TokensPerSecond:N0} tok/s"));
                });
            });
        return result;
    }

    /// <summary>A line among the progress output: above the live bars on a terminal, in sequence otherwise.</summary>
    public static void Note(string line)
    {
        if (Live) AnsiConsole.WriteLine(line);
        else Console.WriteLine(line);
    }

    /// <summary>One progress line: step, loss, learning rate, gradient norm, throughput, elapsed and left.</summary>
    public static string Line(string label, StepReport report, int alreadyDone = 0)
    {
        var done = report.Step - alreadyDone;
        var left = done > 0 ? report.Elapsed / done * (report.TotalSteps - report.Step) : TimeSpan.Zero;
        var memory = LogMemory ? string.Create(CultureInfo.InvariantCulture, $"  resident {ResidentBytes() / 1e6:F0} MB") : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{label}  step {report.Step,5}/{report.TotalSteps}  loss {report.Loss,7:F4}  lr {report.LearningRate:0.00e+0}  |g| {report.GradientNorm,6:F3}  {report.TokensPerSecond,8:N0} tok/s  {report.Elapsed.TotalSeconds,6:F1}s  ETA {left.TotalSeconds:F0}s{memory}");
    }

    /// <summary>Resident set size after a full collection, so managed garbage does not count.</summary>
    private static long ResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return process.WorkingSet64;
    }
}
