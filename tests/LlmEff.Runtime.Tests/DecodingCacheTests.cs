using System;
using System.Collections.Generic;
using LlmEff.Generation;
using TorchSharp;
using static TorchSharp.torch;
using static LlmEff.Runtime.Tests.DecodingTestMath;

namespace LlmEff.Runtime.Tests;

/// <summary>The decoding cache: growing streams, fixed states, capacity, ownership.</summary>
public sealed class DecodingCacheTests
{
    [Fact]
    public void Appended_streams_keep_every_value_across_buffer_growth()
    {
        manual_seed(1);
        using var cache = new DecodingCache(layers: 2, capacity: 70);
        using var scope = NewDisposeScope();
        var appended = new List<Tensor>();
        Tensor? view = null;
        // 1 + 5 + 17 + 30 + 1 crosses the first allocation (16) and two doublings, ending below the capacity.
        foreach (var count in new[] { 1, 5, 17, 30, 1 })
        {
            var items = randn(2, count, 3);
            appended.Add(items);
            view = cache[1].Append(0, items, dim: 1);
            Assert.Equal(0, MaxDifference(view, cat(appended.ToArray(), dim: 1)));
        }
        Assert.Equal(new long[] { 2, 54, 3 }, view!.shape);
        Assert.Equal(2 * 54 * 3, cache[1].Elements);
        Assert.Equal(54, cache[1].Length(0));
        cache.Advance(54);
        Assert.Equal(54 * 3, cache.ElementsPerBatchRow());

        var error = Assert.Throws<InvalidOperationException>(() => cache[1].Append(0, randn(2, 17, 3), dim: 1));
        Assert.Contains("70", error.Message);
        Assert.Throws<ArgumentException>(() => cache[1].Append(0, randn(2, 1, 4), dim: 1));
    }

    [Fact]
    public void Advancing_past_the_capacity_throws_naming_the_numbers()
    {
        using var cache = new DecodingCache(layers: 1, capacity: 10);
        cache.Advance(7);
        Assert.Equal(7, cache.Position);

        var error = Assert.Throws<InvalidOperationException>(() => cache.Advance(4));

        Assert.Contains("4", error.Message);
        Assert.Contains("7", error.Message);
        Assert.Contains("11", error.Message);
        Assert.Contains("10", error.Message);
        Assert.Equal(7, cache.Position);
        Assert.Equal("layer", Assert.Throws<ArgumentOutOfRangeException>(() => cache[1]).ParamName);
        Assert.Equal("capacity", Assert.Throws<ArgumentOutOfRangeException>(() => new DecodingCache(1, 0)).ParamName);
        Assert.Equal("layers", Assert.Throws<ArgumentOutOfRangeException>(() => new DecodingCache(0, 5)).ParamName);
    }

    [Fact]
    public void Fixed_states_are_copies_that_outlive_the_scope_that_made_them()
    {
        using var cache = new DecodingCache(layers: 1, capacity: 8);
        using (var scope = NewDisposeScope())
        {
            var value = ones(2, 3);
            cache[0].Set(5, value.narrow(1, 1, 2));
            value.fill_(7);
        }
        using var stored = cache[0].Get(5)!;
        Assert.Equal(new long[] { 2, 2 }, stored.shape);
        Assert.Equal(4, stored.sum().item<float>());
        Assert.Null(cache[0].Get(4));
        Assert.Throws<InvalidOperationException>(() => cache[0].Append(5, ones(1, 1), dim: 1));
        Assert.Equal(0, cache[0].Elements);
    }

    [Fact]
    public void Reset_forgets_everything_and_starts_at_position_zero()
    {
        using var cache = new DecodingCache(layers: 1, capacity: 8);
        using (var scope = NewDisposeScope()) cache[0].Append(0, ones(1, 3, 2), dim: 1);
        cache.Advance(3);

        cache.Reset();

        Assert.Equal(0, cache.Position);
        Assert.Equal(0, cache[0].Length(0));
        Assert.Equal(0, cache.ElementsPerBatchRow());
    }
}
