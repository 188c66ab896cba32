using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using LlmEff.Cli.Reporting;
using LlmEff.Data;
using LlmEff.Training;
using static TorchSharp.torch;

namespace LlmEff.Cli.Commands;

/// <summary>
/// <c>llmeff study</c>: the QKV study's synthetic-task comparison reproduced with our generated encoders:
/// six attention variants × five tasks × seeds, over a sweep of model sizes and sequence lengths.
/// </summary>
internal static class StudyCommand
{
    /// <summary>The study's six variants: our class-name stem and the label in the table.</summary>
    internal static readonly (string Stem, string Label)[] Variants =
    {
        ("Full", "Full"), ("NoQuery", "NoQuery"), ("NoQueryPlus", "NoQuery+"), ("NoKey", "NoKey"), ("Shared", "Shared"), ("SharedPlus", "Shared+"),
    };

    /// <summary>(embedding, layers, heads, length) cells of the full sweep.</summary>
    internal static readonly (int E, int L, int H, int N)[] FullSweep =
        (from e in new[] { 32, 64, 256 } from l in new[] { 2, 4 } from h in new[] { 2, 4 } from n in new[] { 16, 64, 128 } select (e, l, h, n)).ToArray();

    /// <summary>The default sweep: one mid-sized cell at the shortest length (under 30 minutes on 2 cores).</summary>
    internal static readonly (int E, int L, int H, int N)[] ReducedSweep = { (64, 2, 2, 16) };

    public static Command Create()
    {
        var sweep = new Option<string>("--sweep") { Description = "reduced (embedding 64, 2 layers, 2 heads, length 16), full (32/64/256 × 2/4 × 2/4 × 16/64/128), or one cell as E64L2H2N64.", DefaultValueFactory = _ => "reduced" };
        var tasks = new Option<string>("--tasks") { Description = "Comma-separated tasks, or 'all'.", DefaultValueFactory = _ => "all" };
        var variants = new Option<string>("--variants") { Description = "Comma-separated variants (Full, NoQuery, NoQuery+, NoKey, Shared, Shared+), or 'all'.", DefaultValueFactory = _ => "all" };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training sequences.", DefaultValueFactory = _ => 2 };
        var train = new Option<int>("--train") { Description = "Training sequences per task and seed.", DefaultValueFactory = _ => 10_000 };
        var test = new Option<int>("--test") { Description = "Test sequences per task and seed.", DefaultValueFactory = _ => 2_000 };
        var output = new Option<string>("--out") { Description = "Folder for report.md, results.json and accuracy.png.", DefaultValueFactory = _ => "study" };
        // Three seeds by default, as the study has always run; its seeds are 1, 2, … (it has no --seed).
        var training = new TrainingOptionSet(batch: 32, seeds: 3);
        var command = new Command("study", "Reproduce the QKV study's synthetic-task comparison (REVERSE, SORT, SUB, SWAP, COPY) over its six attention variants.")
        {
            sweep, tasks, variants, epochs, train, test, output,
        };
        training.AddBatchAndThreadsTo(command);
        training.AddSeedsTo(command);
        command.SetAction(result => CommandLine.Guard(() =>
        {
            training.UseThreads(result);
            var cells = result.GetValue(sweep)!.ToLowerInvariant() switch
            {
                "reduced" => ReducedSweep,
                "full" => FullSweep,
                var other => FullSweep.Where(c => $"e{c.E}l{c.L}h{c.H}n{c.N}" == other).ToArray() is { Length: 1 } one
                    ? one
                    : throw new ArgumentException($"--sweep: '{other}' is neither 'reduced', 'full' nor a cell of the full sweep such as E64L2H2N64."),
            };
            var chosenTasks = Pick(result.GetValue(tasks)!, Enum.GetValues<SequenceTask>().Select(t => (t.ToString().ToUpperInvariant(), t)).ToArray(), "--tasks");
            var chosenVariants = Pick(result.GetValue(variants)!, Variants.Select(v => (v.Label, v)).ToArray(), "--variants");
            var seeds = training.SeedList(result, first: 1);
            var settings = new Settings(Positive(result.GetValue(epochs), "--epochs"), Positive(result.GetValue(train), "--train"),
                Positive(result.GetValue(test), "--test"), training.BatchSize(result), training.OptimizerKind(result));
            return Run(cells, chosenTasks, chosenVariants, seeds, settings, result.GetValue(output)!);
        }));
        return command;
    }

    internal sealed record Settings(int Epochs, int Train, int Test, int Batch, OptimizerKind Optimizer = OptimizerKind.AdamW);

    private static int Positive(int value, string name) =>
        value > 0 ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");

    private static T[] Pick<T>(string names, (string Name, T Value)[] known, string option)
    {
        if (names.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return known.Select(k => k.Value).ToArray();
        return names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(n => known.FirstOrDefault(k => k.Name.Equals(n, StringComparison.OrdinalIgnoreCase)) is { Name: not null } found
                ? found.Value
                : throw new ArgumentException($"{option}: unknown '{n}'; choose from {string.Join(", ", known.Select(k => k.Name))}."))
            .ToArray();
    }

    /// <summary>Study steps: the study's recipe (Adam, lr 1e-3, short linear warm-up then cosine to 0, clip 5); --optimizer muon puts the hidden matrices on Muon.</summary>
    internal static TrainingOptions Recipe(Settings settings, int length, int seed)
    {
        var steps = Math.Max(1, settings.Epochs * settings.Train / settings.Batch);
        return new TrainingOptions
        {
            Steps = steps, BatchSize = settings.Batch, SequenceLength = length, LearningRate = 1e-3, WarmupSteps = Math.Max(1, steps / 20),
            FinalLearningRateFraction = 0, WeightDecay = 0, Beta1 = 0.9, Beta2 = 0.999, GradientClip = 5, Seed = seed, EvalBatches = 1,
            Optimizer = settings.Optimizer,
        };
    }

    private static int Run((int E, int L, int H, int N)[] cells, SequenceTask[] tasks, (string Stem, string Label)[] variants, IReadOnlyList<int> seeds, Settings settings, string output)
    {
        var catalog = ModelCatalog.In(CommandLine.LoadModels(null)); // listed once: a full sweep looks up 3,240 models
        var total = cells.Length * tasks.Length * variants.Length * seeds.Count;
        var skipped = cells.Any(c => c.N % 2 != 0) ? " (SWAP needs even lengths)" : "";
        Console.WriteLine($"Training {total} encoders: {cells.Length} configuration(s) × {tasks.Length} tasks × {variants.Length} variants × {seeds.Count} seeds{skipped}.");
        var runs = new List<StudyRun>();
        var clock = Stopwatch.StartNew();
        foreach (var (e, l, h, n) in cells)
        foreach (var task in tasks)
        foreach (var seed in seeds)
        {
            var data = new SequenceTaskData(task, n, settings.Train, settings.Test, seed);
            foreach (var (stem, label) in variants)
            {
                var cell = $"E{e}L{l}H{h}N{n}";
                var declared = ModelCatalog.Find(catalog, $"Qkv{stem}_{cell}");
                var started = clock.Elapsed;
                var options = Recipe(settings, n, seed);
                Seeding.Seed(seed);
                using var model = declared.Create();
                var result = Trainer.Train(model, data, options);
                var accuracy = data.TokenAccuracy(model);
                var asymmetry = Asymmetry(model, data, declared.Facts.Layers);
                var seconds = (clock.Elapsed - started).TotalSeconds;
                runs.Add(new StudyRun(cell, task.ToString().ToUpperInvariant(), label, seed, accuracy, asymmetry, result.FinalTrainLoss, seconds));
                var left = clock.Elapsed / runs.Count * (total - runs.Count);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{runs.Count,4}/{total}] {cell} {task.ToString().ToUpperInvariant(),-7} {label,-9} seed {seed}: accuracy {accuracy:0.000}  |S−Sᵀ| {asymmetry:0.0000}  {seconds:F1}s  ETA {left.TotalMinutes:F1} min"));
            }
        }
        var results = new StudyResults(
            DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            new List<KeyValuePair<string, string>>
            {
                new("configurations", string.Join(", ", cells.Select(c => $"embedding {c.E}, {c.L} layers, {c.H} heads, length {c.N}"))),
                new("data", $"{settings.Train:N0} training and {settings.Test:N0} test sequences of uniform symbols 0-9 per task, regenerated per seed"),
                new("training", $"{settings.Epochs} epochs, batch {settings.Batch}, Adam lr 1e-3, linear warm-up over 5% then cosine to 0, gradient clip 5"),
                new("seeds", string.Join(", ", seeds) + "; every variant of a task trains on the same sequences of a seed, so variants are compared pairwise by seed"),
                new("models", "generated encoders (samples/LlmEff.Samples/Study): bidirectional attention, learned positions, LayerNorm, GELU MLP 4·embedding, untied 10-way head"),
                new("wall time", $"{clock.Elapsed.TotalMinutes:F1} min on {Environment.ProcessorCount} CPU threads"),
            },
            variants.Select(v => v.Label).ToList(),
            tasks.Select(t => t.ToString().ToUpperInvariant()).ToList(),
            runs);
        Console.WriteLine();
        Console.Write(StudyReport.Table(results));
        var written = StudyReport.Write(output, results);
        Console.WriteLine($"\nWrote {string.Join(", ", written.Select(Path.GetFileName))} to {Path.GetFullPath(output)}");
        return 0;
    }

    /// <summary>Mean |S − Sᵀ| over every layer and head of the score maps on 64 test sequences.</summary>
    internal static double Asymmetry(nn.Module<Tensor, Tensor> model, SequenceTaskData data, int layers)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = data.TestInputs(64).to(model.parameters().First().device);
        var total = 0.0;
        for (var layer = 0; layer < layers; layer++)
        {
            var scores = ((IAttentionScores)model).AttentionScores(inputs, layer);
            total += (scores - scores.transpose(-2, -1)).abs().mean().item<float>();
        }
        return total / layers;
    }
}
