using System;
using System.IO;

namespace LlmEff.Generator.Tests.Infrastructure;

/// <summary>Paths inside the repository, found from the test binaries' folder.</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "LlmEff.Compiler.sln"))) return dir.FullName;
        throw new InvalidOperationException($"No LlmEff.Compiler.sln above {AppContext.BaseDirectory}.");
    }
}
