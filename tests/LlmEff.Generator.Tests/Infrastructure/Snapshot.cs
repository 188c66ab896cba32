using System;
using System.IO;

namespace LlmEff.Generator.Tests.Infrastructure;

/// <summary>
/// Compares text with a reviewed snapshot, named as Verify names them so that moving to Verify.Xunit (not restorable
/// here) is a rename: <c>Snapshots/{TestClass}/{name}.verified.cs</c> is the approved text, and a missing or different
/// one fails and writes the actual text beside it as <c>{name}.received.cs</c> for review. With
/// <see cref="AcceptSwitch"/>=1 (Verify's AutoVerify) the verified file is (re)written instead, except in CI
/// (<c>CI=true</c>), where nothing unreviewed may pass, so a missing snapshot always fails there.
/// </summary>
internal static class Snapshot
{
    /// <summary>Set to 1 to accept the received text as the new verified snapshot.</summary>
    public const string AcceptSwitch = "VERIFY_ACCEPT";

    // The switch's earlier name, still honoured so that existing habits and scripts keep working.
    private const string FormerAcceptSwitch = "LLMEFF_UPDATE_SNAPSHOTS";

    /// <summary>Matches <paramref name="actual"/> against the snapshot <paramref name="name"/> of test class <typeparamref name="TTest"/>.</summary>
    /// <param name="extension">The snapshot's file type: ".py" keeps Python readable as Python in review.</param>
    public static void Match<TTest>(string name, string actual, string extension = ".cs")
    {
        var folder = Repository.Path("tests", "LlmEff.Generator.Tests", "Snapshots", typeof(TTest).Name);
        var verified = Path.Combine(folder, name + ".verified" + extension);
        var received = Path.Combine(folder, name + ".received" + extension);
        var expected = File.Exists(verified) ? File.ReadAllText(verified).Replace("\r\n", "\n") : null;
        if (expected == actual)
        {
            File.Delete(received);
            return;
        }
        var inCi = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        if (Accepting() && !inCi)
        {
            Directory.CreateDirectory(folder);
            File.WriteAllText(verified, actual);
            File.Delete(received);
            return;
        }
        Directory.CreateDirectory(folder);
        File.WriteAllText(received, actual);
        var howToAccept = inCi
            ? "Snapshots cannot be accepted in CI (CI=true): accept them locally and commit them."
            : $"Review it and rename it to .verified.cs, or run the tests with {AcceptSwitch}=1.";
        Assert.Fail(expected is null
            ? $"No snapshot {verified}; the generated text is in {received}. {howToAccept}"
            : $"Generated text differs from {verified} at line {FirstDifferentLine(expected, actual)}; the new text is in {received}. {howToAccept}");
    }

    private static bool Accepting() =>
        Environment.GetEnvironmentVariable(AcceptSwitch) == "1" || Environment.GetEnvironmentVariable(FormerAcceptSwitch) == "1";

    private static int FirstDifferentLine(string expected, string actual)
    {
        var a = expected.Split('\n');
        var b = actual.Split('\n');
        for (var i = 0; i < Math.Min(a.Length, b.Length); i++)
            if (a[i] != b[i]) return i + 1;
        return Math.Min(a.Length, b.Length) + 1;
    }
}
