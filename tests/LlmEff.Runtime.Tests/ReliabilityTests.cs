using System;
using System.IO;
using System.Linq;
using LlmEff.Checkpoints;
using LlmEff.Runtime.Tests.Models;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>A diverged model is never checkpointed. (Flat memory over long runs is checked in a process of its own: LlmEff.Cli.Tests.)</summary>
public sealed class ReliabilityTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("llmeff-reliability-").FullName;

    [Fact]
    public void A_model_holding_NaN_is_never_written_and_the_previous_checkpoint_survives()
    {
        var path = Path.Combine(folder, "run.safetensors");
        using var model = new FullMha();
        Checkpoint.SaveWeights(path, model, FullMha.Facts);
        var good = File.ReadAllBytes(path);
        using (no_grad()) model.parameters().First().fill_(double.NaN);

        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.SaveWeights(path, model, FullMha.Facts));

        Assert.Contains("NaN or infinite", error.Message);
        Assert.Contains("model.embed_tokens.weight", error.Message);
        Assert.Equal(good, File.ReadAllBytes(path));
    }

    public void Dispose() => Directory.Delete(folder, recursive: true);
}
