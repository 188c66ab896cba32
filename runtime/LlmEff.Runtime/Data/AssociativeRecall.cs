using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace LlmEff.Data;

/// <summary>
/// Synthetic associative recall, written in bytes so byte-level models read it directly: a list of key=value
/// pairs with distinct keys, a separator, then queries "key?value;" whose values must be looked up in the list:
/// <c>q=4;c=9;x=1;…|x?1;q?4;…</c>. Predicting the byte after '?' needs attention to find the earlier pair;
/// nothing local gives it away (values are uniform digits, chance is 10%).
/// </summary>
public sealed class AssociativeRecall
{
    /// <summary>Byte that precedes every answer; accuracy is measured on the byte after it.</summary>
    public const byte QueryMark = (byte)'?';

    private const int PairBytes = 4; // "k=v;" and "k?v;"

    /// <summary>A task whose sequences are <paramref name="length"/> bytes long with <paramref name="pairs"/> pairs.</summary>
    public AssociativeRecall(int length, int pairs)
    {
        if (pairs < 1 || pairs > 26) throw new ArgumentOutOfRangeException(nameof(pairs), pairs, "Pairs must lie in 1..26 (keys are the letters a-z).");
        if (length < pairs * PairBytes + 1 + PairBytes + 1)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"{pairs} pairs need sequences of at least {pairs * PairBytes + PairBytes + 2} bytes.");
        Length = length;
        Pairs = pairs;
    }

    /// <summary>Bytes per sequence (inputs; targets are the same sequence shifted by one).</summary>
    public int Length { get; }

    /// <summary>Key-value pairs listed before the queries.</summary>
    public int Pairs { get; }

    /// <summary>A fresh sequence of <see cref="Length"/> + 1 bytes (one extra for the last target).</summary>
    public long[] Sequence(Random random)
    {
        var keys = Enumerable.Range('a', 26).OrderBy(_ => random.Next()).Take(Pairs).Select(k => (byte)k).ToArray();
        var values = keys.Select(_ => (byte)('0' + random.Next(10))).ToArray();
        var bytes = new List<byte>(Length + PairBytes + 1);
        for (var i = 0; i < Pairs; i++) bytes.AddRange(new[] { keys[i], (byte)'=', values[i], (byte)';' });
        bytes.Add((byte)'|');
        while (bytes.Count < Length + 1)
        {
            var i = random.Next(Pairs);
            bytes.AddRange(new[] { keys[i], QueryMark, values[i], (byte)';' });
        }
        return bytes.Take(Length + 1).Select(b => (long)b).ToArray();
    }

    /// <summary>Target id that the loss skips (cross-entropy's default ignore index).</summary>
    public const long Ignored = -100;

    /// <summary>
    /// A batch of inputs and next-byte targets, each [batch, <see cref="Length"/>]. With
    /// <paramref name="answersOnly"/>, every target but the answers is <see cref="Ignored"/>: the listed keys and
    /// values are random, so their loss is noise that slows learning the lookup (as in MQAR training).
    /// </summary>
    public (Tensor Inputs, Tensor Targets) Sample(Random random, int batch, bool answersOnly = false)
    {
        var inputs = new long[batch * Length];
        var targets = new long[batch * Length];
        for (var b = 0; b < batch; b++)
        {
            var sequence = Sequence(random);
            Array.Copy(sequence, 0, inputs, b * Length, Length);
            Array.Copy(sequence, 1, targets, b * Length, Length);
        }
        if (answersOnly)
            for (var i = 0; i < inputs.Length; i++)
                if (inputs[i] != QueryMark) targets[i] = Ignored;
        return (tensor(inputs, new long[] { batch, Length }), tensor(targets, new long[] { batch, Length }));
    }

    /// <summary>
    /// Share of answers the model gets right by greedy prediction: at every input position holding
    /// <see cref="QueryMark"/> after the separator, whether the argmax of its logits is the value listed for that key.
    /// </summary>
    public double Accuracy(nn.Module<Tensor, Tensor> model, int sequences, int seed)
    {
        var random = new Random(seed);
        var device = model.parameters().First().device;
        var wasTraining = model.training;
        model.eval();
        long correct = 0, total = 0;
        using (no_grad())
        {
            const int batch = 16;
            for (var done = 0; done < sequences; done += batch)
            {
                using var scope = NewDisposeScope();
                var size = Math.Min(batch, sequences - done);
                var (inputs, targets) = Sample(random, size);
                var predicted = model.forward(inputs.to(device)).argmax(-1).cpu();
                var isAnswer = inputs.eq(QueryMark);
                correct += (predicted.eq(targets) & isAnswer).sum().item<long>();
                total += isAnswer.sum().item<long>();
            }
        }
        if (wasTraining) model.train();
        return total == 0 ? 0 : (double)correct / total;
    }
}

/// <summary>
/// The embedded default data of the main job: the synthetic text corpus, with a share of every training batch
/// replaced by associative-recall sequences (trained on their answers only), so one run yields both a
/// language-modelling loss (held-out text) and a lookup accuracy (<see cref="AssociativeRecall.Accuracy"/>).
/// </summary>
public sealed class TextWithRecall : ITrainingData
{
    /// <summary>Mixes <paramref name="recallShare"/> of each training batch's rows from <paramref name="recall"/>.</summary>
    public TextWithRecall(TokenDataset text, AssociativeRecall recall, double recallShare = 0.5)
    {
        if (text.Vocab < 256) throw new ArgumentException($"Recall sequences are bytes; the text's vocabulary ({text.Vocab}) must cover 256.", nameof(text));
        if (recallShare < 0 || recallShare > 1) throw new ArgumentOutOfRangeException(nameof(recallShare), recallShare, "Share must lie in [0, 1].");
        Text = text;
        Recall = recall;
        RecallShare = recallShare;
    }

    /// <summary>The text part; held-out batches come from it alone.</summary>
    public TokenDataset Text { get; }

    /// <summary>The recall task.</summary>
    public AssociativeRecall Recall { get; }

    /// <summary>Share of training rows that are recall sequences.</summary>
    public double RecallShare { get; }

    /// <inheritdoc/>
    public int Vocab => Text.Vocab;

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) SampleTrain(Random random, int batch, int length)
    {
        if (length != Recall.Length) throw new ArgumentException($"Sequence length {length} differs from the recall task's {Recall.Length}.", nameof(length));
        var recallRows = (int)Math.Round(batch * RecallShare);
        if (recallRows == 0) return Text.SampleTrain(random, batch, length);
        if (recallRows == batch) return Recall.Sample(random, batch, answersOnly: true);
        using var scope = NewDisposeScope();
        var (textInputs, textTargets) = Text.SampleTrain(random, batch - recallRows, length);
        var (recallInputs, recallTargets) = Recall.Sample(random, recallRows, answersOnly: true);
        return (cat(new[] { textInputs, recallInputs }).MoveToOuterDisposeScope(), cat(new[] { textTargets, recallTargets }).MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) SampleHeldOut(Random random, int batch, int length) => Text.SampleHeldOut(random, batch, length);
}
