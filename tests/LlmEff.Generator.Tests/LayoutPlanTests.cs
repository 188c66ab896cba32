using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.Loader;
using System.Text.Json;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;
using LlmEff.Generator.Sizing;
using LlmEff.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using TorchSharp;

namespace LlmEff.Generator.Tests;

/// <summary>
/// The layout plan is the one statement of a model's layout: for every sample, the TorchSharp module the generator
/// writes, the PyTorch twin it writes and the sizes it reports all hold exactly the tensors the plan lists, named and
/// shaped as it says. The modules are built on the meta device, so the largest samples cost no memory.
/// </summary>
public sealed class LayoutPlanTests
{
    public static TheoryData<string> Samples => new(CompilationHarness.SampleSources().Keys);

    [Theory]
    [MemberData(nameof(Samples))]
    public void The_TorchSharp_module_holds_exactly_the_tensors_the_plan_lists(string sample)
    {
        var (models, assembly) = Build(sample);
        foreach (var model in models)
        {
            var type = assembly.GetType(model.Target.FullName, throwOnError: true)!;
            using var module = (torch.nn.Module)Activator.CreateInstance(type, torch.META, null)!;
            var trainable = module.named_parameters().Select(p => p.name).ToHashSet(StringComparer.Ordinal);
            var actual = module.state_dict().Select(t => Describe(t.Key, t.Value.shape, trainable.Contains(t.Key)));

            // TorchSharp lists every parameter before any buffer (PyTorch goes module by module); a checkpoint keys
            // tensors by name, so names, shapes and kinds are compared, not their order.
            Assert.Equal(Planned(model.Plan).OrderBy(t => t, StringComparer.Ordinal), actual.OrderBy(t => t, StringComparer.Ordinal));
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Samples))]
    public void The_PyTorch_twin_holds_exactly_the_tensors_the_plan_lists(string sample)
    {
        Skip.If(Python.WhyNoTorch is not null, Python.WhyNoTorch);
        var (models, assembly) = Build(sample);
        foreach (var model in models)
        {
            var export = (PyTorchExport)assembly.GetType(model.Target.FullName, throwOnError: true)!.GetProperty("PyTorch")!.GetValue(null)!;
            // A kind the PyTorch emitter refuses by name has no twin to compare (PyTorchEmitterTests check the refusal).
            if (export.Source is null) continue;
            var twin = Path.Combine(Path.GetTempPath(), $"llmeff-{Guid.NewGuid():N}.py");
            File.WriteAllText(twin, export.Source);
            try
            {
                var (code, output) = Python.Run(Repository.Path("tests", "LlmEff.Generator.Tests", "Python", "twin_state_dict.py"), twin);
                Assert.True(code == 0, $"{model.Target.Name}'s twin did not build (exit {code}): {output}");
                var actual = JsonSerializer.Deserialize<List<JsonElement>>(output)!
                    .Select(t => Describe(t[0].GetString()!, t[1].EnumerateArray().Select(d => d.GetInt64()).ToArray(), t[2].GetBoolean()))
                    .ToList();

                Assert.Equal(Planned(model.Plan), actual);
            }
            finally
            {
                File.Delete(twin);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void Sizing_counts_exactly_the_trainable_tensors_the_plan_lists(string sample)
    {
        foreach (var model in Models(sample))
        {
            var tensors = PlannedTensors.Of(model.Plan).ToList();

            Assert.Equal(tensors.Where(t => t.Trainable).Sum(t => t.Elements), model.Sizes.Parameters);
            Assert.Equal(tensors.Where(t => t.Name.StartsWith(model.Plan.Names.Stack + "." + model.Plan.Names.TokenEmbedding + ".", StringComparison.Ordinal)
                                            || t.Name.StartsWith(model.Plan.Names.Stack + "." + model.Plan.Names.PositionEmbedding + ".", StringComparison.Ordinal)
                                            || t.Name == model.Plan.Names.Stack + "." + PlannedTensors.InputBiasName(model.Plan)).Sum(t => t.Elements),
                model.Sizes.EmbeddingParameters);
            if (model.Plan.Compressed is null)
                Assert.Equal(model.Plan.Layers.Sum(l => l.Cache.Sum(s => s.ElementsPerToken)), model.Sizes.KvCacheElementsPerToken);
            else
            {
                // Compressed attention's cache is no multiple of the tokens: per token it is the full context's, spread and rounded up.
                var atContext = ModelSizing.CacheElements(model.Plan, model.Plan.Context);
                Assert.Equal(atContext, model.Sizes.KvCacheElementsAtContext);
                Assert.Equal((atContext + model.Plan.Context - 1) / model.Plan.Context, model.Sizes.KvCacheElementsPerToken);
            }
            Assert.Equal(ModelSizing.Compute(model.Spec), model.Sizes);
        }
    }

    [Fact]
    public void Layers_that_reuse_a_groups_keys_and_values_plan_no_key_or_value_projection()
    {
        var plan = LayoutPlanner.Plan(SizingTests.Llama3_8B with { Layers = 4, Attention = SizingTests.Llama3_8B.Attention with { ShareKvEvery = 2 } });
        var names = PlannedTensors.Of(plan).Select(t => t.Name).ToList();

        Assert.Contains("model.layers.0.self_attn.k_proj.weight", names);
        Assert.DoesNotContain("model.layers.1.self_attn.k_proj.weight", names);
        Assert.Contains("model.layers.1.self_attn.q_proj.weight", names);
        Assert.Equal(new[] { true, false, true, false }, plan.Layers.Select(l => l.OwnsKeysAndValues));
        Assert.Empty(plan.Layers[1].Cache);
    }

    [Fact]
    public void PyTorchs_initialisation_gives_every_linear_layer_the_head_and_the_input_a_bias_and_a_uniform_start()
    {
        var spec = SizingTests.Llama3_8B with
        {
            Vocab = 10, Dim = 64, Layers = 2, Context = 16, Positions = PositionKind.Learned, Causal = false, Init = InitKind.PyTorchDefault,
            Attention = SizingTests.Llama3_8B.Attention with { Projections = ProjectionKind.Shared, Heads = 2, KvHeads = 2, HeadDim = 32, BreakSymmetry = true },
            Mlp = new MlpSpec(256, ActivationKind.Gelu),
        };
        var plan = LayoutPlanner.Plan(spec);
        var gpt2 = LayoutPlanner.Plan(spec with { Init = InitKind.Gpt2 });
        var linears = plan.Attention!.Projections.Append(plan.Attention.Output).Concat(plan.Dense!.Linears).Append(plan.OutputHead!).ToList();

        Assert.All(linears, l => Assert.Equal((true, WeightInit.PyTorchUniform), (l.Bias, l.Init)));
        Assert.Equal((true, 1.0, 0.02), (plan.InputBias, plan.PositionStd, plan.ScoreMixerStd));
        Assert.Equal((false, 0.01, (double?)null), (gpt2.InputBias, gpt2.PositionStd, gpt2.ScoreMixerStd));
        Assert.DoesNotContain(gpt2.Attention!.Projections.Append(gpt2.OutputHead!), l => l.Bias || l.Init == WeightInit.PyTorchUniform);
        // The biases are counted: one per output of every linear layer, the head's 10, and the input's 64.
        var biases = linears.Sum(l => l.Outputs * (l == plan.OutputHead ? 1 : spec.Layers)) + spec.Dim;
        Assert.Equal(ModelSizing.Compute(gpt2).Parameters + biases, ModelSizing.Compute(plan).Parameters);
    }

    [SkippableFact]
    public void A_module_declared_with_PyTorchs_initialisation_starts_as_PyTorchs_default_layers_do_and_so_does_its_twin()
    {
        const string sample = "StudyEncoderTorchInit";
        var (models, assembly) = Build(sample);
        var type = assembly.GetType(models.Single().Target.FullName, throwOnError: true)!;
        torch.manual_seed(1);
        using var module = (torch.nn.Module)type.GetMethod("Create")!.Invoke(null, new object?[] { null, null })!; // on the CPU, default dtype
        var generated = module.named_parameters().Select(p => (p.name, p.parameter.shape,
            p.parameter.abs().max().item<float>(), p.parameter.numel() > 1 ? p.parameter.to(torch.float64).std().item<double>() : 0.0)).ToList();
        CheckPyTorchDefaults(generated);

        Skip.If(Python.WhyNoTorch is not null, Python.WhyNoTorch);
        var export = (PyTorchExport)type.GetProperty("PyTorch")!.GetValue(null)!;
        var twin = Path.Combine(Path.GetTempPath(), $"llmeff-{Guid.NewGuid():N}.py");
        File.WriteAllText(twin, export.Source);
        try
        {
            var (code, output) = Python.Run(Repository.Path("tests", "LlmEff.Generator.Tests", "Python", "twin_init_stats.py"), twin);
            Assert.True(code == 0, $"the twin did not build (exit {code}): {output}");
            var twinStats = JsonSerializer.Deserialize<List<JsonElement>>(output)!.Select(t => (t[0].GetString()!, t[1].EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                (float)t[2].GetDouble(), t[3].GetDouble())).ToList();
            Assert.Equal(generated.Select(g => g.name).OrderBy(n => n, StringComparer.Ordinal), twinStats.Select(t => t.Item1).OrderBy(n => n, StringComparer.Ordinal));
            CheckPyTorchDefaults(twinStats);
        }
        finally
        {
            File.Delete(twin);
        }
    }

    /// <summary>PyTorch's defaults for the study encoder (Dim 64, vocabulary 10, context 16): positions N(0, 1); the
    /// token table and its bias U(±1/√10), a one-hot layer's; every linear weight and bias U(±1/√fan_in) (a uniform's
    /// standard deviation is bound/√3); the mixer's weights N(0, 0.02²); norms one and zero.</summary>
    private static void CheckPyTorchDefaults(IReadOnlyList<(string Name, long[] Shape, float MaxAbs, double Std)> parameters)
    {
        void Uniform(string name, double bound, double maxAbs, double std)
        {
            Assert.True(maxAbs <= bound * (1 + 1e-6), $"{name}: |x| up to {maxAbs}, beyond ±{bound}");
            Assert.True(maxAbs > 0.8 * bound, $"{name}: |x| only up to {maxAbs}, far inside ±{bound}");
            Assert.InRange(std, 0.85 * bound / Math.Sqrt(3), 1.15 * bound / Math.Sqrt(3));
        }
        var byName = parameters.ToDictionary(p => p.Name);
        var positions = byName["model.embed_positions.weight"];
        Assert.InRange(positions.Std, 0.9, 1.1);
        Uniform("model.embed_tokens.weight", 1 / Math.Sqrt(10), byName["model.embed_tokens.weight"].MaxAbs, byName["model.embed_tokens.weight"].Std);
        Assert.True(byName["model.embed_tokens_bias"].MaxAbs <= 1 / Math.Sqrt(10) * (1 + 1e-6));
        var linears = parameters.Where(p => p.Name.EndsWith("proj.weight", StringComparison.Ordinal) || p.Name == "lm_head.weight").ToList();
        Assert.Equal(2 * 4 + 1, linears.Count); // qkv, o, up, down per layer, and the head
        foreach (var weight in linears)
        {
            var bound = 1 / Math.Sqrt(weight.Shape[1]);
            Uniform(weight.Name, bound, weight.MaxAbs, weight.Std);
            var bias = byName[weight.Name[..^"weight".Length] + "bias"];
            Assert.True(bias.MaxAbs <= bound * (1 + 1e-6) && bias.MaxAbs > 0, $"{bias.Name}: |b| up to {bias.MaxAbs}, not within ±{bound}");
        }
        // Ten draws of N(0, 0.02²) per layer: all within 5σ, where the GPT-2 scheme's start (≈ 0.1 each) is not.
        Assert.All(parameters.Where(p => p.Name.EndsWith("score_mixer.weight", StringComparison.Ordinal)), m => Assert.InRange(m.MaxAbs, 1e-4f, 0.1f));
    }

    private static readonly ModelSpec PlainLlama = new(Vocab: 64, Dim: 64, Layers: 3, Context: 16, TiedEmbeddings: true, Norm: NormKind.RmsNorm,
        Positions: PositionKind.Rope, Bias: false, RopeTheta: 10000, NormEps: 1e-5, Naming: NamingKind.Llama,
        Attention: new AttentionSpec(ProjectionKind.Full, Heads: 4, KvHeads: 2, HeadDim: 16), Mlp: new MlpSpec(192, ActivationKind.SwiGlu));

    private static readonly ModelSpec Hybrid = PlainLlama with { Hybrid = new HybridSpec(new[] { 1 }.ToEquatableArray(), 3), Attention = PlainLlama.Attention with { QkNorm = true } };

    private static readonly ModelSpec Latent = PlainLlama with { Attention = PlainLlama.Attention with { KvHeads = 4, Latent = new LatentSpec(16, 8, 0) } };

    /// <summary>The fused single-token step computes pre-norm blocks of the kinds it knows and nothing else: every other block kind, and
    /// every option that changes what a block computes, must leave the step to the operation-by-operation path.</summary>
    [Fact]
    public void Only_models_of_the_fused_steps_block_kinds_decode_a_token_in_one_kernel()
    {
        var moe = new MoeSpec(4, 2, 0, 32, 0, RouterKind.Softmax, BalanceKind.AuxLoss, true, 1, 0.01, 0);
        var fused = new (string Change, ModelSpec Spec)[]
        {
            ("plain", PlainLlama),
            ("biases", PlainLlama with { Bias = true }),
            ("untied head", PlainLlama with { TiedEmbeddings = false }),
            ("no positions", PlainLlama with { Positions = PositionKind.None }),
            ("one key/value head", PlainLlama with { Attention = PlainLlama.Attention with { KvHeads = 1 } }),
            ("checkpointing (training only)", PlainLlama with { Checkpointing = true }),
            ("QK norm", PlainLlama with { Attention = PlainLlama.Attention with { QkNorm = true } }),
            ("NoKey (the values as keys)", PlainLlama with { Attention = PlainLlama.Attention with { Projections = ProjectionKind.NoKey } }),
            ("NoKey with QK norm", PlainLlama with { Attention = PlainLlama.Attention with { Projections = ProjectionKind.NoKey, QkNorm = true } }),
            ("short convolutions (LFM2)", Hybrid),
            ("latent attention", Latent),
            ("latent attention with a query rank", Latent with { Attention = Latent.Attention with { Latent = new LatentSpec(16, 8, 24) } }),
            ("latent attention and short convolutions", Latent with { Hybrid = Hybrid.Hybrid }),
            ("experts", PlainLlama with { Moe = moe }),
            ("experts after a dense layer, a shared expert, a selection bias", PlainLlama with { Moe = moe with { FirstLayer = 1, Shared = 1, Balance = BalanceKind.AuxLossFree, Router = RouterKind.Sigmoid } }),
            ("short convolutions beside experts", Hybrid with { Moe = moe }),
        };
        var notFused = new (string Change, ModelSpec Spec)[]
        {
            ("NoQuery", PlainLlama with { Attention = PlainLlama.Attention with { Projections = ProjectionKind.NoQuery } }),
            ("Shared", PlainLlama with { Attention = PlainLlama.Attention with { Projections = ProjectionKind.Shared } }),
            ("shared keys and values", PlainLlama with { Attention = PlainLlama.Attention with { ShareKvEvery = 3 } }),
            ("sparse attention", PlainLlama with { Sparse = new SparseSpec(2, 8, 4) }),
            ("sparse latent attention", Latent with { Sparse = new SparseSpec(2, 8, 4) }),
            ("hash-routed experts", PlainLlama with { Moe = moe with { HashLayers = 1 } }),
            ("clamped experts", PlainLlama with { Moe = moe, Mlp = new MlpSpec(192, ActivationKind.SwiGlu, ClampLimit: 7) }),
            ("quantization", PlainLlama with { Quant = new QuantSpec(QuantFormatKind.Mxfp4, QuantTargetKind.AllLinear, 0.8, false, 0) }),
            ("residual streams", PlainLlama with { Residual = new ResidualSpec(4, 20) }),
            ("LayerNorm", PlainLlama with { Norm = NormKind.LayerNorm }),
            ("learned positions", PlainLlama with { Positions = PositionKind.Learned }),
            ("GELU", PlainLlama with { Mlp = new MlpSpec(192, ActivationKind.Gelu) }),
            ("clamped SwiGLU", PlainLlama with { Mlp = new MlpSpec(192, ActivationKind.SwiGlu, ClampLimit: 7) }),
            ("GPT-2 names (transposed, fused weights)", PlainLlama with { Naming = NamingKind.Gpt2 }),
            ("PyTorch's defaults (an input bias)", PlainLlama with { Init = InitKind.PyTorchDefault }),
            ("an encoder", PlainLlama with { Causal = false }),
        };
        Assert.All(fused, c => Assert.True(LayoutPlanner.Plan(c.Spec).DecodesInOneKernel, c.Change));
        Assert.All(notFused, c => Assert.False(LayoutPlanner.Plan(c.Spec).DecodesInOneKernel, c.Change));
    }

    /// <summary>"name [d0, d1] parameter|buffer": one line per tensor, so a failure shows the first tensor that differs.</summary>
    private static string Describe(string name, long[] shape, bool trainable) =>
        $"{name} [{string.Join(", ", shape)}] {(trainable ? "parameter" : "buffer")}";

    private static List<string> Planned(LayoutPlan plan) => PlannedTensors.Of(plan).Select(t => Describe(t.Name, t.Shape, t.Trainable)).ToList();

    /// <summary>The models the generator planned for a sample file, from its tracked pipeline step.</summary>
    private static List<ModelToEmit> Models(string sample) => Generate(sample).Run.Results.Single().TrackedSteps[TrackingNames.Models]
        .SelectMany(step => step.Outputs).Select(output => (ModelToEmit)output.Value).ToList();

    // Each sample is generated, compiled and loaded once for the three theories that walk it.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<(Compilation Output, GeneratorDriverRunResult Run)>> Generated = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<(List<ModelToEmit> Models, System.Reflection.Assembly Assembly)>> Built = new();

    private static (Compilation Output, GeneratorDriverRunResult Run) Generate(string sample) =>
        Generated.GetOrAdd(sample, key => new(() => CompilationHarness.Generate(CompilationHarness.Compile(CompilationHarness.SampleSources()[key])))).Value;

    private static (List<ModelToEmit> Models, System.Reflection.Assembly Assembly) Build(string sample) =>
        Built.GetOrAdd(sample, key => new(() => Load(key))).Value;

    /// <summary>The sample's planned models and its compiled assembly (generated code included), loaded beside the runtime.</summary>
    private static (List<ModelToEmit> Models, System.Reflection.Assembly Assembly) Load(string sample)
    {
        var (output, run) = Generate(sample);
        using var image = new MemoryStream();
        var emitted = output.Emit(image);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        image.Position = 0;
        // A context of its own: every sample compiles to an assembly named TestModels.
        var assembly = new AssemblyLoadContext($"{sample}-{Guid.NewGuid():N}").LoadFromStream(image);
        var models = run.Results.Single().TrackedSteps[TrackingNames.Models].SelectMany(step => step.Outputs).Select(o => (ModelToEmit)o.Value).ToList();
        return (models, assembly);
    }
}
