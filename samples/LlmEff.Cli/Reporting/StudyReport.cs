using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using LlmEff.IO;
using ScottPlot;

namespace LlmEff.Cli.Reporting;

/// <summary>One trained model of the synthetic-task sweep.</summary>
/// <param name="Cell">Sweep cell, e.g. "E64L2H2N16" (embedding, layers, heads, length).</param>
/// <param name="Task">Task name (REVERSE, SORT, SUB, SWAP, COPY).</param>
/// <param name="Variant">Attention variant (Full, NoQuery, NoQuery+, NoKey, Shared, Shared+).</param>
/// <param name="Seed">Seed of data and weights.</param>
/// <param name="Accuracy">Token accuracy on the test set (0..1).</param>
/// <param name="Asymmetry">Mean |S − Sᵀ| of the pre-softmax score maps over every layer and head, on test inputs.</param>
/// <param name="FinalTrainLoss">Mean training loss of the last tenth of the steps.</param>
/// <param name="Seconds">Wall-clock seconds of training and evaluation.</param>
/// <param name="Recipe">How the model was started and trained ("ours", "authors", with any position ablation).</param>
public sealed record StudyRun(string Cell, string Task, string Variant, int Seed, double Accuracy, double Asymmetry, double FinalTrainLoss, double Seconds, string Recipe = "ours")
{
    /// <summary>Cell and recipe: the runs one table compares ("E64L2H2N16, authors").</summary>
    public string Group => $"{Cell}, {Recipe}";
}

/// <summary>The sweep's results and settings.</summary>
public sealed record StudyResults(string Date, IReadOnlyList<KeyValuePair<string, string>> Settings, IReadOnlyList<string> Variants, IReadOnlyList<string> Tasks, IReadOnlyList<StudyRun> Runs)
{
    /// <summary>Cell-and-recipe groups in the order they ran.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public IReadOnlyList<string> Groups => Runs.Select(r => r.Group).Distinct().ToList();

    /// <summary>The study's claims checked per group (written to results.json as "claims").</summary>
    public IReadOnlyList<StudyClaim> Claims => StudyClaims.Check(this);

    /// <summary>Per cell (and recipe), task and variant: accuracy over seeds ± 95% interval and the difference from the first variant
    /// (the baseline) paired by seed (written to results.json as "summary").</summary>
    public IReadOnlyList<StudySummary> Summary =>
        Groups.SelectMany(cell => Tasks.SelectMany(task => Variants.Select(variant =>
            StudyReport.Accuracy(this, variant, task, cell) is { } accuracy
                ? new StudySummary(cell, task, variant, accuracy, StudyReport.VersusBaseline(this, variant, task, cell))
                : null))).OfType<StudySummary>().ToList();
}

/// <summary>One variant on one task in one cell, over its seeds.</summary>
/// <param name="Cell">Sweep cell and recipe (a run's <see cref="StudyRun.Group"/>).</param>
/// <param name="Task">Task name.</param>
/// <param name="Variant">Attention variant.</param>
/// <param name="Accuracy">Test token accuracy: mean ± 95% interval over seeds.</param>
/// <param name="VersusBaseline">Accuracy minus the baseline variant's, paired by seed; null for the baseline itself.</param>
public sealed record StudySummary(string Cell, string Task, string Variant, Interval Accuracy, PairedDifference? VersusBaseline);

/// <summary>Writes the study's table, results.json, report.md and a bar chart.</summary>
public static class StudyReport
{
    /// <summary>Accuracy of a variant on a task over its seeds, mean ± 95% interval (in one group of cell and recipe,
    /// or pooled over all); null when it did not run.</summary>
    public static Interval? Accuracy(StudyResults results, string variant, string task, string? group = null)
    {
        var values = results.Runs.Where(r => r.Variant == variant && r.Task == task && (group is null || r.Group == group)).Select(r => r.Accuracy).ToList();
        return values.Count == 0 ? null : Statistics.IntervalOf(values);
    }

    /// <summary>Accuracy of a variant minus the baseline's (the first variant) on a task in one group, paired by seed;
    /// null for the baseline itself or when either did not run.</summary>
    public static PairedDifference? VersusBaseline(StudyResults results, string variant, string task, string group)
    {
        var baseline = results.Variants[0];
        if (variant == baseline) return null;
        Dictionary<int, double> BySeed(string v) => results.Runs.Where(r => r.Variant == v && r.Task == task && r.Group == group).ToDictionary(r => r.Seed, r => r.Accuracy);
        var (values, reference) = (BySeed(variant), BySeed(baseline));
        return values.Keys.Any(reference.ContainsKey) ? Statistics.Paired(values, reference) : null;
    }

    /// <summary>Mean |S − Sᵀ| of a variant over all its runs (of one group when given).</summary>
    public static double Asymmetry(StudyResults results, string variant, string? group = null) =>
        results.Runs.Where(r => r.Variant == variant && (group is null || r.Group == group)).Select(r => r.Asymmetry).DefaultIfEmpty(double.NaN).Average();

    /// <summary>The variant × task tables in plain text, per cell: mean accuracy ± 95% interval over seeds with the
    /// symmetry check, then each variant's difference from the baseline paired by seed with its mark.</summary>
    public static string Table(StudyResults results)
    {
        var text = new StringBuilder();
        foreach (var cell in results.Groups)
        {
            text.Append(cell).Append('\n');
            var header = new[] { "variant" }.Concat(results.Tasks).Append("mean |S−Sᵀ|").ToArray();
            var rows = results.Variants.Select(v => new[] { v }
                .Concat(results.Tasks.Select(t => Format(Accuracy(results, v, t, cell))))
                .Append(Asymmetry(results, v, cell).ToString("0.0000", CultureInfo.InvariantCulture)).ToArray()).ToList();
            Aligned(text, header, rows);
            if (results.Variants.Count > 1)
            {
                text.Append($"\nAccuracy minus {results.Variants[0]}'s, paired by seed:\n");
                Aligned(text, new[] { "variant" }.Concat(results.Tasks).ToArray(), results.Variants.Skip(1).Select(v => new[] { v }
                    .Concat(results.Tasks.Select(t => VersusBaseline(results, v, t, cell)?.Format(Statistics.Fixed(3)) ?? ReportFormat.Missing)).ToArray()).ToList());
            }
            text.Append('\n');
        }
        text.Append(IntervalNote(results)).Append('\n');
        text.Append('\n').Append(ClaimsTable(results));
        return text.ToString();
    }

    /// <summary>The claims × groups table (each group a column: recipes side by side), then the evidence.</summary>
    public static string ClaimsTable(StudyResults results)
    {
        var text = new StringBuilder("The study's claims, checked (≈: paired interval within ±")
            .Append(StudyClaims.EquivalenceMargin.ToString(CultureInfo.InvariantCulture)).Append("; easy: accuracy ≥ ")
            .Append(StudyClaims.EasyAccuracy.ToString(CultureInfo.InvariantCulture)).Append("):\n");
        var claims = results.Claims;
        var groups = results.Groups;
        Aligned(text, new[] { "claim" }.Concat(groups).ToArray(), StudyClaims.Names.Select(name => new[] { name }
            .Concat(groups.Select(g => StudyClaims.Words(claims.First(c => c.Group == g && c.Claim == name).Verdict))).ToArray()).ToList());
        text.Append('\n');
        foreach (var claim in claims.Where(c => c.Verdict != ClaimVerdict.NotTested))
            text.Append($"  {claim.Group} · {claim.Claim}: {claim.Evidence}\n");
        return text.ToString();
    }

    private static void Aligned(StringBuilder text, string[] header, List<string[]> rows) => text.Append(TextTable.Render(header, rows));

    /// <summary>What the numbers are: seeds, interval, and the meaning of the marks.</summary>
    private static string IntervalNote(StudyResults results)
    {
        // Recipes number their seeds apart (the authors' 0, 1, 2; ours 1, 2, 3): count them per group.
        var seeds = results.Runs.GroupBy(r => r.Group).Select(g => g.Select(r => r.Seed).Distinct().Count()).DefaultIfEmpty(0).Max();
        return seeds < 2
            ? $"{Statistics.NoInterval}: accuracies are single runs (use --seeds 2 or more for intervals and resolved/not resolved marks)."
            : string.Create(CultureInfo.InvariantCulture, $"{seeds} seeds: mean ± 95% interval (Student t); differences pair runs of the same seed, \"not resolved\" where the interval contains 0.");
    }

    /// <summary>Several parts of one study (run as separate processes) as one: runs, variants and tasks in order of
    /// the parts, the settings of the first with every part's wall time, the date of the last.</summary>
    public static StudyResults Merge(IReadOnlyList<StudyResults> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) throw new ArgumentException("Nothing to merge.", nameof(parts));
        var twice = parts.SelectMany(p => p.Runs).GroupBy(r => (r.Group, r.Task, r.Variant, r.Seed)).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null)
            throw new ArgumentException($"--merge: {twice.Key.Group} {twice.Key.Task} {twice.Key.Variant} seed {twice.Key.Seed} ran in more than one part; merge parts that ran different recipes, cells or tasks.");
        var settings = parts[0].Settings.Where(s => s.Key is not "wall time" and not "recipes")
            .Append(new("recipes", string.Join("; ", parts.SelectMany(p => p.Settings.Where(s => s.Key == "recipes").Select(s => s.Value)).Distinct())))
            .Append(new("wall time", "parts run side by side: " + string.Join(", ", parts.Select(p => p.Settings.FirstOrDefault(s => s.Key == "wall time").Value ?? "?"))))
            .ToList();
        return new StudyResults(parts[^1].Date, settings,
            parts.SelectMany(p => p.Variants).Distinct().ToList(), parts.SelectMany(p => p.Tasks).Distinct().ToList(), parts.SelectMany(p => p.Runs).ToList());
    }

    /// <summary>Writes results.json, report.md and accuracy.png into <paramref name="folder"/>; returns the paths.</summary>
    public static IReadOnlyList<string> Write(string folder, StudyResults results)
    {
        Directory.CreateDirectory(folder);
        var json = Path.Combine(folder, "results.json");
        AtomicFile.WriteAllText(json, JsonSerializer.Serialize(results, ReportJson.Options) + "\n");
        var chart = Path.Combine(folder, "accuracy.png");
        AtomicFile.WriteAllBytes(chart, Chart(results));
        var markdown = Path.Combine(folder, "report.md");
        AtomicFile.WriteAllText(markdown, Markdown(results));
        return new[] { json, chart, markdown };
    }

    /// <summary>The Markdown report.</summary>
    public static string Markdown(StudyResults results)
    {
        var text = new StringBuilder();
        text.Append("# QKV variants on synthetic sequence tasks\n\n").Append($"Run {results.Date}.\n\n");
        foreach (var (key, value) in results.Settings) text.Append($"- **{key}**: {value}\n");
        text.Append("\nMean token accuracy on the test set ± 95% interval over seeds (Student t), then each variant's accuracy minus ")
            .Append($"{results.Variants[0]}'s, paired by seed: \"not resolved\" where that interval contains 0. ")
            .Append(IntervalNote(results)).Append(" The symmetry check is the mean |S − Sᵀ| of the pre-softmax score maps (0 means symmetric).\n\n");
        foreach (var cell in results.Groups)
        {
            text.Append($"## {cell}\n\n| variant | ").Append(string.Join(" | ", results.Tasks)).Append(" |\n|---|")
                .Append(string.Concat(results.Tasks.Select(_ => "---:|"))).Append('\n');
            foreach (var variant in results.Variants)
                text.Append($"| {variant} | ").Append(string.Join(" | ", results.Tasks.Select(t => Format(Accuracy(results, variant, t, cell))))).Append(" |\n");
            text.Append('\n');
            if (results.Variants.Count < 2) continue;
            text.Append($"Accuracy minus {results.Variants[0]}'s, paired by seed:\n\n| variant | ").Append(string.Join(" | ", results.Tasks)).Append(" |\n|---|")
                .Append(string.Concat(results.Tasks.Select(_ => "---:|"))).Append('\n');
            foreach (var variant in results.Variants.Skip(1))
                text.Append($"| {variant} | ").Append(string.Join(" | ", results.Tasks.Select(t => VersusBaseline(results, variant, t, cell)?.Format(Statistics.Fixed(3)) ?? ReportFormat.Missing))).Append(" |\n");
            text.Append('\n');
        }
        text.Append("## The study's claims\n\n| claim | ").Append(string.Join(" | ", results.Groups)).Append(" |\n|---|")
            .Append(string.Concat(results.Groups.Select(_ => "---|"))).Append('\n');
        foreach (var name in StudyClaims.Names)
            text.Append($"| {name} | ").Append(string.Join(" | ", results.Groups.Select(g => StudyClaims.Words(results.Claims.First(c => c.Group == g && c.Claim == name).Verdict)))).Append(" |\n");
        text.Append('\n');
        foreach (var claim in results.Claims.Where(c => c.Verdict != ClaimVerdict.NotTested))
            text.Append($"- {claim.Group} · {claim.Claim}: {claim.Evidence}\n");
        text.Append($"\n≈ means the paired 95% interval lies within ±{StudyClaims.EquivalenceMargin.ToString(CultureInfo.InvariantCulture)}; easy means accuracy ≥ {StudyClaims.EasyAccuracy.ToString(CultureInfo.InvariantCulture)}; ")
            .Append("a claim of a difference needs it resolved (an exact tie counts against it).\n\n");
        text.Append("## Symmetry check\n\n| variant | mean \\|S − Sᵀ\\| |\n|---|---:|\n");
        foreach (var variant in results.Variants)
            text.Append($"| {variant} | {Asymmetry(results, variant).ToString("0.000000", CultureInfo.InvariantCulture)} |\n");
        text.Append("\n![Accuracy by task and variant](accuracy.png)\n");
        return text.ToString();
    }

    private static string Format(Interval? accuracy) => accuracy?.Format(Statistics.Fixed(3)) ?? ReportFormat.Missing;

    /// <summary>Grouped bars: tasks (of each cell and recipe) along x, one bar per variant, whiskers over the 95%
    /// interval (none from one seed).</summary>
    private static byte[] Chart(StudyResults results)
    {
        var plot = ReportPlots.NewPlot();
        var groupWidth = results.Variants.Count + 1.0;
        var palette = new ScottPlot.Palettes.Category10();
        var groups = results.Groups;
        var columns = groups.SelectMany(g => results.Tasks.Select(t => (Group: g, Task: t))).ToList();
        for (var v = 0; v < results.Variants.Count; v++)
        {
            var bars = columns.Select((column, t) =>
            {
                var accuracy = Accuracy(results, results.Variants[v], column.Task, column.Group);
                return new Bar { Position = t * groupWidth + v, Value = accuracy?.Mean ?? 0, Error = accuracy?.HalfWidth ?? 0, FillColor = palette.GetColor(v) };
            }).ToList();
            plot.Add.Bars(bars);
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = results.Variants[v], FillColor = palette.GetColor(v) });
        }
        var ticks = columns.Select((column, t) => new Tick(t * groupWidth + (results.Variants.Count - 1) / 2.0,
            groups.Count > 1 ? $"{column.Task}\n{column.Group.Substring(column.Group.IndexOf(", ", StringComparison.Ordinal) + 2)}" : column.Task)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        // Headroom above 1.0 holds the legend in one row, clear of the bars.
        plot.Axes.SetLimitsY(0, 1.2);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, 6).Select(i => new Tick(i * 0.2, (i * 0.2).ToString("0.0", CultureInfo.InvariantCulture))).ToArray());
        plot.Title("Token accuracy by task and attention variant (mean ± 95% interval over seeds)");
        plot.YLabel("test token accuracy");
        plot.Legend.Orientation = Orientation.Horizontal;
        plot.ShowLegend(Alignment.UpperCenter);
        return plot.GetImageBytes(Math.Max(1000, 200 * columns.Count), 600, ImageFormat.Png);
    }
}
