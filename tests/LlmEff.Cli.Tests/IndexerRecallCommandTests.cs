using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using LlmEff.Cli.Reporting;

namespace LlmEff.Cli.Tests;

/// <summary><c>llmeff indexer-recall</c>: recall of low-precision index scoring over seeds, with intervals and paired effects.</summary>
public sealed class IndexerRecallCommandTests
{
    [Fact]
    public void Indexer_recall_prints_intervals_and_paired_effects_and_writes_json_report_and_plot()
    {
        using var folder = new TempFolder();
        var (code, output, error) = CliHarness.Run("indexer-recall", "--seeds", "3", "--queries", "4", "--entries", "512", "--heads", "2",
            "--top-k", "64", "--out", folder.Path);

        Assert.True(code == 0, error);
        Assert.Contains("3 seeds (1–3)", output);
        Assert.Contains("FP4 + Hadamard, bf16 scores", output);
        Assert.Contains("Hadamard rotation on FP4", output);
        Assert.Matches(@"\d\.\d{4} ± \d\.\d{4}", output);
        Assert.Matches("resolved|not resolved", output);
        Assert.True(new FileInfo(Path.Combine(folder.Path, "recall.png")).Length > 1000);
        Assert.Contains("# Indexer recall", File.ReadAllText(Path.Combine(folder.Path, "report.md")));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder.Path, "results.json")));
        // 3 seeds × 2 input kinds × 6 scorings (fp32 itself is the reference, recall 1 by definition).
        Assert.Equal(36, json.RootElement.GetProperty("runs").GetArrayLength());
    }

    [Fact]
    public void The_paired_effect_of_the_hadamard_rotation_on_outlier_inputs_is_resolved_and_positive()
    {
        // Four of 128 channels 30x larger: a shared FP4 block scale is far too coarse for the other 31 values of a block
        // holding one, and the rotation spreads the outliers over every channel (vLLM's finding for DeepSeek's indexer).
        using var folder = new TempFolder();
        var (code, output, error) = CliHarness.Run("indexer-recall", "--seeds", "3", "--queries", "8", "--entries", "1024", "--heads", "4",
            "--top-k", "128", "--out", folder.Path);
        Assert.True(code == 0, error);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder.Path, "results.json")));
        Dictionary<int, double> BySeed(string scoring) => json.RootElement.GetProperty("runs").EnumerateArray()
            .Where(r => r.GetProperty("input").GetString() == "outlier channels" && r.GetProperty("scoring").GetString() == scoring)
            .ToDictionary(r => r.GetProperty("seed").GetInt32(), r => r.GetProperty("recall").GetDouble());
        var effect = Statistics.Paired(BySeed("FP4 + Hadamard"), BySeed("FP4"));

        Assert.Equal(Resolution.Higher, effect.Resolution);
        // The table prints the same verdict the numbers in results.json give.
        Assert.Matches(@"Hadamard rotation on FP4\s+[+-]\d\.\d{4} ± \d\.\d{4} \S.*\+\d\.\d{4} ± \d\.\d{4} resolved, higher", output);
    }

    [Fact]
    public void Indexer_recall_on_a_declared_model_measures_its_own_index_inputs_untrained_and_trained_seed_by_seed()
    {
        using var folder = new TempFolder();
        var (code, output, error) = CliHarness.Run("indexer-recall", "--model", "TinyV4", "--seeds", "2", "--steps", "2", "--batch", "2", "--out", folder.Path);

        Assert.True(code == 0, error);
        Assert.Contains("TinyV4: top-8 of the compressed entries each query sees, in its 1 compressed sparse attention layer(s)", output);
        Assert.Contains("TinyV4 seed 2: trained 2 steps", output);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder.Path, "results.json")));
        var runs = json.RootElement.GetProperty("runs").EnumerateArray().ToList();
        // 2 seeds × 2 states × 5 scorings: TinyV4's 32-wide index heads rule out FP8's 128-wide scale blocks.
        Assert.Equal(20, runs.Count);
        Assert.DoesNotContain(runs, r => r.GetProperty("scoring").GetString()!.StartsWith("FP8", System.StringComparison.Ordinal));
        Assert.All(runs, r => Assert.InRange(r.GetProperty("recall").GetDouble(), 0.3, 1.0));
        // Ratio 4 over 256 tokens: query t sees (t + 1) div 4 entries, more than the top 8 from t = 35 on: 221 per sequence.
        Assert.Equal(2 * 221, json.RootElement.GetProperty("model").GetProperty("queries").GetInt64());
        Assert.Contains("Hadamard rotation on FP4", output);
        Assert.DoesNotContain("FP8 instead of FP4", output);
    }

    [Fact]
    public void Indexer_recall_refuses_a_model_without_compressed_sparse_attention_naming_it()
    {
        using var folder = new TempFolder();
        var (code, _, error) = CliHarness.Run("indexer-recall", "--model", "TinyDecoder", "--seeds", "1", "--steps", "1", "--out", folder.Path);

        Assert.Equal(2, code);
        Assert.Contains("--model TinyDecoder has no compressed sparse attention layer", error);
    }

    [Theory]
    [InlineData("--dim", "96", "--dim 96 must be a power of two of at least 128")]
    [InlineData("--top-k", "5000", "--top-k 5000 must lie between 1 and the 4096 entries")]
    [InlineData("--outliers", "0", "--outliers 0 must lie between 1 and --dim (128)")]
    [InlineData("--outlier-scale", "0.5", "--outlier-scale 0.5 must be a finite factor above 1")]
    [InlineData("--seeds", "0", "--seeds must be at least 1")]
    public void Indexer_recall_refuses_sizes_that_cannot_work_naming_the_option(string option, string value, string message)
    {
        using var folder = new TempFolder();
        var (code, _, error) = CliHarness.Run("indexer-recall", option, value, "--out", folder.Path);

        Assert.Equal(2, code);
        Assert.Contains(message, error);
    }
}
