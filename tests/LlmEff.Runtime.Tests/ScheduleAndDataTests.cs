using System;
using System.Linq;
using LlmEff.Data;
using LlmEff.Training;

namespace LlmEff.Runtime.Tests;

/// <summary>Learning-rate schedule and the embedded data: pure functions, checked by hand.</summary>
public sealed class ScheduleAndDataTests
{
    [Fact]
    public void Warmup_rises_linearly_to_the_peak_then_cosine_decays_to_the_floor()
    {
        double Rate(int step) => LearningRateSchedule.WarmupCosine(step, totalSteps: 110, warmupSteps: 10, peak: 1.0, finalFraction: 0.1);

        Assert.Equal(0.1, Rate(0), 12);
        Assert.Equal(1.0, Rate(9), 12);
        Assert.Equal(1.0, Rate(10), 12);
        Assert.Equal(0.55, Rate(60), 12); // halfway through the decay: midpoint of peak and floor
        Assert.Equal(0.1, Rate(110), 12);
        var decay = Enumerable.Range(10, 100).Select(Rate).ToArray();
        Assert.True(decay.Zip(decay.Skip(1)).All(p => p.Second <= p.First));
    }

    [Fact]
    public void The_corpus_is_deterministic_in_its_seed()
    {
        Assert.Equal(SyntheticCorpus.Generate(5000, seed: 3), SyntheticCorpus.Generate(5000, seed: 3));
        Assert.NotEqual(SyntheticCorpus.Generate(5000, seed: 3), SyntheticCorpus.Generate(5000, seed: 4));
        Assert.Equal(5000, SyntheticCorpus.Generate(5000).Length);
        Assert.Contains("The end.", SyntheticCorpus.Generate(5000));
    }

    [Fact]
    public void Byte_tokens_round_trip_any_text()
    {
        var tokenizer = new ByteTokenizer();
        const string text = "Grüße, 世界! \"quoted\"\n";

        var tokens = tokenizer.Encode(text);

        Assert.Equal(text, tokenizer.Decode(tokens));
        Assert.All(tokens, t => Assert.InRange(t, 0, 255));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode(new long[] { 300 }));
    }

    [Fact]
    public void Batches_pair_each_input_with_the_next_token()
    {
        var tokens = Enumerable.Range(0, 200).Select(i => (long)(i % 50)).ToArray();
        var data = new TokenDataset(tokens, vocab: 50);

        var (inputs, targets) = data.Sample(new Random(1), batch: 3, length: 10);

        Assert.Equal(new long[] { 3, 10 }, inputs.shape);
        var x = inputs.data<long>().ToArray();
        var y = targets.data<long>().ToArray();
        Assert.All(Enumerable.Range(0, x.Length), i => Assert.Equal((x[i] + 1) % 50, y[i]));
    }

    [Fact]
    public void Tokens_outside_the_vocabulary_are_refused_with_their_position()
    {
        var error = Assert.Throws<ArgumentException>(() => new TokenDataset(new long[] { 1, 2, 70, 3 }, vocab: 64));

        Assert.Contains("Token 70 at index 2", error.Message);
    }
}
