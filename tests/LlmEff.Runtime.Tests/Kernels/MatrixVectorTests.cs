using System;
using System.Linq;
using LlmEff.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using Linear = LlmEff.Layers.Linear;

namespace LlmEff.Runtime.Tests.Kernels;

/// <summary>The decoding matrix-vector kernel and the runtime <see cref="Linear"/> layer that uses it.</summary>
public sealed class MatrixVectorTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(4, 8)]
    [InlineData(7, 13)]
    [InlineData(256, 256)]
    [InlineData(1000, 768)]  // above the threshold for a second thread, rows a multiple of four
    [InlineData(2051, 769)]  // above it, with rows and columns that leave remainders on every path
    public void The_kernel_equals_linear_for_any_size_bias_and_thread_count(int rows, int columns)
    {
        if (!SingleTokenStep.IsSupported)
        {
            // Without AVX2/FMA the kernel never applies and linear() runs everywhere.
            using var _ = no_grad();
            Assert.Null(MatrixVector.TryLinear(ones(columns), ones(rows, columns), null));
            return;
        }
        var before = get_num_threads();
        try
        {
            foreach (var threads in new[] { 1, 2, 3 })
            foreach (var withBias in new[] { false, true })
            foreach (var shape in new[] { new long[] { columns }, new long[] { 1, columns }, new long[] { 1, 1, columns } })
            {
                set_num_threads(threads);
                using var scope = NewDisposeScope();
                manual_seed(rows + columns);
                var weight = randn(rows, columns);
                var bias = withBias ? randn(rows) : null;
                var x = randn(shape);
                using var _ = no_grad();
                var expected = nn.functional.linear(x, weight, bias);
                var actual = MatrixVector.TryLinear(x, weight, bias);
                Assert.NotNull(actual);
                Assert.Equal(expected.shape, actual.shape);
                // The same sums in another order: float rounding of terms up to |w|·|x| summed over the columns.
                var tolerance = 1e-6 * (weight.abs() * x.reshape(1, columns).abs()).sum(1).max().item<float>() + 1e-6;
                var difference = (expected - actual).abs().max().item<float>();
                Assert.True(difference <= tolerance, $"{rows}×{columns}, {threads} threads, bias {withBias}, x [{string.Join(", ", shape)}]: {difference} > {tolerance}");
            }
        }
        finally
        {
            set_num_threads(before);
        }
    }

    [Fact]
    public void Products_asked_from_two_threads_at_once_or_after_the_workers_slept_are_right()
    {
        if (!SingleTokenStep.IsSupported) return;
        var before = get_num_threads();
        try
        {
            manual_seed(11);
            var weight = randn(1000, 300);
            var inputs = Enumerable.Range(0, 4).Select(_ => randn(1, 300)).ToArray();
            Tensor expected;
            using (no_grad()) expected = stack(inputs.Select(x => nn.functional.linear(x, weight)).ToArray());
            // Two callers share the workers: one gets them, the other computes alone; both must be right, every time.
            var failures = 0;
            var callers = Enumerable.Range(0, 2).Select(c => new System.Threading.Thread(() =>
            {
                set_num_threads(2);
                using var _ = no_grad();
                for (var round = 0; round < 200; round++)
                {
                    using var scope = NewDisposeScope();
                    var i = (round + c) % inputs.Length;
                    var y = MatrixVector.TryLinear(inputs[i], weight, null)!;
                    if ((y - expected[i]).abs().max().item<float>() > 1e-3) System.Threading.Interlocked.Increment(ref failures);
                }
            })).ToList();
            callers.ForEach(t => t.Start());
            // A lost wake-up would hang here: fail instead.
            Assert.All(callers, t => Assert.True(t.Join(TimeSpan.FromSeconds(60)), "A caller did not finish within a minute."));
            Assert.Equal(0, failures);

            // After a pause longer than the workers spin they sleep; the next product wakes them.
            set_num_threads(2);
            using var noGrad = no_grad();
            System.Threading.Thread.Sleep(KernelWorkers.SpinTime * 20);
            Assert.True((MatrixVector.TryLinear(inputs[0], weight, null)! - expected[0]).abs().max().item<float>() <= 1e-3);
        }
        finally
        {
            set_num_threads(before);
        }
    }

    [Fact]
    public void The_kernel_leaves_autograd_batches_views_and_other_dtypes_to_linear()
    {
        using var scope = NewDisposeScope();
        var weight = randn(8, 4);
        var row = randn(1, 4);
        Assert.Null(MatrixVector.TryLinear(row, weight, null)); // autograd on: the kernel records no graph
        using var _ = no_grad();
        Assert.Equal(SingleTokenStep.IsSupported, MatrixVector.TryLinear(row, weight, null) is not null);
        Assert.Null(MatrixVector.TryLinear(randn(2, 4), weight, null));                        // two rows
        Assert.Null(MatrixVector.TryLinear(randn(2, 1, 4), weight, null));                     // two rows, one per batch entry
        Assert.Null(MatrixVector.TryLinear(row.to(ScalarType.Float64), weight.to(ScalarType.Float64), null));
        Assert.Null(MatrixVector.TryLinear(row, randn(4, 8).t(), null));                         // a transposed view
        Assert.Null(MatrixVector.TryLinear(row, weight, randn(8).to(ScalarType.Float64)));
        Assert.Null(MatrixVector.TryLinear(row, weight, randn(7)));
        Assert.Null(MatrixVector.TryLinear(randn(1, 5), weight, null));
        Assert.Null(MatrixVector.TryLinear(row, randn(2, 8, 4), null));
    }

    [Fact]
    public void A_linear_layer_starts_where_nn_Linear_starts_and_has_its_names()
    {
        foreach (var withBias in new[] { true, false })
        {
            manual_seed(7);
            using var ours = new Linear(5, 3, hasBias: withBias);
            var afterOurs = randn(1).item<float>();
            manual_seed(7);
            using var theirs = nn.Linear(5, 3, hasBias: withBias);
            var afterTheirs = randn(1).item<float>();
            Assert.Equal(theirs.state_dict().Keys.OrderBy(k => k), ours.state_dict().Keys.OrderBy(k => k));
            Assert.Equal(0, (ours.weight - theirs.weight!).abs().max().item<float>());
            if (withBias) Assert.Equal(0, (ours.bias! - theirs.bias!).abs().max().item<float>());
            Assert.Equal(afterTheirs, afterOurs); // both consumed the generator alike, so later draws match too
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => new Linear(0, 3));

        // Module.to() replaces the parameters, as it does nn.Linear's.
        using var moved = new Linear(4, 2).to(ScalarType.Float64);
        Assert.Equal(ScalarType.Float64, moved.weight.dtype);
        Assert.Equal(ScalarType.Float64, moved.bias!.dtype);
        Assert.Equal(ScalarType.Float64, moved.forward(ones(1, 4, dtype: ScalarType.Float64)).dtype);
        using var transposed = new LlmEff.Layers.TransposedLinear(4, 2).to(ScalarType.Float64);
        Assert.Equal(ScalarType.Float64, transposed.weight.dtype);
        Assert.Equal(new[] { "bias", "weight" }, transposed.state_dict().Keys.OrderBy(k => k));
    }

    [Fact]
    public void A_linear_layer_gives_linears_values_and_gradients_in_training_and_its_values_in_a_decoding_step()
    {
        manual_seed(3);
        using var layer = new Linear(96, 40);
        using var scope = NewDisposeScope();
        var x = randn(1, 1, 96, requires_grad: true);
        var y = layer.forward(x);
        Assert.True(y.requires_grad);
        y.sum().backward();
        Assert.Equal(0, (x.grad! - layer.weight.sum(dim: 0)).abs().max().item<float>(), 5);
        using var _ = no_grad();
        var decoded = layer.forward(x);
        Assert.True((decoded - nn.functional.linear(x, layer.weight, layer.bias)).abs().max().item<float>() < 1e-5);
    }

    [Fact]
    public void A_one_token_step_hands_libtorchs_threads_to_the_kernel_and_gives_them_back()
    {
        var before = get_num_threads();
        try
        {
            set_num_threads(2);
            using var scope = NewDisposeScope();
            var token = tensor(new long[] { 5 }).reshape(1, 1);
            var weight = randn(4, 4);
            Assert.Null(SingleTokenStep.HandOverThreads(token, weight)); // autograd on: the kernel would not run
            using var _ = no_grad();
            Assert.Null(SingleTokenStep.HandOverThreads(tensor(new long[] { 5, 6 }).reshape(1, 2), weight));
            Assert.Null(SingleTokenStep.HandOverThreads(tensor(new long[] { 5, 6 }).reshape(2, 1), weight));
            using (var held = SingleTokenStep.HandOverThreads(token, weight))
            {
                Assert.Equal(SingleTokenStep.IsSupported, held is not null);
                if (held is not null)
                {
                    Assert.Equal(1, get_num_threads());
                    Assert.Null(SingleTokenStep.HandOverThreads(token, weight)); // nested: already handed over
                }
            }
            Assert.Equal(2, get_num_threads());
            Assert.Null(SingleTokenStep.HandOverThreads(token, weight.to(ScalarType.BFloat16))); // a bf16 model's products never reach the kernels
            set_num_threads(1);
            Assert.Null(SingleTokenStep.HandOverThreads(token, weight)); // one thread: nothing to hand over
        }
        finally
        {
            set_num_threads(before);
        }
    }
}
