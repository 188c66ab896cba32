using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using LlmEff.Checkpoints;
using LlmEff.Data;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Training;

/// <summary>A training run that is stopped for good: the loss or the gradient stopped being a number.</summary>
public sealed class TrainingDivergedException(int step, string what) : Exception($"Training diverged at step {step}: {what}. Lower the learning rate or check the data.")
{
    /// <summary>1-based step at which it happened.</summary>
    public int Step { get; } = step;
}

/// <summary>
/// Next-token training of any module mapping tokens [batch, time] to logits [batch, time, vocab], one step at a
/// time: AdamW with decoupled weight decay on matrices only (or Muon for hidden matrices, <see cref="Muon"/>), warm-up + cosine learning rate, global gradient
/// clipping. Batches depend only on the seed and the step number, so a run resumed from a checkpoint sees the
/// same data as one that never stopped.
/// </summary>
public sealed class TrainingRun : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> model;
    private readonly ITrainingData data;
    private readonly Device device;
    private readonly OptimizerHelper optimizer;
    private readonly IReadOnlyList<Layers.ExpertRouter> routers;
    private readonly IReadOnlyList<IAuxiliaryLoss> auxiliaryLosses;
    private readonly IReadOnlyList<Layers.QuantizedLinear> quantizedLayers;
    private readonly List<double> losses = new();
    private readonly List<(int Step, double Loss)> heldOut = new();
    private readonly Stopwatch clock = new();
    private long tokensThisSession;

    /// <summary>Prepares a run; nothing is trained until <see cref="Step"/> or <see cref="Complete"/>.</summary>
    public TrainingRun(nn.Module<Tensor, Tensor> model, ITrainingData data, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        options.Validate();
        NativeAllocator.ReturnFreedMemory();
        this.model = model;
        this.data = data;
        Options = options;
        quantizedLayers = Layers.QuantizedLinear.In(model);
        if (quantizedLayers.Any(l => l.Packed is not null))
            throw new InvalidOperationException("The model runs from packed weights, which are for inference; train the full-precision model and pack it afterwards.");
        device = model.parameters().First().device;
        optimizer = CreateOptimizer(model, options);
        routers = Layers.ExpertRouter.In(model);
        auxiliaryLosses = AuxiliaryLosses.In(model);
        if (quantizedLayers.Count > 0)
        {
            // One [Quant] declaration drives every layer, so they agree; the option overrides it.
            var from = options.QatFrom ?? quantizedLayers[0].Quantization!.From;
            QuantizationStartStep = Layers.WeightQuantization.StartStep(from, options.Steps);
        }
    }

    /// <summary>For a model with <c>[Quant]</c>: the first 0-based step whose forward pass fake-quantizes the targeted
    /// weights, <c>floor(From · Steps)</c> (<see cref="TrainingOptions.Steps"/> when it never does); null for a
    /// model without quantized layers.</summary>
    public int? QuantizationStartStep { get; }

    /// <summary>The layers whose weights fake quantization applies to (empty without <c>[Quant]</c>).</summary>
    public IReadOnlyList<Layers.QuantizedLinear> QuantizedLayers => quantizedLayers;

    /// <summary>The mixture-of-experts routers of the model, in layer order (empty for dense models): their
    /// <see cref="Layers.ExpertRouter.Load"/> shows how evenly the experts are used.</summary>
    public IReadOnlyList<Layers.ExpertRouter> Routers => routers;

    /// <summary>The run's settings.</summary>
    public TrainingOptions Options { get; }

    /// <summary>The optimizer (TorchSharp's <see cref="AdamW"/> or <see cref="Training.Muon"/>, as <see cref="TrainingOptions.Optimizer"/>
    /// says), whose state a checkpoint carries.</summary>
    public OptimizerHelper Optimizer => optimizer;

    /// <summary>Steps completed, including those of the run this one resumed.</summary>
    public int StepsDone => losses.Count;

    /// <summary>Training loss of every completed step.</summary>
    public IReadOnlyList<double> Losses => losses;

    /// <summary>Held-out loss at every evaluation point so far.</summary>
    public IReadOnlyList<(int Step, double Loss)> HeldOutCurve => heldOut;

    /// <summary>Whether every step has run.</summary>
    public bool IsComplete => StepsDone >= Options.Steps;

    /// <summary>Runs one optimizer step and reports it.</summary>
    public StepReport Step()
    {
        if (IsComplete) throw new InvalidOperationException($"All {Options.Steps} steps have run.");
        clock.Start();
        var step = StepsDone;
        var learningRate = LearningRateSchedule.WarmupCosine(step, Options.Steps, Options.WarmupSteps, Options.LearningRate, Options.FinalLearningRateFraction);
        foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate;
        // Set from the step number every time, so a resumed run quantizes exactly the steps the uninterrupted one would.
        var fakeQuantized = SetFakeQuantization(step);

        double loss, gradientNorm;
        model.train();
        using (NewDisposeScope())
        {
            var (inputs, targets) = data.SampleTrain(BatchRandom(step), Options.BatchSize, Options.SequenceLength);
            var lossTensor = Trainer.NextTokenLoss(model.forward(inputs.to(device)), targets.to(device));
            loss = lossTensor.item<float>();
            if (!double.IsFinite(loss)) throw new TrainingDivergedException(step + 1, $"the loss is {loss}");
            optimizer.zero_grad();
            // Reported losses stay pure next-token losses, comparable across models; balancing terms only steer.
            WithAuxiliaryLosses(lossTensor).backward();
            gradientNorm = Options.GradientClip > 0 ? nn.utils.clip_grad_norm_(model.parameters(), Options.GradientClip) : double.NaN;
            if (Options.GradientClip > 0 && !double.IsFinite(gradientNorm))
                throw new TrainingDivergedException(step + 1, $"the gradient norm is {gradientNorm}");
            optimizer.step();
        }
        foreach (var router in routers) router.UpdateSelectionBias();
        losses.Add(loss);
        tokensThisSession += (long)Options.BatchSize * Options.SequenceLength;
        if (Options.EvalEvery > 0 && StepsDone % Options.EvalEvery == 0 && !IsComplete)
            heldOut.Add((StepsDone, Trainer.Evaluate(model, data, Options)));
        clock.Stop();
        return new StepReport(StepsDone, Options.Steps, loss, learningRate, gradientNorm, tokensThisSession / Math.Max(1e-9, clock.Elapsed.TotalSeconds), clock.Elapsed,
            fakeQuantized, fakeQuantized && step == QuantizationStartStep);
    }

    /// <summary>Runs the remaining steps, then the final held-out evaluation.</summary>
    public TrainingResult Complete(Action<StepReport>? onStep = null)
    {
        while (!IsComplete)
        {
            var report = Step();
            onStep?.Invoke(report);
        }
        clock.Start();
        // The final evaluation sees the weights as the last step did (a resumed, already complete run included).
        if (StepsDone > 0) SetFakeQuantization(StepsDone - 1);
        var final = Trainer.Evaluate(model, data, Options);
        if (heldOut.Count == 0 || heldOut[^1].Step != StepsDone) heldOut.Add((StepsDone, final));
        clock.Stop();
        return new TrainingResult(losses.ToList(), heldOut.ToList(), final, clock.Elapsed, (long)StepsDone * Options.BatchSize * Options.SequenceLength);
    }

    /// <summary>Progress that a checkpoint must carry to continue this run exactly.</summary>
    public TrainingProgress Progress => new(Options, losses.ToList(), heldOut.Select(p => new HeldOutPoint(p.Step, p.Loss)).ToList());

    /// <summary>Restores progress saved by <see cref="Progress"/>; weights and optimizer state are the checkpoint's business.</summary>
    public void Restore(TrainingProgress progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        if (progress.Options != Options)
            throw new InvalidOperationException($"The checkpoint was trained with other settings than this run ({Differences(progress.Options, Options)}); " +
                "resume with the same ones, since the learning-rate schedule and the batches depend on them.");
        if (progress.Losses.Count > Options.Steps)
            throw new InvalidOperationException($"The checkpoint has done {progress.Losses.Count} steps, more than the {Options.Steps} of this run.");
        losses.Clear();
        losses.AddRange(progress.Losses);
        heldOut.Clear();
        heldOut.AddRange(progress.HeldOut.Select(p => (p.Step, p.Loss)));
    }

    /// <summary>Writes weights, optimizer state and progress to one checkpoint file (atomically).</summary>
    public void SaveCheckpoint(string path, ModelFacts facts) =>
        Checkpoint.Save(path, model, facts, optimizer, Progress.ToJson());

    /// <summary>
    /// Continues the run saved in <paramref name="path"/>: loads weights into <paramref name="model"/> and the
    /// optimizer state, and restores progress. The continued run repeats exactly what the uninterrupted one
    /// would have done (same batches, same optimizer state), provided <paramref name="options"/> are the same.
    /// </summary>
    public static TrainingRun Resume(string path, nn.Module<Tensor, Tensor> model, ModelFacts facts, ITrainingData data, TrainingOptions options)
    {
        var run = new TrainingRun(model, data, options);
        try
        {
            var loaded = Checkpoint.Load(path, model, facts, run.optimizer);
            var progress = loaded.TrainerState is { } json
                ? TrainingProgress.FromJson(json)
                : throw new System.IO.InvalidDataException($"{path} holds weights only, no training progress: it cannot be resumed (load it for generation instead).");
            run.Restore(progress);
            run.RestoreGradientPresence();
            return run;
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    /// <summary>
    /// After the optimizer's state is restored, gives every parameter the optimizer has stepped a zero gradient, as it
    /// has in the run that saved the checkpoint: <c>zero_grad()</c> zeroes gradients rather than dropping them, so there a
    /// parameter that once had a gradient keeps taking steps (momentum, weight decay) when a batch gives it none, as a
    /// mixture's unchosen experts do, while a freshly built model's parameters have none and the optimizer skips them.
    /// Without this a resumed mixture drifted from the uninterrupted run from its second step on (found while testing
    /// hash routing's checkpoints; dense models were unaffected, every parameter has a gradient every step).
    /// </summary>
    private void RestoreGradientPresence()
    {
        // state_dict() lists the parameters' states group by group, in the groups' parameter order.
        var states = optimizer.state_dict().State;
        var parameters = optimizer.ParamGroups.OfType<ParamGroup>().SelectMany(g => g.Parameters).ToList();
        for (var i = 0; i < parameters.Count && i < states.Count; i++)
        {
            var stepped = states[i] switch
            {
                AdamW.State adam => adam.step > 0,
                Muon.State muon => muon.Step > 0,
                _ => false,
            };
            if (stepped && parameters[i].grad is null) parameters[i].grad = zeros_like(parameters[i]);
        }
    }

    /// <summary>Switches fake quantization on for 0-based <paramref name="step"/> when it is at or past the start step,
    /// off otherwise; returns which.</summary>
    private bool SetFakeQuantization(int step)
    {
        var on = step >= QuantizationStartStep;
        foreach (var layer in quantizedLayers) layer.FakeQuantize = on;
        return on;
    }

    // Routers' balancing terms only steer routing; sparse-attention indexers learn only from their own loss (their
    // input is detached), so adding it steers nothing else. The sum's gradient does not depend on the order of terms.
    private Tensor WithAuxiliaryLosses(Tensor loss)
    {
        foreach (var module in auxiliaryLosses)
        {
            if (module.TakeAuxiliaryLoss() is not { } auxiliary) continue;
            using (auxiliary) loss = loss + auxiliary;
        }
        return loss;
    }

    /// <summary>Releases the optimizer's state.</summary>
    public void Dispose() => optimizer.Dispose();

    // A generator per step: the batch of step s is the same whether or not the run was interrupted before s,
    // and in every process (HashCode.Combine would not do: it is seeded randomly per process).
    private Random BatchRandom(int step) => new(StepSeed(Options.Seed, step));

    /// <summary>A well-mixed seed for <paramref name="step"/> of a run seeded with <paramref name="seed"/> (SplitMix64 finaliser).</summary>
    internal static int StepSeed(int seed, int step)
    {
        var z = unchecked(((ulong)(uint)seed << 32 | (uint)step) + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (int)(z ^ (z >> 31));
    }

    /// <summary>"Steps: 8 in the checkpoint, 12 now; …" for every setting that differs.</summary>
    private static string Differences(TrainingOptions saved, TrainingOptions now) =>
        string.Join("; ", typeof(TrainingOptions).GetProperties()
            .Where(p => !Equals(p.GetValue(saved), p.GetValue(now)))
            .Select(p => FormattableString.Invariant($"{p.Name}: {p.GetValue(saved)} in the checkpoint, {p.GetValue(now)} now")));

    private static OptimizerHelper CreateOptimizer(nn.Module<Tensor, Tensor> model, TrainingOptions options)
    {
        if (options.Optimizer == OptimizerKind.Muon)
            return Muon.For(model, options.LearningRate, options.WeightDecay, options.Beta1, options.Beta2);
        // Decay matrices only: shrinking norm scales and biases toward zero hurts and buys no regularisation.
        var parameters = model.parameters().ToList();
        var groups = new List<AdamW.ParamGroup>
        {
            new(parameters.Where(p => p.dim() >= 2), new AdamW.Options { weight_decay = options.WeightDecay }),
        };
        var plain = parameters.Where(p => p.dim() < 2).ToList();
        if (plain.Count > 0) groups.Add(new AdamW.ParamGroup(plain, new AdamW.Options { weight_decay = 0.0 }));
        return optim.AdamW(groups, options.LearningRate, options.Beta1, options.Beta2, 1e-8, options.WeightDecay);
    }
}

/// <summary>One held-out evaluation: after <paramref name="Step"/> steps, the mean loss.</summary>
public sealed record HeldOutPoint(int Step, double Loss);

/// <summary>Everything besides weights and optimizer state that a run needs to continue exactly.</summary>
/// <param name="Options">The run's settings (a resumed run must use the same).</param>
/// <param name="Losses">Training loss of every completed step.</param>
/// <param name="HeldOut">Held-out evaluations so far.</param>
public sealed record TrainingProgress(TrainingOptions Options, IReadOnlyList<double> Losses, IReadOnlyList<HeldOutPoint> HeldOut)
{
    /// <summary>JSON form stored inside checkpoints.</summary>
    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads <see cref="ToJson"/>'s output; a malformed text gives an <see cref="System.IO.InvalidDataException"/>.</summary>
    public static TrainingProgress FromJson(string json)
    {
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<TrainingProgress>(json, JsonOptions)
                   ?? throw new System.IO.InvalidDataException("The checkpoint's training progress is empty.");
        }
        catch (System.Text.Json.JsonException error)
        {
            throw new System.IO.InvalidDataException($"The checkpoint's training progress is not readable: {error.Message}", error);
        }
    }

    private static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new() { WriteIndented = false };
}
