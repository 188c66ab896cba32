using System;
using System.IO;
using System.Linq;
using LlmEff.Checkpoints;
using LlmEff.Data;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>Muon as DeepSeek V4 trains with it: the orthogonalization, the update's size, which parameters it takes, and
/// its state in checkpoints.</summary>
public sealed class MuonTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("llmeff-muon-").FullName;

    /// <summary>A matrix U·diag(s)·Vᵀ with random orthonormal U, V and the given singular values.</summary>
    private static Tensor WithSpectrum(int rows, int columns, double[] singularValues, int seed)
    {
        var generator = new Generator((ulong)seed);
        var k = Math.Min(rows, columns);
        var (u, _) = linalg.qr(randn(rows, k, generator: generator));
        var (v, _) = linalg.qr(randn(columns, k, generator: generator));
        return u.matmul(diag(tensor(singularValues, ScalarType.Float32))).matmul(v.t());
    }

    [Theory]
    [InlineData(48, 48)]
    [InlineData(32, 80)]
    [InlineData(96, 24)]
    public void Orthogonalized_updates_have_singular_values_within_three_thousandths_of_one(int rows, int columns)
    {
        // Singular values spread over three decades: after dividing by the Frobenius norm the smallest is about 2e-4,
        // and the 8 + 2 steps still lift it to 1. Scalar iteration of the polynomials over [1e-4, 1] gives the band
        // [0.99999, 1.0021]; 0.997..1.003 leaves room for fp32 rounding.
        var k = Math.Min(rows, columns);
        var spectrum = Enumerable.Range(0, k).Select(i => Math.Pow(10, -3.0 * i / (k - 1))).ToArray();
        using var scope = NewDisposeScope();
        var orthogonal = Muon.Orthogonalize(WithSpectrum(rows, columns, spectrum, seed: rows + columns));

        Assert.Equal(new long[] { rows, columns }, orthogonal.shape);
        var singular = linalg.svdvals(orthogonal);
        var (smallest, largest) = (singular.min().item<float>(), singular.max().item<float>());
        Assert.True(smallest > 0.997 && largest < 1.003, $"singular values lie in [{smallest}, {largest}]");
    }

    [Fact]
    public void Keller_Jordans_five_quintic_steps_alone_leave_singular_values_far_from_one_which_the_settling_steps_fix()
    {
        // The reason for V4's schedule: the quintic alone settles in a band around 1 (about 0.68..1.2), not at 1.
        static double Apply(double x, int fast, int settle)
        {
            for (var i = 0; i < fast + settle; i++)
            {
                var (a, b, c) = i < fast ? Muon.FastCoefficients : Muon.SettleCoefficients;
                x = a * x + b * x * x * x + c * Math.Pow(x, 5);
            }
            return x;
        }
        var grid = Enumerable.Range(0, 2001).Select(i => Math.Pow(10, -4.0 * i / 2000)).ToList();
        var quinticOnly = grid.Select(x => Apply(x, Muon.FastSteps, 0)).ToList();
        var scheduled = grid.Select(x => Apply(x, Muon.FastSteps, Muon.SettleSteps)).ToList();

        Assert.True(quinticOnly.Max() - quinticOnly.Min() > 0.4, $"{quinticOnly.Min()}..{quinticOnly.Max()}");
        Assert.True(scheduled.Min() > 0.9999 && scheduled.Max() < 1.0022, $"{scheduled.Min()}..{scheduled.Max()}");
    }

    [Fact]
    public void A_muon_step_moves_a_matrix_by_an_update_of_rms_0_18_times_the_learning_rate()
    {
        using var scope = NewDisposeScope();
        var weight = new TorchSharp.Modules.Parameter(randn(40, 96, generator: new Generator(3)));
        var before = weight.detach().clone();
        const double rate = 0.01;
        using var optimizer = new Muon(new[] { new TorchSharp.Modules.ParamGroup<Muon.Options>(new[] { weight }, new Muon.Options { UseMuon = true, WeightDecay = 0 }) }, rate);
        weight.grad = randn(40, 96, generator: new Generator(4));

        optimizer.step();

        var rms = (weight.detach() - before).pow(2).mean().sqrt().item<float>() / rate;
        Assert.InRange(rms, 0.18 * 0.995, 0.18 * 1.005);
    }

    [Fact]
    public void Muon_takes_the_hidden_matrices_and_leaves_embeddings_the_head_norms_and_biases_to_AdamW()
    {
        // Llama names, tied head, learned positions, LayerNorm with biases, linear biases.
        using var tied = new LayerNormLearned();
        var roles = Muon.Roles(tied).ToDictionary(r => r.Name, r => r.Role);
        Assert.Equal(MuonRole.AdamWDecayed, roles["model.embed_tokens.weight"]);
        Assert.Equal(MuonRole.AdamWDecayed, roles["model.embed_positions.weight"]);
        Assert.Equal(MuonRole.Muon, roles["model.layers.0.self_attn.q_proj.weight"]);
        Assert.Equal(MuonRole.Muon, roles["model.layers.1.mlp.down_proj.weight"]);
        Assert.Equal(MuonRole.AdamWPlain, roles["model.layers.0.self_attn.q_proj.bias"]);
        Assert.Equal(MuonRole.AdamWPlain, roles["model.layers.0.input_layernorm.weight"]);
        Assert.Equal(MuonRole.AdamWPlain, roles["model.norm.bias"]);
        Assert.DoesNotContain("lm_head.weight", roles.Keys);
        // The rule, over every parameter: Muon exactly for 2-D tensors outside embeddings and the head.
        Assert.All(Muon.Roles(tied), r => Assert.Equal(r.Parameter.dim() == 2 && !r.Name.Contains("embed_"), r.Role == MuonRole.Muon));

        // GPT-2 names, untied head, transposed (input × output) projections.
        using var untied = new Gpt2NamesGqa();
        var gpt2 = Muon.Roles(untied).ToDictionary(r => r.Name, r => r.Role);
        Assert.Equal(MuonRole.AdamWDecayed, gpt2["lm_head.weight"]);
        Assert.Equal(MuonRole.AdamWDecayed, gpt2["transformer.wte.weight"]);
        Assert.Equal(MuonRole.Muon, gpt2["transformer.h.0.mlp.c_proj.weight"]);
        Assert.Equal(MuonRole.AdamWPlain, gpt2["transformer.ln_f.weight"]);
    }

    [Fact]
    public void A_muon_group_refuses_a_tensor_that_is_not_a_matrix_naming_its_shape()
    {
        var vector = new TorchSharp.Modules.Parameter(zeros(7));
        var error = Assert.Throws<ArgumentException>(() =>
            new Muon(new[] { new TorchSharp.Modules.ParamGroup<Muon.Options>(new[] { vector }, new Muon.Options { UseMuon = true }) }, 1e-3));
        Assert.Contains("[7]", error.Message);
    }

    private static readonly TokenDataset Data = TokenDataset.EmbeddedDefault(characters: 30_000);
    private static readonly TrainingOptions Options = new()
    {
        Steps = 6, BatchSize = 2, SequenceLength = 16, WarmupSteps = 2, EvalBatches = 1, EvalEvery = 2, Optimizer = OptimizerKind.Muon,
    };

    // Resuming a Muon run bit-exactly: ResumeTests.Resuming_from_a_checkpoint_continues_bit_exactly(Muon).

    [Fact]
    public void A_muon_checkpoint_is_not_resumed_with_AdamW()
    {
        var path = Path.Combine(folder, "muon.safetensors");
        using (var model = new FullMha())
        using (var run = new TrainingRun(model, Data, Options))
        {
            run.Step();
            run.SaveCheckpoint(path, FullMha.Facts);
        }
        using var fresh = new FullMha();

        var error = Assert.Throws<InvalidDataException>(() => TrainingRun.Resume(path, fresh, FullMha.Facts, Data, Options with { Optimizer = OptimizerKind.AdamW }));
        Assert.Contains("Muon", error.Message);
    }

    public void Dispose() => Directory.Delete(folder, recursive: true);
}
