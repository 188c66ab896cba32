using System.Linq;
using System.Text.RegularExpressions;
using LlmEff.Generator.Emitting;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;

namespace LlmEff.Generator.Tests;

/// <summary>The GGUF part renders the layout plan: the Llama layout gets llama.cpp's metadata and a tensor table
/// covering exactly the planned tensors; every other feature is refused by name, in the generated part.</summary>
public sealed class GgufEmitterTests
{
    private static readonly ModelSpec Plain = new(Vocab: 64, Dim: 64, Layers: 3, Context: 16, TiedEmbeddings: false, Norm: NormKind.RmsNorm,
        Positions: PositionKind.Rope, Bias: false, RopeTheta: 500000, NormEps: 1e-6, Naming: NamingKind.Llama,
        Attention: new AttentionSpec(ProjectionKind.Full, Heads: 4, KvHeads: 2, HeadDim: 16), Mlp: new MlpSpec(192, ActivationKind.SwiGlu));

    private static readonly ModelSizes NoSizes = new(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    private static ModelToEmit Model(ModelSpec spec) => new(new TypeTarget("Demo", "Odd", EquatableArray<string>.Empty), spec, LayoutPlanner.Plan(spec), NoSizes);

    [Fact]
    public void The_table_maps_every_planned_tensor_once_and_rotary_projections_are_permuted_per_head()
    {
        var part = GgufEmitter.Emit(Model(Plain));

        Assert.Null(GgufEmitter.Refusal(LayoutPlanner.Plan(Plain)));
        // Expand the one-layer template the part writes inside its loop into every layer, as the loop would.
        var rows = Regex.Matches(part, "yield return new\\(\\$?\"([^\"]+)\", \\$?\"([^\"]+)\"").Select(m => (Source: m.Groups[1].Value, Name: m.Groups[2].Value)).ToList();
        var sources = rows.SelectMany(r => r.Source.Contains("{i}") ? Enumerable.Range(0, Plain.Layers).Select(i => r.Source.Replace("{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture))) : new[] { r.Source });
        Assert.Equal(PlannedTensors.Of(LayoutPlanner.Plan(Plain)).Select(t => t.Name).OrderBy(n => n), sources.OrderBy(n => n));
        Assert.Contains("(\"lm_head.weight\", \"output.weight\")", part);
        Assert.Contains("$\"blk.{i}.attn_q.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 4)", part);
        Assert.Contains("$\"blk.{i}.attn_k.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 2)", part);
        Assert.Contains("$\"blk.{i}.attn_v.weight\");", part);
        Assert.Contains("new(\"llama.rope.freq_base\", global::LlmEff.Export.GgufValue.Float32(500000f))", part);
        Assert.Contains("new(\"llama.attention.layer_norm_rms_epsilon\", global::LlmEff.Export.GgufValue.Float32(1E-06f))", part);
        Assert.Contains("new(\"llama.attention.head_count_kv\", global::LlmEff.Export.GgufValue.UInt32(2))", part);
    }

    [Theory]
    [InlineData("NoKey", "v_proj", "v_proj", "v_proj", "q_proj", ", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 4)")]
    [InlineData("NoQuery", "k_proj", "k_proj", "v_proj", "k_proj", ", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 2, Repeats: 2)")]
    [InlineData("Shared", "qkv_proj", "qkv_proj", "qkv_proj", "qkv_proj", ", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 2, Repeats: 2)")]
    public void Aliased_projections_are_written_under_every_name_they_stand_for_keys_and_queries_paired_and_queries_repeated_per_group(
        string kind, string shared, string keySource, string valueSource, string querySource, string queryTransform)
    {
        // Plain has 4 query heads and 2 key/value heads: queries that are the keys repeat each key head twice.
        var spec = Plain with { Attention = Plain.Attention with { Projections = System.Enum.Parse<ProjectionKind>(kind) } };
        var plan = LayoutPlanner.Plan(spec);
        var part = GgufEmitter.Emit(Model(spec));

        Assert.Null(GgufEmitter.Refusal(plan));
        Assert.Contains($"model.layers.0.self_attn.{shared}.weight", PlannedTensors.Of(plan).Select(t => t.Name));
        Assert.Contains($"yield return new($\"model.layers.{{i}}.self_attn.{querySource}.weight\", $\"blk.{{i}}.attn_q.weight\"{queryTransform};", part);
        Assert.Contains($"yield return new($\"model.layers.{{i}}.self_attn.{keySource}.weight\", $\"blk.{{i}}.attn_k.weight\", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: 2);", part);
        Assert.Contains($"yield return new($\"model.layers.{{i}}.self_attn.{valueSource}.weight\", $\"blk.{{i}}.attn_v.weight\");", part);
        Assert.Contains("llama.cpp caches keys and values separately", GgufEmitter.AliasNote(plan));
        Assert.Contains(GgufEmitter.AliasNote(plan)!, part); // the note has no quotes to escape
    }

    [Theory]
    [InlineData("cross-layer key/value sharing (ShareKvEvery = 2): no GGUF export yet")]
    [InlineData("GPT-2 naming")]
    [InlineData("QkNorm")]
    [InlineData("biases: no GGUF export yet")]
    [InlineData("the Gelu feed-forward")]
    [InlineData("learned positions")]
    [InlineData("an encoder")]
    public void A_feature_llama_cpp_cannot_run_yet_is_refused_by_name_in_the_generated_part(string feature)
    {
        var spec = feature switch
        {
            "GPT-2 naming" => Plain with { Naming = NamingKind.Gpt2 },
            "QkNorm" => Plain with { Attention = Plain.Attention with { QkNorm = true } },
            "the Gelu feed-forward" => Plain with { Mlp = new MlpSpec(192, ActivationKind.Gelu) },
            "learned positions" => Plain with { Positions = PositionKind.Learned },
            "an encoder" => Plain with { Causal = false },
            _ when feature.StartsWith("biases", System.StringComparison.Ordinal) => Plain with { Bias = true },
            _ => Plain with { Attention = Plain.Attention with { ShareKvEvery = 2 } },
        };

        var refusal = GgufEmitter.Refusal(LayoutPlanner.Plan(spec));
        var part = GgufEmitter.Emit(Model(spec));

        Assert.NotNull(refusal);
        Assert.Contains(feature, refusal);
        Assert.Contains("global::LlmEff.GgufExport.Refused(\"", part);
        Assert.DoesNotContain("GgufTensorTable", part);
    }
}
