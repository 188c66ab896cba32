using System;
using System.IO;
using System.Linq;
using LlmEff.Data;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Training;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>A run stopped at a checkpoint and resumed gives bit-for-bit the losses and weights of one that never stopped.</summary>
public sealed class ResumeTests : IDisposable
{
    private static readonly TokenDataset Data = TokenDataset.EmbeddedDefault(characters: 30_000);
    private static readonly TrainingOptions Options = new() { Steps = 6, BatchSize = 2, SequenceLength = 16, WarmupSteps = 2, EvalBatches = 1, EvalEvery = 2 };
    private readonly string folder = Directory.CreateTempSubdirectory("llmeff-resume-").FullName;

    // Each optimizer's state goes into the checkpoint (AdamW's moments, Muon's momentum buffers and its AdamW side).
    [Theory]
    [InlineData(OptimizerKind.AdamW)]
    [InlineData(OptimizerKind.Muon)]
    public void Resuming_from_a_checkpoint_continues_bit_exactly(OptimizerKind optimizer)
    {
        var options = Options with { Optimizer = optimizer };
        Seeding.Seed(11);
        using var straight = new FullMha();
        var expected = Trainer.Train(straight, Data, options);

        Seeding.Seed(11);
        var path = Path.Combine(folder, "half.safetensors");
        using (var first = new FullMha())
        using (var run = new TrainingRun(first, Data, options))
        {
            if (optimizer == OptimizerKind.Muon) Assert.IsType<Muon>(run.Optimizer);
            for (var i = 0; i < 3; i++) run.Step();
            run.SaveCheckpoint(path, FullMha.Facts);
        }
        manual_seed(999); // the resumed model starts from other weights: the checkpoint must overwrite them all
        using var resumedModel = new FullMha();
        using var resumed = TrainingRun.Resume(path, resumedModel, FullMha.Facts, Data, options);
        var actual = resumed.Complete();

        Assert.Equal(expected.Losses, actual.Losses);
        Assert.Equal(expected.HeldOutCurve, actual.HeldOutCurve);
        foreach (var ((name, a), (_, b)) in straight.named_parameters().Zip(resumedModel.named_parameters()))
            Assert.True(a.equal(b).all().item<bool>(), $"{name} differs after resuming");
    }

    [Fact]
    public void Resuming_with_other_settings_is_refused_with_both_settings_named()
    {
        var path = Path.Combine(folder, "other.safetensors");
        using (var model = new FullMha())
        using (var run = new TrainingRun(model, Data, Options))
        {
            run.Step();
            run.SaveCheckpoint(path, FullMha.Facts);
        }
        using var fresh = new FullMha();

        var error = Assert.Throws<InvalidOperationException>(() => TrainingRun.Resume(path, fresh, FullMha.Facts, Data, Options with { LearningRate = 1e-4 }));
        Assert.Contains("LearningRate: 0.003 in the checkpoint, 0.0001 now", error.Message);
        Assert.DoesNotContain("Steps", error.Message);
    }

    public void Dispose() => Directory.Delete(folder, recursive: true);
}
