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

    // Mixtures keep state outside their parameters: the selection bias and hash routing's token→experts table, a buffer
    // drawn at construction (the resumed model draws other values, so only the checkpoint can give them back); and which
    // experts have a gradient to step, even a zero one, which the optimizer's state tells (TrainingRun.Resume).
    [Theory]
    [InlineData("HashRoutedExperts", OptimizerKind.AdamW)]
    [InlineData("HashRoutedExperts", OptimizerKind.Muon)]
    [InlineData("TinyMoeDeepSeek", OptimizerKind.AdamW)]
    [InlineData("TinyMoe", OptimizerKind.AdamW)]
    public void A_mixture_resumes_bit_exactly_with_its_buffers(string name, OptimizerKind optimizer)
    {
        var declared = Zoo.ByName(name);
        var options = Options with { Optimizer = optimizer };
        Seeding.Seed(11);
        using var straight = declared.Create();
        var expected = Trainer.Train(straight, Data, options);

        Seeding.Seed(11);
        var path = Path.Combine(folder, $"{name}.{optimizer}.safetensors");
        using (var first = declared.Create())
        using (var run = new TrainingRun(first, Data, options))
        {
            for (var i = 0; i < 3; i++) run.Step();
            run.SaveCheckpoint(path, declared.Facts);
        }
        manual_seed(999);
        using var resumedModel = declared.Create();
        var drawnAgain = resumedModel.state_dict().Where(t => t.Key.EndsWith("tid2eid", StringComparison.Ordinal)).ToDictionary(t => t.Key, t => t.Value.clone());
        using var resumed = TrainingRun.Resume(path, resumedModel, declared.Facts, Data, options);
        var actual = resumed.Complete();

        Assert.Equal(name == "HashRoutedExperts" ? 1 : 0, drawnAgain.Count);
        foreach (var (table, drawn) in drawnAgain)
        {
            Assert.False(drawn.equal(resumedModel.state_dict()[table]).all().item<bool>());
            Assert.True(straight.state_dict()[table].equal(resumedModel.state_dict()[table]).all().item<bool>());
        }
        Assert.Equal(expected.Losses, actual.Losses);
        foreach (var ((tensorName, a), (_, b)) in straight.state_dict().Zip(resumedModel.state_dict()))
            Assert.True(a.equal(b).all().item<bool>(), $"{tensorName} differs after resuming");
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
