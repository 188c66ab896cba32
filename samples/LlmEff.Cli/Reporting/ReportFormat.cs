using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace LlmEff.Cli.Reporting;

/// <summary>One column of the results table, shared by the Markdown report, the terminal table and the plain-text table.</summary>
/// <param name="Title">Heading in the Markdown report, which has room for the full name.</param>
/// <param name="Compact">Heading in the terminal and plain-text tables: abbreviated, a line break where it may split.</param>
/// <param name="Numeric">Right-aligned when true.</param>
/// <param name="Format">Text of the cell for one model (all its seeds).</param>
internal sealed record ReportColumn(string Title, string Compact, bool Numeric, Func<ModelSummary, string> Format);

/// <summary>Number formatting and column definitions of the report.</summary>
/// <remarks>
/// Kept in one place so the Markdown table, the terminal table and the plain-text table cannot drift apart.
/// Everything formats with <see cref="CultureInfo.InvariantCulture"/>: the report is read across machines and
/// compared in diffs, so it must not depend on the locale of whoever ran the comparison.
/// </remarks>
internal static class ReportFormat
{
    /// <summary>Shown for values that were not measured.</summary>
    public const string Missing = "—";

    /// <summary>The columns of every results table, in display order. Losses and recall are means over seeds ± the 95%
    /// interval; the "vs base" columns are differences from the first model paired by seed, with their mark.</summary>
    public static IReadOnlyList<ReportColumn> Columns { get; } =
    [
        new("model", "model", false, m => m.Model),
        new("description", "description", false, m => m.Description),
        new("parameters", "params", true, m => Integer(m.Runs[0].Parameters)),
        new("attention parameters", "attention\nparams", true, m => Integer(m.Runs[0].AttentionParameters)),
        new("KV bytes/token", "KV\nB/token", true, m => Integer(m.Runs[0].KvBytesPerToken)),
        new("final train loss", "train\nloss", true, m => Loss(m.Runs.Average(r => r.FinalTrainLoss))),
        new("held-out loss", "held-out\nloss", true, m => m.HeldOutLoss.Format(Loss)),
        new("held-out loss vs baseline", "held-out\nvs base", true, m => m.HeldOutLossVersusBaseline?.Format(Loss) ?? Missing),
        new("perplexity", "ppl", true, m => Perplexity(Math.Exp(m.HeldOutLoss.Mean))),
        new("recall accuracy", "recall\nacc.", true, m => m.RecallAccuracy?.Format(Percent) ?? Missing),
        new("recall vs baseline", "recall\nvs base", true, m => m.RecallVersusBaseline?.Format(Percent) ?? Missing),
        new("tokens/s", "tok/s", true, m => Integer(m.Runs.Average(r => r.TokensPerSecond))),
        new("wall time", "wall\ntime", true, m => Duration(m.Runs.Average(r => r.WallSeconds))),
    ];

    /// <summary>The line under every results table saying what the numbers are, seeds included.</summary>
    public static string IntervalNote(IReadOnlyList<ModelSummary> models)
    {
        var seeds = models.Count == 0 ? 0 : models.Min(m => m.Runs.Count);
        if (seeds < 2)
            return $"{Statistics.NoInterval}: values are single runs (use --seeds 2 or more for intervals and resolved/not resolved marks).";
        return string.Create(CultureInfo.InvariantCulture, $"{seeds} seeds: mean ± 95% interval (Student t); \"vs base\" is the difference from {models[0].Model} paired by seed, ")
            + "\"not resolved\" where its interval contains 0.";
    }

    /// <summary>Index in <see cref="Columns"/> of the held-out loss, the cell the tables highlight.</summary>
    public static int HeldOutColumn { get; } = IndexOf("held-out loss");

    /// <summary>Index in <see cref="Columns"/> of the description, the one column allowed to wrap in the terminal.</summary>
    public static int DescriptionColumn { get; } = IndexOf("description");

    private static int IndexOf(string title)
    {
        for (var i = 0; i < Columns.Count; i++)
        {
            if (Columns[i].Title == title)
                return i;
        }
        throw new InvalidOperationException($"No column '{title}'.");
    }

    /// <summary>Integer with thousands separators.</summary>
    public static string Integer(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Rounded to an integer, with thousands separators.</summary>
    public static string Integer(double value) =>
        double.IsFinite(value) ? value.ToString("N0", CultureInfo.InvariantCulture) : value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Cross-entropy in nats: four decimals, enough to separate runs that differ by a fraction of a percent.</summary>
    public static string Loss(double value) => value.ToString("N4", CultureInfo.InvariantCulture);

    /// <summary>Perplexity with two decimals and thousands separators (an untrained model's perplexity is in the hundreds).</summary>
    public static string Perplexity(double value) => value.ToString("N2", CultureInfo.InvariantCulture);

    /// <summary>A fraction 0..1 as a percentage with one decimal, e.g. 0.875 → "87.5%".</summary>
    public static string Percent(double fraction) =>
        (fraction * 100).ToString("N1", CultureInfo.InvariantCulture) + "%";

    /// <summary>A signed percentage with two decimals, e.g. "+1.23%" or "-0.50%".</summary>
    public static string SignedPercent(double percent) =>
        percent.ToString("+#,0.00;-#,0.00;0.00", CultureInfo.InvariantCulture) + "%";

    /// <summary>Seconds as "34.1s", "2m 05s" or "1h 02m": runs last from seconds to hours, and the column must stay narrow.</summary>
    public static string Duration(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
            return seconds.ToString(CultureInfo.InvariantCulture) + "s";
        if (seconds < 59.95)
            return seconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";
        var whole = (long)Math.Round(seconds);
        if (whole < 3600)
            return string.Create(CultureInfo.InvariantCulture, $"{whole / 60}m {whole % 60:00}s");
        return string.Create(CultureInfo.InvariantCulture, $"{whole / 3600:N0}h {whole / 60 % 60:00}m");
    }

    /// <summary>
    /// Index of the model with the lowest finite mean held-out loss, or -1 when there is no such model or only one
    /// (highlighting the only row would suggest a comparison that did not happen).
    /// </summary>
    public static int BestHeldOutIndex(IReadOnlyList<ModelSummary> models)
    {
        ArgumentNullException.ThrowIfNull(models);
        if (models.Count < 2)
            return -1;
        var best = -1;
        for (var i = 0; i < models.Count; i++)
        {
            var loss = models[i].HeldOutLoss.Mean;
            if (double.IsFinite(loss) && (best < 0 || loss < models[best].HeldOutLoss.Mean))
                best = i;
        }
        return best;
    }
}
