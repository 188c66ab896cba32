using System;
using System.IO;

namespace LlmEff.Generator.Tests.Infrastructure;

/// <summary>
/// Compares text with a reviewed file under Snapshots/. A missing or different snapshot fails and writes
/// the actual text beside it as *.received.cs (*.received.py for a Python snapshot) for review; with LLMEFF_UPDATE_SNAPSHOTS=1 the snapshot is
/// (re)written instead. CI never sets that variable, so an unreviewed change cannot pass there.
/// </summary>
internal static class Snapshot
{
    /// <param name="extension">The snapshot's file type: ".py" keeps Python readable as Python in review.</param>
    public static void Match(string name, string actual, string extension = ".cs")
    {
        var approved = Repository.Path("tests", "LlmEff.Generator.Tests", "Snapshots", name + extension);
        var received = Repository.Path("tests", "LlmEff.Generator.Tests", "Snapshots", name + ".received" + extension);
        var expected = File.Exists(approved) ? File.ReadAllText(approved).Replace("\r\n", "\n") : null;
        if (expected == actual)
        {
            File.Delete(received);
            return;
        }
        if (Environment.GetEnvironmentVariable("LLMEFF_UPDATE_SNAPSHOTS") == "1")
        {
            File.WriteAllText(approved, actual);
            File.Delete(received);
            return;
        }
        File.WriteAllText(received, actual);
        Assert.Fail(expected is null
            ? $"No snapshot {approved}. Review {received} and rename it, or run the tests with LLMEFF_UPDATE_SNAPSHOTS=1."
            : $"Generated text differs from {approved} at line {FirstDifferentLine(expected, actual)}. Review {received}; accept with LLMEFF_UPDATE_SNAPSHOTS=1.");
    }

    private static int FirstDifferentLine(string expected, string actual)
    {
        var a = expected.Split('\n');
        var b = actual.Split('\n');
        for (var i = 0; i < Math.Min(a.Length, b.Length); i++)
            if (a[i] != b[i]) return i + 1;
        return Math.Min(a.Length, b.Length) + 1;
    }
}
