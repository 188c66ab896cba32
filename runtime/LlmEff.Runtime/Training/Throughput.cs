using System;
using System.Diagnostics;
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
    /// <summary>Median FLOP/s of <paramref name="size"/>³ fp32 matrix multiplications on <paramref name="device"/>.</summary>
    public static double MeasureMatmulFlops(Device? device = null, int size = 1024, int repeats = 5)
    {
        if (size <= 0 || repeats <= 0) throw new ArgumentOutOfRangeException(nameof(size), "size and repeats must be positive.");
        using var scope = NewDisposeScope();
        var a = randn(size, size, device: device);
        var b = randn(size, size, device: device);
        a.matmul(b).sum().item<float>(); // warm-up, and the item() waits for the device
        var seconds = Enumerable.Range(0, repeats).Select(_ =>
        {
            var clock = Stopwatch.StartNew();
            using var product = a.matmul(b);
            product.sum().item<float>();
            return clock.Elapsed.TotalSeconds;
        }).Order().ToList();
        return 2.0 * size * size * size / seconds[repeats / 2];
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
}
