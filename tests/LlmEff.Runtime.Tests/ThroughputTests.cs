using LlmEff.Samples;
using LlmEff.Training;

namespace LlmEff.Runtime.Tests;

/// <summary>The FLOP accounting behind the CLI's MFU figure.</summary>
public sealed class ThroughputTests
{
    [Fact]
    public void Training_flops_are_three_forwards_at_the_mean_position()
    {
        // TinyDecoder: 4 layers, 4 heads of 64, context 256; attention at position p costs 4 · 4 · 4 · 64 · p FLOPs.
        var facts = TinyDecoder.Facts;
        var attentionPerPosition = 4.0 * 4 * 4 * 64;

        Assert.Equal(facts.FlopsPerToken, facts.MatmulFlopsPerToken + attentionPerPosition * 256);
        Assert.Equal(3 * (facts.MatmulFlopsPerToken + attentionPerPosition * 64.5), Throughput.TrainingFlopsPerToken(facts, 128), 6);
        Assert.Throws<System.ArgumentOutOfRangeException>(() => Throughput.TrainingFlopsPerToken(facts, 257));
    }

    [Fact]
    public void A_matmul_reference_is_measured_in_flops_per_second()
    {
        var flops = Throughput.MeasureMatmulFlops(size: 128, repeats: 3);

        Assert.InRange(flops, 1e7, 1e14);
    }

    [Fact]
    public void A_peak_measured_before_and_after_that_disagree_is_not_trusted()
    {
        var peak = new MatmulPeak(Before: 80e9, After: 30e9);

        Assert.Null(peak.Flops);
        Assert.Null(peak.Utilisation(5e9));
        Assert.Contains("machine busy", peak.WhyNotMeasured(5e9));
    }

    [Fact]
    public void Agreeing_measurements_give_the_best_as_the_peak()
    {
        var peak = new MatmulPeak(Before: 70e9, After: 80e9);

        Assert.Equal(80e9, peak.Flops);
        Assert.Equal(0.25, peak.Utilisation(20e9)!.Value, 12);
        Assert.Null(peak.WhyNotMeasured(20e9));
    }

    [Fact]
    public void Utilisation_is_never_reported_above_one()
    {
        var peak = new MatmulPeak(Before: 70e9, After: 80e9);

        Assert.Null(peak.Utilisation(81e9));
        Assert.Contains("above the 80.0 measured", peak.WhyNotMeasured(81e9));
    }
}
