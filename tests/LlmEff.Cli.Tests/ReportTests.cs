using System.Collections.Generic;
using System.IO;
using System.Linq;
using LlmEff.Cli.Reporting;

namespace LlmEff.Cli.Tests;

/// <summary>The comparison report's content, independent of training.</summary>
public sealed class ReportTests : System.IDisposable
{
    private readonly TempFolder temp = new();

    private static RunResult Run(string model, long kvBytes, double heldOut, double? recall) => new(
        model, model + " variant", 1_000_000, 250_000, kvBytes,
        Enumerable.Range(0, 40).Select(i => 5.0 - 0.1 * i).ToList(),
        new List<(int, double)> { (20, heldOut + 0.5), (40, heldOut) },
        1.1, heldOut, recall, 5_000, 12.5);

    private static ComparisonReport Report => new("Test comparison",
        new List<KeyValuePair<string, string>> { new("steps", "40") },
        new[] { Run("Baseline", 4096, 1.0, 0.5), Run("Half", 2048, 1.05, null) },
        "2026-11-26T12:00:00Z");

    [Fact]
    public void Json_round_trips_every_number_exactly()
    {
        var report = Report with { Runs = new[] { Run("Exact", 4096, 0.1 + 0.2, 1e-17) } };

        var again = ReportWriter.FromJson(ReportWriter.ToJson(report));

        Assert.Equal(report.Runs[0].HeldOutLoss, again.Runs[0].HeldOutLoss);
        Assert.Equal(report.Runs[0].RecallAccuracy, again.Runs[0].RecallAccuracy);
        Assert.Equal(report.Runs[0].TrainLosses, again.Runs[0].TrainLosses);
        Assert.Equal(report.Runs[0].HeldOutCurve, again.Runs[0].HeldOutCurve);
    }

    [Fact]
    public void Markdown_has_a_row_per_run_a_dash_for_missing_recall_and_the_savings_against_the_first_run()
    {
        var markdown = ReportWriter.ToMarkdown(Report);

        var rows = markdown.Split('\n').Where(l => l.StartsWith("| Baseline") || l.StartsWith("| Half")).ToList();
        Assert.Equal(2, rows.Count);
        Assert.Contains("—", rows[1]);
        Assert.Contains("50.0% smaller", markdown);
        Assert.Contains("+5.00%", markdown);
        Assert.Contains("](loss_curves.png)", markdown);
    }

    [Fact]
    public void Writing_twice_leaves_exactly_the_four_files_with_identical_bytes()
    {
        var first = ReportWriter.Write(temp.Path, Report).Select(File.ReadAllBytes).ToList();
        var second = ReportWriter.Write(temp.Path, Report).Select(File.ReadAllBytes).ToList();

        Assert.Equal(new[] { "loss_curves.png", "loss_vs_kv.png", "report.md", "results.json" },
            Directory.GetFiles(temp.Path).Select(Path.GetFileName).Order());
        Assert.Equal(first, second);
    }

    public void Dispose() => temp.Dispose();
}
