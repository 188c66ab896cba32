using System;
using System.Collections.Generic;
using LlmEff.Cli.Reporting;

namespace LlmEff.Cli.Tests;

/// <summary>The statistics behind every interval and mark the comparisons print.</summary>
public sealed class StatisticsTests
{
    [Theory]
    [InlineData(1, 12.706)]
    [InlineData(2, 4.303)]
    [InlineData(4, 2.776)]
    [InlineData(9, 2.262)]
    [InlineData(29, 2.045)]
    [InlineData(30, 2.042)]
    [InlineData(60, 2.000)]
    [InlineData(120, 1.980)]
    [InlineData(100_000, 1.960)]
    public void The_95_percent_t_critical_value_matches_the_t_distribution(int degreesOfFreedom, double expected) =>
        Assert.Equal(expected, Statistics.TCritical95(degreesOfFreedom), 3);

    [Fact]
    public void The_t_critical_value_falls_steadily_from_the_table_into_the_expansion()
    {
        for (var df = 2; df < 200; df++)
            Assert.True(Statistics.TCritical95(df) < Statistics.TCritical95(df - 1), $"df {df}");
    }

    [Fact]
    public void The_interval_of_one_to_five_is_three_plus_or_minus_t4_times_s_over_root_five()
    {
        var interval = Statistics.IntervalOf(new double[] { 1, 2, 3, 4, 5 });

        // s = √2.5 = 1.58114, t(0.975, 4) = 2.77645, half-width = 2.77645 · 1.58114 / √5 = 1.96324.
        Assert.Equal(3, interval.Mean, 12);
        Assert.Equal(1.58114, Statistics.SampleStandardDeviation(new double[] { 1, 2, 3, 4, 5 }), 5);
        Assert.Equal(1.96324, interval.HalfWidth!.Value, 5);
        Assert.Equal("3.000 ± 1.963", interval.Format(Statistics.Fixed(3)));
    }

    [Fact]
    public void One_value_gives_a_mean_without_an_interval()
    {
        var interval = Statistics.IntervalOf(new[] { 4.25 });

        Assert.Equal(4.25, interval.Mean);
        Assert.Null(interval.HalfWidth);
        Assert.Equal(Resolution.NoInterval, Statistics.Resolve(interval));
        Assert.Equal("1 seed: no interval", Statistics.Mark(Resolution.NoInterval));
    }

    [Fact]
    public void A_consistent_paired_difference_is_resolved_with_its_sign_even_when_the_seeds_vary_widely()
    {
        // The seeds move both configurations by far more than they differ, but every seed puts the variant 0.10-0.12 higher.
        var baseline = new Dictionary<int, double> { [1] = 1.0, [2] = 2.0, [3] = 3.0 };
        var variant = new Dictionary<int, double> { [1] = 1.10, [2] = 2.11, [3] = 3.12 };

        var difference = Statistics.Paired(variant, baseline);

        Assert.Equal(0.11, difference.Interval.Mean, 12);
        Assert.Equal(4.302653 * 0.01 / Math.Sqrt(3), difference.Interval.HalfWidth!.Value, 9);
        Assert.Equal(Resolution.Higher, difference.Resolution);
        Assert.Equal("+0.110 ± 0.025 resolved, higher", difference.Format(Statistics.Fixed(3)));
        Assert.Equal(Resolution.Lower, Statistics.Paired(baseline, variant).Resolution);
    }

    [Fact]
    public void A_paired_difference_whose_interval_contains_zero_is_not_resolved()
    {
        var baseline = new Dictionary<int, double> { [1] = 1.0, [2] = 1.0, [3] = 1.0 };
        var variant = new Dictionary<int, double> { [1] = 1.1, [2] = 0.9, [3] = 1.05 };

        var difference = Statistics.Paired(variant, baseline);

        Assert.True(difference.Interval.Low < 0 && difference.Interval.High > 0);
        Assert.Equal(Resolution.NotResolved, difference.Resolution);
        Assert.EndsWith("not resolved", difference.Format(Statistics.Fixed(3)));
    }

    [Fact]
    public void Differences_pair_by_seed_and_ignore_seeds_only_one_side_ran()
    {
        var baseline = new Dictionary<int, double> { [7] = 1.0, [8] = 5.0, [9] = 100.0 };
        var variant = new Dictionary<int, double> { [8] = 5.5, [7] = 1.5 };

        var difference = Statistics.Paired(variant, baseline);

        Assert.Equal((0.5, 2), (difference.Interval.Mean, difference.Interval.Count));
        Assert.Equal(0, difference.Interval.HalfWidth!.Value, 12);
        Assert.Equal(Resolution.Higher, difference.Resolution);
    }

    [Fact]
    public void Seeds_count_up_from_the_first_and_a_count_below_one_is_refused_naming_the_option()
    {
        Assert.Equal(new[] { 1234, 1235, 1236 }, Statistics.Seeds(1234, 3));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Statistics.Seeds(1234, 0));
        Assert.Equal("--seeds", error.ParamName);
        Assert.Equal(0, error.ActualValue);
    }
}
