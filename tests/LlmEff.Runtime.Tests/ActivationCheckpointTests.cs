using System.Linq;
using LlmEff.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>Recomputing blocks in backward gives the same outputs and gradients as keeping their activations.</summary>
public sealed class ActivationCheckpointTests
{
    [Fact]
    public void Checkpointed_blocks_give_the_same_output_and_gradients()
    {
        random.manual_seed(11);
        using var first = nn.Sequential(nn.Linear(16, 32), nn.SiLU(), nn.Linear(32, 16));
        using var second = nn.Sequential(nn.Linear(16, 32), nn.SiLU(), nn.Linear(32, 16));
        using var input = randn(4, 7, 16, requires_grad: true);
        Tensor Plain(Tensor x) => second.forward(first.forward(x) + x) + x.detach(); // constants get no gradient
        Tensor Checkpointed(Tensor x)
        {
            var h = ActivationCheckpoint.Apply((t, _) => first.forward(t) + t, x);
            return ActivationCheckpoint.Apply((t, outer) => second.forward(t) + outer[0], h, x);
        }

        var expected = Plain(input);
        (expected * expected).sum().backward();
        var expectedGrads = first.parameters().Concat(second.parameters()).Select(p => p.grad!.clone()).Append(input.grad!.clone()).ToList();
        foreach (var p in first.parameters().Concat(second.parameters())) p.grad!.zero_();
        input.grad!.zero_();

        var actual = Checkpointed(input);
        (actual * actual).sum().backward();
        var actualGrads = first.parameters().Concat(second.parameters()).Select(p => p.grad!).Append(input.grad!).ToList();

        Assert.True(allclose(expected, actual, rtol: 1e-6, atol: 1e-7));
        Assert.Equal(expectedGrads.Count, actualGrads.Count);
        for (var i = 0; i < expectedGrads.Count; i++)
            Assert.True(allclose(expectedGrads[i], actualGrads[i], rtol: 1e-5, atol: 1e-7), $"gradient {i} differs");
    }

    [Fact]
    public void A_checkpointed_model_trains_exactly_like_its_plain_twin()
    {
        random.manual_seed(12);
        using var plain = new Models.PlainTwin();
        using var checkpointed = new Models.CheckpointedTwin();
        checkpointed.load_state_dict(plain.state_dict());
        using var tokens = randint(0, 97, new long[] { 2, 32 });

        var expected = plain.forward(tokens);
        expected.square().mean().backward();
        var actual = checkpointed.forward(tokens);
        actual.square().mean().backward();

        Assert.True(allclose(expected, actual, rtol: 1e-5, atol: 1e-6));
        var plainGrads = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        foreach (var (name, parameter) in checkpointed.named_parameters())
            Assert.True(allclose(plainGrads[name], parameter.grad!, rtol: 1e-4, atol: 1e-7), $"{name} differs");
    }

    [Fact]
    public void Without_gradients_the_block_just_runs()
    {
        var calls = 0;
        using var input = ones(3);
        using (no_grad())
        {
            using var output = ActivationCheckpoint.Apply((t, _) => { calls++; return t * 2; }, input);
            Assert.Equal(6f, output.sum().item<float>());
        }
        Assert.Equal(1, calls);
    }
}
