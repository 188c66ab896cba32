using System;
using System.CommandLine;
using System.IO;
using LlmEff.Samples;
using LlmEff.Training;

namespace LlmEff.Cli.Commands;

/// <summary>Options several commands share, and the error handling every command runs under.</summary>
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

    public static Option<int> Steps(int fallback) => new("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => fallback };
    public static Option<int> Batch() => new("--batch") { Description = "Sequences per step.", DefaultValueFactory = _ => 8 };
    public static Option<int> SequenceLength() => new("--seq") { Description = "Tokens per sequence.", DefaultValueFactory = _ => 128 };
    public static Option<double> LearningRate() => new("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 3e-3 };
    public static Option<int> Seed() => new("--seed") { Description = "Seed of weights and batches.", DefaultValueFactory = _ => 1234 };
    public static Option<int> Threads() => new("--threads") { Description = "CPU threads for torch (0: torch's default).", DefaultValueFactory = _ => 0 };

    /// <summary>Training settings from the shared options; warm-up is a tenth of the steps, at most 20.</summary>
    public static TrainingOptions Training(ParseResult result, Option<int> steps, Option<int> batch, Option<int> length, Option<double> rate, Option<int> seed, int evalEvery = 0)
    {
        var stepCount = result.GetValue(steps);
        var options = new TrainingOptions
        {
            Steps = stepCount,
            BatchSize = result.GetValue(batch),
            SequenceLength = result.GetValue(length),
            LearningRate = result.GetValue(rate),
            Seed = result.GetValue(seed),
            WarmupSteps = Math.Min(20, Math.Max(0, stepCount / 10)),
            EvalEvery = evalEvery,
        };
        options.Validate();
        return options;
    }

    /// <summary>Applies --threads.</summary>
    public static void UseThreads(int threads)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException("--threads", threads, "--threads must not be negative.");
        if (threads > 0) TorchSharp.torch.set_num_threads(threads);
    }

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
