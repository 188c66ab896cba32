using System;
using System.Linq;
using LlmEff.Quantization;
using TorchSharp;
using static LlmEff.Runtime.Tests.Quantization.QuantTestHelpers;

namespace LlmEff.Runtime.Tests.Quantization;

/// <summary>The straight-through estimator's forward and backward passes.</summary>
public sealed class StraightThroughTests
{
    [Theory]
    [InlineData(QuantFormat.Mxfp4)]
    [InlineData(QuantFormat.Nvfp4)]
    [InlineData(QuantFormat.Fp8E4M3)]
    [InlineData(QuantFormat.Int4)]
    public void Plain_STE_forwards_the_fake_quantized_weights_and_passes_the_gradient_unchanged(QuantFormat format)
    {
        var values = RandomValues(4 * 64, seed: 5);
        using var w = Tensor(values, 4, 64).requires_grad_();
        using var g = Tensor(RandomValues(4 * 64, seed: 6), 4, 64);

        using var y = StraightThrough.Apply(w, format, clipped: false);
        using var loss = (y * g).sum();
        loss.backward();

        Assert.Equal(Bits(ReferenceQuantizer.FakeQuantize(values, 64, format)), Bits(y));
        Assert.Equal(Bits(g), Bits(w.grad!));
    }

    [Fact]
    public void Clipped_STE_zeroes_the_gradient_where_the_value_was_saturated()
    {
        var values = RandomValues(8 * 64, seed: 7);
        using var w = Tensor(values, 8, 64).requires_grad_();
        using var g = Tensor(Enumerable.Range(0, 8 * 64).Select(i => 1f + i).ToArray(), 8, 64);

        using var y = StraightThrough.Apply(w, QuantFormat.Mxfp4, clipped: true);
        using var loss = (y * g).sum();
        loss.backward();

        // The MXFP4 clip threshold of a block is 6·2^e, from the reference's scale byte.
        var scales = ReferenceQuantizer.Quantize(values, 64, QuantFormat.Mxfp4).BlockScaleCodes;
        var gradient = Floats(g);
        var expected = values.Select((v, i) => Math.Abs(v) <= 6 * E8M0.Decode(scales[i / 32]) ? gradient[i] : 0f).ToArray();
        Assert.Contains(0f, expected); // the data does saturate somewhere
        Assert.Equal(Bits(expected), Bits(w.grad!));
        Assert.Equal(Bits(ReferenceQuantizer.FakeQuantize(values, 64, QuantFormat.Mxfp4)), Bits(y));
    }

    [Fact]
    public void STE_works_on_a_parameter_through_repeated_steps()
    {
        using var parameter = new TorchSharp.Modules.Parameter(torch.randn(2, 32));
        using var target = torch.randn(2, 32);

        for (var step = 0; step < 3; step++)
        {
            using var scope = torch.NewDisposeScope();
            parameter.grad?.zero_();
            var loss = (StraightThrough.Apply(parameter, QuantFormat.Nvfp4, clipped: true) - target).square().sum();
            loss.backward();
            Assert.NotNull(parameter.grad);
        }
    }
}
