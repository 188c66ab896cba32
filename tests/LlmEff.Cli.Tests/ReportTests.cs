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

    /// <summary>Two models × two seeds: Half is 0.05 worse than Baseline on both seeds (resolved), and its recall differs
    /// by +0.1 on one seed and −0.1 on the other (not resolved).</summary>
    private static ComparisonReport Seeded => Report with
    {
        Runs = new[]
        {
            Run("Baseline", 4096, 1.00, 0.50) with { Seed = 1 },
            Run("Baseline", 4096, 1.20, 0.40) with { Seed = 2 },
            Run("Half", 2048, 1.05, 0.60) with { Seed = 1 },
            Run("Half", 2048, 1.25, 0.30) with { Seed = 2 },
        },
    };

    [Fact]
    public void With_two_seeds_every_table_shows_intervals_and_marks_the_differences_from_the_baseline()
    {
        var plain = ReportWriter.ToMarkdown(Seeded);
        var text = ResultsTable.ToPlainText(Seeded.Runs);

        foreach (var table in new[] { plain, text })
        {
            Assert.Contains("1.1000 ± 1.2706", table); // mean 1.1, s = 0.1414, t(0.975, 1) = 12.706: ± 12.706 · 0.1 = 1.2706
            Assert.Contains("+0.0500 ± 0.0000 resolved, higher", table);
            Assert.Contains("not resolved", table);
            Assert.Contains("2 seeds: mean ± 95% interval", table);
        }
        Assert.Single(plain.Split('\n'), l => l.StartsWith("| Half"));
    }

    [Fact]
    public void With_one_seed_the_tables_say_there_is_no_interval()
    {
        Assert.Contains("1 seed: no interval", ResultsTable.ToPlainText(Report.Runs));
        Assert.Contains("1 seed: no interval", ReportWriter.ToMarkdown(Report));
        Assert.DoesNotContain("±", ResultsTable.ToPlainText(Report.Runs));
    }

    [Fact]
    public void Results_json_carries_each_models_interval_and_paired_difference_with_its_mark()
    {
        using var json = System.Text.Json.JsonDocument.Parse(ReportWriter.ToJson(Seeded));
        var models = json.RootElement.GetProperty("models");
        var half = models[1];

        Assert.Equal(2, models.GetArrayLength());
        Assert.Equal(new[] { 1, 2 }, json.RootElement.GetProperty("runs").EnumerateArray().Take(2).Select(r => r.GetProperty("seed").GetInt32()));
        Assert.Equal(1.15, half.GetProperty("heldOutLoss").GetProperty("mean").GetDouble(), 12);
        Assert.Equal(2, half.GetProperty("heldOutLoss").GetProperty("count").GetInt32());
        Assert.Equal("Higher", half.GetProperty("heldOutLossVersusBaseline").GetProperty("resolution").GetString());
        Assert.Equal("resolved, higher", half.GetProperty("heldOutLossVersusBaseline").GetProperty("mark").GetString());
        Assert.Equal("not resolved", half.GetProperty("recallVersusBaseline").GetProperty("mark").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, models[0].GetProperty("heldOutLossVersusBaseline").ValueKind);
        Assert.Equal(Seeded.Runs.Select(r => r.Seed), ReportWriter.FromJson(ReportWriter.ToJson(Seeded)).Runs.Select(r => r.Seed));
    }

    [Fact]
    public void Plots_of_several_seeds_render_at_the_usual_size()
    {
        var written = ReportWriter.Write(temp.Path, Seeded);

        Assert.Equal(4, written.Count);
        Assert.All(new[] { ReportWriter.LossCurvesFileName, ReportWriter.LossVersusKvFileName },
            name => Assert.True(new FileInfo(Path.Combine(temp.Path, name)).Length > 10_000));
    }

    [Fact]
    public void The_study_table_report_and_json_show_accuracy_intervals_and_differences_from_Full_paired_by_seed()
    {
        StudyRun Run(string variant, int seed, double accuracy) => new("E64L2H2N16", "REVERSE", variant, seed, accuracy, 0.01, 0.5, 1.0);
        var results = new StudyResults("2026-11-30T00:00:00Z", new List<KeyValuePair<string, string>>(), new[] { "Full", "NoKey" }, new[] { "REVERSE" },
            new[] { Run("Full", 1, 0.9), Run("NoKey", 1, 0.7), Run("Full", 2, 0.8), Run("NoKey", 2, 0.6) });

        var table = StudyReport.Table(results);
        var markdown = StudyReport.Markdown(results);
        StudyReport.Write(temp.Path, results);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.Path, "results.json")));

        // Full: mean 0.85, s = 0.0707, ± 12.706 · 0.05 = 0.635; NoKey is 0.2 lower on both seeds.
        Assert.All(new[] { table, markdown }, text => Assert.Contains("0.850 ± 0.635", text));
        Assert.All(new[] { table, markdown }, text => Assert.Contains("-0.200 ± 0.000 resolved, lower", text));
        var noKey = json.RootElement.GetProperty("summary").EnumerateArray().Single(e => e.GetProperty("variant").GetString() == "NoKey");
        Assert.Equal("resolved, lower", noKey.GetProperty("versusBaseline").GetProperty("mark").GetString());
        Assert.Equal(0.65, noKey.GetProperty("accuracy").GetProperty("mean").GetDouble(), 12);
    }

    [Fact]
    public void The_verdict_names_each_difference_the_seeds_resolve_and_each_they_do_not()
    {
        // Baseline 1.00/1.01/0.99; "Worse" is 0.10 higher on every seed (resolved); "Noisy" is +0.2, -0.2, +0.1 (not
        // resolved: mean 0.0333, s = 0.2082, t(2) = 4.303, half-width 0.5171). No recall measured: no recall differences.
        RunResult Seeded(string model, int seed, double heldOut) => Run(model, 4096, heldOut, null) with { Seed = seed };
        var runs = new[]
        {
            Seeded("Baseline", 1, 1.00), Seeded("Baseline", 2, 1.01), Seeded("Baseline", 3, 0.99),
            Seeded("Worse", 1, 1.10), Seeded("Worse", 2, 1.11), Seeded("Worse", 3, 1.09),
            Seeded("Noisy", 1, 1.20), Seeded("Noisy", 2, 0.81), Seeded("Noisy", 3, 1.09),
        };

        var verdict = ResultsTable.Verdict(ModelSummary.Of(runs));

        Assert.Equal("Resolved against Baseline: Worse held-out loss higher (+0.1000 ± 0.0000). " +
                     "Not resolved (these seeds cannot tell which side is better): Noisy held-out loss (+0.0333 ± 0.5171).", verdict);
        Assert.Null(ResultsTable.Verdict(ModelSummary.Of(new[] { Run("Baseline", 4096, 1.0, 0.5), Run("Other", 2048, 1.1, 0.4) })));
    }

    public void Dispose() => temp.Dispose();
}
