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

    /// <summary>The cell the authors' recipe is declared for (its models are Qkv{Variant}_{cell}_TorchInit).</summary>
    internal const string AuthorsCell = "E64L2H2N16";

    /// <summary>The default sweep of --pos-std: position tables starting N(0, s²) from the authors' N(0, 1) down to
    /// GPT-2's scale, where the result turns at this cell (README, "Reproducing the QKV study").</summary>
    internal static readonly double[] PositionStdSweep = { 1, 0.3, 0.1, 0.02 };

    public static Command Create()
    {
        var sweep = new Option<string>("--sweep") { Description = "reduced (embedding 64, 2 layers, 2 heads, length 16), full (32/64/256 × 2/4 × 2/4 × 16/64/128), or one cell as E64L2H2N64.", DefaultValueFactory = _ => "reduced" };
        var tasks = new Option<string>("--tasks") { Description = "Comma-separated tasks (REVERSE, SORT, SUB, SWAP, COPY), or 'all'. The default holds every task a claim of the paper names.", DefaultValueFactory = _ => "REVERSE,SWAP,SUB,COPY" };
        var variants = new Option<string>("--variants") { Description = "Comma-separated variants (Full, NoQuery, NoQuery+, NoKey, Shared, Shared+), or 'all'.", DefaultValueFactory = _ => "all" };
        var recipe = new Option<string>("--recipe") { Description = "ours (GPT-2's initialisation, batch --batch, seeds 1…N), authors (their code's PyTorch defaults, batch 128, epoch-aligned batches, seeds 0…N−1; cell E64L2H2N16 only), both, or auto (both on E64L2H2N16, else ours).", DefaultValueFactory = _ => "auto" };
        var positionStd = new Option<string>("--pos-std") { Description = "Ablation: start the learned position table N(0, s²) for each s of a comma-separated list ('sweep': 1,0.3,0.1,0.02) in each recipe, instead of the recipe's own start.", DefaultValueFactory = _ => "" };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training sequences.", DefaultValueFactory = _ => 2 };
        var train = new Option<int>("--train") { Description = "Training sequences per task and seed.", DefaultValueFactory = _ => 10_000 };
        var test = new Option<int>("--test") { Description = "Test sequences per task and seed.", DefaultValueFactory = _ => 2_000 };
        var output = new Option<string>("--out") { Description = "Folder for report.md, results.json and accuracy.png.", DefaultValueFactory = _ => "study" };
        var merge = new Option<string>("--merge") { Description = "Train nothing: merge the results.json of these comma-separated folders (parts of one study run as separate processes) into one report in --out.", DefaultValueFactory = _ => "" };
        // Three seeds by default, as the study has always run (it has no --seed: each recipe numbers its own).
        var training = new TrainingOptionSet(batch: 32, seeds: 3);
        var command = new Command("study", "Reproduce the QKV study's synthetic-task comparison (REVERSE, SORT, SUB, SWAP, COPY) over its six attention variants, under its authors' recipe and ours.")
        {
            sweep, tasks, variants, recipe, positionStd, epochs, train, test, output, merge,
        };
        training.AddBatchAndThreadsTo(command);
        training.AddSeedsTo(command);
        command.SetAction(result => CommandLine.Guard(() =>
        {
            training.UseThreads(result);
            if (result.GetValue(merge) is { Length: > 0 } parts) return Merge(parts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), result.GetValue(output)!);
            var sweepName = result.GetValue(sweep)!.ToLowerInvariant();
            var cells = sweepName switch
            {
                "reduced" => ReducedSweep,
                "full" => FullSweep,
                var other => FullSweep.Where(c => $"e{c.E}l{c.L}h{c.H}n{c.N}" == other).ToArray() is { Length: 1 } one
                    ? one
                    : throw new ArgumentException($"--sweep: '{other}' is neither 'reduced', 'full' nor a cell of the full sweep such as E64L2H2N64."),
            };
            var chosenTasks = Pick(result.GetValue(tasks)!, Enum.GetValues<SequenceTask>().Select(t => (t.ToString().ToUpperInvariant(), t)).ToArray(), "--tasks");
            var chosenVariants = Pick(result.GetValue(variants)!, Variants.Select(v => (v.Label, v)).ToArray(), "--variants");
            var seedCount = training.SeedList(result, first: 1).Count;
            var settings = new Settings(Positive(result.GetValue(epochs), "--epochs"), Positive(result.GetValue(train), "--train"),
                Positive(result.GetValue(test), "--test"), training.BatchSize(result), training.OptimizerKind(result));
            var recipes = Recipes(result.GetValue(recipe)!, cells, settings, seedCount, PositionStds(result.GetValue(positionStd)!));
            return Run(cells, chosenTasks, chosenVariants, recipes, settings, result.GetValue(output)!);
        }));
        return command;
    }

    internal sealed record Settings(int Epochs, int Train, int Test, int Batch, OptimizerKind Optimizer = OptimizerKind.AdamW);

    /// <summary>How one set of models is started and trained.</summary>
    /// <param name="Name">"ours" or "authors".</param>
    /// <param name="ModelSuffix">Appended to the class name: the authors' models are declared with InitScheme.PyTorchDefault.</param>
    /// <param name="Batch">Sequences per step.</param>
    /// <param name="Seeds">Seeds of data, batches and weights.</param>
    /// <param name="EpochBatches">Batches end with their epoch (the authors' <c>perm[i:i + batch]</c>).</param>
    /// <param name="PositionStd">Ablation: the position table starts N(0, s²) instead of the scheme's own start.</param>
    internal sealed record Recipe(string Name, string ModelSuffix, int Batch, IReadOnlyList<int> Seeds, bool EpochBatches, double? PositionStd = null)
    {
        /// <summary>The label tables and results.json carry.</summary>
        public string Label => PositionStd is { } std ? string.Create(CultureInfo.InvariantCulture, $"{Name}, positions N(0, {std}²)") : Name;

        /// <summary>What the recipe is, for the report's settings.</summary>
        public string Describe(Settings settings) => Name == "authors"
            ? $"the authors' code: PyTorch's default initialisation (InitScheme.PyTorchDefault), batch {Batch} with the last batch of each epoch shorter, seeds {string.Join(", ", Seeds)}"
            : $"ours: GPT-2's initialisation (N(0, 0.02²) weights, positions N(0, 0.01²), no biases), batch {Batch}, batches running on across epochs, seeds {string.Join(", ", Seeds)}";
    }

    /// <summary>The recipes to run: --recipe, expanded by the --pos-std ablation. The authors' recipe needs its
    /// declared models, which exist for <see cref="AuthorsCell"/> only.</summary>
    internal static IReadOnlyList<Recipe> Recipes(string name, (int E, int L, int H, int N)[] cells, Settings settings, int seeds, IReadOnlyList<double> positionStds)
    {
        var onlyAuthorsCell = cells.All(c => $"E{c.E}L{c.L}H{c.H}N{c.N}" == AuthorsCell);
        var names = name.Trim().ToLowerInvariant() switch
        {
            "auto" => onlyAuthorsCell ? new[] { "authors", "ours" } : new[] { "ours" },
            "both" => new[] { "authors", "ours" },
            "ours" => new[] { "ours" },
            "authors" => new[] { "authors" },
            var other => throw new ArgumentException($"--recipe: '{other}' is none of ours, authors, both, auto."),
        };
        if (names.Contains("authors") && !onlyAuthorsCell)
            throw new ArgumentException($"--recipe: the authors' recipe is declared for the cell {AuthorsCell} only (Qkv{{Variant}}_{AuthorsCell}_TorchInit); use --recipe ours for other cells.");
        var recipes = names.Select(n => n == "authors"
            ? new Recipe("authors", "_TorchInit", 128, Statistics.Seeds(0, seeds), EpochBatches: true)
            : new Recipe("ours", "", settings.Batch, Statistics.Seeds(1, seeds), EpochBatches: false)).ToList();
        return positionStds.Count == 0 ? recipes : recipes.SelectMany(r => positionStds.Select(std => r with { PositionStd = std })).ToList();
    }

    /// <summary>--pos-std: empty (no ablation), 'sweep', or positive numbers separated by commas.</summary>
    internal static IReadOnlyList<double> PositionStds(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return Array.Empty<double>();
        if (text.Trim().Equals("sweep", StringComparison.OrdinalIgnoreCase)) return PositionStdSweep;
        return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(part => double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0 && double.IsFinite(value)
                ? value
                : throw new ArgumentException($"--pos-std: '{part}' is not a positive number (or use 'sweep')."))
            .ToList();
    }

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

    /// <summary>One variant's data: built afresh from the seed for every variant, so every variant of a seed trains
    /// on the same sequences in the same batches in the same order (runs pair by seed).</summary>
    internal static SequenceTaskData Data(SequenceTask task, int length, Settings settings, Recipe recipe, int seed) =>
        new(task, length, settings.Train, settings.Test, seed, recipe.EpochBatches);

    /// <summary>Study steps: the study's recipe (Adam, lr 1e-3, 5% linear warm-up then cosine to 0, clip 5) for
    /// <see cref="Settings.Epochs"/> passes: the authors' code takes ⌈train/batch⌉ steps an epoch (its last batch
    /// shorter), ours ⌊train/batch⌋ full ones. --optimizer muon puts the hidden matrices on Muon.</summary>
    internal static TrainingOptions TrainingFor(Settings settings, Recipe recipe, SequenceTaskData data, int seed)
    {
        var steps = Math.Max(1, settings.Epochs * data.BatchesPerEpoch(recipe.Batch));
        return new TrainingOptions
        {
            Steps = steps, BatchSize = recipe.Batch, SequenceLength = data.Length, LearningRate = 1e-3, WarmupSteps = Math.Max(1, steps / 20),
            FinalLearningRateFraction = 0, WeightDecay = 0, Beta1 = 0.9, Beta2 = 0.999, GradientClip = 5, Seed = seed, EvalBatches = 1,
            Optimizer = settings.Optimizer,
        };
    }

    /// <summary>The ablation's start: the learned position table N(0, std²) (the study's models name it embed_positions).</summary>
    internal static void StartPositions(nn.Module<Tensor, Tensor> model, double std)
    {
        var (_, table) = model.named_parameters().FirstOrDefault(p => p.name.EndsWith(".embed_positions.weight", StringComparison.Ordinal));
        if (table is null) throw new ArgumentException("--pos-std: the model has no learned position table (embed_positions).");
        LlmEff.Layers.Init.Normal(table, std);
    }

    private static int Run((int E, int L, int H, int N)[] cells, SequenceTask[] tasks, (string Stem, string Label)[] variants, IReadOnlyList<Recipe> recipes, Settings settings, string output)
    {
        var catalog = ModelCatalog.In(CommandLine.LoadModels(null)); // listed once: a full sweep looks up 3,240 models
        var total = recipes.Sum(r => r.Seeds.Count) * cells.Length * tasks.Length * variants.Length;
        var skipped = cells.Any(c => c.N % 2 != 0) ? " (SWAP needs even lengths)" : "";
        Console.WriteLine($"Training {total} encoders: {recipes.Count} recipe(s) ({string.Join("; ", recipes.Select(r => r.Label))}) × {cells.Length} configuration(s) × {tasks.Length} tasks × {variants.Length} variants × {recipes[0].Seeds.Count} seeds{skipped}.");
        var runs = new List<StudyRun>();
        var clock = Stopwatch.StartNew();
        foreach (var recipe in recipes)
        foreach (var (e, l, h, n) in cells)
        foreach (var task in tasks)
        foreach (var seed in recipe.Seeds)
        foreach (var (stem, label) in variants)
        {
            var cell = $"E{e}L{l}H{h}N{n}";
            var declared = ModelCatalog.Find(catalog, $"Qkv{stem}_{cell}{recipe.ModelSuffix}");
            var started = clock.Elapsed;
            var data = Data(task, n, settings, recipe, seed);
            var options = TrainingFor(settings, recipe, data, seed);
            Seeding.Seed(seed);
            using var model = declared.Create();
            if (recipe.PositionStd is { } std) StartPositions(model, std);
            var result = Trainer.Train(model, data, options);
            var accuracy = data.TokenAccuracy(model);
            var asymmetry = Asymmetry(model, data, declared.Facts.Layers);
            var seconds = (clock.Elapsed - started).TotalSeconds;
            runs.Add(new StudyRun(cell, task.ToString().ToUpperInvariant(), label, seed, accuracy, asymmetry, result.FinalTrainLoss, seconds, recipe.Label));
            var left = clock.Elapsed / runs.Count * (total - runs.Count);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{runs.Count,4}/{total}] {recipe.Label,-8} {cell} {task.ToString().ToUpperInvariant(),-7} {label,-9} seed {seed}: accuracy {accuracy:0.000}  |S−Sᵀ| {asymmetry:0.0000}  {options.Steps} steps  {seconds:F1}s  ETA {left.TotalMinutes:F1} min"));
        }
        var results = new StudyResults(
            DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            new List<KeyValuePair<string, string>>
            {
                new("configurations", string.Join(", ", cells.Select(c => $"embedding {c.E}, {c.L} layers, {c.H} heads, length {c.N}"))),
                new("data", $"{settings.Train:N0} training and {settings.Test:N0} test sequences of uniform symbols 0-9 per task, regenerated per seed"),
                new("training", $"{settings.Epochs} epochs, Adam lr 1e-3, linear warm-up over 5% then cosine to 0, gradient clip 5"),
                new("recipes", string.Join("; ", recipes.Where(r => r.PositionStd is null || r == recipes.First(o => o.Name == r.Name)).Select(r => r.Describe(settings)))),
                new("position ablation", recipes.Any(r => r.PositionStd is not null)
                    ? "the learned position table starts N(0, s²) for s = " + string.Join(", ", recipes.Select(r => r.PositionStd).Distinct().Select(s => s!.Value.ToString(CultureInfo.InvariantCulture)))
                    : "none (--pos-std)"),
                new("pairing", "every variant of a seed trains on the same sequences in the same batches in the same order, so variants are compared pairwise by seed"),
                new("models", "generated encoders (samples/LlmEff.Samples/Study): bidirectional attention, learned positions, LayerNorm, GELU MLP 4·embedding, untied 10-way head"),
                new("wall time", $"{clock.Elapsed.TotalMinutes:F1} min, {TorchSharp.torch.get_num_threads()} torch thread(s) on a {Environment.ProcessorCount}-core machine"),
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

    /// <summary>--merge: one report from the results.json of several folders (runs, variants and tasks in the order the
    /// folders give them; settings of the first, with each part's wall time).</summary>
    private static int Merge(IReadOnlyList<string> folders, string output)
    {
        var parts = folders.Select(folder => Path.Combine(folder, "results.json")).Select(path => File.Exists(path)
            ? System.Text.Json.JsonSerializer.Deserialize<StudyResults>(File.ReadAllText(path), ReportJson.Options)
              ?? throw new ArgumentException($"--merge: {path} holds no study results.")
            : throw new ArgumentException($"--merge: no results.json in '{Path.GetDirectoryName(path)}'.")).ToList();
        var merged = StudyReport.Merge(parts);
        Console.Write(StudyReport.Table(merged));
        var written = StudyReport.Write(output, merged);
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
