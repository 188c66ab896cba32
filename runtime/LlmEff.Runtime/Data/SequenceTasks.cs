using System;
using System.Linq;
using static TorchSharp.torch;

namespace LlmEff.Data;

/// <summary>The QKV study's five synthetic sequence tasks over the symbols 0-9 (one target symbol per input position).</summary>
public enum SequenceTask
{
    /// <summary>The list backwards.</summary>
    Reverse,
    /// <summary>The list in ascending order.</summary>
    Sort,
    /// <summary>Each element x becomes 9 − x.</summary>
    Sub,
    /// <summary>First and second halves exchanged (even lengths only).</summary>
    Swap,
    /// <summary>The list itself.</summary>
    Copy,
}

/// <summary>
/// One task's data as the study trains it: <see cref="TrainCount"/> training and <see cref="TestCount"/> test
/// lists of uniform symbols, generated from a seed; training batches walk shuffled epochs in order.
/// </summary>
public sealed class SequenceTaskData : ITrainingData
{
    /// <summary>Symbols 0-9.</summary>
    public const int Symbols = 10;

    private readonly long[] trainInputs, trainTargets, testInputs, testTargets;
    private readonly Random shuffler;
    private int[] order = Array.Empty<int>();
    private int cursor;

    /// <summary>Generates the task's data for sequences of <paramref name="length"/> symbols.</summary>
    /// <param name="task">The task.</param>
    /// <param name="length">Symbols per sequence.</param>
    /// <param name="trainCount">Training sequences.</param>
    /// <param name="testCount">Test sequences.</param>
    /// <param name="seed">Seeds the sequences and the order of every epoch: two instances of one seed serve identical
    /// batches in identical order (how the study pairs its variants).</param>
    /// <param name="epochBatches">Batches end with their epoch: the last batch of an epoch holds what is left of it
    /// (the QKV study's code walks <c>perm[i:i + batch]</c>); otherwise a batch runs on into the next epoch.</param>
    public SequenceTaskData(SequenceTask task, int length, int trainCount = 10_000, int testCount = 2_000, int seed = 1, bool epochBatches = false)
    {
        EpochBatches = epochBatches;
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "Sequences need at least one symbol.");
        if (task == SequenceTask.Swap && length % 2 != 0) throw new ArgumentException($"SWAP exchanges two halves: the length must be even, not {length}.", nameof(length));
        if (trainCount < 1 || testCount < 1) throw new ArgumentOutOfRangeException(nameof(trainCount), "Both splits need at least one sequence.");
        Task = task;
        Length = length;
        var random = new Random(seed);
        (trainInputs, trainTargets) = Generate(task, trainCount, length, random);
        (testInputs, testTargets) = Generate(task, testCount, length, random);
        shuffler = new Random(seed ^ 0x51F7);
    }

    /// <summary>The task.</summary>
    public SequenceTask Task { get; }

    /// <summary>Whether batches end with their epoch (the last one shorter).</summary>
    public bool EpochBatches { get; }

    /// <summary>Batches of <paramref name="batch"/> sequences one pass over the training set takes.</summary>
    public int BatchesPerEpoch(int batch) =>
        batch > 0 ? EpochBatches ? (TrainCount + batch - 1) / batch : Math.Max(1, TrainCount / batch)
            : throw new ArgumentOutOfRangeException(nameof(batch), batch, "A batch holds at least one sequence.");

    /// <summary>Symbols per sequence.</summary>
    public int Length { get; }

    /// <summary>Training sequences.</summary>
    public int TrainCount => trainInputs.Length / Length;

    /// <summary>Test sequences.</summary>
    public int TestCount => testInputs.Length / Length;

    /// <inheritdoc/>
    public int Vocab => Symbols;

    /// <summary>The target of one input list.</summary>
    public static long[] Target(SequenceTask task, ReadOnlySpan<long> input)
    {
        var list = input.ToArray();
        return task switch
        {
            SequenceTask.Reverse => list.Reverse().ToArray(),
            SequenceTask.Sort => list.Order().ToArray(),
            SequenceTask.Sub => list.Select(x => 9 - x).ToArray(),
            SequenceTask.Swap => list[(list.Length / 2)..].Concat(list[..(list.Length / 2)]).ToArray(),
            SequenceTask.Copy => list,
            _ => throw new ArgumentOutOfRangeException(nameof(task), task, "Unknown task."),
        };
    }

    /// <summary>
    /// The next <paramref name="batch"/> training sequences of the current shuffled epoch (a new shuffle when one
    /// ends; with <see cref="EpochBatches"/>, fewer at the end of an epoch). The <paramref name="random"/> argument is
    /// unused: the walk through epochs is the data's own state, so it depends on the seed alone.
    /// </summary>
    public (Tensor Inputs, Tensor Targets) SampleTrain(Random random, int batch, int length)
    {
        CheckLength(length);
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "A batch holds at least one sequence.");
        if (cursor == order.Length)
        {
            order = Enumerable.Range(0, TrainCount).OrderBy(_ => shuffler.Next()).ToArray();
            cursor = 0;
        }
        var rows = EpochBatches ? Math.Min(batch, order.Length - cursor) : batch;
        var inputs = new long[rows * Length];
        var targets = new long[rows * Length];
        for (var b = 0; b < rows; b++)
        {
            if (cursor == order.Length)
            {
                order = Enumerable.Range(0, TrainCount).OrderBy(_ => shuffler.Next()).ToArray();
                cursor = 0;
            }
            var row = order[cursor++];
            Array.Copy(trainInputs, row * Length, inputs, b * Length, Length);
            Array.Copy(trainTargets, row * Length, targets, b * Length, Length);
        }
        return (tensor(inputs, new long[] { rows, Length }), tensor(targets, new long[] { rows, Length }));
    }

    /// <summary>Random test sequences (for a held-out loss along the way).</summary>
    public (Tensor Inputs, Tensor Targets) SampleHeldOut(Random random, int batch, int length)
    {
        CheckLength(length);
        var rows = Enumerable.Range(0, batch).Select(_ => random.Next(TestCount)).ToArray();
        return (Rows(testInputs, rows), Rows(testTargets, rows));
    }

    /// <summary>Share of test symbols predicted right (argmax per position), over every test sequence.</summary>
    public double TokenAccuracy(nn.Module<Tensor, Tensor> model, int batch = 250)
    {
        var device = model.parameters().First().device;
        var wasTraining = model.training;
        model.eval();
        long correct = 0;
        using (no_grad())
        {
            for (var start = 0; start < TestCount; start += batch)
            {
                using var scope = NewDisposeScope();
                var rows = Enumerable.Range(start, Math.Min(batch, TestCount - start)).ToArray();
                var predicted = model.forward(Rows(testInputs, rows).to(device)).argmax(-1).cpu();
                correct += predicted.eq(Rows(testTargets, rows)).sum().item<long>();
            }
        }
        if (wasTraining) model.train();
        return (double)correct / testTargets.Length;
    }

    /// <summary>The test inputs of the given rows, e.g. to look at attention maps.</summary>
    public Tensor TestInputs(int count) => Rows(testInputs, Enumerable.Range(0, Math.Min(count, TestCount)).ToArray());

    private Tensor Rows(long[] source, int[] rows)
    {
        var data = new long[rows.Length * Length];
        for (var i = 0; i < rows.Length; i++) Array.Copy(source, rows[i] * Length, data, i * Length, Length);
        return tensor(data, new long[] { rows.Length, Length });
    }

    private void CheckLength(int length)
    {
        if (length != Length) throw new ArgumentException($"The task's sequences have {Length} symbols, not {length}.", nameof(length));
    }

    private static (long[] Inputs, long[] Targets) Generate(SequenceTask task, int count, int length, Random random)
    {
        var inputs = new long[count * length];
        var targets = new long[count * length];
        for (var i = 0; i < count; i++)
        {
            var input = new long[length];
            for (var t = 0; t < length; t++) input[t] = random.Next(Symbols);
            input.CopyTo(inputs, i * length);
            Target(task, input).CopyTo(targets, i * length);
        }
        return (inputs, targets);
    }
}
