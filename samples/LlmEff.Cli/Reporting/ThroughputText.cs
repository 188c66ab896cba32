using System.Globalization;
using LlmEff.Training;

namespace LlmEff.Cli.Reporting;

/// <summary>Throughput lines: tokens/s, the model FLOP/s they amount to, and the utilisation against a matmul measured here.</summary>
internal static class ThroughputText
{
    public static string Of(ModelFacts facts, int sequenceLength, double tokensPerSecond, double peakFlops)
    {
        var achieved = tokensPerSecond * Throughput.TrainingFlopsPerToken(facts, sequenceLength);
        return string.Create(CultureInfo.InvariantCulture,
            $"{tokensPerSecond:N0} tok/s, {achieved / 1e9:F1} GFLOP/s of model arithmetic, MFU {achieved / peakFlops:P1}");
    }

    public static string Reference(double peakFlops) => string.Create(CultureInfo.InvariantCulture,
        $"MFU is measured against a 1024³ fp32 matmul on this machine: {peakFlops / 1e9:F1} GFLOP/s.");
}
