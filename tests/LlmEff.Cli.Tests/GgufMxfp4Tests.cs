using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using LlmEff.Checkpoints;
using LlmEff.Cli.LlamaCpp;
using LlmEff.Export;
using LlmEff.Layers;
using LlmEff.Quantization;
using LlmEff.Samples;
using LlmEff.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LlmEff.Cli.Tests;

/// <summary>
/// <c>[Quant(Mxfp4)]</c> models go to llama.cpp quantized: each weight the model quantizes is a ggml mxfp4 tensor holding
/// exactly our E2M1 codes and E8M0 scales, and llama.cpp computes what our fake-quantized model computes.
/// </summary>
public sealed class GgufMxfp4Tests(ITestOutputHelper output)
{
    private const int PromptLength = 64;
    private const int Generated = 32;
    private const int Block = 32;
    private const int BlockBytes = 17;

    // llama.cpp's CPU back end multiplies an mxfp4 matrix by activations rounded to Q8_0 first (vec_dot_type
    // GGML_TYPE_Q8_0 for GGML_TYPE_MXFP4 in ggml-cpu.c: per 32 values an f16 scale and signed bytes), while our module
    // multiplies in fp32, so the logits of the QAT-trained samples differ from our fake-quantized model's by what that
    // rounding does: measured on this 2-core machine (2026-11-30) 2.2e-2 (TinyDecoderFp4) and 6.5e-3 (TinyMoeFp4's
    // experts) for logits up to 8, against 0.30 and 0.84 from the same models unquantized and 3 to 13 for the mutated
    // files below. 0.1 leaves room for other CPUs' kernels and stays far below all of those. Where the rounding meets
    // more products (an LFM2 hybrid gates products of projections: 0.38 measured) the other architectures' tests allow
    // 1.0 against the fake-quantized model and rely on the tight check with llama.cpp's rounding reproduced.
    private const float SampleTolerance = 0.1f, ArchitectureTolerance = 1f;

    // llama.cpp's arithmetic reproduced (LlamaCppQ8_0): measured 2.9e-6 to 3.1e-3, the latter where an activation sat on
    // a Q8_0 rounding midpoint and f32 summation order put it one code apart (2 of 64 positions of the qwen3moe model).
    private const float EmulationTolerance = 1e-2f;

    private static readonly int[] Mxfp4Values = { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 }; // twice E2M1, as ggml's kvalues_mxfp4

    [Fact]
    public void TinyDecoderFp4_s_mxfp4_tensors_hold_exactly_our_codes_and_scales_and_decode_as_ggml_does_to_our_quantized_weights()
    {
        using var temp = new TempFolder();
        Seeding.Seed(7);
        using var model = TinyDecoderFp4.Create();
        var path = temp.File("fp4.gguf");

        var written = GgufExporter.Export(model, path, GgufTensorType.F16);

        var file = GgufFile.Read(path);
        Assert.Equal(28, written.Mxfp4Tensors); // 4 layers × (q, k, v, o, gate, up, down)
        Assert.Equal(TinyDecoderFp4.Facts.Quant!.Parameters, written.Mxfp4Values);
        Assert.Equal(GgufValue.UInt32(GgufExporter.Mxfp4FileType), file[GgufExporter.FileTypeKey]);
        // What the model does not quantize goes as --type says: the embedding f16, norms f32.
        Assert.Equal(GgufTensorType.F16, file.Tensor("token_embd.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.Tensor("blk.0.attn_norm.weight").Type);
        // 17 bytes per 32 weights: 4.25 bits, the packed export's size for the same weights.
        Assert.Equal((ulong)TinyDecoderFp4.Facts.Quant.Bytes, file.Tensors.Where(t => t.Type == GgufTensorType.MXFP4).Aggregate(0UL, (sum, t) => sum + t.Bytes));
        var layers = QuantizedLinear.NamedIn(model);
        Assert.Equal(28, layers.Count);
        foreach (var (name, layer) in layers) AssertHolds(path, file, name, layer, headDim: 64);
    }

    [Fact]
    public void TinyMoeFp4_s_stacked_experts_hold_exactly_each_expert_s_codes_and_scales_and_attention_stays_as_type_says()
    {
        using var temp = new TempFolder();
        Seeding.Seed(8);
        using var model = TinyMoeFp4.Create();
        var path = temp.File("moe4.gguf");

        var written = GgufExporter.Export(model, path, GgufTensorType.Q8_0);

        var file = GgufFile.Read(path);
        Assert.Equal(12, written.Mxfp4Tensors); // 4 layers × (gate, up, down) experts, 8 stacked in each
        Assert.Equal(GgufTensorType.Q8_0, file.Tensor("blk.0.attn_q.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.Tensor("blk.0.ffn_gate_inp.weight").Type);
        Assert.Equal(new ulong[] { 352, 256, 8 }, file.Tensor("blk.3.ffn_down_exps.weight").Dimensions);
        var layers = QuantizedLinear.NamedIn(model);
        Assert.Equal(96, layers.Count);
        foreach (var (name, layer) in layers) AssertHolds(path, file, name, layer, headDim: 64);
    }

    /// <summary>
    /// Reads the ggml blocks of <paramref name="layer"/>'s weight back from the file and checks, with a decoder of its
    /// own, that every scale byte and code is the one our quantizer packs (rows of q and k in llama's adjacent-pair
    /// order), and that ggml's decoding (twice E2M1 times 2^(e−128)) gives our fake-quantized weight exactly.
    /// </summary>
    private static void AssertHolds(string path, GgufContents file, string name, QuantizedLinear layer, int headDim)
    {
        var match = Regex.Match(name, @"^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(?:experts\.(\d+)\.)?(\w+)$");
        Assert.True(match.Success, name);
        var kind = match.Groups[3].Value;
        var gguf = kind switch
        {
            "q_proj" => "attn_q", "k_proj" => "attn_k", "v_proj" => "attn_v", "o_proj" => "attn_output",
            "gate_proj" => "ffn_gate", "up_proj" => "ffn_up", "down_proj" => "ffn_down",
            _ => throw new InvalidOperationException($"{name}: no GGUF name for {kind}"),
        };
        var expert = match.Groups[2].Success ? int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
        var info = file.Tensor($"blk.{match.Groups[1].Value}.{gguf}{(expert >= 0 ? "_exps" : "")}.weight");
        Assert.Equal(GgufTensorType.MXFP4, info.Type);
        var bytes = GgufFile.ReadData(path, file, info);

        using var packed = layer.Pack();
        using var unpacked = packed.UnpackCodes();
        var codes = unpacked.data<byte>().ToArray();
        var scales = packed.BlockScales!.data<byte>().ToArray();
        using var fake = Quantizer.FakeQuantize(layer.weight!, QuantFormat.Mxfp4);
        var weights = fake.data<float>().ToArray();
        long rows = layer.OutFeatures, columns = layer.InFeatures, blocks = columns / Block, rowBytes = blocks * BlockBytes;
        var paired = kind is "q_proj" or "k_proj";
        long wrongScales = 0, wrongCodes = 0, wrongValues = 0;
        for (long row = 0; row < rows; row++)
        {
            // llama rotates adjacent pairs: row i of half h of a head is written as row 2i + h of that head.
            var fileRow = paired ? row / headDim * headDim + 2 * (row % headDim % (headDim / 2)) + row % headDim / (headDim / 2) : row;
            for (long block = 0; block < blocks; block++)
            {
                var at = (expert >= 0 ? expert * rows * rowBytes : 0) + fileRow * rowBytes + block * BlockBytes;
                var e = bytes[at];
                if (e != scales[row * blocks + block]) wrongScales++;
                var scale = Math.ScaleB(1.0, e - 128);
                for (var j = 0; j < Block; j++)
                {
                    // ggml's block_mxfp4: value j in the low nibble of byte j, value j + 16 in its high nibble.
                    var code = j < Block / 2 ? bytes[at + 1 + j] & 15 : bytes[at + 1 + j - Block / 2] >> 4;
                    var index = row * columns + block * Block + j;
                    if (code != codes[index]) wrongCodes++;
                    if ((float)(Mxfp4Values[code] * scale) != weights[index]) wrongValues++;
                }
            }
        }
        Assert.True(wrongScales + wrongCodes + wrongValues == 0, $"{name} in {info.Name}: {wrongScales} scales, {wrongCodes} codes and {wrongValues} decoded values differ from ours.");
    }

    // llama.cpp runs the files of QAT-trained models and computes our fake-quantized model: within the tolerances above, and to f32
    // rounding (EmulationTolerance) once our model rounds activations to Q8_0 as llama.cpp does. The export is made while
    // the layers are not fake-quantizing (as a model saved before its training reached From is), and still holds the
    // quantized weights. The samples' 32 greedy tokens are those of our fake-quantized model. The other architectures'
    // tests check the logits and only report the tokens: their small trained models repeat "e e a a" and can sit on a
    // near tie (the glm4moe one at its 3rd token), which either engine may break either way.

    [Fact]
    public void TinyDecoderFp4_exported_as_mxfp4_gives_llama_cpp_our_fake_quantized_logits_and_greedy_tokens() => Check<TinyDecoderFp4>(sample: true);

    [Fact]
    public void TinyMoeFp4_s_experts_exported_as_mxfp4_give_llama_cpp_our_fake_quantized_logits_and_greedy_tokens() => Check<TinyMoeFp4>(sample: true);

    [Fact]
    public void Mxfp4_dense_and_expert_layers_beside_latent_attention_exported_as_deepseek2_give_llama_cpp_our_quantized_logits() => Check<Models.GgufLatentMoeFp4>(sample: false);

    [Fact]
    public void Mxfp4_routed_and_shared_experts_exported_as_glm4moe_give_llama_cpp_our_quantized_logits() => Check<Models.GgufSharedMoeFp4>(sample: false);

    [Fact]
    public void Mxfp4_QkNorm_attention_and_experts_exported_as_qwen3moe_give_llama_cpp_our_quantized_logits() => Check<Models.GgufQkNormMoeFp4>(sample: false);

    [Fact]
    public void An_mxfp4_hybrid_exported_as_lfm2moe_gives_llama_cpp_our_quantized_logits() => Check<Models.GgufHybridMoeFp4>(sample: false);

    private void Check<TModel>(bool sample) where TModel : nn.Module<Tensor, Tensor>, IDeclaredModel<TModel>
    {
        var tolerance = sample ? SampleTolerance : ArchitectureTolerance;
        var run = Run<TModel>(corrupt: null, greedy: true);
        var tokens = run.Ours.SequenceEqual(run.Theirs) ? "identical" : $"differ: ours {string.Join(",", run.Ours)} theirs {string.Join(",", run.Theirs)}";
        output.WriteLine($"{TModel.Facts.Name} ({TModel.Gguf.Architecture}, mxfp4): max |llama.cpp − TorchSharp fake-quantized| = {run.Quantized:E2}, " +
                         $"{run.Emulated:E2} with activations rounded to Q8_0 as llama.cpp does ({run.Departed} of {PromptLength} positions beyond {EmulationTolerance:E0}), " +
                         $"{run.Unquantized:E2} against the unquantized model (largest |logit| {run.Spread:F2}); " +
                         $"greedy tokens {tokens}");
        Assert.True(run.Quantized < tolerance, $"llama.cpp's logits differ from our fake-quantized model's by up to {run.Quantized:E2}, over the tolerance {tolerance:E0}.");
        Assert.True(run.Emulated < EmulationTolerance, $"llama.cpp's logits differ from our model with its rounding by up to {run.Emulated:E2}, over {EmulationTolerance:E0}.");
        // The file holds the quantized model, not the float one.
        Assert.True(run.Unquantized > 100 * run.Emulated, $"llama.cpp is {run.Unquantized:E2} from the unquantized model and {run.Emulated:E2} from the quantized one.");
        if (sample) Assert.Equal(run.Ours, run.Theirs);
    }

    // The checks above can fail: these files get the convention wrong on purpose, and llama.cpp's logits then differ
    // from ours by far more than the tolerance.

    [Fact]
    public void An_export_that_pairs_neighbouring_codes_in_a_byte_as_our_safetensors_packing_does_is_caught_by_the_parity_check() =>
        Caught("neighbouring codes paired", block =>
        {
            var codes = new int[Block];
            for (var j = 0; j < Block / 2; j++)
            {
                codes[j] = block[1 + j] & 15;
                codes[j + Block / 2] = block[1 + j] >> 4;
            }
            for (var i = 0; i < Block / 2; i++) block[1 + i] = (byte)(codes[2 * i] | codes[2 * i + 1] << 4);
        });

    [Fact]
    public void An_export_whose_scales_compensate_ggml_s_doubled_e2m1_table_again_is_caught_by_the_parity_check() =>
        // ggml already halves the scale (GGML_E8M0_TO_FP32_HALF); subtracting one more halves every weight.
        Caught("scale bytes e − 1", block => block[0] = (byte)Math.Max(block[0] - 1, 0));

    private void Caught(string mistake, Action<byte[]> corruptBlock)
    {
        var run = Run<TinyDecoderFp4>(path => RewriteMxfp4Blocks(path, corruptBlock), greedy: false);
        output.WriteLine($"TinyDecoderFp4 with {mistake}: max |llama.cpp − TorchSharp fake-quantized| = {run.Quantized:E2}, {run.Emulated:E2} with Q8_0 activations");
        Assert.True(run.Quantized > 10 * SampleTolerance && run.Emulated > 100 * EmulationTolerance, $"The wrong export differs by only {run.Quantized:E2} ({run.Emulated:E2} with Q8_0 activations): the parity check would not notice it.");
    }

    /// <summary>Applies <paramref name="corruptBlock"/> to every 17-byte block of every mxfp4 tensor of the file.</summary>
    private static void RewriteMxfp4Blocks(string path, Action<byte[]> corruptBlock)
    {
        var file = GgufFile.Read(path);
        var tensors = file.Tensors.Where(t => t.Type == GgufTensorType.MXFP4).Select(t => (Info: t, Bytes: GgufFile.ReadData(path, file, t))).ToList();
        Assert.NotEmpty(tensors);
        using var stream = File.Open(path, FileMode.Open, FileAccess.Write);
        var block = new byte[BlockBytes];
        foreach (var (info, bytes) in tensors)
        {
            for (var at = 0; at < bytes.Length; at += BlockBytes)
            {
                Array.Copy(bytes, at, block, 0, BlockBytes);
                corruptBlock(block);
                Array.Copy(block, 0, bytes, at, BlockBytes);
            }
            stream.Position = file.DataStart + (long)info.Offset;
            stream.Write(bytes);
        }
    }

    private sealed record Result(float Quantized, float Emulated, int Departed, float Unquantized, float Spread, int[] Ours, int[] Theirs);

    /// <summary>Trains a fresh model 40 steps with quantization-aware training from its <c>From</c> on, exports it (the
    /// rest f32) with its layers no longer fake-quantizing, optionally spoils the file, and compares llama.cpp's logits
    /// of a random 64-token prompt with our model's: fake-quantized, fake-quantized with llama.cpp's Q8_0 activations, and
    /// unquantized.</summary>
    private static Result Run<TModel>(Action<string>? corrupt, bool greedy) where TModel : nn.Module<Tensor, Tensor>, IDeclaredModel<TModel>
    {
        using var temp = new TempFolder();
        var random = Seeding.Seed(20261130);
        using var model = TModel.Create();
        var options = new TrainingOptions { Steps = 40, BatchSize = 4, SequenceLength = 64, WarmupSteps = 4, EvalBatches = 1 };
        var trained = Trainer.Train(model, LlmEff.Data.TokenDataset.EmbeddedDefault(characters: 20_000), options);
        Assert.True(trained.FinalTrainLoss < trained.Losses[0] - 1.0, $"training did not move {TModel.Facts.Name}: {trained.Losses[0]:F3} → {trained.FinalTrainLoss:F3}");
        // As a model saved before its quantized steps would be: the export does not depend on it.
        QuantizedLinear.SetFakeQuantization(model, false);
        model.eval();
        var path = temp.File(TModel.Facts.Name + ".gguf");
        GgufExporter.Export(model, path);
        corrupt?.Invoke(path);

        var prompt = Enumerable.Range(0, PromptLength).Select(_ => random.Next(TModel.Facts.Vocab)).ToArray();
        using var llama = new LlamaCppEngine(path, PromptLength + Generated);
        var theirs = llama.Logits(prompt);
        var unquantized = GgufParityTests.Logits(model, prompt);
        Assert.Equal(QuantizedLinear.In(model).Count, QuantizedLinear.SetFakeQuantization(model, true));
        var ours = GgufParityTests.Logits(model, prompt);
        // llama.cpp's own arithmetic: activations rounded to Q8_0 before each MXFP4 product.
        foreach (var layer in QuantizedLinear.In(model)) layer.InputRounding = LlamaCppQ8_0;
        var emulated = GgufParityTests.Logits(model, prompt);
        foreach (var layer in QuantizedLinear.In(model)) layer.InputRounding = null;

        float quantizedDifference = 0, emulatedDifference = 0, unquantizedDifference = 0, spread = 0;
        for (var position = 0; position < PromptLength; position++)
            for (var token = 0; token < TModel.Facts.Vocab; token++)
            {
                quantizedDifference = Math.Max(quantizedDifference, Math.Abs(theirs[position][token] - ours[position, token]));
                emulatedDifference = Math.Max(emulatedDifference, Math.Abs(theirs[position][token] - emulated[position, token]));
                unquantizedDifference = Math.Max(unquantizedDifference, Math.Abs(theirs[position][token] - unquantized[position, token]));
                spread = Math.Max(spread, Math.Abs(ours[position, token]));
            }
        // Positions at which llama.cpp's logits leave the emulation: a Q8_0 code one apart (an activation at a rounding
        // midpoint, summed in another order) and what attention carries of it to later positions.
        var departed = Enumerable.Range(0, PromptLength).Count(p => Enumerable.Range(0, TModel.Facts.Vocab).Any(t => Math.Abs(theirs[p][t] - emulated[p, t]) > EmulationTolerance));
        return greedy
            ? new Result(quantizedDifference, emulatedDifference, departed, unquantizedDifference, spread, GgufParityTests.Greedy(model, prompt, Generated), llama.Greedy(prompt, Generated))
            : new Result(quantizedDifference, emulatedDifference, departed, unquantizedDifference, spread, Array.Empty<int>(), Array.Empty<int>());
    }

    /// <summary>
    /// Activations as llama.cpp's CPU back end hands them to an MXFP4 dot product: quantize_row_q8_0 of ggml-cpu's
    /// quants.c (the AVX path) per 32 values along the input, d = max|x| / 127 stored as f16, codes x · (127 / max|x|)
    /// rounded to nearest, ties to even; each value is then d · code. (ggml's reference quantizer, which our q8_0 export
    /// follows, multiplies by 1 / d and rounds half away from zero: codes one apart at rare midpoints.)
    /// </summary>
    private static Tensor LlamaCppQ8_0(Tensor x)
    {
        using var scope = NewDisposeScope();
        var blocks = x.reshape(-1, Block);
        var max = blocks.abs().amax(new long[] { 1 }, keepdim: true);
        var id = where(max > 0, full_like(max, 127f) / max, zeros_like(max));
        var codes = (blocks * id).round();
        var d = (max / 127f).to(ScalarType.Float16).to(ScalarType.Float32);
        return (codes * d).reshape(x.shape).MoveToOuterDisposeScope();
    }

    [Fact]
    public void A_packed_export_and_the_model_it_was_packed_from_write_the_same_gguf_file()
    {
        using var temp = new TempFolder();
        Seeding.Seed(9);
        using var model = TinyDecoderFp4.Create();
        var packedPath = temp.File("packed.safetensors");
        PackedWeights.Save(packedPath, model, TinyDecoderFp4.Facts);
        using var fromCodes = TinyDecoderFp4.Create();
        PackedWeights.Load(packedPath, fromCodes, TinyDecoderFp4.Facts);
        Assert.All(QuantizedLinear.In(fromCodes), layer => Assert.Null(layer.weight)); // the fp32 weights are gone

        GgufExporter.Export(model, temp.File("model.gguf"));
        var result = CliHarness.Run("export-gguf", "TinyDecoderFp4", "--checkpoint", packedPath, "--out", temp.File("codes.gguf"), "--tokenizer", "none");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(File.ReadAllBytes(temp.File("model.gguf")), File.ReadAllBytes(temp.File("codes.gguf")));
    }

    [Fact]
    public void Export_gguf_says_which_tensors_it_writes_as_mxfp4_and_that_they_are_the_quantized_model()
    {
        using var temp = new TempFolder();

        var result = CliHarness.Run("export-gguf", "TinyMoeFp4", "--out", temp.File("moe.gguf"), "--type", "f16");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("MXFP4: 12 tensors (ffn_gate_exps, ffn_up_exps, ffn_down_exps), 8,650,752 weights as our E2M1 codes and E8M0 scales", result.Output);
        Assert.Contains("also before training reached From; the rest f16.", result.Output);
    }

    [Fact]
    public void A_model_quantized_to_a_format_llama_cpp_has_no_tensor_type_for_is_refused_naming_the_format()
    {
        using var temp = new TempFolder();
        using var model = Models.ParityFp8Checkpointed.Create();
        var path = temp.File("fp8.gguf");

        var error = Assert.Throws<NotSupportedException>(() => GgufExporter.Export(model, path));

        Assert.Equal("ParityFp8Checkpointed cannot be exported to GGUF: [Quant] FP8 E4M3 weights: no GGUF export; llama.cpp has no FP8 tensor type.", error.Message);
        Assert.False(File.Exists(path));
    }
}
