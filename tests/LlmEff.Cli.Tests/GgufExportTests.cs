using System;
using System.IO;
using System.Linq;
using LlmEff.Cli.LlamaCpp;
using LlmEff.Export;
using LlmEff.Samples;
using static TorchSharp.torch;

namespace LlmEff.Cli.Tests;

public sealed class GgufExportTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // Measured 2026-11-30 (TinyMoeDeepSeek, logits up to 2.7): 1.2e-2 between llama.cpp on the q8_0 file and our model
    // with its weights read back from it, 0.32 with them exact. What remains is llama.cpp rounding activations to Q8_0
    // before each product with a Q8_0 matrix; 5e-2 leaves room for other CPUs and stays far below the exact weights'.
    private const float Q8_0Tolerance = 5e-2f;

    [Fact]
    public void Export_gguf_writes_a_llama_file_with_every_tensor_and_the_loader_keys()
    {
        using var temp = new TempFolder();
        var path = temp.File("tiny.gguf");

        var result = CliHarness.Run("export-gguf", "TinyDecoder", "--out", path);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("as llama.cpp's 'llama', 38 tensors, f32", result.Output);
        var file = GgufFile.Read(path);
        Assert.Equal(GgufValue.String("llama"), file["general.architecture"]);
        Assert.Equal(GgufValue.UInt32(4), file["llama.block_count"]);
        Assert.Equal(GgufValue.UInt32(256), file["llama.vocab_size"]);
        Assert.Equal(GgufValue.String("gpt2"), file["tokenizer.ggml.model"]); // the byte tokenizer, by default
        Assert.Equal(GgufValue.UInt32(0), file[GgufExporter.FileTypeKey]);
        // Tied head: no output.weight, llama.cpp reuses token_embd.weight.
        Assert.DoesNotContain(file.Tensors, t => t.Name == "output.weight");
        Assert.Equal(new ulong[] { 256, 704 }, file.Tensor("blk.3.ffn_gate.weight").Dimensions);
    }

    [Fact]
    public void An_f16_export_keeps_norms_in_f32_and_still_runs_in_llama_cpp_close_to_our_logits()
    {
        using var temp = new TempFolder();
        var path = temp.File("tiny16.gguf");
        Training.Seeding.Seed(5);
        using var model = TinyGqa.Create();
        model.eval();

        GgufExporter.Export(model, path, GgufTensorType.F16);

        var file = GgufFile.Read(path);
        Assert.Equal(GgufTensorType.F16, file.Tensor("blk.0.attn_q.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.Tensor("blk.0.attn_norm.weight").Type);
        Assert.Equal(GgufValue.UInt32(1), file[GgufExporter.FileTypeKey]);
        var prompt = Enumerable.Range(0, 16).Select(i => i * 13 % 256).ToArray();
        using var llama = new LlamaCppEngine(path, 16);
        var theirs = llama.Logits(prompt);
        using var _ = no_grad();
        using var ours = model.forward(tensor(prompt.Select(t => (long)t).ToArray()).unsqueeze(0))[0];
        var largest = Enumerable.Range(0, 16).Max(p => Enumerable.Range(0, 256).Max(t => Math.Abs(theirs[p][t] - ours[p, t].item<float>())));
        // Weights rounded to f16 (11 significant bits) move these small logits by about 1e-3.
        Assert.True(largest < 2e-2, $"f16 logits differ by {largest}.");
    }

    [Fact]
    public void A_q8_0_export_runs_in_llama_cpp_as_our_model_does_with_its_weights_read_back_from_q8_0()
    {
        using var temp = new TempFolder();
        var path = temp.File("tiny8.gguf");
        Training.Seeding.Seed(5);
        using var model = TinyMoeDeepSeek.Create();
        model.eval();

        var result = CliHarness.Run("export-gguf", "TinyMoeDeepSeek", "--out", path, "--type", "q8_0");
        Assert.Equal(0, result.ExitCode);
        GgufExporter.Export(model, path, GgufTensorType.Q8_0);

        var file = GgufFile.Read(path);
        Assert.Equal(GgufValue.UInt32(7), file[GgufExporter.FileTypeKey]);
        Assert.Equal(GgufTensorType.Q8_0, file.Tensor("blk.0.attn_q.weight").Type);
        Assert.Equal(GgufTensorType.Q8_0, file.Tensor("blk.1.ffn_gate_exps.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.Tensor("blk.1.ffn_gate_inp.weight").Type); // the router, as llama.cpp's quantizer keeps it
        Assert.Equal(GgufTensorType.F16, file.Tensor("blk.1.ffn_down_exps.weight").Type); // rows of 176: not whole blocks
        Assert.Equal(GgufTensorType.F32, file.Tensor("blk.0.attn_norm.weight").Type);

        var prompt = Enumerable.Range(0, 64).Select(i => i * 37 % 256).ToArray();
        using var input = tensor(prompt.Select(t => (long)t).ToArray()).unsqueeze(0);
        using var exact = Logits(model, input);
        // Our model with every weight as the file holds it: Q8_0 read back, or f16 for the rows that are not whole blocks.
        using (no_grad())
            foreach (var (name, parameter) in model.named_parameters())
            {
                if (parameter.dim() < 2 || name.EndsWith("mlp.gate.weight", StringComparison.Ordinal)) continue;
                using var held = parameter.shape[^1] % 32 == 0 ? GgufExporter.Q8_0Values(parameter) : parameter.to(ScalarType.Float16).to(ScalarType.Float32);
                parameter.copy_(held);
            }
        using var llama = new LlamaCppEngine(path, 64);
        using var theirs = tensor(llama.Logits(prompt).SelectMany(row => row).ToArray()).reshape(64, 256);
        using var ours = Logits(model, input);
        var largest = (theirs - ours).abs().max().item<float>();
        output.WriteLine($"q8_0: max |llama.cpp − TorchSharp| = {largest:E2} with our weights read back from the file, " +
                         $"{(theirs - exact).abs().max().item<float>():E2} with them exact (largest |logit| {exact.abs().max().item<float>():F2})");
        // What remains is llama.cpp's own rounding of activations to Q8_0 before each product with a Q8_0 matrix.
        Assert.True(largest < Q8_0Tolerance, $"q8_0 logits differ by {largest}.");
    }

    private static Tensor Logits(nn.Module<Tensor, Tensor> model, Tensor input)
    {
        using var _ = no_grad();
        return model.forward(input)[0].contiguous();
    }

    [Fact]
    public void A_model_llama_cpp_has_no_kind_for_is_refused_naming_the_feature()
    {
        using var temp = new TempFolder();

        var result = CliHarness.Run("export-gguf", "TinyShareKv", "--out", temp.File("sharekv.gguf"));

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("TinyShareKv cannot be exported to GGUF: cross-layer key/value sharing (ShareKvEvery = 2): no GGUF export yet", result.Error);
        Assert.False(File.Exists(temp.File("sharekv.gguf")));
        Assert.Contains("sparse attention (lightning indexer)", TinySparse.Gguf.Refusal);
    }

    [Theory]
    [InlineData("TinyMoe", "llama", "blk.0.ffn_gate_exps.weight", new ulong[] { 256, 352, 8 })] // 8 experts stacked outermost
    [InlineData("TinyMoeDeepSeek", "glm4moe", "blk.1.ffn_down_exps.weight", new ulong[] { 176, 256, 16 })]
    [InlineData("TinyLatent", "deepseek2", "blk.0.attn_kv_b.weight", new ulong[] { 32, 512 })] // 4 heads × [64 key | 64 value]
    [InlineData("TinyHybrid", "lfm2", "blk.0.shortconv.conv.weight", new ulong[] { 3, 256 })] // [Dim, 1, 3] without its unit dimension
    public void Experts_latent_attention_and_hybrids_export_as_the_llama_cpp_architecture_that_computes_them(string model, string architecture, string tensor, ulong[] dimensions)
    {
        using var temp = new TempFolder();
        var path = temp.File(model + ".gguf");

        var result = CliHarness.Run("export-gguf", model, "--out", path);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"{model} as llama.cpp's '{architecture}'", result.Output);
        var file = GgufFile.Read(path);
        Assert.Equal(GgufValue.String(architecture), file["general.architecture"]);
        Assert.Equal(dimensions, file.Tensor(tensor).Dimensions);
    }

    [Fact]
    public void Aliased_projections_are_written_under_every_name_they_stand_for_and_the_command_says_the_cache_does_not_shrink()
    {
        using var temp = new TempFolder();
        var path = temp.File("nokey.gguf");

        var result = CliHarness.Run("export-gguf", "TinyNoKey", "--out", path);

        Assert.Equal(0, result.ExitCode);
        // 34 state-dict tensors, 38 in the file: each layer's v_proj is attn_v and attn_k.
        Assert.Contains("as llama.cpp's 'llama', 38 tensors, f32", result.Output);
        Assert.Contains("Note: NoKey attention: llama.cpp has no kind for keys that are the values, so v_proj is written twice (as attn_v and attn_k, same numbers) " +
                        "and llama.cpp caches keys and values separately, 4,096 bytes per token at f16 where our cached decoding keeps 2,048: no KV-cache saving there.", result.Output);
        var file = GgufFile.Read(path);
        Assert.Equal(file.Tensor("blk.0.attn_v.weight").Dimensions, file.Tensor("blk.0.attn_k.weight").Dimensions);
        Assert.Null(TinyDecoder.Gguf.Note);
        Assert.Contains("so qkv_proj is written three times (as attn_q, attn_k and attn_v, same numbers)", TinyShared.Gguf.Note);
        Assert.Contains("4,096 bytes per token at f16, as our cached decoding does", TinyNoQuery.Gguf.Note);
    }

    [Fact]
    public void Export_gguf_writes_a_gpt2_model_as_llama_cpp_s_gpt2_with_its_input_by_output_weights_turned_and_its_positions()
    {
        using var temp = new TempFolder();
        var path = temp.File("gpt2.gguf");

        var result = CliHarness.Run("export-gguf", "GgufGpt2", "--assembly", typeof(GgufExportTests).Assembly.Location, "--out", path);

        Assert.Equal(0, result.ExitCode);
        // token_embd, position_embd, 12 per layer (2 norms, attn_qkv, attn_output, ffn_up, ffn_down, each with a bias),
        // output_norm and its bias; the head is tied.
        Assert.Contains("GgufGpt2 as llama.cpp's 'gpt2', 28 tensors, f32", result.Output);
        var file = GgufFile.Read(path);
        Assert.Equal(GgufValue.String("gpt2"), file["general.architecture"]);
        Assert.Equal(GgufValue.Float32(1e-5f), file["gpt2.attention.layer_norm_epsilon"]);
        // GGUF lists the innermost dimension first: [inputs, outputs], ggml's layout for x·Wᵀ, where c_attn is [128, 384].
        Assert.Equal(new ulong[] { 128, 384 }, file.Tensor("blk.0.attn_qkv.weight").Dimensions);
        Assert.Equal(new ulong[] { 512, 128 }, file.Tensor("blk.1.ffn_down.weight").Dimensions);
        Assert.Equal(new ulong[] { 128, 128 }, file.Tensor("position_embd.weight").Dimensions);
        Assert.DoesNotContain(file.Tensors, t => t.Name == "output.weight");
        Assert.Null(Gpt2Small.Gguf.Refusal);
        Assert.Equal("gpt2", Gpt2Small.Gguf.Architecture);
    }

    /// <summary>Named tensors with known values, for the exporter's transforms.</summary>
    private sealed class Pieces : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE0052, CS0414 // read through the state dict
        private readonly TorchSharp.Modules.Parameter c_attn = new(arange(6f).reshape(2, 3)); // input × output, as GPT-2's Conv1D
        private readonly TorchSharp.Modules.Parameter q_proj = new(arange(6f).reshape(2, 3));
        private readonly TorchSharp.Modules.Parameter k_proj = new(arange(6f, 9f).reshape(1, 3));
        private readonly TorchSharp.Modules.Parameter v_proj;
#pragma warning restore IDE0052, CS0414

        public Pieces(long valueWidth) : base(nameof(Pieces))
        {
            v_proj = new(arange(9f, 9f + valueWidth).reshape(1, valueWidth));
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) => input;
    }

    private static readonly GgufTensorMapping[] PieceTable =
    {
        new("c_attn", "blk.0.attn_qkv.weight", GgufTransform.Transposed),
        new("q_proj", "blk.1.attn_qkv.weight", GgufTransform.Concatenated, Stacked: new[] { "q_proj", "k_proj", "v_proj" }),
    };

    [Fact]
    public void A_transposed_weight_is_written_output_by_input_and_joined_projections_one_after_another()
    {
        using var temp = new TempFolder();
        var path = temp.File("pieces.gguf");
        using var model = new Pieces(valueWidth: 3);

        GgufExporter.Export(model, GgufExport.Model("gpt2", Array.Empty<System.Collections.Generic.KeyValuePair<string, GgufValue>>(), PieceTable), "Pieces", path);

        var file = GgufFile.Read(path);
        float[] Values(string name)
        {
            var bytes = GgufFile.ReadData(path, file, file.Tensor(name));
            var values = new float[bytes.Length / sizeof(float)];
            Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
            return values;
        }
        // [2 inputs, 3 outputs] becomes 3 rows of 2 (dimensions innermost first).
        Assert.Equal(new ulong[] { 2, 3 }, file.Tensor("blk.0.attn_qkv.weight").Dimensions);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, Values("blk.0.attn_qkv.weight"));
        // q's 2 rows, then k's, then v's.
        Assert.Equal(new ulong[] { 3, 4 }, file.Tensor("blk.1.attn_qkv.weight").Dimensions);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (float)i), Values("blk.1.attn_qkv.weight"));
    }

    [Fact]
    public void Projections_that_cannot_be_joined_are_refused_naming_the_odd_one()
    {
        using var temp = new TempFolder();
        using var model = new Pieces(valueWidth: 2);

        var error = Assert.Throws<InvalidOperationException>(() =>
            GgufExporter.Export(model, GgufExport.Model("gpt2", Array.Empty<System.Collections.Generic.KeyValuePair<string, GgufValue>>(), PieceTable), "Pieces", temp.File("odd.gguf")));

        Assert.Contains("v_proj is [1, 2]: tensors joined as blk.1.attn_qkv.weight must agree past their first dimension with q_proj [2, 3]", error.Message);
        Assert.Empty(Directory.GetFiles(temp.Path));
    }

    [Fact]
    public void An_unknown_type_is_refused_naming_the_value()
    {
        using var temp = new TempFolder();

        var result = CliHarness.Run("export-gguf", "TinyDecoder", "--out", temp.File("x.gguf"), "--type", "q3_k");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("--type: 'q3_k' is not a type export-gguf writes; use f32, f16, bf16 or q8_0.", result.Error);
    }

    [Fact]
    public void A_model_holding_nan_is_refused_naming_the_tensor_and_no_file_is_left()
    {
        using var temp = new TempFolder();
        using var model = TinyDecoder.Create();
        using (no_grad()) model.state_dict()["model.layers.2.mlp.up_proj.weight"][0, 0] = float.NaN;

        var error = Assert.Throws<InvalidDataException>(() => GgufExporter.Export(model, temp.File("nan.gguf")));

        Assert.Contains("model.layers.2.mlp.up_proj.weight holds NaN or infinite values", error.Message);
        Assert.Empty(Directory.GetFiles(temp.Path));
    }
}
