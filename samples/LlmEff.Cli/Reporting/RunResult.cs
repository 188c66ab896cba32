using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Serialization;

namespace LlmEff.Cli.Reporting;

/// <summary>One trained model of a comparison, with what the report shows about it.</summary>
/// <param name="Model">Declared model name, e.g. "TinyNoKey".</param>
/// <param name="Description">Short label of what differs, e.g. "NoKey (K := V)".</param>
/// <param name="Parameters">Trainable parameters.</param>
/// <param name="AttentionParameters">Parameters of attention, all layers.</param>
/// <param name="KvBytesPerToken">KV cache bytes per token in bf16.</param>
/// <param name="TrainLosses">Training loss of every step, in order.</param>
/// <param name="HeldOutCurve">Held-out loss at evaluation points: (step, loss), in order; the last is the final one.</param>
/// <param name="FinalTrainLoss">Mean training loss of the last tenth of the steps.</param>
/// <param name="HeldOutLoss">Final held-out cross-entropy, nats per token.</param>
/// <param name="RecallAccuracy">Accuracy on the associative-recall queries (0..1), or null when not measured.</param>
/// <param name="TokensPerSecond">Training tokens per second over the run.</param>
/// <param name="WallSeconds">Wall-clock seconds of the run (training and evaluation).</param>
public sealed record RunResult(
    string Model,
    string Description,
    long Parameters,
    long AttentionParameters,
    long KvBytesPerToken,
    IReadOnlyList<double> TrainLosses,
    IReadOnlyList<(int Step, double Loss)> HeldOutCurve,
    double FinalTrainLoss,
    double HeldOutLoss,
    double? RecallAccuracy,
    double TokensPerSecond,
    double WallSeconds)
{
    /// <summary>exp(held-out loss).</summary>
    public double Perplexity => System.Math.Exp(HeldOutLoss);

    /// <summary>Seed of weights and batches; runs of different models with the same seed are paired.</summary>
    public int Seed { get; init; }
}

/// <summary>All seeds of one model in a comparison: means with intervals, and differences from the baseline paired by seed.</summary>
/// <param name="Model">Declared model name.</param>
/// <param name="Description">Short label of what differs.</param>
/// <param name="Runs">This model's runs, one per seed, in seed order.</param>
/// <param name="HeldOutLoss">Held-out loss over the seeds.</param>
/// <param name="RecallAccuracy">Recall accuracy over the seeds, or null when not measured.</param>
/// <param name="HeldOutLossVersusBaseline">Held-out loss minus the baseline's, paired by seed; null for the baseline itself.</param>
/// <param name="RecallVersusBaseline">Recall minus the baseline's, paired by seed; null for the baseline or when not measured.</param>
public sealed record ModelSummary(
    string Model,
    string Description,
    [property: JsonIgnore] IReadOnlyList<RunResult> Runs,
    Interval HeldOutLoss,
    Interval? RecallAccuracy,
    PairedDifference? HeldOutLossVersusBaseline,
    PairedDifference? RecallVersusBaseline)
{
    /// <summary>Seeds this model ran.</summary>
    public IReadOnlyList<int> Seeds => Runs.Select(r => r.Seed).ToList();

    /// <summary>Groups <paramref name="runs"/> by model in first-seen order; the first model is the baseline.</summary>
    public static IReadOnlyList<ModelSummary> Of(IReadOnlyList<RunResult> runs)
    {
        var groups = runs.GroupBy(r => r.Model).Select(g => g.OrderBy(r => r.Seed).ToList()).ToList();
        if (groups.Count == 0) return [];
        var baseline = groups[0];
        return groups.Select((group, i) =>
        {
            var recall = group.All(r => r.RecallAccuracy is not null) ? Statistics.IntervalOf(group.Select(r => r.RecallAccuracy!.Value).ToList()) : null;
            PairedDifference? heldOutDifference = null, recallDifference = null;
            if (i > 0)
            {
                heldOutDifference = Statistics.Paired(group.ToDictionary(r => r.Seed, r => r.HeldOutLoss), baseline.ToDictionary(r => r.Seed, r => r.HeldOutLoss));
                if (recall is not null && baseline.All(r => r.RecallAccuracy is not null))
                    recallDifference = Statistics.Paired(group.ToDictionary(r => r.Seed, r => r.RecallAccuracy!.Value), baseline.ToDictionary(r => r.Seed, r => r.RecallAccuracy!.Value));
            }
            return new ModelSummary(group[0].Model, group[0].Description, group,
                Statistics.IntervalOf(group.Select(r => r.HeldOutLoss).ToList()), recall, heldOutDifference, recallDifference);
        }).ToList();
    }
}

/// <summary>A whole comparison: what was run, on what, and the results.</summary>
/// <param name="Title">Heading of the report, e.g. "Attention ablation of TinyDecoder".</param>
/// <param name="Settings">Settings that were the same for every run (steps, batch, seed, data, machine...), in display order.</param>
/// <param name="Runs">One result per model and seed, in the order run (all seeds of a model together); the first model is the baseline.</param>
/// <param name="Date">When the comparison ran, ISO 8601.</param>
public sealed record ComparisonReport(string Title, IReadOnlyList<KeyValuePair<string, string>> Settings, IReadOnlyList<RunResult> Runs, string Date)
{
    /// <summary>Per model: means ± 95% intervals over seeds and paired differences from the baseline (written to
    /// results.json as "models"; recomputed from the runs when read back).</summary>
    public IReadOnlyList<ModelSummary> Models => ModelSummary.Of(Runs);
}
