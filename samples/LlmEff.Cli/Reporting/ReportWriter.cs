using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using LlmEff.IO;

namespace LlmEff.Cli.Reporting;

/// <summary>Writes the files of a comparison report: data, Markdown summary and two figures.</summary>
public static class ReportWriter
{
    /// <summary>File name of the machine-readable report.</summary>
    public const string JsonFileName = "results.json";

    /// <summary>File name of the human-readable report.</summary>
    public const string MarkdownFileName = "report.md";

    /// <summary>File name of the figure of loss against training step.</summary>
    public const string LossCurvesFileName = "loss_curves.png";

    /// <summary>File name of the figure of held-out loss against KV-cache size.</summary>
    public const string LossVersusKvFileName = "loss_vs_kv.png";

    /// <summary>Width of both figures in pixels.</summary>
    public const int PlotWidth = ReportPlots.Width;

    /// <summary>Height of both figures in pixels.</summary>
    public const int PlotHeight = ReportPlots.Height;

    /// <summary>
    /// Writes <c>results.json</c>, <c>loss_curves.png</c>, <c>loss_vs_kv.png</c> and <c>report.md</c> into
    /// <paramref name="outputDirectory"/>, creating it if needed and replacing files of an earlier report.
    /// </summary>
    /// <returns>Full paths of the files written, in the order written.</returns>
    /// <remarks>
    /// Each file is replaced atomically, so an interrupted write leaves the previous version rather than a truncated
    /// one. The Markdown report is written last so that the figures it links to already exist when it appears.
    /// </remarks>
    public static IReadOnlyList<string> Write(string outputDirectory, ComparisonReport report)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDirectory);
        ArgumentNullException.ThrowIfNull(report);
        var directory = Directory.CreateDirectory(outputDirectory).FullName;

        var written = new List<string>(4);
        void Save(string name, Action<string> write)
        {
            var path = Path.Combine(directory, name);
            write(path);
            written.Add(path);
        }

        Save(JsonFileName, path => AtomicFile.WriteAllText(path, ToJson(report)));
        Save(LossCurvesFileName, path => AtomicFile.WriteAllBytes(path, ReportPlots.LossCurves(report.Runs)));
        Save(LossVersusKvFileName, path => AtomicFile.WriteAllBytes(path, ReportPlots.LossVersusKvCache(report.Runs)));
        Save(MarkdownFileName, path => AtomicFile.WriteAllText(path, ToMarkdown(report)));
        return written;
    }

    /// <summary>The report as indented camelCase JSON, including each run's perplexity; ends with a newline.</summary>
    /// <remarks>
    /// Held-out points are written as <c>{"step":..,"loss":..}</c>, doubles in their shortest round-trippable form, and
    /// NaN or infinite losses of a diverged run as the strings <c>"NaN"</c>, <c>"Infinity"</c>. The text reads back
    /// into a <see cref="ComparisonReport"/> with <see cref="FromJson"/>.
    /// </remarks>
    public static string ToJson(ComparisonReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return JsonSerializer.Serialize(report, ReportJson.Options) + "\n";
    }

    /// <summary>Reads a report written by <see cref="ToJson"/>; derived members such as perplexity are recomputed.</summary>
    public static ComparisonReport FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return JsonSerializer.Deserialize<ComparisonReport>(json, ReportJson.Options)
            ?? throw new JsonException("The JSON holds no report.");
    }

    /// <summary>The Markdown report: title, date, settings, results table, a reading of the table, and the figures.</summary>
    /// <remarks>Line endings are <c>\n</c> on every system so the file diffs cleanly between machines.</remarks>
    public static string ToMarkdown(ComparisonReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var md = new StringBuilder();
        void Line(string text = "") => md.Append(text).Append('\n');

        Line($"# {Escape(report.Title)}");
        Line();
        Line($"Date: {Escape(report.Date)}");
        Line();
        Line("## Settings");
        Line();
        if (report.Settings.Count == 0)
            Line("No settings recorded.");
        foreach (var (key, value) in report.Settings)
            Line($"- **{Escape(key)}**: {Escape(value)}");
        Line();

        Line("## Results");
        Line();
        var columns = ReportFormat.Columns;
        Line("| " + string.Join(" | ", columns.Select(c => Escape(c.Title))) + " |");
        Line("|" + string.Join("|", columns.Select(c => c.Numeric ? "---:" : "---")) + "|");
        var models = report.Models;
        var best = ReportFormat.BestHeldOutIndex(models);
        for (var i = 0; i < models.Count; i++)
        {
            var model = models[i];
            var cells = columns.Select((c, j) =>
            {
                var text = Escape(c.Format(model));
                return i == best && j == ReportFormat.HeldOutColumn ? $"**{text}**" : text;
            });
            Line("| " + string.Join(" | ", cells) + " |");
        }
        Line();
        Line("Losses are cross-entropy in nats per token; perplexity is exp(held-out loss); the final train loss is the mean "
            + "over the last tenth of the steps; KV bytes per token are for a bf16 cache."
            + (best >= 0 ? " The lowest held-out loss is in bold." : ""));
        Line();
        Line(Escape(ReportFormat.IntervalNote(models)) + " A 95% interval that contains 0 means these seeds cannot tell which side is better.");
        Line();
        if (ResultsTable.Verdict(models) is { } verdict)
        {
            Line(Escape(verdict));
            Line();
        }

        Line("## Reading the table");
        Line();
        foreach (var text in Reading(models))
            Line(text);
        Line();

        Line("## Plots");
        Line();
        var smoothing = ReportPlots.SmoothingDescription(report.Runs, "centred moving average over", "steps");
        Line($"Training loss, smoothed: {smoothing}; held-out evaluations as markers. The right panel, when present, "
            + "repeats the second half of training on a linear scale.");
        Line();
        Line($"![Training and held-out loss per step, one line per run]({LossCurvesFileName})");
        Line();
        Line("Final held-out loss against KV-cache bytes per token (lower left is better):");
        Line();
        Line($"![Final held-out loss against KV-cache bytes per token, one point per run]({LossVersusKvFileName})");
        return md.ToString();
    }

    /// <summary>The "Reading the table" text: the best model, then every model against the first (the baseline).</summary>
    private static IEnumerable<string> Reading(IReadOnlyList<ModelSummary> models)
    {
        if (models.Count == 0)
        {
            yield return "No runs were recorded.";
            yield break;
        }
        if (models.Count == 1)
        {
            yield return $"Only one model, **{Escape(models[0].Model)}**, so there is nothing to compare against: held-out loss "
                + $"{Escape(models[0].HeldOutLoss.Format(ReportFormat.Loss))} nats/token.";
            yield break;
        }

        var best = ReportFormat.BestHeldOutIndex(models);
        var baseline = models[0];
        yield return (best < 0
                ? "No model finished with a finite held-out loss."
                : $"**{Escape(models[best].Model)}** had the lowest mean held-out loss, {Escape(models[best].HeldOutLoss.Format(ReportFormat.Loss))} nats/token "
                  + $"(perplexity {ReportFormat.Perplexity(Math.Exp(models[best].HeldOutLoss.Mean))}).")
            + $" Relative to the baseline **{Escape(baseline.Model)}** (the first model, {ReportFormat.Integer(baseline.Runs[0].KvBytesPerToken)} "
            + $"KV bytes per token, held-out loss {Escape(baseline.HeldOutLoss.Format(ReportFormat.Loss))}):";
        yield return "";
        foreach (var model in models.Skip(1))
            yield return $"- **{Escape(model.Model)}**: {KvChange(model.Runs[0].KvBytesPerToken, baseline.Runs[0].KvBytesPerToken)}; "
                + $"{LossChange(model.HeldOutLoss.Mean, baseline.HeldOutLoss.Mean)}"
                + (model.HeldOutLossVersusBaseline is { } loss ? $", paired difference {Escape(loss.Format(ReportFormat.Loss))}" : "")
                + (model.RecallVersusBaseline is { } recall ? $"; recall {Escape(recall.Format(ReportFormat.Percent))}" : "")
                + ".";
    }

    private static string KvChange(long kv, long baseline)
    {
        var values = $"{ReportFormat.Integer(kv)} vs {ReportFormat.Integer(baseline)} bytes per token";
        if (kv == baseline)
            return $"same KV cache ({ReportFormat.Integer(kv)} bytes per token)";
        if (baseline == 0)
            return $"KV cache {values}";
        var saving = (double)(baseline - kv) / baseline;
        return saving > 0
            ? $"KV cache {ReportFormat.Percent(saving)} smaller ({values})"
            : $"KV cache {ReportFormat.Percent(-saving)} larger ({values})";
    }

    private static string LossChange(double loss, double baseline)
    {
        var values = $"{ReportFormat.Loss(loss)} vs {ReportFormat.Loss(baseline)}";
        if (!double.IsFinite(loss) || !double.IsFinite(baseline) || baseline == 0)
            return $"held-out loss {values}";
        var change = (loss - baseline) / baseline * 100;
        return $"held-out loss {ReportFormat.SignedPercent(change)} ({values})";
    }

    /// <summary>Escapes text so names and settings cannot break the table or turn into emphasis or links.</summary>
    private static string Escape(string text)
    {
        var escaped = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '\r' or '\n')
            {
                escaped.Append(' ');
                continue;
            }
            if (c is '\\' or '|' or '*' or '_' or '`' or '[' or ']' or '<' or '>' or '#')
                escaped.Append('\\');
            escaped.Append(c);
        }
        return escaped.ToString();
    }
}
