using System;
using System.Diagnostics;
using System.IO;

namespace LlmEff.Generator.Tests.Infrastructure;

/// <summary>Debian's python3 (or LLMEFF_PYTHON), for the checks that run generated or runtime Python. Tests that need
/// it skip with the reason these properties give when it is missing (CI installs python3-torch).</summary>
internal static class Python
{
    public static string Executable => Environment.GetEnvironmentVariable("LLMEFF_PYTHON") is { Length: > 0 } custom ? custom : "/usr/bin/python3";

    private static readonly Lazy<string?> NoPython = new(() => Missing("import py_compile", "python3"));
    private static readonly Lazy<string?> NoTorch = new(() => Missing("import torch", "python3-torch"));

    /// <summary>Why no Python can check syntax here; null when one can.</summary>
    public static string? WhyNoPython => NoPython.Value;

    /// <summary>Why no Python can build torch modules here; null when one can.</summary>
    public static string? WhyNoTorch => NoTorch.Value;

    private static string? Missing(string import, string package)
    {
        try
        {
            var (code, output) = Run("-c", import);
            return code == 0 ? null : $"{Executable} cannot {import} (exit {code}: {output.Trim()}); install {package} or set LLMEFF_PYTHON";
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            return $"{Executable} cannot be started ({error.Message}); install {package} or set LLMEFF_PYTHON";
        }
    }

    /// <summary>Compiles <paramref name="file"/> to a throw-away .pyc, so no __pycache__ lands in the repository.</summary>
    public static (int Code, string Output) Compile(string file)
    {
        var compiled = Path.Combine(Path.GetTempPath(), $"llmeff-{Guid.NewGuid():N}.pyc");
        try
        {
            return Run("-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)", file, compiled);
        }
        finally
        {
            File.Delete(compiled);
        }
    }

    /// <summary>Runs python with <paramref name="arguments"/>; standard output, then standard error.</summary>
    public static (int Code, string Output) Run(params string[] arguments)
    {
        var start = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }
}
