using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using LlmEff.Cli.Reporting;
using LlmEff.IO;
using LlmEff.Layers;
using LlmEff.Quantization;
using ScottPlot;

namespace LlmEff.Cli.Commands;

/// <summary>
/// <c>llmeff indexer-recall</c>: how many of the fp32 top-k entries a sparse-attention indexer still picks when its
/// queries and keys are FP4, FP8 or BF16 (with and without the Hadamard rotation) or its scores bf16, on synthetic
/// inputs with and without outlier channels, over several seeds with 95% intervals and paired differences
/// (<see cref="IndexerRecall"/> measures one seed). With <c>--model</c> it measures a declared DeepSeek V4-style model's
/// own index queries and keys instead, untrained and after training it on the embedded data, one model per seed.
/// </summary>
internal static class IndexerRecallCommand
{
    /// <summary>The two kinds of input every seed draws: plain Gaussian, and Gaussian with a few large channels.</summary>
    internal static readonly string[] InputKinds = ["Gaussian", "outlier channels"];

    /// <summary>The comparisons printed paired by seed: what one change to the scoring does to the recall.</summary>
    internal static readonly (string Name, IndexerScoring Changed, IndexerScoring Baseline)[] Effects =
    [
        ("Hadamard rotation on FP4", new(IndexerPrecision.Fp4, true, false), new(IndexerPrecision.Fp4, false, false)),
        ("bf16 scores on FP4 + Hadamard", new(IndexerPrecision.Fp4, true, true), new(IndexerPrecision.Fp4, true, false)),
        ("FP8 instead of FP4 (both + Hadamard)", new(IndexerPrecision.Fp8, true, false), new(IndexerPrecision.Fp4, true, false)),
    ];

    /// <summary>The fp32 selection every recall is measured against (recall 1 by definition, so not printed).</summary>
    private static readonly IndexerScoring Reference = new(IndexerPrecision.Fp32, false, false);

    /// <summary>The report's figure for BF16 index scores (REFERENCES §3), printed beside ours.</summary>
    private const string ReportedBf16Recall = "99.7%";

    public static Command Create()
    {
        var seeds = new Option<int>("--seeds") { Description = "Inputs drawn per kind (seeds --seed, --seed+1, …); 2 or more for intervals.", DefaultValueFactory = _ => 10 };
        var seed = new Option<int>("--seed") { Description = "First seed.", DefaultValueFactory = _ => 1 };
        var queries = new Option<int>("--queries") { Description = "Query tokens per draw.", DefaultValueFactory = _ => 32 };
        var entries = new Option<int>("--entries") { Description = "Compressed entries to choose from.", DefaultValueFactory = _ => 4096 };
        var heads = new Option<int>("--heads") { Description = "Indexer heads (DeepSeek-V4-Flash: 64).", DefaultValueFactory = _ => 8 };
        var dim = new Option<int>("--dim") { Description = "Indexer head width (a power of two, at least 128; V4: 128).", DefaultValueFactory = _ => 128 };
        var topK = new Option<int>("--top-k") { Description = "Entries chosen per query (V4-Flash: 512).", DefaultValueFactory = _ => 512 };
        var outliers = new Option<int>("--outliers") { Description = "Channels made large in queries and keys for the outlier inputs.", DefaultValueFactory = _ => 4 };
        var outlierScale = new Option<double>("--outlier-scale") { Description = "How much larger the outlier channels are.", DefaultValueFactory = _ => 30 };
        var output = new Option<string>("--out") { Description = "Folder for results.json, report.md and recall.png.", DefaultValueFactory = _ => "indexer-recall" };
        var model = new Option<string?>("--model") { Description = "Measure this declared model's compressed sparse attention layers (on held-out text, untrained and trained) instead of synthetic inputs." };
        var steps = new Option<int>("--steps") { Description = "With --model: training steps on the embedded data (as ablate trains).", DefaultValueFactory = _ => 300 };
        var batch = new Option<int>("--batch") { Description = "With --model: sequences per training step and per measurement.", DefaultValueFactory = _ => 8 };
        var assembly = CommandLine.Assembly();
        var command = new Command("indexer-recall", "Top-k recall of FP4/FP8/BF16 sparse-attention index scoring against fp32 (DeepSeek V4's indexer), over seeds with 95% intervals.")
        {
            seeds, seed, queries, entries, heads, dim, topK, outliers, outlierScale, output, model, steps, batch, assembly,
        };
        command.SetAction(result => CommandLine.Guard(() =>
        {
            if (result.GetValue(model) is { } modelName)
            {
                var declared = ModelCatalog.Find(CommandLine.LoadModels(result.GetValue(assembly)), modelName);
                var trained = TrainedIndexerRecall.Measure(declared, Statistics.Seeds(result.GetValue(seed), result.GetValue(seeds)),
                    Positive(result, steps), Positive(result, batch));
                Console.Write(Table(trained));
                foreach (var path in Write(result.GetValue(output)!, trained)) Console.WriteLine($"wrote {Path.GetFullPath(path)}");
                return 0;
            }
            var problem = Problem(result.GetValue(queries), result.GetValue(entries), result.GetValue(heads), result.GetValue(dim),
                result.GetValue(topK), result.GetValue(outliers), result.GetValue(outlierScale));
            var seedList = Statistics.Seeds(result.GetValue(seed), result.GetValue(seeds));
            var results = Measure(problem, seedList);
            Console.Write(Table(results));
            foreach (var path in Write(result.GetValue(output)!, results)) Console.WriteLine($"wrote {Path.GetFullPath(path)}");
            return 0;
        }));
        return command;
    }

    private static int Positive(System.CommandLine.ParseResult result, Option<int> option)
    {
        var value = result.GetValue(option);
        return value >= 1 ? value : throw new ArgumentOutOfRangeException(option.Name, value, $"{option.Name} must be at least 1.");
    }

    /// <summary>The outlier-input problem the options describe (seed filled in per draw); each bad value named by its option.</summary>
    internal static IndexerProblem Problem(int queries, int entries, int heads, int dim, int topK, int outliers, double outlierScale)
    {
        if (queries < 1) throw new ArgumentOutOfRangeException("--queries", queries, "--queries must be at least 1.");
        if (entries < 1) throw new ArgumentOutOfRangeException("--entries", entries, "--entries must be at least 1.");
        if (heads < 1) throw new ArgumentOutOfRangeException("--heads", heads, "--heads must be at least 1.");
        // The Hadamard rotation needs a power of two; FP8's scales cover blocks of 128 (V3.2's layout).
        if (dim < 128 || (dim & (dim - 1)) != 0)
            throw new ArgumentOutOfRangeException("--dim", dim, $"--dim {dim} must be a power of two of at least 128: the Hadamard rotation needs a power of two and FP8 scales blocks of 128.");
        if (topK < 1 || topK > entries) throw new ArgumentOutOfRangeException("--top-k", topK, $"--top-k {topK} must lie between 1 and the {entries} entries.");
        if (outliers < 1 || outliers > dim) throw new ArgumentOutOfRangeException("--outliers", outliers, $"--outliers {outliers} must lie between 1 and --dim ({dim}); the Gaussian inputs are the ones without.");
        if (!double.IsFinite(outlierScale) || outlierScale <= 1)
            throw new ArgumentOutOfRangeException("--outlier-scale", outlierScale, $"--outlier-scale {outlierScale.ToString(CultureInfo.InvariantCulture)} must be a finite factor above 1.");
        return new IndexerProblem(queries, entries, heads, dim, topK, outliers, outlierScale, Seed: 0);
    }

    /// <summary>Every seed's recall per input kind and scoring.</summary>
    internal static RecallResults Measure(IndexerProblem problem, IReadOnlyList<int> seeds)
    {
        var runs = new List<RecallRun>();
        foreach (var seed in seeds)
        {
            for (var kind = 0; kind < InputKinds.Length; kind++)
            {
                var drawn = problem with { Seed = seed, OutlierChannels = kind == 0 ? 0 : problem.OutlierChannels };
                foreach (var (scoring, recall) in IndexerRecall.Measure(drawn, IndexerRecall.StandardScorings.Where(s => s != Reference)))
                    runs.Add(new RecallRun(InputKinds[kind], scoring.ToString(), seed, recall));
            }
        }
        return new RecallResults(Now(), InputKinds, seeds, runs) { Problem = problem with { Seed = seeds[0] } };
    }

    internal static string Now() => DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>Mean ± 95% interval of one scoring's recall on one input kind.</summary>
    internal static Interval RecallOf(RecallResults results, string input, string scoring) =>
        Statistics.IntervalOf(results.Runs.Where(r => r.Input == input && r.Scoring == scoring).Select(r => r.Recall).ToList());

    /// <summary>One effect's difference (changed − baseline), paired by seed: both scorings saw the same inputs.</summary>
    internal static PairedDifference EffectOf(RecallResults results, string input, IndexerScoring changed, IndexerScoring baseline)
    {
        Dictionary<int, double> BySeed(IndexerScoring scoring) =>
            results.Runs.Where(r => r.Input == input && r.Scoring == scoring.ToString()).ToDictionary(r => r.Seed, r => r.Recall);
        return Statistics.Paired(BySeed(changed), BySeed(baseline));
    }

    private static IEnumerable<string> Scorings(RecallResults results) => results.Runs.Select(r => r.Scoring).Distinct();

    /// <summary>The terminal table: recall per scoring and input kind, then the paired effects.</summary>
    internal static string Table(RecallResults results)
    {
        var text = new StringBuilder();
        if (results.Problem is { } p)
            text.Append(CultureInfo.InvariantCulture, $"Top-{p.TopK} of {p.Entries:N0} entries, {p.Queries} queries × {p.Heads} heads of width {p.Dim}; ")
                .Append(CultureInfo.InvariantCulture, $"outlier inputs: {p.OutlierChannels} of {p.Dim} channels {p.OutlierScale.ToString(CultureInfo.InvariantCulture)}× larger in queries and keys.\n");
        if (results.Model is { } m)
            text.Append(CultureInfo.InvariantCulture, $"{m.Model}: top-{m.TopK} of the compressed entries each query sees, in its {m.Layers} compressed sparse attention layer(s), ")
                .Append(CultureInfo.InvariantCulture, $"{m.Sequences} held-out sequences of {m.Tokens} tokens; only queries seeing more than {m.TopK} entries count ({m.Queries:N0} per model); trained {m.Steps} steps, seed by seed.\n");
        text.Append("Recall |top-k ∩ top-k_fp32| / k against fp32 q, k and scores:\n\n");
        var inputs = results.Inputs;
        var rows = Scorings(results).Select(s => new[] { s }.Concat(inputs.Select(i => RecallOf(results, i, s).Format(Statistics.Fixed(4)))).ToArray()).ToList();
        text.Append(TextTable.Render(new[] { "scoring" }.Concat(inputs).ToArray(), rows));
        text.Append(CultureInfo.InvariantCulture, $"{SeedsLine(results)}\n\nPaired by seed (both scorings on the same inputs), changed − baseline:\n\n");
        var effects = Effects.Select(e => new[] { e.Name }.Concat(inputs.Select(i => EffectOf(results, i, e.Changed, e.Baseline).Format(Statistics.Fixed(4)))).ToArray()).ToList();
        text.Append(TextTable.Render(new[] { "effect" }.Concat(inputs).ToArray(), effects));
        text.Append(CultureInfo.InvariantCulture, $"\nFor reference, not comparable: DeepSeek's V3.2/V4 report gives {ReportedBf16Recall} recall with BF16 index scores on its own model and data.\n");
        return text.ToString();
    }

    private static string SeedsLine(RecallResults results) => results.Seeds.Count > 1
        ? $"{results.Seeds.Count} seeds ({results.Seeds[0]}–{results.Seeds[^1]}), {(results.Model is null ? "a fresh draw of inputs" : "a model trained from its own start")} each: mean ± 95% interval (Student t)."
        : $"Seed {results.Seeds[0]}: {Statistics.NoInterval}.";

    /// <summary>Writes results.json, report.md and recall.png into <paramref name="folder"/>; returns the paths.</summary>
    internal static IReadOnlyList<string> Write(string folder, RecallResults results)
    {
        Directory.CreateDirectory(folder);
        var json = Path.Combine(folder, "results.json");
        AtomicFile.WriteAllText(json, JsonSerializer.Serialize(results, ReportJson.Options) + "\n");
        var markdown = Path.Combine(folder, "report.md");
        AtomicFile.WriteAllText(markdown, $"# Indexer recall\n\nRun {results.Date}.\n\n```\n{Table(results)}```\n\n![Recall by scoring](recall.png)\n");
        var chart = Path.Combine(folder, "recall.png");
        AtomicFile.WriteAllBytes(chart, Chart(results));
        return new[] { json, markdown, chart };
    }

    /// <summary>Grouped bars: scorings along x, one bar per input kind, whiskers over the 95% interval.</summary>
    private static byte[] Chart(RecallResults results)
    {
        using var plot = ReportPlots.NewPlot();
        var scorings = Scorings(results).ToList();
        var palette = new ScottPlot.Palettes.Category10();
        var inputs = results.Inputs;
        var groupWidth = inputs.Count + 1.0;
        var lowest = 1.0;
        for (var kind = 0; kind < inputs.Count; kind++)
        {
            var bars = scorings.Select((scoring, s) =>
            {
                var recall = RecallOf(results, inputs[kind], scoring);
                lowest = Math.Min(lowest, recall.Low);
                return new Bar { Position = s * groupWidth + kind, Value = recall.Mean, Error = recall.HalfWidth ?? 0, FillColor = palette.GetColor(kind) };
            }).ToList();
            plot.Add.Bars(bars);
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = inputs[kind], FillColor = palette.GetColor(kind) });
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            scorings.Select((scoring, s) => new Tick(s * groupWidth + (inputs.Count - 1) / 2.0, scoring.Replace(", ", ",\n", StringComparison.Ordinal))).ToArray());
        // Recalls sit between about 0.85 and 1: a zero-based axis would hide every difference worth reading.
        plot.Axes.SetLimitsY(Math.Max(0, Math.Floor((lowest - 0.02) * 20) / 20), 1.01);
        plot.Title($"Top-{results.Problem?.TopK ?? results.Model!.TopK} recall against fp32 selection (mean ± 95% interval over {results.Seeds.Count} seeds)");
        plot.YLabel("|top-k ∩ top-k_fp32| / k");
        plot.Legend.Orientation = Orientation.Horizontal;
        plot.ShowLegend(Alignment.LowerLeft);
        return plot.GetImageBytes(Math.Max(1000, 170 * scorings.Count), 600, ImageFormat.Png);
    }
}

/// <summary>One scoring's recall on one draw of inputs.</summary>
internal sealed record RecallRun(string Input, string Scoring, int Seed, double Recall);

/// <summary>What <c>indexer-recall</c> writes to results.json: when, the input kinds, the seeds, every run, and the
/// synthetic sizes (<see cref="Problem"/>) or the model measured (<see cref="Model"/>).</summary>
internal sealed record RecallResults(string Date, IReadOnlyList<string> Inputs, IReadOnlyList<int> Seeds, IReadOnlyList<RecallRun> Runs)
{
    /// <summary>The synthetic problem (seed of the first draw), or null for a model.</summary>
    public IndexerProblem? Problem { get; init; }

    /// <summary>The model measured, or null for synthetic inputs.</summary>
    public ModelRecallProbe? Model { get; init; }
}

/// <summary>What a model measurement covered.</summary>
/// <param name="Layers">Its compressed sparse attention layers.</param>
/// <param name="Queries">Queries per model that see more than TopK entries, over all those layers (the ones counted).</param>
internal sealed record ModelRecallProbe(string Model, int Layers, int TopK, int Sequences, int Tokens, int Steps, long Queries);
