using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using LlmEff.Samples;
using LlmEff.Training;

namespace LlmEff.Cli.Tests;

/// <summary>The llmeff program with DeepSeek V4's residual streams: ablate trains TinyDecoderStreams beside TinyDecoder
/// under Muon, export-gguf refuses it by name, and the exported PyTorch twin groups its parameters for muon.py exactly
/// as TorchSharp's Muon does.</summary>
public sealed class ResidualStreamCommandTests : IDisposable
{
    private readonly TempFolder temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void Ablate_compares_TinyDecoder_with_its_residual_streams_under_muon()
    {
        var (code, output, error) = CliHarness.Run("ablate", "--seeds", "1", "--steps", "3", "--batch", "2", "--seq", "32", "--threads", "1",
            "--models", "TinyDecoder,TinyDecoderStreams", "--optimizer", "muon", "--out", temp.Path);

        Assert.True(code == 0, error);
        Assert.Contains("TinyDecoderStreams", output);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        var runs = json.RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(new[] { "TinyDecoder", "TinyDecoderStreams" }, runs.Select(r => r.GetProperty("model").GetString()));
        Assert.All(runs, r => Assert.True(double.IsFinite(r.GetProperty("heldOutLoss").GetDouble())));
        Assert.Contains("Residual streams: 4 (mHC)", File.ReadAllText(temp.File("report.md")));
    }

    [Fact]
    public void Export_gguf_refuses_residual_streams_naming_them()
    {
        var result = CliHarness.Run("export-gguf", "TinyDecoderStreams", "--out", temp.File("streams.gguf"));

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("TinyDecoderStreams cannot be exported to GGUF: residual streams ([Residual(Streams = 4)]", result.Error);
        Assert.Contains("llama.cpp has no hyper-connections", result.Error);
        Assert.False(File.Exists(temp.File("streams.gguf")));
    }

    [SkippableFact]
    public void The_exported_twin_gives_muon_py_the_parameter_groups_torchsharps_muon_uses()
    {
        Skip.If(Python.WhyUnavailable is not null, Python.WhyUnavailable);
        var folder = temp.File("export");
        var (code, _, error) = CliHarness.Run("export-pytorch", "TinyDecoderStreams", "--out", folder);
        Assert.True(code == 0, error);
        var script = temp.File("roles.py");
        File.WriteAllText(script, """
            import sys
            sys.path.insert(0, sys.argv[1])
            import muon
            import TinyDecoderStreams as twin
            model = twin.MODEL()  # torch 1.13 has no meta-device context; 3.5M parameters on the CPU are quick
            for name, _, role in muon.muon_roles(model):
                print(name, role)
            """);
        var (pythonCode, printed) = Python.Run(new[] { script, folder }, folder, 120_000);
        Assert.True(pythonCode == 0, printed);

        static string Role(MuonRole role) => role switch
        {
            MuonRole.Muon => "muon",
            MuonRole.AdamWDecayed => "adamw_decayed",
            _ => "adamw_plain",
        };
        using var model = new TinyDecoderStreams(device: TorchSharp.torch.META);
        var expected = Muon.Roles(model).Select(r => $"{r.Name} {Role(r.Role)}").Order(StringComparer.Ordinal);
        var actual = printed.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order(StringComparer.Ordinal);
        Assert.Equal(expected, actual);
        Assert.Contains("model.layers.3.hc_ffn_fn muon", actual);
        Assert.Contains("model.hc_head_scale adamw_plain", actual);
    }
}
