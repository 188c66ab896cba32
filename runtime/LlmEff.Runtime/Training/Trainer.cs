using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using LlmEff.Data;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Training;

/// <summary>What the trainer reports after every step.</summary>
public readonly record struct StepReport(int Step, int TotalSteps, double Loss, double LearningRate, double GradientNorm, double TokensPerSecond, TimeSpan Elapsed);

/// <summary>Outcome of a run: per-step training losses and the final held-out loss.</summary>
public sealed record TrainingResult(IReadOnlyList<double> Losses, double HeldOutLoss, TimeSpan Elapsed, long TokensSeen)
{
    /// <summary>Mean training loss of the last tenth of the run (at least one step): less noisy than the last step.</summary>
    public double FinalTrainLoss => Losses.Skip(Losses.Count - Math.Max(1, Losses.Count / 10)).Average();
}

/// <summary>
/// Next-token training of any module mapping tokens [batch, time] to logits [batch, time, vocab]:
/// AdamW with decoupled weight decay on matrices, warm-up + cosine learning rate, global gradient clipping.
/// </summary>
public static class Trainer
{
    /// <summary>Trains <paramref name="model"/> in place; <paramref name="onStep"/> sees every step.</summary>
    public static TrainingResult Train(nn.Module<Tensor, Tensor> model, TokenDataset data, TrainingOptions options, Action<StepReport>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        options.Validate();
        var random = new Random(options.Seed);
        var device = model.parameters().First().device;
        using var optimizer = CreateOptimizer(model, options);
        var losses = new List<double>(options.Steps);
        var clock = Stopwatch.StartNew();
        long tokens = 0;
        model.train();
        for (var step = 0; step < options.Steps; step++)
        {
            var learningRate = LearningRateSchedule.WarmupCosine(step, options.Steps, options.WarmupSteps, options.LearningRate, options.FinalLearningRateFraction);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate;

            double loss, gradientNorm;
            using (NewDisposeScope())
            {
                var (inputs, targets) = data.Sample(random, options.BatchSize, options.SequenceLength);
                var logits = model.forward(inputs.to(device));
                var lossTensor = NextTokenLoss(logits, targets.to(device));
                optimizer.zero_grad();
                lossTensor.backward();
                gradientNorm = options.GradientClip > 0
                    ? nn.utils.clip_grad_norm_(model.parameters(), options.GradientClip)
                    : double.NaN;
                optimizer.step();
                loss = lossTensor.item<float>();
            }
            tokens += (long)options.BatchSize * options.SequenceLength;
            losses.Add(loss);
            onStep?.Invoke(new StepReport(step + 1, options.Steps, loss, learningRate, gradientNorm, tokens / Math.Max(1e-9, clock.Elapsed.TotalSeconds), clock.Elapsed));
        }
        var heldOut = Evaluate(model, data, options);
        return new TrainingResult(losses, heldOut, clock.Elapsed, tokens);
    }

    /// <summary>Mean cross-entropy over <see cref="TrainingOptions.EvalBatches"/> held-out batches (fixed seed, no gradients).</summary>
    public static double Evaluate(nn.Module<Tensor, Tensor> model, TokenDataset data, TrainingOptions options)
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
                var (inputs, targets) = data.Sample(random, options.BatchSize, options.SequenceLength, fromHeldOut: true);
                total += NextTokenLoss(model.forward(inputs.to(device)), targets.to(device)).item<float>();
            }
        }
        if (wasTraining) model.train();
        return total / options.EvalBatches;
    }

    /// <summary>Cross-entropy of logits [batch, time, vocab] against targets [batch, time].</summary>
    public static Tensor NextTokenLoss(Tensor logits, Tensor targets) =>
        nn.functional.cross_entropy(logits.view(-1, logits.shape[^1]), targets.view(-1));

    private static AdamW CreateOptimizer(nn.Module<Tensor, Tensor> model, TrainingOptions options)
    {
        // Decay matrices only: shrinking norm scales and biases toward zero hurts and buys no regularisation.
        var parameters = model.parameters().ToList();
        var decayed = parameters.Where(p => p.dim() >= 2).ToList();
        var plain = parameters.Where(p => p.dim() < 2).ToList();
        var groups = new List<AdamW.ParamGroup>
        {
            new(decayed, new AdamW.Options { weight_decay = options.WeightDecay }),
        };
        if (plain.Count > 0) groups.Add(new AdamW.ParamGroup(plain, new AdamW.Options { weight_decay = 0.0 }));
        return optim.AdamW(groups, options.LearningRate, options.Beta1, options.Beta2, 1e-8, options.WeightDecay);
    }
}
