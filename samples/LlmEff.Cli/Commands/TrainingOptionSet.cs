using System;
using System.CommandLine;
using LlmEff.Training;

namespace LlmEff.Cli.Commands;

/// <summary>
/// The training options of <c>train</c>, <c>ablate</c>, <c>qat</c> and <c>study</c>, declared once so that their
/// names, help and checks cannot drift apart between commands. Only defaults differ per command, where the workload
/// does: ablate and qat train longer, the study's batches are of short task sequences.
/// </summary>
internal sealed class TrainingOptionSet
{
    /// <summary>Declares the options with the defaults <paramref name="steps"/> and <paramref name="batch"/>; the rest
    /// default to what suits the tiny sample models on 2 CPU cores.</summary>
    public TrainingOptionSet(int steps = 200, int batch = 8, int seeds = 1)
    {
        Seeds = new("--seeds") { Description = "Runs per configuration, with consecutive seeds (--seed, --seed+1, ...; 1, 2, ... in the study); 2 or more give 95% intervals and paired differences.", DefaultValueFactory = _ => seeds };
        Steps = new("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => steps };
        Batch = new("--batch") { Description = "Sequences per step.", DefaultValueFactory = _ => batch };
        SequenceLength = new("--seq") { Description = "Tokens per sequence.", DefaultValueFactory = _ => 128 };
        LearningRate = new("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 3e-3 };
        Seed = new("--seed") { Description = "Seed of weights and batches.", DefaultValueFactory = _ => 1234 };
        Threads = new("--threads") { Description = "CPU threads for torch (0: torch's default).", DefaultValueFactory = _ => 0 };
        Optimizer = new("--optimizer")
        {
            Description = "adamw, or muon: Muon (DeepSeek V4's: Newton-Schulz 8+2 steps, Nesterov 0.95, update RMS 0.18) for hidden matrices, AdamW for embeddings, head, norms and biases.",
            DefaultValueFactory = _ => "adamw",
        };
    }

    public Option<int> Steps { get; }
    public Option<int> Batch { get; }
    public Option<int> SequenceLength { get; }
    public Option<double> LearningRate { get; }
    public Option<int> Seed { get; }
    public Option<int> Threads { get; }
    public Option<string> Optimizer { get; }

    /// <summary>--seeds, for the commands that compare configurations (added by <see cref="AddSeedsTo"/>, not by <see cref="AddTo"/>:
    /// <c>train</c> trains one model once).</summary>
    public Option<int> Seeds { get; }

    /// <summary>Adds every option to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Steps, Batch, SequenceLength, LearningRate, Seed, Threads, Optimizer }) command.Options.Add(option);
    }

    /// <summary>Adds --seeds to a command that compares configurations.</summary>
    public void AddSeedsTo(Command command) => command.Options.Add(Seeds);

    /// <summary>--seeds as the list of seeds first, first + 1, …; refused below 1, naming the value.</summary>
    public System.Collections.Generic.IReadOnlyList<int> SeedList(ParseResult result, int first) =>
        Cli.Reporting.Statistics.Seeds(first, result.GetValue(Seeds));

    /// <summary>Adds --batch, --threads and --optimizer only, for the study: its steps follow from --epochs, its lengths from the
    /// sweep, and its learning rate and seeds are the study's recipe.</summary>
    public void AddBatchAndThreadsTo(Command command)
    {
        command.Options.Add(Batch);
        command.Options.Add(Threads);
        command.Options.Add(Optimizer);
    }

    // The one spelling of each optimizer on the command line (parsed here; ablate's workers are passed it).
    private static readonly (string Name, Training.OptimizerKind Kind)[] OptimizerNames =
        { ("adamw", Training.OptimizerKind.AdamW), ("muon", Training.OptimizerKind.Muon) };

    /// <summary>How --optimizer spells <paramref name="kind"/>.</summary>
    public static string OptimizerName(Training.OptimizerKind kind) => Array.Find(OptimizerNames, n => n.Kind == kind).Name
        ?? throw new ArgumentOutOfRangeException(nameof(kind), kind, "No command-line name for this optimizer.");

    /// <summary>--optimizer as the runtime's kind; anything but adamw or muon (any case) is refused naming the value, and
    /// so is a list: only <c>ablate</c> compares optimizers (<see cref="OptimizerKinds"/>).</summary>
    public OptimizerKind OptimizerKind(ParseResult result)
    {
        var kinds = OptimizerKinds(result);
        if (kinds.Count > 1)
            throw new ArgumentOutOfRangeException(Optimizer.Name, result.GetValue(Optimizer), $"{Optimizer.Name} takes one optimizer here, not '{result.GetValue(Optimizer)}'.");
        return kinds[0];
    }

    /// <summary>--optimizer as a comma-separated list of distinct kinds ("adamw,muon"), in the order given; an unknown
    /// name, an empty list or a repeated optimizer is refused naming the value.</summary>
    public System.Collections.Generic.IReadOnlyList<OptimizerKind> OptimizerKinds(ParseResult result)
    {
        var given = result.GetValue(Optimizer)!;
        var kinds = new System.Collections.Generic.List<OptimizerKind>();
        foreach (var name in given.Split(',', StringSplitOptions.TrimEntries))
        {
            var kind = Array.FindIndex(OptimizerNames, n => n.Name == name.ToLowerInvariant()) is var index and >= 0
                ? OptimizerNames[index].Kind
                : throw new ArgumentOutOfRangeException(Optimizer.Name, given, $"{Optimizer.Name} must be {string.Join(" or ", Array.ConvertAll(OptimizerNames, n => n.Name))}, not '{name}'.");
            if (kinds.Contains(kind)) throw new ArgumentOutOfRangeException(Optimizer.Name, given, $"{Optimizer.Name} names {name} twice.");
            kinds.Add(kind);
        }
        return kinds;
    }

    /// <summary>The runtime's training settings from the parsed options; warm-up is a tenth of the steps, at most 20.
    /// A value out of range is refused naming its option.</summary>
    public TrainingOptions Bind(ParseResult result, int evalEvery = 0, OptimizerKind? optimizer = null)
    {
        var steps = Positive(result, Steps);
        var rate = result.GetValue(LearningRate);
        if (!(rate > 0) || double.IsInfinity(rate)) throw new ArgumentOutOfRangeException(LearningRate.Name, rate, $"{LearningRate.Name} must be a positive number.");
        var options = new TrainingOptions
        {
            Steps = steps,
            BatchSize = BatchSize(result),
            SequenceLength = Positive(result, SequenceLength),
            LearningRate = rate,
            Seed = result.GetValue(Seed),
            WarmupSteps = Math.Min(20, steps / 10),
            EvalEvery = evalEvery,
            Optimizer = optimizer ?? OptimizerKind(result),
        };
        options.Validate();
        return options;
    }

    /// <summary>--batch, refused unless positive.</summary>
    public int BatchSize(ParseResult result) => Positive(result, Batch);

    /// <summary>Applies --threads (0 leaves torch's default), refused when negative.</summary>
    public void UseThreads(ParseResult result)
    {
        var threads = result.GetValue(Threads);
        if (threads < 0) throw new ArgumentOutOfRangeException(Threads.Name, threads, $"{Threads.Name} must not be negative.");
        if (threads > 0) TorchSharp.torch.set_num_threads(threads);
    }

    private static int Positive(ParseResult result, Option<int> option)
    {
        var value = result.GetValue(option);
        return value > 0 ? value : throw new ArgumentOutOfRangeException(option.Name, value, $"{option.Name} must be positive.");
    }
}
