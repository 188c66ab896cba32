using System;
using static TorchSharp.torch;

namespace LlmEff.Data;

/// <summary>A token stream split into training and held-out parts, from which random windows are drawn.</summary>
public sealed class TokenDataset : ITrainingData
{
    private readonly long[] train;
    private readonly long[] heldOut;

    /// <summary>Splits <paramref name="tokens"/>: the last <paramref name="heldOutFraction"/> is held out.</summary>
    public TokenDataset(long[] tokens, int vocab, double heldOutFraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (heldOutFraction <= 0 || heldOutFraction >= 1) throw new ArgumentOutOfRangeException(nameof(heldOutFraction), heldOutFraction, "Held-out fraction must lie in (0, 1).");
        for (var i = 0; i < tokens.Length; i++)
            if ((ulong)tokens[i] >= (ulong)vocab) throw new ArgumentException($"Token {tokens[i]} at index {i} is outside the vocabulary of {vocab}.", nameof(tokens));
        var split = (int)(tokens.Length * (1 - heldOutFraction));
        train = tokens[..split];
        heldOut = tokens[split..];
        Vocab = vocab;
    }

    /// <summary>Vocabulary the tokens were checked against.</summary>
    public int Vocab { get; }

    /// <summary>Training tokens.</summary>
    public int TrainTokens => train.Length;

    /// <summary>Held-out tokens.</summary>
    public int HeldOutTokens => heldOut.Length;

    /// <summary>The training split, in order (to hand the same data to another trainer).</summary>
    public ReadOnlySpan<long> TrainSplit => train;

    /// <summary>The held-out split, in order.</summary>
    public ReadOnlySpan<long> HeldOutSplit => heldOut;

    /// <summary>The default data: the embedded synthetic corpus, byte-tokenized.</summary>
    public static TokenDataset EmbeddedDefault(int characters = 400_000, int seed = 1) =>
        new(new ByteTokenizer().Encode(SyntheticCorpus.Generate(characters, seed)), ByteTokenizer.Vocab);

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) SampleTrain(Random random, int batch, int length) => Sample(random, batch, length);

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) SampleHeldOut(Random random, int batch, int length) => Sample(random, batch, length, fromHeldOut: true);

    /// <summary>A batch of inputs and next-token targets, each [batch, length], from random offsets.</summary>
    public (Tensor Inputs, Tensor Targets) Sample(Random random, int batch, int length, bool fromHeldOut = false)
    {
        var source = fromHeldOut ? heldOut : train;
        if (source.Length < length + 1)
            throw new InvalidOperationException($"The {(fromHeldOut ? "held-out" : "training")} split has {source.Length} tokens, fewer than one window of {length + 1}.");
        var inputs = new long[batch * length];
        var targets = new long[batch * length];
        for (var b = 0; b < batch; b++)
        {
            var start = random.Next(source.Length - length);
            Array.Copy(source, start, inputs, b * length, length);
            Array.Copy(source, start + 1, targets, b * length, length);
        }
        return (tensor(inputs, new long[] { batch, length }), tensor(targets, new long[] { batch, length }));
    }
}
