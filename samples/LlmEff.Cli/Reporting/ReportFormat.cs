using System;
using System.Collections.Generic;
using System.Globalization;

namespace LlmEff.Cli.Reporting;

/// <summary>One column of the results table, shared by the Markdown report, the terminal table and the plain-text table.</summary>
/// <param name="Title">Heading in the Markdown report, which has room for the full name.</param>
/// <param name="Compact">Heading in the terminal and plain-text tables: abbreviated, a line break where it may split,
/// so that the eleven columns fit a 120-character terminal.</param>
/// <param name="Numeric">Right-aligned when true.</param>
/// <param name="Format">Text of the cell for one run.</param>
internal sealed record ReportColumn(string Title, string Compact, bool Numeric, Func<RunResult, string> Format);

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

    /// <summary>The columns of every results table, in display order.</summary>
    public static IReadOnlyList<ReportColumn> Columns { get; } =
    [
        new("model", "model", false, r => r.Model),
        new("description", "description", false, r => r.Description),
        new("parameters", "params", true, r => Integer(r.Parameters)),
        new("attention parameters", "attention\nparams", true, r => Integer(r.AttentionParameters)),
        new("KV bytes/token", "KV\nB/token", true, r => Integer(r.KvBytesPerToken)),
        new("final train loss", "train\nloss", true, r => Loss(r.FinalTrainLoss)),
        new("held-out loss", "held-out\nloss", true, r => Loss(r.HeldOutLoss)),
        new("perplexity", "ppl", true, r => Perplexity(r.Perplexity)),
        new("recall accuracy", "recall\nacc.", true, r => r.RecallAccuracy is { } a ? Percent(a) : Missing),
        new("tokens/s", "tok/s", true, r => Integer(r.TokensPerSecond)),
        new("wall time", "wall\ntime", true, r => Duration(r.WallSeconds)),
    ];

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
    /// Index of the run with the lowest finite held-out loss, or -1 when there is no such run or only one run
    /// (highlighting the only row would suggest a comparison that did not happen).
    /// </summary>
    public static int BestHeldOutIndex(IReadOnlyList<RunResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count < 2)
            return -1;
        var best = -1;
        for (var i = 0; i < runs.Count; i++)
        {
            var loss = runs[i].HeldOutLoss;
            if (double.IsFinite(loss) && (best < 0 || loss < runs[best].HeldOutLoss))
                best = i;
        }
        return best;
    }
}
