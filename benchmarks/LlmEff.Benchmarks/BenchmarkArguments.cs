using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace LlmEff.Benchmarks;

/// <summary>What the hand-run comparisons share: `--name value` options and medians.</summary>
internal static class BenchmarkArguments
{
    /// <summary>The whole number after <paramref name="name"/>, or <paramref name="fallback"/> when absent; at least <paramref name="minimum"/>.</summary>
    public static int Option(string[] args, string name, int fallback, int minimum = 0)
    {
        var index = Array.IndexOf(args, name);
        if (index < 0) return fallback;
        if (index + 1 >= args.Length || !int.TryParse(args[index + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < minimum)
            throw new ArgumentException($"{name} needs a whole number of at least {minimum}.");
        return value;
    }

    public static double Median(IEnumerable<double> values)
    {
        var ordered = values.Order().ToList();
        if (ordered.Count == 0) throw new ArgumentException("No values to take the median of.", nameof(values));
        var middle = ordered.Count / 2;
        return ordered.Count % 2 == 1 ? ordered[middle] : (ordered[middle - 1] + ordered[middle]) / 2;
    }
}
