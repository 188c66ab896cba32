using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace LlmEff.Cli.Reporting;

/// <summary>The results of a comparison as a table for the terminal, with the same columns as the Markdown report.</summary>
public static class ResultsTable
{
    /// <summary>
    /// A Spectre.Console table with one row per model (all its seeds): numbers right-aligned, the lowest held-out
    /// loss in bold when there is more than one model, and a caption saying what the intervals are.
    /// </summary>
    public static Table Build(IReadOnlyList<RunResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var models = ModelSummary.Of(runs);
        var table = new Table { Border = TableBorder.Rounded, Caption = new TableTitle(ReportFormat.IntervalNote(models)) };
        for (var j = 0; j < ReportFormat.Columns.Count; j++)
        {
            var column = ReportFormat.Columns[j];
            // Text rather than markup: headers and cells are data and may contain '[' (e.g. "[Q,K,V]").
            table.AddColumn(new TableColumn(new Text(column.Compact))
            {
                Alignment = column.Numeric ? Justify.Right : Justify.Left,
                // A number or a model name broken across lines is unreadable; only the description may wrap.
                NoWrap = j != ReportFormat.DescriptionColumn,
            });
        }

        var best = ReportFormat.BestHeldOutIndex(models);
        var bold = new Style(decoration: Decoration.Bold);
        for (var i = 0; i < models.Count; i++)
        {
            var model = models[i];
            var cells = ReportFormat.Columns.Select((column, j) =>
                (IRenderable)new Text(column.Format(model), i == best && j == ReportFormat.HeldOutColumn ? bold : Style.Plain));
            table.AddRow(cells);
        }
        return table;
    }

    /// <summary>
    /// What the seeds settle, in words: each difference from the baseline (held-out loss, recall) listed as resolved,
    /// with its direction, or not resolved; null with fewer than two seeds or no model to compare. Said plainly because
    /// a reader of a table reads the means first.
    /// </summary>
    public static string? Verdict(IReadOnlyList<ModelSummary> models)
    {
        if (models.Count < 2 || models.Min(m => m.Runs.Count) < 2) return null;
        var resolved = new List<string>();
        var open = new List<string>();
        foreach (var model in models.Skip(1))
        {
            foreach (var (metric, difference, format) in new (string, PairedDifference?, Func<double, string>)[]
                     {
                         ("held-out loss", model.HeldOutLossVersusBaseline, ReportFormat.Loss),
                         ("recall", model.RecallVersusBaseline, ReportFormat.Percent),
                     })
            {
                if (difference?.Interval.HalfWidth is not { } half) continue;
                var amount = (difference.Interval.Mean < 0 ? "-" : "+") + format(Math.Abs(difference.Interval.Mean)) + " ± " + format(half);
                if (difference.Resolution == Resolution.NotResolved) open.Add($"{model.Model} {metric} ({amount})");
                else resolved.Add($"{model.Model} {metric} {(difference.Resolution == Resolution.Higher ? "higher" : "lower")} ({amount})");
            }
        }
        var baseline = models[0].Model;
        var text = resolved.Count == 0 ? $"Resolved against {baseline}: nothing." : $"Resolved against {baseline}: {string.Join("; ", resolved)}.";
        return text + (open.Count == 0 ? " Every difference is resolved." : $" Not resolved (these seeds cannot tell which side is better): {string.Join("; ", open)}.");
    }

    /// <summary>
    /// The same table as aligned plain text, for redirected output and for pasting into documentation; the lowest
    /// held-out loss is marked with <c>*</c>; footnotes explain it and the intervals.
    /// </summary>
    /// <remarks>
    /// Columns are separated by two spaces and lines end with <c>\n</c> without trailing spaces, so the text is stable
    /// across systems. Two-line headings keep the table narrow enough for a terminal.
    /// </remarks>
    public static string ToPlainText(IReadOnlyList<RunResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var columns = ReportFormat.Columns;
        var models = ModelSummary.Of(runs);
        var best = ReportFormat.BestHeldOutIndex(models);

        var headers = columns.Select(c => c.Compact.Split('\n')).ToArray();
        var headerLines = headers.Max(h => h.Length);
        var rows = models.Select((model, i) => columns.Select((c, j) =>
        {
            var text = c.Format(model);
            // A leading mark keeps the digits of the column aligned on the right.
            return i == best && j == ReportFormat.HeldOutColumn ? "*" + text : text;
        }).ToArray()).ToArray();
        var widths = columns.Select((_, j) => Math.Max(headers[j].Max(h => h.Length), rows.Select(r => r[j].Length).DefaultIfEmpty(0).Max())).ToArray();

        var text = new StringBuilder();
        void Row(IReadOnlyList<string> cells)
        {
            var line = string.Join("  ", cells.Select((cell, j) => columns[j].Numeric ? cell.PadLeft(widths[j]) : cell.PadRight(widths[j])));
            text.Append(line.TrimEnd()).Append('\n');
        }

        for (var line = 0; line < headerLines; line++)
        {
            // Headings sit on the bottom lines, next to the rule, when a column's heading is shorter than others.
            Row(headers.Select(h => line - (headerLines - h.Length) is var k && k >= 0 ? h[k] : "").ToArray());
        }
        Row(widths.Select(w => new string('-', w)).ToArray());
        foreach (var row in rows)
            Row(row);
        if (best >= 0)
            text.Append("* lowest held-out loss\n");
        text.Append(ReportFormat.IntervalNote(models)).Append('\n');
        return text.ToString();
    }
}
