using System;

namespace LlmEff.Training;

/// <summary>Linear warm-up to the peak, then cosine decay to a floor (nanoGPT's schedule).</summary>
public static class LearningRateSchedule
{
    /// <summary>Learning rate for 0-based <paramref name="step"/> of <paramref name="totalSteps"/>.</summary>
    public static double WarmupCosine(int step, int totalSteps, int warmupSteps, double peak, double finalFraction)
    {
        if (step < warmupSteps) return peak * (step + 1) / warmupSteps;
        var decaySteps = Math.Max(1, totalSteps - warmupSteps);
        var progress = Math.Min(1.0, (double)(step - warmupSteps) / decaySteps);
        var floor = peak * finalFraction;
        return floor + 0.5 * (peak - floor) * (1 + Math.Cos(Math.PI * progress));
    }
}
