using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.Json.Serialization;

namespace LlmEff.Cli.Reporting;

/// <summary>What a set of runs says about one of the QKV study's claims.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ClaimVerdict>))]
public enum ClaimVerdict
{
    /// <summary>Every comparison the claim needs is resolved in its favour.</summary>
    Supported,

    /// <summary>Some comparison is resolved against it (an exact tie counts against a claim of a difference).</summary>
    NotSupported,

    /// <summary>Neither: some interval straddles the line the claim draws.</summary>
    Unresolved,

    /// <summary>The variants or tasks it needs did not run.</summary>
    NotTested,
}

/// <summary>One claim checked against one recipe's runs in one cell.</summary>
/// <param name="Group">Cell and recipe, as the tables head them.</param>
/// <param name="Claim">The claim, in the paper's terms.</param>
/// <param name="Verdict">What the runs say.</param>
/// <param name="Evidence">The numbers behind the verdict.</param>
public sealed record StudyClaim(string Group, string Claim, ClaimVerdict Verdict, string Evidence);

/// <summary>
/// Checks the QKV study's four claims about its synthetic tasks against seeded runs, from the paired intervals the
/// tables print: (1) Full ≈ NoKey on every task; (2) Shared is the worst variant on REVERSE and SWAP; (3) the
/// positional term lifts both symmetric variants (NoQuery+ over NoQuery, Shared+ over Shared) on REVERSE and SWAP;
/// (4) SUB and COPY are easy for every variant. Pure functions of the runs.
/// </summary>
public static class StudyClaims
{
    /// <summary>"≈": a paired difference whose whole 95% interval lies within ±0.02 (two points of accuracy, the
    /// resolution the paper's table reads at).</summary>
    public const double EquivalenceMargin = 0.02;

    /// <summary>"Easy": mean token accuracy of at least 0.95.</summary>
    public const double EasyAccuracy = 0.95;

    /// <summary>The claims' names, in order.</summary>
    public static readonly IReadOnlyList<string> Names = new[]
    {
        "Full ≈ NoKey",
        "Shared worst on REVERSE and SWAP",
        "+ lifts NoQuery and Shared on REVERSE and SWAP",
        "SUB and COPY easy for all",
    };

    /// <summary>Every claim for every setting (cell and recipe) of the runs.</summary>
    public static IReadOnlyList<StudyClaim> Check(StudyResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        return results.Groups.SelectMany(setting => Check(results, setting)).ToList();
    }

    /// <summary>The four claims for one setting.</summary>
    public static IReadOnlyList<StudyClaim> Check(StudyResults results, string setting) => new[]
    {
        FullMatchesNoKey(results, setting),
        SharedWorst(results, setting),
        PlusLifts(results, setting),
        Easy(results, setting),
    };

    private static readonly string[] HardTasks = { "REVERSE", "SWAP" };

    private static StudyClaim FullMatchesNoKey(StudyResults results, string setting)
    {
        var claim = Names[0];
        var tasks = results.Tasks.Where(t => Ran(results, setting, "Full", t) && Ran(results, setting, "NoKey", t)).ToList();
        if (tasks.Count == 0) return new(setting, claim, ClaimVerdict.NotTested, "needs Full and NoKey");
        var differences = tasks.Select(t => (Task: t, Difference: Difference(results, setting, "NoKey", "Full", t))).ToList();
        var verdicts = differences.Select(d =>
            d.Difference.Interval.Low >= -EquivalenceMargin && d.Difference.Interval.High <= EquivalenceMargin && d.Difference.Interval.HalfWidth is not null ? ClaimVerdict.Supported
            : d.Difference.Interval.Low > EquivalenceMargin || d.Difference.Interval.High < -EquivalenceMargin ? ClaimVerdict.NotSupported
            : ClaimVerdict.Unresolved);
        return new(setting, claim, Combine(verdicts), "NoKey − Full: " + string.Join("; ", differences.Select(d => $"{d.Task} {Signed(d.Difference)}")));
    }

    private static StudyClaim SharedWorst(StudyResults results, string setting)
    {
        var claim = Names[1];
        var tasks = HardTasks.Where(t => Ran(results, setting, "Shared", t)).ToList();
        var others = results.Variants.Where(v => v != "Shared").ToList();
        if (tasks.Count == 0 || !tasks.Any(t => others.Any(v => Ran(results, setting, v, t))))
            return new(setting, claim, ClaimVerdict.NotTested, "needs Shared and another variant on REVERSE or SWAP");
        var verdicts = new List<ClaimVerdict>();
        var evidence = new List<string>();
        foreach (var task in tasks)
        {
            foreach (var other in others.Where(v => Ran(results, setting, v, task)))
            {
                var difference = Difference(results, setting, "Shared", other, task);
                // Worst: below every other variant. Resolved at or above one of them (an exact tie included) says it is not.
                verdicts.Add(difference.Resolution == Resolution.Lower ? ClaimVerdict.Supported
                    : difference.Interval.Low >= 0 && difference.Interval.HalfWidth is not null ? ClaimVerdict.NotSupported
                    : ClaimVerdict.Unresolved);
            }
            var means = others.Where(v => Ran(results, setting, v, task)).Select(v => (Variant: v, Mean: StudyReport.Accuracy(results, v, task, setting)!.Mean))
                .OrderBy(x => x.Mean).First();
            evidence.Add(string.Create(CultureInfo.InvariantCulture,
                $"{task} Shared {StudyReport.Accuracy(results, "Shared", task, setting)!.Mean:0.000}, lowest other {means.Variant} {means.Mean:0.000}"));
        }
        return new(setting, claim, Combine(verdicts), string.Join("; ", evidence));
    }

    private static StudyClaim PlusLifts(StudyResults results, string setting)
    {
        var claim = Names[2];
        var pairs = new[] { ("NoQuery+", "NoQuery"), ("Shared+", "Shared") };
        var runs = (from task in HardTasks from pair in pairs
                    where Ran(results, setting, pair.Item1, task) && Ran(results, setting, pair.Item2, task)
                    select (Task: task, Plus: pair.Item1, Plain: pair.Item2)).ToList();
        if (runs.Count == 0) return new(setting, claim, ClaimVerdict.NotTested, "needs a variant and its + on REVERSE or SWAP");
        var differences = runs.Select(r => (r.Task, r.Plus, r.Plain, Difference: Difference(results, setting, r.Plus, r.Plain, r.Task))).ToList();
        var verdicts = differences.Select(d => d.Difference.Resolution == Resolution.Higher ? ClaimVerdict.Supported
            : d.Difference.Interval.High <= 0 && d.Difference.Interval.HalfWidth is not null ? ClaimVerdict.NotSupported
            : ClaimVerdict.Unresolved).ToList();
        // Both symmetric variants must be lifted: a claim about a pair the runs lack cannot be supported.
        if (pairs.Any(p => !runs.Any(r => r.Plus == p.Item1)) && verdicts.All(v => v == ClaimVerdict.Supported)) verdicts.Add(ClaimVerdict.NotTested);
        return new(setting, claim, Combine(verdicts), string.Join("; ", differences.Select(d => $"{d.Task} {d.Plus} − {d.Plain} {Signed(d.Difference)}")));
    }

    private static StudyClaim Easy(StudyResults results, string setting)
    {
        var claim = Names[3];
        var accuracies = (from task in new[] { "SUB", "COPY" } from variant in results.Variants
                          let accuracy = StudyReport.Accuracy(results, variant, task, setting)
                          where accuracy is not null
                          select (Task: task, Variant: variant, Accuracy: accuracy!)).ToList();
        if (accuracies.Count == 0) return new(setting, claim, ClaimVerdict.NotTested, "SUB and COPY did not run (--tasks)");
        var verdicts = accuracies.Select(a => a.Accuracy.Mean >= EasyAccuracy && a.Accuracy.Low >= EasyAccuracy - EquivalenceMargin && a.Accuracy.HalfWidth is not null ? ClaimVerdict.Supported
            : a.Accuracy.High < EasyAccuracy && a.Accuracy.HalfWidth is not null ? ClaimVerdict.NotSupported
            : ClaimVerdict.Unresolved);
        var lowest = accuracies.OrderBy(a => a.Accuracy.Mean).First();
        return new(setting, claim, Combine(verdicts), string.Create(CultureInfo.InvariantCulture, $"lowest: {lowest.Variant} on {lowest.Task} {lowest.Accuracy.Format(Statistics.Fixed(3))}"));
    }

    /// <summary>Supported only when every part is; not supported when any part is; else unresolved (or not tested).</summary>
    internal static ClaimVerdict Combine(IEnumerable<ClaimVerdict> parts)
    {
        var list = parts.ToList();
        if (list.Count == 0 || list.Contains(ClaimVerdict.NotTested)) return list.Contains(ClaimVerdict.NotSupported) ? ClaimVerdict.NotSupported : ClaimVerdict.NotTested;
        if (list.Contains(ClaimVerdict.NotSupported)) return ClaimVerdict.NotSupported;
        return list.All(v => v == ClaimVerdict.Supported) ? ClaimVerdict.Supported : ClaimVerdict.Unresolved;
    }

    /// <summary>The words the tables print for a verdict.</summary>
    public static string Words(ClaimVerdict verdict) => verdict switch
    {
        ClaimVerdict.Supported => "supported",
        ClaimVerdict.NotSupported => "NOT supported",
        ClaimVerdict.Unresolved => "unresolved",
        _ => "not tested",
    };

    private static bool Ran(StudyResults results, string setting, string variant, string task) =>
        results.Runs.Any(r => r.Group == setting && r.Variant == variant && r.Task == task);

    private static PairedDifference Difference(StudyResults results, string setting, string variant, string baseline, string task)
    {
        Dictionary<int, double> BySeed(string v) => results.Runs.Where(r => r.Variant == v && r.Task == task && r.Group == setting).ToDictionary(r => r.Seed, r => r.Accuracy);
        return Statistics.Paired(BySeed(variant), BySeed(baseline));
    }

    private static string Signed(PairedDifference difference) => difference.Format(Statistics.Fixed(3));
}
