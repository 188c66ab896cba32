using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Data;
using static TorchSharp.torch;

namespace LlmEff.Training;

/// <summary>What the trainer reports after every step.</summary>
/// <param name="Step">1-based step just completed.</param>
/// <param name="TotalSteps">Steps of the whole run.</param>
/// <param name="Loss">Its next-token loss.</param>
/// <param name="LearningRate">Its learning rate.</param>
/// <param name="GradientNorm">Global gradient norm before clipping (NaN without clipping).</param>
/// <param name="TokensPerSecond">Training throughput of this session so far.</param>
/// <param name="Elapsed">Training time of this session so far.</param>
/// <param name="FakeQuantized">Whether the step's forward pass used fake-quantized weights (<c>[Quant]</c>).</param>
/// <param name="QuantizationStarted">Whether this is the step at which fake quantization switched on: true for exactly one step of a run.</param>
public readonly record struct StepReport(int Step, int TotalSteps, double Loss, double LearningRate, double GradientNorm, double TokensPerSecond, TimeSpan Elapsed,
    bool FakeQuantized = false, bool QuantizationStarted = false);

/// <summary>Outcome of a run: per-step training losses, held-out losses along the way, the final held-out loss.</summary>
public sealed record TrainingResult(IReadOnlyList<double> Losses, IReadOnlyList<(int Step, double Loss)> HeldOutCurve, double HeldOutLoss, TimeSpan Elapsed, long TokensSeen)
{
    /// <summary>Mean training loss of the last tenth of the run (at least one step): less noisy than the last step.</summary>
    public double FinalTrainLoss => Losses.Skip(Losses.Count - Math.Max(1, Losses.Count / 10)).Average();
}

/// <summary>Convenience entry points over <see cref="TrainingRun"/>.</summary>
public static class Trainer
{
    /// <summary>Trains <paramref name="model"/> in place for <see cref="TrainingOptions.Steps"/> steps; <paramref name="onStep"/> sees every step.</summary>
    public static TrainingResult Train(nn.Module<Tensor, Tensor> model, ITrainingData data, TrainingOptions options, Action<StepReport>? onStep = null)
    {
        using var run = new TrainingRun(model, data, options);
        return run.Complete(onStep);
    }

    /// <summary>Mean cross-entropy over <see cref="TrainingOptions.EvalBatches"/> held-out batches (fixed seed, no gradients).</summary>
    public static double Evaluate(nn.Module<Tensor, Tensor> model, ITrainingData data, TrainingOptions options)
    {
        var random = new Random(options.Seed ^ 0x5EED);
        var device = model.parameters().First().device;
        var wasTraining = model.training;
        model.eval();
        double total = 0;
        using (no_grad())
        {
            for (var i = 0; i < options.EvalBatches; i++)
            {
                using var scope = NewDisposeScope();
                var (inputs, targets) = data.SampleHeldOut(random, options.BatchSize, options.SequenceLength);
                total += NextTokenLoss(model.forward(inputs.to(device)), targets.to(device)).item<float>();
            }
        }
        if (wasTraining) model.train();
        return total / options.EvalBatches;
    }

    /// <summary>Cross-entropy of logits [batch, time, vocab] against targets [batch, time].</summary>
    public static Tensor NextTokenLoss(Tensor logits, Tensor targets) =>
        nn.functional.cross_entropy(logits.view(-1, logits.shape[^1]), targets.view(-1));
}
