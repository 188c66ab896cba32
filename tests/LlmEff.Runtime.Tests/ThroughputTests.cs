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
}
