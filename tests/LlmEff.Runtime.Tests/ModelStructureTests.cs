using System.Linq;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Samples;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>The generated modules hold exactly the tensors their constants promise, under Hugging Face names.</summary>
public sealed class ModelStructureTests
{
    public static TheoryDataFor Models => Zoo.Names();

    [Theory]
    [MemberData(nameof(Models))]
    public void ParameterCount_equals_the_live_module(string name)
    {
        var declared = Zoo.ByName(name);
        using var model = declared.Create();

        Assert.Equal(declared.Facts.ParameterCount, Zoo.CountElements(model));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void The_breakdown_adds_up_and_matches_the_live_attention_tensors(string name)
    {
        var declared = Zoo.ByName(name);
        using var model = declared.Create();
        var attention = model.named_parameters().Where(p => p.name.Contains(".self_attn.") || p.name.Contains(".attn.")).Sum(p => p.parameter.numel());

        Assert.Equal(declared.Facts.ParameterCount, declared.Facts.Breakdown.Total);
        Assert.Equal(attention, declared.Facts.Breakdown.Attention);
    }

    [Fact]
    public void Gpt2_small_built_on_meta_matches_its_published_count_and_names()
    {
        using var model = new Gpt2Small(META);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        Assert.Equal(124_439_808, Gpt2Small.ParameterCount);
        Assert.Equal(Gpt2Small.ParameterCount, Zoo.CountElements(model));
        Assert.Equal(new long[] { 768, 2304 }, shapes["transformer.h.0.attn.c_attn.weight"]);
        Assert.Equal(new long[] { 3072, 768 }, shapes["transformer.h.11.mlp.c_proj.weight"]);
        Assert.Equal(new long[] { 1024, 768 }, shapes["transformer.wpe.weight"]);
        Assert.Equal(new long[] { 768 }, shapes["transformer.ln_f.bias"]);
        Assert.DoesNotContain("lm_head.weight", shapes.Keys);
        Assert.Equal(4 + 12 * 12, shapes.Count);
    }

    [Fact]
    public void Llama3_8B_built_on_meta_matches_its_published_count_and_names()
    {
        using var model = new Llama3_8B(META);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        Assert.Equal(8_030_261_248, Llama3_8B.ParameterCount);
        Assert.Equal(Llama3_8B.ParameterCount, Zoo.CountElements(model));
        Assert.Equal(new long[] { 1024, 4096 }, shapes["model.layers.31.self_attn.k_proj.weight"]);
        Assert.Equal(new long[] { 14336, 4096 }, shapes["model.layers.0.mlp.gate_proj.weight"]);
        Assert.Equal(new long[] { 128256, 4096 }, shapes["lm_head.weight"]);
        Assert.Equal(2 * 32 * 8 * 128, Llama3_8B.KvCacheElementsPerToken);
    }

    [Fact]
    public void Tiny_decoder_uses_exactly_the_Hugging_Face_Llama_names()
    {
        using var model = new TinyDecoder();
        var expected = new[] { "model.embed_tokens.weight", "model.norm.weight" }
            .Concat(Enumerable.Range(0, 4).SelectMany(i => new[]
            {
                "input_layernorm.weight", "post_attention_layernorm.weight",
                "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
            }.Select(n => $"model.layers.{i}.{n}")));

        Assert.Equal(expected.Order(), model.named_parameters().Select(p => p.name).Order());
        Assert.Equal(expected.Order(), model.state_dict().Keys.Order()); // rotary tables are not saved
    }

    [Fact]
    public void Dtype_and_device_arguments_reach_every_tensor()
    {
        using var model = new Gpt2NamesGqa(dtype: ScalarType.Float64);

        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
        using var logits = model.forward(tensor(new long[] { 1, 2, 3 }).unsqueeze(0));
        Assert.Equal(ScalarType.Float64, logits.dtype);
    }
}
