using System;
using System.Linq;
using LlmEff.Data;

namespace LlmEff.Runtime.Tests;

/// <summary>The five synthetic tasks of the QKV study, checked by hand.</summary>
public sealed class SequenceTaskTests
{
    private static readonly long[] Input = { 3, 1, 4, 1, 5, 9 };

    [Theory]
    [InlineData(SequenceTask.Reverse, new long[] { 9, 5, 1, 4, 1, 3 })]
    [InlineData(SequenceTask.Sort, new long[] { 1, 1, 3, 4, 5, 9 })]
    [InlineData(SequenceTask.Sub, new long[] { 6, 8, 5, 8, 4, 0 })]
    [InlineData(SequenceTask.Swap, new long[] { 1, 5, 9, 3, 1, 4 })]
    [InlineData(SequenceTask.Copy, new long[] { 3, 1, 4, 1, 5, 9 })]
    public void Each_task_maps_a_list_to_its_target(SequenceTask task, long[] expected) =>
        Assert.Equal(expected, SequenceTaskData.Target(task, Input));

    [Fact]
    public void Data_is_uniform_symbols_regenerated_per_seed_with_consistent_targets()
    {
        var data = new SequenceTaskData(SequenceTask.Reverse, length: 8, trainCount: 500, testCount: 100, seed: 4);
        var (inputs, targets) = data.SampleTrain(new Random(0), batch: 500, length: 8);

        var symbols = inputs.data<long>().ToArray();
        Assert.All(Enumerable.Range(0, 10), s => Assert.InRange(symbols.Count(x => x == s), 300, 500)); // 4,000 draws, ≈400 each
        for (var row = 0; row < 500; row++)
            Assert.Equal(SequenceTaskData.Target(SequenceTask.Reverse, symbols.AsSpan(row * 8, 8)), targets[row].data<long>().ToArray());
        Assert.NotEqual(data.TestInputs(5).data<long>().ToArray(), new SequenceTaskData(SequenceTask.Reverse, 8, 500, 100, seed: 5).TestInputs(5).data<long>().ToArray());
    }

    [Fact]
    public void Training_batches_walk_whole_epochs_before_repeating()
    {
        var data = new SequenceTaskData(SequenceTask.Copy, length: 4, trainCount: 10, testCount: 2, seed: 1);

        var firstEpoch = Enumerable.Range(0, 5).SelectMany(_ => Rows(data.SampleTrain(new Random(0), 2, 4).Inputs)).ToList();

        Assert.Equal(10, firstEpoch.Distinct().Count()); // every training sequence once (distinct with overwhelming probability)
    }

    [Fact]
    public void Two_instances_of_one_seed_serve_identical_batches_in_identical_order_and_another_seed_does_not()
    {
        // How the study pairs its variants: each variant of a seed builds its data afresh from the seed.
        static string[] Batches(int seed, Random unused)
        {
            var data = new SequenceTaskData(SequenceTask.Reverse, length: 4, trainCount: 10, testCount: 2, seed: seed);
            return Enumerable.Range(0, 7).SelectMany(_ => Rows(data.SampleTrain(unused, 3, 4).Inputs)).ToArray(); // into the third epoch
        }

        Assert.Equal(Batches(3, new Random(1)), Batches(3, new Random(2))); // the argument does not steer the order
        Assert.NotEqual(Batches(3, new Random(1)), Batches(4, new Random(1)));
    }

    [Fact]
    public void Epoch_batches_end_with_their_epoch_as_the_study_authors_code_slices_them()
    {
        var data = new SequenceTaskData(SequenceTask.Copy, length: 4, trainCount: 10, testCount: 2, seed: 1, epochBatches: true);

        var sizes = Enumerable.Range(0, 6).Select(_ => data.SampleTrain(new Random(0), 4, 4).Inputs.shape[0]).ToArray();

        Assert.Equal(new long[] { 4, 4, 2, 4, 4, 2 }, sizes); // ⌈10/4⌉ = 3 batches an epoch, the last of 2
        Assert.Equal(3, data.BatchesPerEpoch(4));
        Assert.Equal(79, new SequenceTaskData(SequenceTask.Copy, 16, 10_000, 2, 1, epochBatches: true).BatchesPerEpoch(128)); // 158 steps in 2 epochs
        Assert.Equal(2, new SequenceTaskData(SequenceTask.Copy, 4, 10, 2, 1).BatchesPerEpoch(4)); // running on: ⌊10/4⌋
    }

    [Fact]
    public void Swap_refuses_odd_lengths()
    {
        var error = Assert.Throws<ArgumentException>(() => new SequenceTaskData(SequenceTask.Swap, length: 7));
        Assert.Contains("even", error.Message);
    }

    private static string[] Rows(TorchSharp.torch.Tensor batch) =>
        Enumerable.Range(0, (int)batch.shape[0]).Select(r => string.Join(",", batch[r].data<long>().ToArray())).ToArray();
}
