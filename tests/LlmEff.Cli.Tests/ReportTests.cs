using System;
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

    /// <summary>Runs of one recipe: REVERSE and SWAP from <paramref name="hard"/> (variant → accuracy per seed), SUB and
    /// COPY at <paramref name="easy"/> for every variant.</summary>
    private static IEnumerable<StudyRun> Recipe(string recipe, Dictionary<string, double[]> hard, double easy = 1.0) =>
        from task in new[] { "REVERSE", "SWAP", "SUB", "COPY" }
        from variant in hard.Keys
        from seed in Enumerable.Range(0, hard[variant].Length)
        select new StudyRun("E64L2H2N16", task, variant, seed, task is "SUB" or "COPY" ? easy : hard[variant][seed], 0, 0.1, 1, recipe);

    private static readonly string[] StudyVariants = { "Full", "NoQuery", "NoQuery+", "NoKey", "Shared", "Shared+" };

    [Fact]
    public void The_study_claims_are_supported_where_the_paired_intervals_say_so_and_not_where_ties_or_reversals_do()
    {
        var paper = Recipe("authors", new()
        {
            ["Full"] = new[] { 1.0, 0.99, 1.0 }, ["NoQuery"] = new[] { 0.7, 0.75, 0.72 }, ["NoQuery+"] = new[] { 0.95, 0.97, 0.96 },
            ["NoKey"] = new[] { 1.0, 0.99, 0.995 }, ["Shared"] = new[] { 0.4, 0.5, 0.45 }, ["Shared+"] = new[] { 0.9, 0.95, 0.92 },
        });
        var solved = Recipe("ours", StudyVariants.ToDictionary(v => v, _ => new[] { 1.0, 1.0, 1.0 }));
        var noisy = Recipe("one seed", StudyVariants.ToDictionary(v => v, v => new[] { v == "Shared" ? 0.5 : 0.9 }), easy: 0.99);
        var results = new StudyResults("2026-11-30T00:00:00Z", new List<KeyValuePair<string, string>>(), StudyVariants, new[] { "REVERSE", "SWAP", "SUB", "COPY" },
            paper.Concat(solved).Concat(noisy).ToList());

        ClaimVerdict Verdict(string group, int claim) => results.Claims.Single(c => c.Group == "E64L2H2N16, " + group && c.Claim == StudyClaims.Names[claim]).Verdict;

        Assert.Equal(new[] { ClaimVerdict.Supported, ClaimVerdict.Supported, ClaimVerdict.Supported, ClaimVerdict.Supported },
            Enumerable.Range(0, 4).Select(c => Verdict("authors", c)));
        // Everything solved: Full ≈ NoKey and easy hold, but a tie is no "worst" and no "lift".
        Assert.Equal(new[] { ClaimVerdict.Supported, ClaimVerdict.NotSupported, ClaimVerdict.NotSupported, ClaimVerdict.Supported },
            Enumerable.Range(0, 4).Select(c => Verdict("ours", c)));
        // One seed has no interval, so nothing is resolved either way.
        Assert.All(Enumerable.Range(0, 4), c => Assert.Equal(ClaimVerdict.Unresolved, Verdict("one seed", c)));
        Assert.Contains("REVERSE Shared 0.450, lowest other NoQuery 0.723", results.Claims.Single(c => c.Group == "E64L2H2N16, authors" && c.Claim == StudyClaims.Names[1]).Evidence);

        // The table puts the recipes side by side, one column each, and the files carry the same verdicts.
        var table = StudyReport.Table(results);
        Assert.Contains(table.Split('\n'), line => line.StartsWith("Shared worst on REVERSE and SWAP") && line.Contains("supported") && line.Contains("NOT supported"));
        StudyReport.Write(temp.Path, results);
        Assert.Contains("| Shared worst on REVERSE and SWAP | supported | NOT supported | unresolved |", File.ReadAllText(Path.Combine(temp.Path, "report.md")));
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.Path, "results.json")));
        Assert.Equal("NotSupported", json.RootElement.GetProperty("claims").EnumerateArray()
            .Single(c => c.GetProperty("group").GetString() == "E64L2H2N16, ours" && c.GetProperty("claim").GetString() == StudyClaims.Names[2]).GetProperty("verdict").GetString());
    }

    [Fact]
    public void A_claim_whose_variants_or_tasks_did_not_run_is_not_tested()
    {
        var runs = Recipe("ours", new() { ["Full"] = new[] { 1.0, 1.0 }, ["NoKey"] = new[] { 1.0, 1.0 } }).Where(r => r.Task == "REVERSE").ToList();
        var results = new StudyResults("2026-11-30T00:00:00Z", new List<KeyValuePair<string, string>>(), new[] { "Full", "NoKey" }, new[] { "REVERSE" }, runs);

        Assert.Equal(new[] { ClaimVerdict.Supported, ClaimVerdict.NotTested, ClaimVerdict.NotTested, ClaimVerdict.NotTested }, results.Claims.Select(c => c.Verdict));
    }

    [Fact]
    public void Merged_study_parts_report_as_one_and_a_run_in_two_parts_is_refused()
    {
        var reverse = new StudyResults("d1", new List<KeyValuePair<string, string>> { new("wall time", "1 min") }, new[] { "Full", "Shared" }, new[] { "REVERSE" },
            Recipe("authors", new() { ["Full"] = new[] { 1.0, 1.0 }, ["Shared"] = new[] { 0.5, 0.52 } }).Where(r => r.Task == "REVERSE").ToList());
        var swap = reverse with { Date = "d2", Tasks = new[] { "SWAP" }, Runs = reverse.Runs.Select(r => r with { Task = "SWAP" }).ToList() };

        var merged = StudyReport.Merge(new[] { reverse, swap });

        Assert.Equal(new[] { "REVERSE", "SWAP" }, merged.Tasks);
        Assert.Equal((8, "d2"), (merged.Runs.Count, merged.Date));
        Assert.Equal(ClaimVerdict.Supported, merged.Claims.Single(c => c.Claim == StudyClaims.Names[1]).Verdict);
        Assert.Contains("seed 0 ran in more than one part", Assert.Throws<ArgumentException>(() => StudyReport.Merge(new[] { reverse, reverse })).Message);
    }

    public void Dispose() => temp.Dispose();
}
