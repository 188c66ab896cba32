using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.Json.Serialization;

namespace LlmEff.Cli.Reporting;

/// <summary>A mean over seeds with its two-sided 95% confidence interval (Student t), or no interval from one seed.</summary>
/// <param name="Mean">Mean of the values.</param>
/// <param name="HalfWidth">t·s/√n; null when there are fewer than two values, since one value says nothing about spread.</param>
/// <param name="Count">Number of values (seeds).</param>
public sealed record Interval(double Mean, double? HalfWidth, int Count)
{
    /// <summary>Lower end, or the mean when there is no interval.</summary>
    public double Low => Mean - (HalfWidth ?? 0);

    /// <summary>Upper end, or the mean when there is no interval.</summary>
    public double High => Mean + (HalfWidth ?? 0);

    /// <summary>"mean ± half-width", each through <paramref name="format"/>; the mean alone from one seed (tables then
    /// say "1 seed: no interval" once, below, rather than in every cell).</summary>
    public string Format(Func<double, string> format) =>
        HalfWidth is { } half ? $"{format(Mean)} ± {format(half)}" : format(Mean);
}

/// <summary>Whether a paired difference from the baseline is told apart from zero at 95%.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Resolution>))]
public enum Resolution
{
    /// <summary>Fewer than two seeds: no interval, so nothing can be resolved.</summary>
    NoInterval,

    /// <summary>The interval contains 0: the seeds do not show which side is better.</summary>
    NotResolved,

    /// <summary>The whole interval lies above 0.</summary>
    Higher,

    /// <summary>The whole interval lies below 0.</summary>
    Lower,
}

/// <summary>A difference from the baseline, paired by seed: its interval and whether it excludes 0.</summary>
/// <param name="Interval">Mean and interval of (value − baseline) over the seeds both ran.</param>
/// <param name="Resolution">Resolved (with its sign), not resolved, or no interval.</param>
public sealed record PairedDifference(Interval Interval, Resolution Resolution)
{
    /// <summary>The mark printed beside the difference: "resolved, higher", "resolved, lower", "not resolved" or "1 seed: no interval".</summary>
    public string Mark => Statistics.Mark(Resolution);

    /// <summary>Signed "+0.0123 ± 0.0040 resolved, higher" with numbers through <paramref name="format"/> (which must
    /// not sign); from one seed the signed difference alone.</summary>
    public string Format(Func<double, string> format)
    {
        var mean = (Interval.Mean < 0 ? "-" : "+") + format(Math.Abs(Interval.Mean));
        return Interval.HalfWidth is { } half ? $"{mean} ± {format(half)} {Mark}" : mean;
    }
}

/// <summary>
/// A ratio to a baseline, paired by round (timing benchmarks): the geometric mean of the per-round ratios and its 95%
/// interval, taken as a Student-t interval of the log ratios and mapped back, so it is not symmetric about the mean.
/// </summary>
/// <param name="LogInterval">Mean and interval of ln(value / baseline) over the rounds.</param>
/// <param name="Resolution">Higher or lower when the ratio's interval excludes 1, not resolved when it contains 1, no
/// interval from a single round.</param>
public sealed record PairedRatio(Interval LogInterval, Resolution Resolution)
{
    /// <summary>exp(mean log ratio): the geometric mean of the per-round ratios.</summary>
    public double GeometricMean => Math.Exp(LogInterval.Mean);

    /// <summary>Lower end of the ratio's interval (the geometric mean from one round).</summary>
    public double Low => Math.Exp(LogInterval.Low);

    /// <summary>Upper end of the ratio's interval (the geometric mean from one round).</summary>
    public double High => Math.Exp(LogInterval.High);

    /// <summary>Number of paired rounds.</summary>
    public int Count => LogInterval.Count;

    /// <summary>"resolved, higher", "resolved, lower", "not resolved", or the no-interval words.</summary>
    public string Mark => Statistics.Mark(Resolution);

    /// <summary>"1.021 (1.004–1.039) resolved, higher" with <paramref name="decimals"/> decimals; from one round the
    /// ratio alone, since tables then say once that there is no interval.</summary>
    public string Format(int decimals = 3)
    {
        var number = Statistics.Fixed(decimals);
        return LogInterval.HalfWidth is null
            ? number(GeometricMean)
            : $"{number(GeometricMean)} ({number(Low)}–{number(High)}) {Mark}";
    }
}

/// <summary>
/// The few statistics a seeded comparison needs: mean, sample standard deviation, the Student-t 95% interval of a
/// mean, differences from a baseline paired by seed, and ratios to a baseline paired by round (timings). Pure
/// functions, no I/O.
/// </summary>
/// <remarks>
/// Pairing matters: runs of two configurations with the same seed share initial weights and batches, so most of the
/// seed-to-seed variation cancels in their difference, and a paired interval resolves far smaller effects than two
/// independent intervals that merely fail to overlap.
/// </remarks>
public static class Statistics
{
    /// <summary>What tables say instead of an interval when only one seed ran.</summary>
    public const string NoInterval = "1 seed: no interval";

    /// <summary>t(0.975, df) for df = 1..30, from the t distribution (numerically integrated, rounded to 6 decimals).</summary>
    private static readonly double[] TableOf975 =
    {
        12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
        2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
        2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
    };

    /// <summary>The 0.975 quantile of the standard normal distribution.</summary>
    private const double Z975 = 1.959963984540054;

    /// <summary>Arithmetic mean; NaN for no values.</summary>
    public static double Mean(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return values.Count == 0 ? double.NaN : values.Sum() / values.Count;
    }

    /// <summary>Sample standard deviation (divisor n − 1); NaN for fewer than two values.</summary>
    public static double SampleStandardDeviation(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count < 2) return double.NaN;
        var mean = Mean(values);
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    /// <summary>
    /// The two-sided 95% critical value t(0.975, <paramref name="degreesOfFreedom"/>): tabulated for 1..30, beyond
    /// that the Cornish-Fisher expansion of the t quantile about the normal one (Abramowitz and Stegun 26.7.5), which
    /// agrees with the exact quantile to better than 1e-6 from df 30 on.
    /// </summary>
    public static double TCritical95(int degreesOfFreedom)
    {
        if (degreesOfFreedom < 1)
            throw new ArgumentOutOfRangeException(nameof(degreesOfFreedom), degreesOfFreedom, "The t distribution needs at least one degree of freedom.");
        if (degreesOfFreedom <= TableOf975.Length) return TableOf975[degreesOfFreedom - 1];
        double v = degreesOfFreedom, z = Z975;
        double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z, z9 = z7 * z * z;
        return z
            + (z3 + z) / 4 / v
            + (5 * z5 + 16 * z3 + 3 * z) / 96 / (v * v)
            + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384 / (v * v * v)
            + (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160 / (v * v * v * v);
    }

    /// <summary>Mean ± t(0.975, n − 1)·s/√n; no half-width from a single value.</summary>
    public static Interval IntervalOf(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) throw new ArgumentException("An interval needs at least one value.", nameof(values));
        var mean = Mean(values);
        if (values.Count < 2) return new Interval(mean, null, values.Count);
        var half = TCritical95(values.Count - 1) * SampleStandardDeviation(values) / Math.Sqrt(values.Count);
        return new Interval(mean, half, values.Count);
    }

    /// <summary>
    /// (value − baseline) per seed, then its interval; <paramref name="values"/> and <paramref name="baseline"/> are
    /// keyed by seed and only seeds present in both count.
    /// </summary>
    public static PairedDifference Paired(IReadOnlyDictionary<int, double> values, IReadOnlyDictionary<int, double> baseline)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(baseline);
        var differences = values.Keys.Where(baseline.ContainsKey).Order().Select(seed => values[seed] - baseline[seed]).ToList();
        if (differences.Count == 0) throw new ArgumentException("No seed ran both the configuration and the baseline, so nothing pairs.", nameof(values));
        var interval = IntervalOf(differences);
        return new PairedDifference(interval, Resolve(interval));
    }

    /// <summary>
    /// value[i] / baseline[i] for each round i, summarised as a geometric mean with the t-interval of the log ratios.
    /// Rounds pair by position: round i of both sides ran interleaved, so drift of the machine between rounds cancels
    /// in their ratio. Refuses lists of different lengths and any time or rate that is not positive and finite.
    /// </summary>
    public static PairedRatio Ratio(IReadOnlyList<double> values, IReadOnlyList<double> baseline)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(baseline);
        if (values.Count != baseline.Count)
            throw new ArgumentException($"Ratios pair rounds by position, but there are {values.Count} values and {baseline.Count} baseline values.", nameof(values));
        if (values.Count == 0) throw new ArgumentException("A ratio needs at least one round.", nameof(values));
        for (var i = 0; i < values.Count; i++)
        {
            if (!(values[i] > 0) || double.IsInfinity(values[i]))
                throw new ArgumentOutOfRangeException(nameof(values), values[i], $"Round {i}: a ratio needs positive, finite values, not {values[i]}.");
            if (!(baseline[i] > 0) || double.IsInfinity(baseline[i]))
                throw new ArgumentOutOfRangeException(nameof(baseline), baseline[i], $"Round {i}: a ratio needs positive, finite baseline values, not {baseline[i]}.");
        }
        var logInterval = IntervalOf(values.Select((value, i) => Math.Log(value / baseline[i])).ToList());
        return new PairedRatio(logInterval, Resolve(logInterval));
    }

    /// <summary>Resolved when the interval excludes 0 (its sign says which way); an interval touching 0 is not resolved.</summary>
    public static Resolution Resolve(Interval difference)
    {
        ArgumentNullException.ThrowIfNull(difference);
        if (difference.HalfWidth is null) return Resolution.NoInterval;
        if (difference.Low > 0) return Resolution.Higher;
        if (difference.High < 0) return Resolution.Lower;
        return Resolution.NotResolved;
    }

    /// <summary>The words tables and reports print for a resolution.</summary>
    public static string Mark(Resolution resolution) => resolution switch
    {
        Resolution.Higher => "resolved, higher",
        Resolution.Lower => "resolved, lower",
        Resolution.NotResolved => "not resolved",
        _ => NoInterval,
    };

    /// <summary>Seeds <paramref name="first"/>, first + 1, … of a run of <paramref name="count"/>; refuses a count below 1 naming --seeds.</summary>
    public static IReadOnlyList<int> Seeds(int first, int count)
    {
        if (count < 1) throw new ArgumentOutOfRangeException("--seeds", count, "--seeds must be at least 1 (2 or more for intervals).");
        return Enumerable.Range(0, count).Select(i => checked(first + i)).ToList();
    }

    /// <summary>Invariant fixed-point text with <paramref name="decimals"/> decimals.</summary>
    public static Func<double, string> Fixed(int decimals) => value => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}
