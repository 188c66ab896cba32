using System;
using System.IO;
using LlmEff.Cli;

// Every test here swaps the process's console, so they run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace LlmEff.Cli.Tests;

/// <summary>One torch thread for the in-process commands (see LlmEff.Runtime.Tests' TestThreads: test projects run
/// side by side, and oversubscribed OpenMP threads slow small-op models down tenfold).</summary>
internal static class TestThreads
{
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void UseOneThread() => TorchSharp.torch.set_num_threads(1);
}

/// <summary>Runs the program in-process and captures what it prints.</summary>
internal static class CliHarness
{
    public static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        var (previousOut, previousError) = (Console.Out, Console.Error);
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            var code = Program.Main(args);
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(previousOut);
            Console.SetError(previousError);
        }
    }
}

/// <summary>A temporary folder removed after the test.</summary>
public sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("llmeff-cli-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
