using System;
using System.CommandLine;
using System.IO;
using LlmEff.Samples;
using LlmEff.Training;

namespace LlmEff.Cli.Commands;

/// <summary>Options several commands share (training ones: <see cref="TrainingOptionSet"/>), and the error handling every command runs under.</summary>
internal static class CommandLine
{
    /// <summary>Exit code for input the program refuses (bad value, unreadable file, diverged run).</summary>
    public const int RefusedInput = 2;

    /// <summary>--assembly: where declared models are looked up (the samples when not given).</summary>
    public static Option<string?> Assembly() => new("--assembly") { Description = "Assembly (.dll) whose [Model] classes to use; default: the samples." };

    /// <summary>The assembly named by --assembly, or the samples.</summary>
    public static System.Reflection.Assembly LoadModels(string? path)
    {
        if (string.IsNullOrEmpty(path)) return typeof(TinyDecoder).Assembly;
        if (!File.Exists(path)) throw new FileNotFoundException($"--assembly: no file at {Path.GetFullPath(path)}.", path);
        try
        {
            return System.Reflection.Assembly.LoadFrom(Path.GetFullPath(path));
        }
        catch (BadImageFormatException error)
        {
            throw new InvalidDataException($"--assembly: {path} is not a .NET assembly ({error.Message}).", error);
        }
    }

    /// <summary>One declared model by name from --assembly.</summary>
    public static DeclaredModelType Model(ParseResult result, Option<string> model, Option<string?> assembly) =>
        ModelCatalog.Find(LoadModels(result.GetValue(assembly)), result.GetValue(model)!);

    public static Option<string> ModelName() => new("--model") { Description = "Declared model (see 'llmeff inspect').", DefaultValueFactory = _ => nameof(TinyDecoder) };

    /// <summary>Runs a command body; refused input prints one line to stderr and returns <see cref="RefusedInput"/>.</summary>
    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception error) when (error is ArgumentException or InvalidDataException or IOException or TrainingDivergedException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {Describe(error)}");
            return RefusedInput;
        }
    }

    /// <summary>The message without .NET's "(Parameter 'x')" and "Actual value was" lines, the value folded in.</summary>
    private static string Describe(Exception error)
    {
        if (error is not ArgumentException argument || argument.ParamName is null) return error.Message;
        var message = argument.Message;
        var suffix = $" (Parameter '{argument.ParamName}')";
        var cut = message.IndexOf(suffix, StringComparison.Ordinal);
        if (cut >= 0) message = message[..cut];
        return argument is ArgumentOutOfRangeException { ActualValue: { } value }
            ? FormattableString.Invariant($"{message} (got {value})")
            : message;
    }
}
