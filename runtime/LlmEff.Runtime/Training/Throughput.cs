using System;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using static TorchSharp.torch;

namespace LlmEff.Training;

/// <summary>
/// Model FLOP utilisation: the FLOP/s a training run achieves on the model's own arithmetic, over the FLOP/s of a
/// large matrix multiplication measured on the same device and threads in the same process (so the ratio does
/// not depend on a datasheet figure that a CPU never reaches).
/// </summary>
public static class Throughput
{
    /// <summary>
    /// Best FLOP/s of <paramref name="repeats"/> <paramref name="size"/>³ fp32 matrix multiplications on
    /// <paramref name="device"/>: the fastest run is the one least disturbed by anything else on the machine, and a
    /// peak is a best case by definition (a median taken while other jobs ran gave MFU above 100%).
    /// </summary>
    public static double MeasureMatmulFlops(Device? device = null, int size = 1024, int repeats = 5)
    {
        if (size <= 0 || repeats <= 0) throw new ArgumentOutOfRangeException(nameof(size), "size and repeats must be positive.");
        using var scope = NewDisposeScope();
        var a = randn(size, size, device: device);
        var b = randn(size, size, device: device);
        a.matmul(b).sum().item<float>(); // warm-up, and the item() waits for the device
        var fastest = Enumerable.Range(0, repeats).Min(_ =>
        {
            var clock = Stopwatch.StartNew();
            using var product = a.matmul(b);
            product.sum().item<float>();
            return clock.Elapsed.TotalSeconds;
        });
        return 2.0 * size * size * size / fastest;
    }

    /// <summary>
    /// Training FLOPs per token of a model trained on sequences of <paramref name="sequenceLength"/>: forward plus
    /// backward (twice the forward), i.e. 3 × the forward FLOPs of a token at the mean position of a sequence.
    /// </summary>
    public static double TrainingFlopsPerToken(ModelFacts facts, int sequenceLength)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (sequenceLength <= 0 || sequenceLength > facts.Context)
            throw new ArgumentOutOfRangeException(nameof(sequenceLength), sequenceLength, $"Sequences run from 1 to the model's context of {facts.Context}.");
        // Attention's share grows linearly with the position; the rest is the same for every token.
        var attentionAtFullContext = facts.FlopsPerToken - facts.MatmulFlopsPerToken;
        var meanPosition = (sequenceLength + 1) / 2.0;
        return 3.0 * (facts.MatmulFlopsPerToken + attentionAtFullContext * meanPosition / facts.Context);
    }

    /// <summary>FLOP/s of model arithmetic that training at <paramref name="tokensPerSecond"/> amounts to.</summary>
    public static double AchievedFlops(ModelFacts facts, int sequenceLength, double tokensPerSecond) =>
        tokensPerSecond * TrainingFlopsPerToken(facts, sequenceLength);
}

/// <summary>
/// The matmul peak MFU is measured against, taken before and after the workload. Two bests that disagree by more
/// than <see cref="Tolerance"/> mean the machine was busy during one of them, and then no figure is trusted; an
/// utilisation above 100% proves the same, so it is never reported either.
/// </summary>
/// <param name="Before">Best matmul FLOP/s before the workload.</param>
/// <param name="After">Best matmul FLOP/s after it.</param>
public sealed record MatmulPeak(double Before, double After)
{
    /// <summary>How far the two measurements may differ, relative to the larger, and still be one machine's peak.
    /// Side-by-side runs on an idle 2-core machine stayed within 10%.</summary>
    public const double Tolerance = 0.25;

    /// <summary>Measures the peak before a workload; call <see cref="Complete"/> after it.</summary>
    public static double MeasureBefore(Device? device = null) => Throughput.MeasureMatmulFlops(device);

    /// <summary>Measures again after the workload and pairs it with <paramref name="before"/>.</summary>
    public static MatmulPeak Complete(double before, Device? device = null) => new(before, Throughput.MeasureMatmulFlops(device));

    /// <summary>The peak, or null when the two measurements disagree (the machine was busy).</summary>
    public double? Flops => Math.Abs(Before - After) <= Tolerance * Math.Max(Before, After) ? Math.Max(Before, After) : null;

    /// <summary><paramref name="achievedFlops"/> as a fraction of the peak, or null when the peak was not measured
    /// cleanly or the fraction would exceed 1 (which only a peak measured under load can produce).</summary>
    public double? Utilisation(double achievedFlops) =>
        Flops is { } peak && achievedFlops <= peak ? achievedFlops / peak : null;

    /// <summary>Why <see cref="Utilisation"/> gave no figure, for the report; null when it gave one.</summary>
    public string? WhyNotMeasured(double achievedFlops) =>
        Flops is not { } peak
            ? string.Create(CultureInfo.InvariantCulture, $"machine busy: the reference matmul ran at {Before / 1e9:F1} GFLOP/s before and {After / 1e9:F1} after")
            : achievedFlops > peak
                ? string.Create(CultureInfo.InvariantCulture, $"machine busy: the model ran at {achievedFlops / 1e9:F1} GFLOP/s, above the {peak / 1e9:F1} measured for the reference")
                : null;
}
