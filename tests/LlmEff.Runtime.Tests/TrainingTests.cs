using System;
using System.Linq;
using LlmEff.Data;
using LlmEff.Samples;
using LlmEff.Training;

namespace LlmEff.Runtime.Tests;

/// <summary>A short run of the tiny sample model on the embedded corpus learns, and is reproducible.</summary>
public sealed class TrainingTests
{
    private static readonly TokenDataset Data = TokenDataset.EmbeddedDefault(characters: 60_000);

    [Fact]
    public void A_short_run_lowers_training_and_held_out_loss()
    {
        var options = new TrainingOptions { Steps = 40, BatchSize = 4, SequenceLength = 64, WarmupSteps = 4, EvalBatches = 4 };
        Seeding.Seed(options.Seed);
        using var model = new TinyDecoder();
        var initialHeldOut = Trainer.Evaluate(model, Data, options);

        var result = Trainer.Train(model, Data, options);

        Assert.InRange(initialHeldOut, Math.Log(256) - 0.5, Math.Log(256) + 0.5); // untrained ≈ uniform over bytes
        Assert.True(result.FinalTrainLoss < result.Losses[0] - 1.5, $"training loss {result.Losses[0]:F3} → {result.FinalTrainLoss:F3}");
        Assert.True(result.HeldOutLoss < initialHeldOut - 1.5, $"held-out loss {initialHeldOut:F3} → {result.HeldOutLoss:F3}");
        Assert.All(result.Losses, l => Assert.True(double.IsFinite(l)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void The_same_seed_settings_and_thread_count_give_bit_identical_losses(int threads)
    {
        var options = new TrainingOptions { Steps = 4, BatchSize = 2, SequenceLength = 32, WarmupSteps = 1, EvalBatches = 1, EvalEvery = 2 };

        long[] Run()
        {
            Seeding.Seed(options.Seed);
            using var model = new TinyDecoder();
            var result = Trainer.Train(model, Data, options);
            // Bits, not values: "identical" must not hide a difference in the last place behind a tolerance.
            return result.Losses.Append(result.HeldOutLoss).Concat(result.HeldOutCurve.Select(p => p.Loss)).Select(BitConverter.DoubleToInt64Bits).ToArray();
        }

        var previous = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(threads);
        try
        {
            Assert.Equal(Run(), Run());
        }
        finally
        {
            TorchSharp.torch.set_num_threads(previous);
        }
    }

    [Fact]
    public void The_trainer_reports_every_step_with_its_learning_rate()
    {
        var options = new TrainingOptions { Steps = 3, BatchSize = 1, SequenceLength = 16, WarmupSteps = 1, EvalBatches = 1 };
        Seeding.Seed(1);
        using var model = new TinyDecoder();
        var reports = new System.Collections.Generic.List<StepReport>();

        Trainer.Train(model, Data, options, reports.Add);

        Assert.Equal(new[] { 1, 2, 3 }, reports.Select(r => r.Step));
        Assert.Equal(options.LearningRate, reports[0].LearningRate, 12);
        Assert.All(reports, r => Assert.True(r.GradientNorm > 0 && r.TokensPerSecond > 0));
    }

    [Fact]
    public void Batches_depend_on_the_step_not_on_what_ran_before()
    {
        var options = new TrainingOptions { Steps = 4, BatchSize = 2, SequenceLength = 16, WarmupSteps = 1, EvalBatches = 1, EvalEvery = 2 };
        var seen = new RecordingData(Data);
        Seeding.Seed(options.Seed);
        using var model = new TinyDecoder();
        using var run = new TrainingRun(model, seen, options);

        var result = run.Complete();

        var again = new RecordingData(Data);
        using var other = new TrainingRun(new TinyDecoder(), again, options);
        other.Restore(run.Progress with { Losses = run.Losses.Take(2).ToList(), HeldOut = new[] { new HeldOutPoint(2, result.HeldOutCurve[0].Loss) } });
        other.Complete();
        Assert.Equal(seen.Batches.Skip(2), again.Batches);
        Assert.Equal(new[] { 2, 4 }, result.HeldOutCurve.Select(p => p.Step));
    }

    [Theory]
    [InlineData(1234, 0, -758335627)]
    [InlineData(1234, 1, -742730775)]
    [InlineData(7, 299, -2079835037)]
    public void Step_seeds_are_the_same_in_every_process(int seed, int step, int expected) =>
        // Pinned values (computed independently with SplitMix64): a per-process hash here would make a run
        // resumed in a new process see other batches than the one that wrote the checkpoint.
        Assert.Equal(expected, TrainingRun.StepSeed(seed, step));

    /// <summary>Remembers the first token of every training batch it hands out.</summary>
    private sealed class RecordingData(ITrainingData inner) : ITrainingData
    {
        public System.Collections.Generic.List<long> Batches { get; } = new();
        public int Vocab => inner.Vocab;

        public (TorchSharp.torch.Tensor Inputs, TorchSharp.torch.Tensor Targets) SampleTrain(Random random, int batch, int length)
        {
            var sample = inner.SampleTrain(random, batch, length);
            Batches.Add(sample.Inputs[0, 0].item<long>() * 1_000_000 + sample.Inputs[batch - 1, length - 1].item<long>());
            return sample;
        }

        public (TorchSharp.torch.Tensor Inputs, TorchSharp.torch.Tensor Targets) SampleHeldOut(Random random, int batch, int length) =>
            inner.SampleHeldOut(random, batch, length);
    }

    [Theory]
    [InlineData(0, 1, "Steps")]
    [InlineData(10, 11, "WarmupSteps")]
    public void Invalid_options_name_the_setting(int steps, int warmup, string name)
    {
        var options = new TrainingOptions { Steps = steps, WarmupSteps = warmup };

        var error = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Equal(name, error.ParamName);
    }
}
