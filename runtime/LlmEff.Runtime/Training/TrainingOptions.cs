using System;

namespace LlmEff.Training;

/// <summary>Hyper-parameters of one training run. Defaults suit the tiny sample model on 2 CPU cores.</summary>
public sealed record TrainingOptions
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 200;
    /// <summary>Sequences per step.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Tokens per sequence.</summary>
    public int SequenceLength { get; init; } = 128;
    /// <summary>Peak learning rate, reached at the end of warm-up.</summary>
    public double LearningRate { get; init; } = 3e-3;
    /// <summary>Learning rate at the end of the cosine decay, as a fraction of the peak.</summary>
    public double FinalLearningRateFraction { get; init; } = 0.1;
    /// <summary>Linear warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 20;
    /// <summary>Decoupled weight decay, applied to matrices only (not to norms, biases or 1-D tensors).</summary>
    public double WeightDecay { get; init; } = 0.1;
    /// <summary>The optimizer: AdamW for everything, or Muon for hidden weight matrices with AdamW for the rest
    /// (<see cref="Training.Muon"/>). Learning rate, schedule, weight decay and clipping apply to both.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    /// <summary>AdamW β₁.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW β₂.</summary>
    public double Beta2 { get; init; } = 0.95;
    /// <summary>Global gradient-norm clip; 0 disables clipping.</summary>
    public double GradientClip { get; init; } = 1.0;
    /// <summary>Seeds weights (when the caller builds the model after <see cref="Seeding.Seed"/>) and batch sampling.</summary>
    public int Seed { get; init; } = 1234;
    /// <summary>Held-out batches averaged for the evaluation loss.</summary>
    public int EvalBatches { get; init; } = 8;
    /// <summary>Evaluate on held-out data every this many steps (0: only at the end).</summary>
    public int EvalEvery { get; init; }
    /// <summary>For models with <c>[Quant]</c>: the fraction of the steps after which fake quantization switches on,
    /// overriding the declared <c>From</c>; 1 trains in full precision throughout (to quantize after training).
    /// Null: as declared. Models without <c>[Quant]</c> ignore it.</summary>
    public double? QatFrom { get; init; }

    /// <summary>Throws with the name and value of the first setting out of range.</summary>
    public void Validate()
    {
        static void Positive(string name, double value)
        {
            if (!(value > 0)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
        }
        Positive(nameof(Steps), Steps);
        Positive(nameof(BatchSize), BatchSize);
        Positive(nameof(SequenceLength), SequenceLength);
        Positive(nameof(LearningRate), LearningRate);
        Positive(nameof(EvalBatches), EvalBatches);
        if (WarmupSteps < 0 || WarmupSteps > Steps) throw new ArgumentOutOfRangeException(nameof(WarmupSteps), WarmupSteps, $"WarmupSteps must lie in 0..Steps ({Steps}).");
        if (FinalLearningRateFraction < 0 || FinalLearningRateFraction > 1) throw new ArgumentOutOfRangeException(nameof(FinalLearningRateFraction), FinalLearningRateFraction, "FinalLearningRateFraction must lie in [0, 1].");
        if (WeightDecay < 0) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must not be negative.");
        if (EvalEvery < 0) throw new ArgumentOutOfRangeException(nameof(EvalEvery), EvalEvery, "EvalEvery must not be negative.");
        if (GradientClip < 0) throw new ArgumentOutOfRangeException(nameof(GradientClip), GradientClip, "GradientClip must not be negative.");
        if (Beta1 < 0 || Beta1 >= 1) throw new ArgumentOutOfRangeException(nameof(Beta1), Beta1, "Beta1 must lie in [0, 1).");
        if (QatFrom is { } from && from is not (>= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(QatFrom), from, "QatFrom must lie in [0, 1] (1: no fake quantization during training).");
        if (!Enum.IsDefined(Optimizer)) throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer, "Optimizer must be AdamW or Muon.");
        if (Beta2 < 0 || Beta2 >= 1) throw new ArgumentOutOfRangeException(nameof(Beta2), Beta2, "Beta2 must lie in [0, 1).");
    }
}
