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
public sealed record StudyRun(string Cell, string Task, string Variant, int Seed, double Accuracy, double Asymmetry, double FinalTrainLoss, double Seconds);

/// <summary>The sweep's results and settings.</summary>
public sealed record StudyResults(string Date, IReadOnlyList<KeyValuePair<string, string>> Settings, IReadOnlyList<string> Variants, IReadOnlyList<string> Tasks, IReadOnlyList<StudyRun> Runs);

/// <summary>Writes the study's table, results.json, report.md and a bar chart.</summary>
public static class StudyReport
{
    /// <summary>Mean and spread (population standard deviation) of accuracy over seeds for every variant × task, across all cells.</summary>
    public static (double Mean, double Spread) Cell(StudyResults results, string variant, string task, string? cell = null)
    {
        var values = results.Runs.Where(r => r.Variant == variant && r.Task == task && (cell is null || r.Cell == cell)).Select(r => r.Accuracy).ToList();
        if (values.Count == 0) return (double.NaN, double.NaN);
        var mean = values.Average();
        return (mean, Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count));
    }

    /// <summary>Mean |S − Sᵀ| of a variant over all its runs.</summary>
    public static double Asymmetry(StudyResults results, string variant) =>
        results.Runs.Where(r => r.Variant == variant).Select(r => r.Asymmetry).DefaultIfEmpty(double.NaN).Average();

    /// <summary>The variant × task table in plain text: mean accuracy ± spread over seeds, and the symmetry check.</summary>
    public static string Table(StudyResults results, string? cell = null)
    {
        var header = new[] { "variant" }.Concat(results.Tasks).Append("mean |S−Sᵀ|").ToArray();
        var rows = results.Variants.Select(v => new[] { v }
            .Concat(results.Tasks.Select(t => Format(Cell(results, v, t, cell))))
            .Append(Asymmetry(results, v).ToString("0.0000", CultureInfo.InvariantCulture)).ToArray()).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        void Line(IEnumerable<string> cells) =>
            text.Append(string.Join("  ", cells.Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd()).Append('\n');
        Line(header);
        Line(widths.Select(w => new string('-', w)));
        foreach (var row in rows) Line(row);
        return text.ToString();
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
        text.Append("\nMean token accuracy on the test set ± spread (standard deviation) across seeds; ")
            .Append("the last column is the mean |S − Sᵀ| of the pre-softmax score maps (0 means symmetric).\n\n");
        foreach (var cell in results.Runs.Select(r => r.Cell).Distinct())
        {
            text.Append($"## {cell}\n\n| variant | ").Append(string.Join(" | ", results.Tasks)).Append(" |\n|---|")
                .Append(string.Concat(results.Tasks.Select(_ => "---:|"))).Append('\n');
            foreach (var variant in results.Variants)
                text.Append($"| {variant} | ").Append(string.Join(" | ", results.Tasks.Select(t => Format(Cell(results, variant, t, cell))))).Append(" |\n");
            text.Append('\n');
        }
        text.Append("## Symmetry check\n\n| variant | mean \\|S − Sᵀ\\| |\n|---|---:|\n");
        foreach (var variant in results.Variants)
            text.Append($"| {variant} | {Asymmetry(results, variant).ToString("0.000000", CultureInfo.InvariantCulture)} |\n");
        text.Append("\n![Accuracy by task and variant](accuracy.png)\n");
        return text.ToString();
    }

    private static string Format((double Mean, double Spread) cell) =>
        double.IsNaN(cell.Mean) ? "—" : string.Create(CultureInfo.InvariantCulture, $"{cell.Mean:0.000} ± {cell.Spread:0.000}");

    /// <summary>Grouped bars: tasks along x, one bar per variant, whiskers at ± spread.</summary>
    private static byte[] Chart(StudyResults results)
    {
        var plot = ReportPlots.NewPlot();
        var groupWidth = results.Variants.Count + 1.0;
        var palette = new ScottPlot.Palettes.Category10();
        for (var v = 0; v < results.Variants.Count; v++)
        {
            var bars = results.Tasks.Select((task, t) =>
            {
                var (mean, spread) = Cell(results, results.Variants[v], task);
                return new Bar { Position = t * groupWidth + v, Value = double.IsNaN(mean) ? 0 : mean, Error = double.IsNaN(spread) ? 0 : spread, FillColor = palette.GetColor(v) };
            }).ToList();
            plot.Add.Bars(bars);
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = results.Variants[v], FillColor = palette.GetColor(v) });
        }
        var ticks = results.Tasks.Select((task, t) => new Tick(t * groupWidth + (results.Variants.Count - 1) / 2.0, task)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        // Headroom above 1.0 holds the legend in one row, clear of the bars.
        plot.Axes.SetLimitsY(0, 1.2);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, 6).Select(i => new Tick(i * 0.2, (i * 0.2).ToString("0.0", CultureInfo.InvariantCulture))).ToArray());
        plot.Title("Token accuracy by task and attention variant (mean ± spread over seeds)");
        plot.YLabel("test token accuracy");
        plot.Legend.Orientation = Orientation.Horizontal;
        plot.ShowLegend(Alignment.UpperCenter);
        return plot.GetImageBytes(1000, 600, ImageFormat.Png);
    }
}
