using System;
using System.Globalization;
using System.IO;
using System.Linq;
using LlmEff.Checkpoints;
using LlmEff.Layers;
using static TorchSharp.torch;

namespace LlmEff.Cli.Tests;

/// <summary>
/// The residual streams' C# block (HyperConnections.cs) against its Python twin (hyper_connections.py) on the same
/// streams and maps: Sinkhorn, pre, post, head and the expansion agree within fp32 rounding.
/// </summary>
public sealed class HyperConnectionsParityTests : IDisposable
{
    private readonly TempFolder temp = new();

    public void Dispose() => temp.Dispose();

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LlmEff.Compiler.sln"))) return dir.FullName;
        throw new InvalidOperationException($"No LlmEff.Compiler.sln above {AppContext.BaseDirectory}.");
    }

    [SkippableTheory]
    [InlineData(4, 20)]
    [InlineData(2, 7)]
    public void Residual_streams_agree_with_their_python_twin(int n, int iterations)
    {
        Skip.If(Python.WhyUnavailable is not null, Python.WhyUnavailable);
        const int d = 16;
        const double normEps = 1e-5;
        manual_seed(41 + n);
        var rows = HyperConnections.MixRows(n);
        var inputs = new (string, Tensor)[]
        {
            ("logits", randn(3, 5, n, n) * 2),
            ("streams", randn(2, 5, n, d)),
            ("fn", randn(rows, n * d) * 0.1),
            ("scale", tensor(new[] { 0.8f, 1.2f, 0.9f })),
            ("base", randn(rows) * 0.5),
            ("output", randn(2, 5, d)),
            ("head_fn", randn(n, n * d) * 0.1),
            ("head_scale", tensor(new[] { 1.1f })),
            ("head_base", randn(n) * 0.5),
            ("hidden", randn(2, 5, d)),
        };
        var t = inputs.ToDictionary(p => p.Item1, p => p.Item2);
        var input = temp.File("hc.in.safetensors");
        var output = temp.File("hc.out.safetensors");
        SafeTensors.Save(input, inputs);

        var root = RepositoryRoot();
        var (code, log) = Python.Run(new[]
        {
            Path.Combine(AppContext.BaseDirectory, "PyTorch", "hyper_connections_parity.py"),
            Path.Combine(root, "runtime", "LlmEff.Runtime"), Path.Combine(root, "samples", "LlmEff.Cli", "PyTorch"),
            input, output, iterations.ToString(CultureInfo.InvariantCulture), normEps.ToString("R", CultureInfo.InvariantCulture),
        }, temp.Path, 120_000);
        Assert.True(code == 0, log);
        using var python = SafeTensors.Load(output);
        var p = python.Tensors;

        var (x, post, comb) = HyperConnections.Pre(t["streams"], t["fn"], t["scale"], t["base"], iterations, normEps);
        Close(HyperConnections.Sinkhorn(t["logits"], iterations), p["comb_only"]);
        Close(x, p["input"]);
        Close(post, p["post"]);
        Close(comb, p["comb"]);
        Close(HyperConnections.Post(t["output"], t["streams"], post, comb), p["next"]);
        Close(HyperConnections.Head(t["streams"], t["head_fn"], t["head_scale"], t["head_base"], normEps), p["head"]);
        Close(HyperConnections.Expand(t["hidden"], n), p["expanded"]);
    }

    private static void Close(Tensor csharp, Tensor python)
    {
        Assert.Equal(python.shape, csharp.shape);
        var difference = (csharp - python).abs().max().item<float>();
        Assert.True(difference < 1e-5f, $"C# and Python differ by {difference}");
    }
}
