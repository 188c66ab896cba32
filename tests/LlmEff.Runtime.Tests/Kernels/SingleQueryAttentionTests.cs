using System;
using LlmEff.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests.Kernels;

/// <summary>The single-token attention kernel against SDPA, on views shaped like the decoding cache's.</summary>
public sealed class SingleQueryAttentionTests
{
    [Theory]
    [InlineData(4, 4, 1, 64)]
    [InlineData(4, 4, 37, 64)]
    [InlineData(12, 4, 600, 64)]    // grouped: three query heads per key/value head
    [InlineData(8, 1, 100, 32)]     // one key/value head
    [InlineData(2, 2, 5, 12)]       // a head width that leaves a remainder past the 8-wide loop
    [InlineData(2, 1, 5000, 16)]    // more scores than fit on the stack
    public void The_kernel_equals_SDPA_over_a_cache_view_at_any_thread_count(int heads, int kvHeads, int time, int dim)
    {
        var before = get_num_threads();
        try
        {
            foreach (var threads in new[] { 1, 2, 3 })
            {
                set_num_threads(threads);
                using var scope = NewDisposeScope();
                manual_seed(heads * 1000 + time);
                // The cache's layout: a buffer with room for more tokens, narrowed to those held, so heads are strided.
                var keys = randn(1, kvHeads, time + 7, dim).narrow(2, 0, time);
                var values = randn(1, kvHeads, time + 7, dim + 3).narrow(2, 0, time);
                var query = randn(1, heads, 1, dim) * 2;
                using var _ = no_grad();
                var expected = nn.functional.scaled_dot_product_attention(query,
                    keys.repeat_interleave(heads / kvHeads, dim: 1), values.repeat_interleave(heads / kvHeads, dim: 1));
                var actual = SingleQueryAttention.TryAttend(query, keys, values);
                if (!SingleTokenStep.IsSupported)
                {
                    Assert.Null(actual);
                    return;
                }
                Assert.NotNull(actual);
                Assert.Equal(expected.shape, actual.shape);
                var difference = (expected - actual).abs().max().item<float>();
                Assert.True(difference < 1e-5, $"{heads}/{kvHeads} heads, {time} tokens, width {dim}, {threads} threads: {difference}");
            }
        }
        finally
        {
            set_num_threads(before);
        }
    }

    [Fact]
    public void Autograd_chunks_batches_and_strided_rows_are_left_to_SDPA()
    {
        using var scope = NewDisposeScope();
        var query = randn(1, 4, 1, 8);
        var keys = randn(1, 2, 10, 8);
        var values = randn(1, 2, 10, 8);
        Assert.Null(SingleQueryAttention.TryAttend(query, keys, values)); // autograd on
        using var _ = no_grad();
        Assert.Equal(SingleTokenStep.IsSupported, SingleQueryAttention.TryAttend(query, keys, values) is not null);
        Assert.Null(SingleQueryAttention.TryAttend(randn(1, 4, 2, 8), keys, values));                       // two queries
        Assert.Null(SingleQueryAttention.TryAttend(randn(2, 4, 1, 8), randn(2, 2, 10, 8), randn(2, 2, 10, 8))); // two sequences
        Assert.Null(SingleQueryAttention.TryAttend(randn(1, 3, 1, 8), keys, values));                       // 3 heads over 2
        Assert.Null(SingleQueryAttention.TryAttend(query, randn(1, 2, 8, 10).transpose(2, 3), values));     // rows not contiguous
        Assert.Null(SingleQueryAttention.TryAttend(query.to(ScalarType.Float64), keys.to(ScalarType.Float64), values.to(ScalarType.Float64)));
    }
}
