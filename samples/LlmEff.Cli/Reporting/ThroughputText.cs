using System.Globalization;
using LlmEff.Training;

namespace LlmEff.Cli.Reporting;

/// <summary>Throughput lines: tokens/s, the model FLOP/s they amount to, and the utilisation against a matmul measured
/// here before and after the runs; "not measured" when the machine was too busy for the reference to be trusted.</summary>
internal static class ThroughputText
{
    public static string Of(ModelFacts facts, int sequenceLength, double tokensPerSecond, MatmulPeak peak)
    {
        var achieved = Throughput.AchievedFlops(facts, sequenceLength, tokensPerSecond);
        var mfu = peak.Utilisation(achieved) is { } utilisation
            ? utilisation.ToString("P1", CultureInfo.InvariantCulture)
            : $"not measured ({peak.WhyNotMeasured(achieved)})";
        return string.Create(CultureInfo.InvariantCulture,
            $"{tokensPerSecond:N0} tok/s, {achieved / 1e9:F1} GFLOP/s of model arithmetic, MFU {mfu}");
    }

    public static string Reference(MatmulPeak peak) => peak.Flops is { } flops
        ? string.Create(CultureInfo.InvariantCulture, $"MFU is measured against the best 1024³ fp32 matmul on this machine, before and after the runs: {flops / 1e9:F1} GFLOP/s.")
        : string.Create(CultureInfo.InvariantCulture, $"MFU not measured: the reference 1024³ fp32 matmul ran at {peak.Before / 1e9:F1} GFLOP/s before the runs and {peak.After / 1e9:F1} after (the machine was busy).");
}
