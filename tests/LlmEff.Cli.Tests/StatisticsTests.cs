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
    public void A_clear_two_fold_slowdown_is_resolved_even_when_the_machine_drifts_between_rounds()
    {
        // The machine speeds up and slows down by 40% from round to round; within each round the variant takes 1.9-2.1x.
        var baseline = new[] { 100.0, 140.0, 90.0, 120.0, 100.0 };
        var variant = new[] { 200.0, 266.0, 189.0, 240.0, 205.0 };

        var ratio = Statistics.Ratio(variant, baseline);

        Assert.Equal(2.0, ratio.GeometricMean, 1);
        Assert.True(ratio.Low > 1.8 && ratio.High < 2.2, ratio.Format());
        Assert.Equal(Resolution.Higher, ratio.Resolution);
        Assert.EndsWith("resolved, higher", ratio.Format());
        var inverse = Statistics.Ratio(baseline, variant);
        Assert.Equal(Resolution.Lower, inverse.Resolution);
        Assert.Equal(1 / ratio.GeometricMean, inverse.GeometricMean, 12);
    }

    [Fact]
    public void A_ratio_whose_interval_contains_one_is_not_resolved()
    {
        var baseline = new[] { 105.0, 100.0, 100.0 };
        var variant = new[] { 100.0, 110.0, 95.0 };

        var ratio = Statistics.Ratio(variant, baseline);

        Assert.True(ratio.Low < 1 && ratio.High > 1, ratio.Format());
        Assert.Equal(Resolution.NotResolved, ratio.Resolution);
        Assert.EndsWith("not resolved", ratio.Format());
    }

    [Fact]
    public void The_ratio_is_the_geometric_mean_of_the_per_round_ratios_with_a_t_interval_on_their_logs()
    {
        // Ratios 2 and 8: geometric mean 4 (the arithmetic mean would be 5); logs ln 2 and ln 8 have s = √2·ln 2, so
        // the half-width of the log interval is t(0.975, 1)·√2·ln 2/√2 = 12.706205·ln 2.
        var ratio = Statistics.Ratio(new[] { 2.0, 80.0 }, new[] { 1.0, 10.0 });

        Assert.Equal(4, ratio.GeometricMean, 12);
        Assert.Equal(4 * Math.Pow(2, -12.706205), ratio.Low, 9);
        Assert.Equal(4 * Math.Pow(2, 12.706205), ratio.High, 3);
        Assert.Equal(2, ratio.Count);
        Assert.Equal(Resolution.NotResolved, ratio.Resolution);
    }

    [Fact]
    public void One_round_gives_a_ratio_without_an_interval_or_a_mark()
    {
        var ratio = Statistics.Ratio(new[] { 150.0 }, new[] { 100.0 });

        Assert.Equal(1.5, ratio.GeometricMean, 12);
        Assert.Equal(Resolution.NoInterval, ratio.Resolution);
        Assert.Equal("1.50", ratio.Format(2));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-3.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void A_ratio_refuses_a_time_that_is_not_positive_and_finite_naming_it(double bad)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Statistics.Ratio(new[] { 1.0, bad }, new[] { 1.0, 1.0 }));
        Assert.Equal("values", error.ParamName);
        Assert.Contains("Round 1", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Statistics.Ratio(new[] { 1.0, 1.0 }, new[] { bad, 1.0 }));
    }

    [Fact]
    public void A_ratio_refuses_lists_of_different_lengths_since_it_pairs_rounds_by_position()
    {
        var error = Assert.Throws<ArgumentException>(() => Statistics.Ratio(new[] { 1.0, 2.0, 3.0 }, new[] { 1.0, 2.0 }));
        Assert.Contains("3 values and 2 baseline values", error.Message);
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
