using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace LlmEff.Generator.Emitting;

/// <summary>
/// The Python runtime blocks (runtime/LlmEff.Runtime/**/*.py, each next to its C# twin), embedded in this assembly so
/// that they are real Python files for readers and linters and still travel with the generator. A PyTorch twin
/// includes the blocks its model uses, each under a marker line naming its file, without the block's own imports:
/// the twin keeps one import block at its top.
/// </summary>
internal static class PythonRuntime
{
    /// <summary>Prefix of the blocks' resource names (the csproj's LogicalName); what follows is the path under
    /// runtime/LlmEff.Runtime.</summary>
    private const string ResourcePrefix = "LlmEff.Runtime/";

    /// <summary>Where the blocks live in the repository, as the marker lines name them.</summary>
    public const string Folder = "runtime/LlmEff.Runtime/";

    private static readonly Lazy<IReadOnlyDictionary<string, string>> Sources = new(Load);

    /// <summary>Every embedded block's path under runtime/LlmEff.Runtime, e.g. "Layers/rms_norm.py".</summary>
    public static IEnumerable<string> Paths => Sources.Value.Keys;

    /// <summary>The text of a block as its file holds it, with '\n' line ends whatever the checkout used.</summary>
    public static string Source(string path) =>
        Sources.Value.TryGetValue(path, out var source)
            ? source
            : throw new ArgumentException($"No Python runtime block {path} is embedded in the generator.", nameof(path));

    /// <summary>The marker line a twin puts above an included block.</summary>
    public static string Marker(string path) => $"# ---- from {Folder}{path} ----";

    /// <summary>Blocks as twins include them, made once per block: every model's twin includes the same text, which
    /// would otherwise be split into lines and joined again for each model.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> IncludedBlocks = new(StringComparer.Ordinal);

    /// <summary>A block as a twin includes it: the marker, then the file without its leading imports (and the blank
    /// lines around them), ending in one '\n'.</summary>
    public static string Included(string path) => IncludedBlocks.GetOrAdd(path, Include);

    private static string Include(string path)
    {
        var lines = Source(path).Split('\n');
        var start = 0;
        while (start < lines.Length && (lines[start].Length == 0 || IsImport(lines[start]))) start++;
        var body = string.Join("\n", lines.Skip(start)).TrimEnd('\n', ' ');
        return Marker(path) + "\n\n" + body + "\n";
    }

    private static bool IsImport(string line) => line.StartsWith("import ", StringComparison.Ordinal) || line.StartsWith("from ", StringComparison.Ordinal);

    private static IReadOnlyDictionary<string, string> Load()
    {
        var assembly = typeof(PythonRuntime).Assembly;
        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            // RecursiveDir in the LogicalName uses the build OS's separator.
            var normalized = name.Replace('\\', '/');
            if (!normalized.StartsWith(ResourcePrefix, StringComparison.Ordinal) || !normalized.EndsWith(".py", StringComparison.Ordinal)) continue;
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            sources[normalized.Substring(ResourcePrefix.Length)] = reader.ReadToEnd().Replace("\r\n", "\n");
        }
        return sources;
    }
}
