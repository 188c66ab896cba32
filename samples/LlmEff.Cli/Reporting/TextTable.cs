using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace LlmEff.Cli.Reporting;

/// <summary>A terminal table: a header, a rule of dashes and the rows, columns two spaces apart, each as wide as its
/// widest cell, text left-aligned and numbers right-aligned, trailing spaces trimmed.</summary>
internal static class TextTable
{
    /// <summary>The table's text; <paramref name="rightAligned"/> says which columns (by index) hold numbers.</summary>
    public static string Render(IReadOnlyList<string> header, IReadOnlyList<IReadOnlyList<string>> rows, Func<int, bool> rightAligned)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(rows);
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        var text = new StringBuilder();
        void Line(IEnumerable<string> cells) =>
            text.Append(string.Join("  ", cells.Select((c, i) => rightAligned(i) ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd()).Append('\n');
        Line(header);
        Line(widths.Select(w => new string('-', w)));
        foreach (var row in rows) Line(row);
        return text.ToString();
    }

    /// <summary>The common shape: a label column on the left, every other column a number.</summary>
    public static string Render(IReadOnlyList<string> header, IReadOnlyList<IReadOnlyList<string>> rows) => Render(header, rows, i => i > 0);
}
