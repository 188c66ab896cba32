using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using LlmEff.Generator.Emitting;
using LlmEff.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.Generator.Tests;

/// <summary>
/// The Python runtime blocks (runtime/LlmEff.Runtime/**/*.py): real Python beside their C# twins, embedded in the
/// generator, free of model constants, and included into a PyTorch twin exactly when its model uses them.
/// </summary>
public sealed class PythonRuntimeTests
{
    private static readonly string RuntimeFolder = Repository.Path("runtime", "LlmEff.Runtime");

    /// <summary>Every .py file under runtime/LlmEff.Runtime, as a path relative to that folder with '/' separators.</summary>
    private static List<string> BlockPaths() =>
        Directory.GetFiles(RuntimeFolder, "*.py", SearchOption.AllDirectories).Where(f => !IsBuildOutput(f))
            .Select(f => Path.GetRelativePath(RuntimeFolder, f).Replace('\\', '/')).OrderBy(p => p, StringComparer.Ordinal).ToList();

    public static TheoryData<string> Blocks() => new(BlockPaths());

    private static bool IsBuildOutput(string file) =>
        file.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar).Any(part => part is "bin" or "obj" or "__pycache__");

    [SkippableTheory]
    [MemberData(nameof(Blocks))]
    public void Every_python_runtime_block_compiles(string block)
    {
        Skip.If(Python.WhyNoPython is not null, Python.WhyNoPython);
        var (code, output) = Python.Compile(Path.Combine(RuntimeFolder, block));
        Assert.True(code == 0, $"{block} does not compile:\n{output}");
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Every_python_runtime_block_sits_next_to_its_CSharp_twin_of_the_same_name(string block)
    {
        var folder = Path.GetDirectoryName(Path.Combine(RuntimeFolder, block))!;
        var twins = Directory.GetFiles(folder, "*.cs").Select(Path.GetFileNameWithoutExtension).Select(name => SnakeCase(name!));
        Assert.Contains(Path.GetFileNameWithoutExtension(block), twins);
    }

    [Fact]
    public void Snake_case_names_follow_the_CSharp_names_word_by_word()
    {
        Assert.Equal("lightning_indexer", SnakeCase("LightningIndexer"));
        Assert.Equal("rms_norm", SnakeCase("RmsNorm"));
        Assert.Equal("e4m3", SnakeCase("E4M3"));
    }

    /// <summary>"LightningIndexer" -> "lightning_indexer": a word starts at a capital that follows a lower-case letter.</summary>
    private static string SnakeCase(string name) => Regex.Replace(name, "(?<=[a-z])(?=[A-Z])", "_").ToLowerInvariant();

    [Fact]
    public void The_generator_embeds_every_python_runtime_block_with_unix_line_ends()
    {
        Assert.Equal(BlockPaths(), PythonRuntime.Paths.OrderBy(p => p, StringComparer.Ordinal));
        Assert.All(PythonRuntime.Paths, path => Assert.DoesNotContain("\r", PythonRuntime.Source(path)));
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void No_python_runtime_block_reads_a_model_constant(string block)
    {
        // The twin defines these per model; a block takes its sizes and settings as arguments instead.
        var constants = new[] { "VOCAB", "DIM", "LAYERS", "CONTEXT", "HEADS", "KV_HEADS", "HEAD_DIM", "NORM_EPS", "ROPE_THETA", "KV_RANK", "ROPE_DIM",
            "Q_RANK", "INDEXER_HEADS", "INDEXER_DIM", "TOP_K", "CONV_KERNEL", "EXPERTS", "ACTIVE_EXPERTS", "AUX_LOSS_WEIGHT", "BIAS_UPDATE_RATE", "SEQUENCE_AUX_LOSS_WEIGHT", "QUANTIZATION" };
        var used = constants.Where(c => Regex.IsMatch(PythonRuntime.Source(block), $@"(?<![\w.]){c}(?!\w)")).ToList();
        Assert.Empty(used);
    }

    [Theory]
    [InlineData("TinyDecoder", "TinyDecoder", "Layers/rms_norm.py Layers/rotary_embedding.py Layers/attention.py")]
    [InlineData("HybridModels", "TinySparse", "Layers/rms_norm.py Layers/rotary_embedding.py Layers/attention.py Layers/lightning_indexer.py")]
    [InlineData("HybridModels", "TinyLatent", "Layers/rms_norm.py Layers/rotary_embedding.py Layers/attention.py Layers/latent_attention.py")]
    [InlineData("HybridModels", "TinyHybrid", "Layers/rms_norm.py Layers/rotary_embedding.py Layers/attention.py Layers/short_conv.py")]
    [InlineData("Gpt2Small", "Gpt2Small", "Layers/transposed_linear.py Layers/attention.py")]
    [InlineData("QuantizedModels", "TinyMoeFp4", "Layers/rms_norm.py Quantization/e2m1.py Quantization/e8m0.py Quantization/quantizer.py "
        + "Quantization/straight_through.py Layers/quantized_linear.py Layers/rotary_embedding.py Layers/attention.py Layers/expert_router.py")]
    [InlineData("TinyDecoderVariants", "TinyNoQueryPlus", "Layers/rms_norm.py Layers/rotary_embedding.py Layers/attention.py Layers/positional_score_mixer.py")]
    [InlineData("MixtureOfExpertsModels", "TinyMoe", "Layers/rms_norm.py Layers/rotary_embedding.py Layers/attention.py Layers/expert_router.py")]
    [InlineData("MixtureOfExpertsModels", "TinyMoeHash", "Layers/rms_norm.py Layers/rotary_embedding.py Layers/attention.py Layers/expert_router.py Layers/hash_router.py")]
    public void A_twin_includes_exactly_the_runtime_blocks_its_model_uses(string sampleFile, string model, string blocks)
    {
        var python = Twin(sampleFile, model);
        var included = python.Split('\n').Where(line => line.StartsWith("# ---- from ", StringComparison.Ordinal)).ToList();
        Assert.Equal(blocks.Split(' ').Select(PythonRuntime.Marker), included);
    }

    [Fact]
    public void A_twin_keeps_one_import_block_at_its_top()
    {
        var python = Twin("QuantizedModels", "TinyMoeFp4");
        var imports = Imports(python);
        Assert.Equal(imports.Distinct(), imports);
        var lastImport = python.LastIndexOf("\nimport ", StringComparison.Ordinal);
        Assert.True(lastImport < python.IndexOf("# ---- from ", StringComparison.Ordinal), "an import follows an included block");
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Every_import_a_python_runtime_block_drops_on_inclusion_is_in_the_twins_import_block(string block)
    {
        var twinImports = Imports(Twin("TinyDecoder", "TinyDecoder"));
        Assert.All(Imports(PythonRuntime.Source(block)), line => Assert.Contains(line, twinImports));
    }

    private static List<string> Imports(string python) =>
        python.Split('\n').Where(line => line.StartsWith("import ", StringComparison.Ordinal) || line.StartsWith("from ", StringComparison.Ordinal)).ToList();

    [Theory]
    [InlineData("QuantizedModels", "TinyMoeFp4")]
    [InlineData("HybridModels", "TinyLatent")]
    public void A_twin_reads_as_its_reviewed_python_snapshot(string sampleFile, string model) =>
        Snapshot.Match<PythonRuntimeTests>($"LlmEff.Samples.{model}.PyTorch", Twin(sampleFile, model), ".py");

    /// <summary>The Python source of <paramref name="model"/>'s twin, generated from its sample file.</summary>
    private static string Twin(string sampleFile, string model)
    {
        var (_, run) = CompilationHarness.Generate(CompilationHarness.Compile(CompilationHarness.SampleSources()[sampleFile]));
        var tree = run.GeneratedTrees.Single(t => t.FilePath.EndsWith($".{model}.PyTorch.g.cs", StringComparison.Ordinal));
        return tree.GetRoot().DescendantNodes().OfType<LiteralExpressionSyntax>()
            .Single(l => l.Token.ValueText.Contains("import torch")).Token.ValueText;
    }
}
