using System.Collections.Generic;

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
}

/// <summary>A whole comparison: what was run, on what, and the results.</summary>
/// <param name="Title">Heading of the report, e.g. "Attention ablation of TinyDecoder".</param>
/// <param name="Settings">Settings that were the same for every run (steps, batch, seed, data, machine...), in display order.</param>
/// <param name="Runs">One result per model, in the order run.</param>
/// <param name="Date">When the comparison ran, ISO 8601.</param>
public sealed record ComparisonReport(string Title, IReadOnlyList<KeyValuePair<string, string>> Settings, IReadOnlyList<RunResult> Runs, string Date);
