using System;
using LlmEff.Runtime.Tests.Models;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>Shape, causality and input checks of every generated forward.</summary>
public sealed class ForwardTests
{
    public static TheoryDataFor Decoders => Zoo.NamesWhere(f => f.Causal);
    public static TheoryDataFor Encoders => Zoo.NamesWhere(f => !f.Causal);

    [Theory]
    [MemberData(nameof(Decoders))]
    public void Changing_token_t_never_changes_logits_before_t(string name)
    {
        var (prefixChange, suffixChange) = ChangeAfterEditing(name);
        Assert.True(prefixChange < 1e-12, $"positions before the edit moved by {prefixChange}");
        Assert.True(suffixChange > 1e-6, $"positions from the edit on did not react ({suffixChange})");
    }

    [Theory]
    [MemberData(nameof(Encoders))]
    public void An_encoder_sees_the_whole_sequence(string name)
    {
        var (prefixChange, suffixChange) = ChangeAfterEditing(name);
        Assert.True(prefixChange > 1e-6, $"positions before the edit did not react ({prefixChange})");
        Assert.True(suffixChange > 1e-6, $"positions from the edit on did not react ({suffixChange})");
    }

    /// <summary>Largest logit change before and from position 9 when token 9 of each sequence changes.</summary>
    private static (double Before, double After) ChangeAfterEditing(string name)
    {
        var declared = Zoo.ByName(name);
        manual_seed(7);
        using var model = declared.Create(dtype: ScalarType.Float64);
        model.eval();
        const int time = 16, changed = 9;
        var random = new Random(3);
        var ids = new long[2 * time];
        for (var i = 0; i < ids.Length; i++) ids[i] = random.Next(declared.Facts.Vocab);
        using var tokens = tensor(ids, new long[] { 2, time });
        ids[changed] = (ids[changed] + 1) % declared.Facts.Vocab;
        ids[time + changed] = (ids[time + changed] + 1) % declared.Facts.Vocab;
        using var edited = tensor(ids, new long[] { 2, time });

        using var _ = no_grad();
        using var before = model.forward(tokens);
        using var after = model.forward(edited);

        Assert.Equal(new long[] { 2, time, declared.Facts.Vocab }, before.shape);
        return ((before.narrow(1, 0, changed) - after.narrow(1, 0, changed)).abs().max().item<double>(),
                (before.narrow(1, changed, time - changed) - after.narrow(1, changed, time - changed)).abs().max().item<double>());
    }

    [Fact]
    public void Sequences_longer_than_the_context_are_refused_with_the_numbers()
    {
        using var model = new LlmEff.Samples.TinyDecoder();
        using var tokens = zeros(new long[] { 1, 257 }, ScalarType.Int64);

        var error = Assert.Throws<ArgumentException>(() => model.forward(tokens));
        Assert.Contains("257 tokens exceed the declared context of 256", error.Message);
    }
}
