using System;
using System.IO;
using System.Linq;
using LlmEff.Data;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Samples;
using LlmEff.Training;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>Generated models with DeepSeek V4's residual streams ([Residual]): DeepSeek's tensor names, the residual
/// state they declare, checkpointing, the optimizer's grouping, and bit-exact resumption. (Every Zoo theory — cached
/// decoding, parameter counts, breakdowns — covers the Streams* models too.)</summary>
public sealed class ResidualStreamModelTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("llmeff-streams-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Fact]
    public void Every_layer_and_the_stack_carry_the_maps_under_deepseeks_names_and_shapes()
    {
        using var model = new TinyDecoderStreams(device: META);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        for (var layer = 0; layer < 4; layer++)
            foreach (var map in new[] { "hc_attn", "hc_ffn" })
            {
                Assert.Equal(new long[] { 24, 1024 }, shapes[$"model.layers.{layer}.{map}_fn"]);
                Assert.Equal(new long[] { 24 }, shapes[$"model.layers.{layer}.{map}_base"]);
                Assert.Equal(new long[] { 3 }, shapes[$"model.layers.{layer}.{map}_scale"]);
            }
        Assert.Equal(new long[] { 4, 1024 }, shapes["model.hc_head_fn"]);
        Assert.Equal(new long[] { 4 }, shapes["model.hc_head_base"]);
        Assert.Equal(new long[] { 1 }, shapes["model.hc_head_scale"]);
        Assert.Equal(TinyDecoderStreams.Facts.Breakdown.ResidualStreams, shapes.Where(s => s.Key.Contains(".hc_")).Sum(s => s.Value.Aggregate(1L, (a, b) => a * b)));
        Assert.Equal(TinyDecoderStreams.ParameterCount, TinyDecoder.ParameterCount + TinyDecoderStreams.Facts.Breakdown.ResidualStreams);
    }

    [Fact]
    public void The_residual_state_is_streams_times_dim_per_token()
    {
        Assert.Equal(4L * 256, TinyDecoderStreams.ResidualStateElementsPerToken);
        Assert.Equal(2L * 64, StreamsGpt2Checkpointed.ResidualStateElementsPerToken);
    }

    [Fact]
    public void A_checkpointed_model_with_streams_trains_exactly_like_its_plain_twin()
    {
        manual_seed(12);
        using var plain = new StreamsGqa();
        using var checkpointed = new StreamsGqaCheckpointed();
        checkpointed.load_state_dict(plain.state_dict());
        using var tokens = randint(0, 256, new long[] { 2, 16 });

        var expected = plain.forward(tokens);
        expected.square().mean().backward();
        var actual = checkpointed.forward(tokens);
        actual.square().mean().backward();

        Assert.True(allclose(expected, actual, rtol: 1e-5, atol: 1e-6));
        var plainGrads = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        foreach (var (name, parameter) in checkpointed.named_parameters())
        {
            Assert.True(parameter.grad is not null && parameter.grad.abs().sum().item<float>() > 0 || !name.Contains("hc_"), $"{name} got no gradient");
            Assert.True(allclose(plainGrads[name], parameter.grad!, rtol: 1e-4, atol: 1e-7), $"{name} differs");
        }
    }

    [Fact]
    public void Muon_takes_the_stream_maps_and_leaves_their_biases_and_gates_to_AdamW()
    {
        using var model = new StreamsGqa();
        var roles = Muon.Roles(model).ToDictionary(r => r.Name, r => r.Role);
        Assert.Equal(MuonRole.Muon, roles["model.layers.0.hc_attn_fn"]);
        Assert.Equal(MuonRole.Muon, roles["model.layers.1.hc_ffn_fn"]);
        Assert.Equal(MuonRole.Muon, roles["model.hc_head_fn"]);
        foreach (var name in new[] { "model.layers.0.hc_attn_base", "model.layers.0.hc_attn_scale", "model.layers.1.hc_ffn_base", "model.layers.1.hc_ffn_scale", "model.hc_head_base", "model.hc_head_scale" })
            Assert.Equal(MuonRole.AdamWPlain, roles[name]);
        Assert.True(Muon.IsResidualStreamBiasOrGate("hc_head_scale"));
        Assert.False(Muon.IsResidualStreamBiasOrGate("model.layers.0.hc_attn_fn"));
        Assert.False(Muon.IsResidualStreamBiasOrGate("model.layers.0.self_attn.q_proj.bias"));
    }

    [Theory]
    [InlineData(OptimizerKind.AdamW)]
    [InlineData(OptimizerKind.Muon)]
    public void Resuming_a_model_with_streams_continues_bit_exactly(OptimizerKind optimizer)
    {
        var data = TokenDataset.EmbeddedDefault(characters: 30_000);
        var options = new TrainingOptions { Steps = 6, BatchSize = 2, SequenceLength = 16, WarmupSteps = 2, EvalBatches = 1, EvalEvery = 2, Optimizer = optimizer };
        Seeding.Seed(11);
        using var straight = new StreamsGqa();
        var expected = Trainer.Train(straight, data, options);

        Seeding.Seed(11);
        var path = Path.Combine(folder, "half.safetensors");
        using (var first = new StreamsGqa())
        using (var run = new TrainingRun(first, data, options))
        {
            for (var i = 0; i < 3; i++) run.Step();
            run.SaveCheckpoint(path, StreamsGqa.Facts);
        }
        manual_seed(999); // the resumed model starts from other weights: the checkpoint must overwrite them all
        using var resumedModel = new StreamsGqa();
        using var resumed = TrainingRun.Resume(path, resumedModel, StreamsGqa.Facts, data, options);
        var actual = resumed.Complete();

        Assert.Equal(expected.Losses, actual.Losses);
        Assert.Equal(expected.HeldOutCurve, actual.HeldOutCurve);
        foreach (var ((name, a), (_, b)) in straight.named_parameters().Zip(resumedModel.named_parameters()))
            Assert.True(a.equal(b).all().item<bool>(), $"{name} differs after resuming");
        // The maps moved: the streams train.
        using var fresh = new StreamsGqa();
        Assert.False(straight.named_parameters().First(p => p.name == "model.layers.0.hc_attn_base").parameter.equal(
            fresh.named_parameters().First(p => p.name == "model.layers.0.hc_attn_base").parameter).all().item<bool>());
    }
}
