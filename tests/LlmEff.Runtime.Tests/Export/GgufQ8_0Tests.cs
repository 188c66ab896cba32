using System;
using System.Linq;
using LlmEff.Export;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests.Export;

/// <summary>Q8_0 as ggml's reference quantize_row_q8_0 writes it: per 32 values, d = max|x| / 127 as f16, then
/// round(x / d) half away from zero as signed bytes.</summary>
public sealed class GgufQ8_0Tests
{
    [Fact]
    public void A_block_is_its_f16_scale_then_its_codes_rounded_half_away_from_zero()
    {
        // max |x| = 1: d = 1/127; -0.5 is -63.5 steps (rounds to -64, not to even -64 by chance: 0.25 is 31.75 → 32).
        var row = new float[32];
        row[0] = 1f; row[1] = -0.5f; row[2] = 0.25f; row[3] = -1f;
        using var values = tensor(row).reshape(1, 32);

        using var blocks = GgufExporter.Q8_0Blocks(values);

        var bytes = blocks.data<byte>().ToArray();
        Assert.Equal(34, bytes.Length);
        Assert.Equal(BitConverter.GetBytes((Half)(1f / 127)), bytes[..2]);
        Assert.Equal(new sbyte[] { 127, -64, 32, -127, 0 }, bytes[2..7].Select(b => unchecked((sbyte)b)));
    }

    [Fact]
    public void Reading_back_gives_the_values_within_half_a_step_of_each_block_and_a_zero_block_stays_zero()
    {
        using var _ = NewDisposeScope();
        manual_seed(3);
        var values = randn(4, 64) * 3;
        values[1] = zeros(64);

        var read = GgufExporter.Q8_0Values(values);

        var step = values.reshape(-1, 32).abs().amax(new long[] { 1 }, keepdim: true) / 127;
        var error = (read - values).reshape(-1, 32).abs();
        // Half a step from rounding, plus the f16 rounding of d (a relative 2^-11) times at most 127 steps.
        Assert.True((error <= step * (0.5 + 127.0 / 2048) + 1e-7).all().item<bool>());
        Assert.Equal(0f, read[1].abs().max().item<float>());
    }
}
