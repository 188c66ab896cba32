using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using LlmEff.Checkpoints;
using LlmEff.Data;
using LlmEff.Layers;
using LlmEff.Quantization;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Samples;
using LlmEff.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests.Quantization;

/// <summary>Models declared with [Quant]: unchanged parameters, exact compile-time sizes, straight-through gradients
/// at the model level, the QAT switch in training (also across a resume), and packed export and inference.</summary>
public sealed class QuantizedModelTests : IDisposable
{
    private static readonly TokenDataset Data = TokenDataset.EmbeddedDefault(characters: 30_000);
    private static readonly TrainingOptions Options = new() { Steps = 6, BatchSize = 2, SequenceLength = 16, WarmupSteps = 2, EvalBatches = 1, EvalEvery = 2 };
    private readonly string folder = Directory.CreateTempSubdirectory("llmeff-quant-").FullName;

    public static TheoryDataFor QuantizedModels => Zoo.NamesWhere(f => f.Quant is not null);

    [Fact]
    public void A_quantized_declaration_keeps_the_parameters_of_its_plain_twin_and_computes_the_same_in_full_precision()
    {
        Seeding.Seed(3);
        using var plain = new PlainDense();
        using var quantized = new QuantDense();
        CopyWeights(plain, quantized);
        using var tokens = Tokens(seed: 4);

        Assert.Equal(Shapes(plain), Shapes(quantized));
        Assert.Equal(plain.state_dict().Keys.Order(), quantized.state_dict().Keys.Order());
        using var expected = plain.forward(tokens);
        using var actual = quantized.forward(tokens);
        Assert.True(expected.equal(actual).all().item<bool>());
    }

    [Theory]
    [MemberData(nameof(QuantizedModels))]
    public void Compile_time_counts_and_bytes_equal_the_live_quantized_layers(string name)
    {
        var declared = Zoo.ByName(name);
        using var model = declared.Create();
        var layers = QuantizedLinear.NamedIn(model);
        var quant = declared.Facts.Quant!;

        Assert.Equal(quant.Parameters, layers.Sum(l => l.Layer.weight!.numel()));
        long bytes = 0;
        foreach (var (_, layer) in layers)
        {
            using var packed = layer.Pack();
            bytes += packed.Bytes;
        }
        Assert.Equal(quant.Bytes, bytes);
        // Only the declared target is quantized: routed experts are exactly the layers under ".experts.".
        var experts = layers.Count(l => l.Name.Contains(".experts.", StringComparison.Ordinal));
        if (quant.Target == QuantTarget.Experts) Assert.Equal(layers.Count, experts);
        if (!quant.Target.HasFlag(QuantTarget.Experts)) Assert.Equal(0, experts);
        if (!quant.Target.HasFlag(QuantTarget.Attention)) Assert.DoesNotContain(layers, l => l.Name.Contains("attn", StringComparison.Ordinal));
    }

    [Fact]
    public void The_samples_quantize_exactly_their_targets()
    {
        using var dense = new TinyDecoderFp4(META);
        using var mixture = new TinyMoeFp4(META);
        var denseLayers = QuantizedLinear.NamedIn(dense);
        var expertLayers = QuantizedLinear.NamedIn(mixture);

        Assert.Equal(4 * 7, denseLayers.Count); // q, k, v, o, gate, up, down in every layer
        Assert.Equal(TinyDecoderFp4.QuantizedParameterCount, denseLayers.Sum(l => l.Layer.weight!.numel()));
        Assert.Equal(4 * 8 * 3, expertLayers.Count);
        Assert.All(expertLayers, l => Assert.Contains(".mlp.experts.", l.Name));
        Assert.Equal(TinyMoeFp4.QuantizedParameterCount, expertLayers.Sum(l => l.Layer.weight!.numel()));
        Assert.Equal(4.25, TinyDecoderFp4.Facts.Quant!.BitsPerValue);
        Assert.Equal(4.25, TinyMoeFp4.Facts.Quant!.BitsPerValue);
    }

    [Theory]
    [InlineData(nameof(QuantDense))]
    [InlineData(nameof(QuantGpt2Nvfp4))]
    public void Fake_quantized_forward_and_gradients_are_those_of_the_model_with_quantized_weights(string name)
    {
        // The straight-through estimator at model level: forward as if the weights were Q(W), and dL/dW = dL/dQ(W).
        var declared = Zoo.ByName(name);
        Seeding.Seed(5);
        using var trained = declared.Create();
        using var reference = declared.Create();
        var layers = QuantizedLinear.NamedIn(trained);
        var inRange = new Dictionary<string, Tensor>();
        using (no_grad())
        {
            foreach (var ((layerName, source), (_, target)) in layers.Zip(QuantizedLinear.NamedIn(reference)))
            {
                // Blocks run along the input, so a transposed (input × output) weight is quantized as its transpose.
                var q = source.Quantization!;
                using var outputByInput = source.Transposed ? source.weight!.t() : source.weight!.alias();
                var (values, mask) = Quantizer.FakeQuantizeWithRange(outputByInput, q.Format, q.GroupSize);
                target.weight!.copy_(source.Transposed ? values.t() : values);
                inRange[layerName + ".weight"] = source.Transposed ? mask.t() : mask;
                values.Dispose();
            }
            foreach (var ((parameterName, a), (_, b)) in trained.named_parameters().Zip(reference.named_parameters()))
                if (!inRange.ContainsKey(parameterName)) b.copy_(a);
        }
        var clipped = layers[0].Layer.Quantization!.Clipped;
        QuantizedLinear.SetFakeQuantization(trained, true);
        using var tokens = Tokens(seed: 6);
        using var targets = Tokens(seed: 7);

        using var loss = Trainer.NextTokenLoss(trained.forward(tokens), targets);
        using var referenceLoss = Trainer.NextTokenLoss(reference.forward(tokens), targets);
        loss.backward();
        referenceLoss.backward();

        Assert.Equal(referenceLoss.item<float>(), loss.item<float>());
        foreach (var ((parameterName, a), (_, b)) in trained.named_parameters().Zip(reference.named_parameters()))
        {
            Assert.True(a.grad is not null && b.grad is not null, $"{parameterName} has no gradient");
            // Clipped STE: the reference gradient where the weight was in range, zero where it saturated.
            using var expected = clipped && inRange.TryGetValue(parameterName, out var mask) ? b.grad! * mask : b.grad!.alias();
            Assert.True(allclose(a.grad!, expected, rtol: 1e-5, atol: 1e-9), $"{parameterName}: the gradient is not the reference's");
            Assert.True(a.grad!.abs().sum().item<float>() > 0, $"{parameterName}: no gradient passed");
        }
        foreach (var mask in inRange.Values) mask.Dispose();
    }

    [Fact]
    public void Training_switches_fake_quantization_on_exactly_once_at_floor_From_times_Steps()
    {
        Seeding.Seed(8);
        using var model = new QuantDense();
        using var run = new TrainingRun(model, Data, Options with { Steps = 5 });
        var reports = Enumerable.Range(0, 5).Select(_ => run.Step()).ToList();

        Assert.Equal(2, run.QuantizationStartStep); // floor(0.5 · 5)
        Assert.Equal(new[] { false, false, true, true, true }, reports.Select(r => r.FakeQuantized));
        Assert.Equal(new[] { 3 }, reports.Where(r => r.QuantizationStarted).Select(r => r.Step));
        Assert.All(run.QuantizedLayers, l => Assert.True(l.FakeQuantize));
        Assert.Equal(29, WeightQuantization.StartStep(0.29, 100)); // 0.29 · 100 is 28.999… in binary
    }

    [Theory]
    [InlineData(0.0, 0)]
    [InlineData(1.0, 4)]
    public void The_QatFrom_option_overrides_the_declared_start(double from, int start)
    {
        Seeding.Seed(9);
        using var model = new QuantDense();
        using var run = new TrainingRun(model, Data, Options with { Steps = 4, QatFrom = from });
        var reports = Enumerable.Range(0, 4).Select(_ => run.Step()).ToList();

        Assert.Equal(start, run.QuantizationStartStep);
        Assert.Equal(Enumerable.Range(0, 4).Select(step => step >= start), reports.Select(r => r.FakeQuantized));
        Assert.Equal(start < 4 ? 1 : 0, reports.Count(r => r.QuantizationStarted));
    }

    [Theory]
    [InlineData(2)] // interrupted before the switch at step 3
    [InlineData(4)] // and after it
    public void Resuming_a_quantization_aware_run_repeats_the_uninterrupted_one_bit_for_bit(int interruptAfter)
    {
        Seeding.Seed(10);
        using var straight = new QuantDense();
        var expected = Trainer.Train(straight, Data, Options);

        Seeding.Seed(10);
        var path = Path.Combine(folder, $"qat-{interruptAfter}.safetensors");
        using (var first = new QuantDense())
        using (var run = new TrainingRun(first, Data, Options))
        {
            for (var i = 0; i < interruptAfter; i++) run.Step();
            run.SaveCheckpoint(path, QuantDense.Facts);
        }
        manual_seed(999);
        using var resumedModel = new QuantDense();
        using var resumed = TrainingRun.Resume(path, resumedModel, QuantDense.Facts, Data, Options);
        var reports = new List<StepReport>();
        var actual = resumed.Complete(reports.Add);

        Assert.Equal(expected.Losses, actual.Losses);
        Assert.Equal(expected.HeldOutLoss, actual.HeldOutLoss);
        Assert.Equal(interruptAfter < 3 ? 1 : 0, reports.Count(r => r.QuantizationStarted));
        foreach (var ((name, a), (_, b)) in straight.named_parameters().Zip(resumedModel.named_parameters()))
            Assert.True(a.equal(b).all().item<bool>(), $"{name} differs after resuming");
    }

    [Fact]
    public void A_packed_MXFP4_export_runs_from_4_bit_codes_at_4_25_bits_and_gives_the_fake_quantized_logits()
    {
        Seeding.Seed(11);
        using var source = new QuantDense();
        Trainer.Train(source, Data, Options with { Steps = 4, EvalEvery = 0 }); // ends fake-quantized (From = 0.5)
        var path = Path.Combine(folder, "dense.packed.safetensors");

        var written = PackedWeights.Save(path, source, QuantDense.Facts);
        manual_seed(12);
        using var packed = new QuantDense();
        var memory = PackedWeights.Load(path, packed, QuantDense.Facts);

        var header = SafeTensors.ReadHeader(path);
        Assert.Equal("U8 [64, 32]", $"{header.Tensors["model.layers.0.self_attn.q_proj.weight.codes"].DTypeName} {SafeTensors.FormatShape(header.Tensors["model.layers.0.self_attn.q_proj.weight.codes"].Shape)}");
        Assert.Equal("U8 [64, 4]", $"{header.Tensors["model.layers.1.mlp.down_proj.weight.scales"].DTypeName} {SafeTensors.FormatShape(header.Tensors["model.layers.1.mlp.down_proj.weight.scales"].Shape)}");
        Assert.DoesNotContain("model.layers.0.self_attn.q_proj.weight", header.Tensors.Keys);
        Assert.Contains("model.embed_tokens.weight", header.Tensors.Keys);
        Assert.Equal(written, memory);
        Assert.Equal(QuantDense.QuantizedParameterCount, memory.PackedValues);
        Assert.Equal(QuantDense.QuantizedWeightBytes, memory.PackedBytes);
        Assert.Equal(4.25, memory.BitsPerPackedValue);
        Assert.True(memory.PackedRatioToFp32 >= 7.5, $"only {memory.PackedRatioToFp32:F2}x smaller than fp32");
        Assert.Equal((QuantDense.ParameterCount - QuantDense.QuantizedParameterCount) * 4 + QuantDense.QuantizedWeightBytes, memory.TotalBytes);
        Assert.DoesNotContain(packed.named_parameters(), p => p.name == "model.layers.0.self_attn.q_proj.weight");

        using var tokens = Tokens(seed: 13);
        using var expected = source.forward(tokens);
        using var actual = packed.forward(tokens);
        Assert.True(expected.equal(actual).all().item<bool>(), $"max |Δ| = {(expected - actual).abs().max().item<float>()}");
    }

    [Theory]
    [InlineData(nameof(QuantGpt2Nvfp4))]
    [InlineData(nameof(QuantExpertsInt4))]
    [InlineData(nameof(QuantFp8NotExperts))]
    public void Packed_exports_of_every_format_and_layout_give_the_fake_quantized_logits(string name)
    {
        var declared = Zoo.ByName(name);
        Seeding.Seed(14);
        using var source = declared.Create();
        QuantizedLinear.SetFakeQuantization(source, true);
        var path = Path.Combine(folder, name + ".safetensors");

        PackedWeights.Save(path, source, declared.Facts);
        using var packed = declared.Create();
        var memory = PackedWeights.Load(path, packed, declared.Facts);

        Assert.Equal(declared.Facts.Quant!.Bytes, memory.PackedBytes);
        using var tokens = Tokens(seed: 15);
        using var expected = source.forward(tokens);
        using var actual = packed.forward(tokens);
        Assert.True(allclose(expected, actual, rtol: 0, atol: 1e-6), $"max |Δ| = {(expected - actual).abs().max().item<float>()}");
    }

    [Fact]
    public void Packed_exports_are_refused_by_other_models_and_checkpoints_are_not_packed_exports()
    {
        using var source = new QuantDense();
        var path = Path.Combine(folder, "dense.safetensors");
        PackedWeights.Save(path, source, QuantDense.Facts);
        var checkpoint = Path.Combine(folder, "checkpoint.safetensors");
        Checkpoint.SaveWeights(checkpoint, source, QuantDense.Facts);

        using var other = new QuantGpt2Nvfp4();
        var wrongModel = Assert.Throws<InvalidDataException>(() => PackedWeights.Load(path, other, QuantGpt2Nvfp4.Facts));
        using var fresh = new QuantDense();
        var notPacked = Assert.Throws<InvalidDataException>(() => PackedWeights.Load(checkpoint, fresh, QuantDense.Facts));
        using var plain = new PlainDense();
        var noQuant = Assert.Throws<ArgumentException>(() => PackedWeights.Save(path, plain, PlainDense.Facts));

        Assert.Contains("is a packed export of model 'QuantDense', not of 'QuantGpt2Nvfp4'", wrongModel.Message);
        Assert.Contains("is a full-precision checkpoint, not a packed export", notPacked.Message);
        Assert.Contains("PlainDense declares no [Quant]", noQuant.Message);
        Assert.NotNull(fresh.named_parameters().Single(p => p.name == "model.layers.0.self_attn.q_proj.weight").parameter); // untouched
    }

    [Fact]
    public void A_packed_model_cannot_train_and_bad_settings_name_their_value()
    {
        using var source = new QuantDense();
        var path = Path.Combine(folder, "inference.safetensors");
        PackedWeights.Save(path, source, QuantDense.Facts);
        using var packed = new QuantDense();
        PackedWeights.Load(path, packed, QuantDense.Facts);

        Assert.Contains("packed weights", Assert.Throws<InvalidOperationException>(() => new TrainingRun(packed, Data, Options)).Message);
        Assert.Contains("[0, 1)", Assert.Throws<ArgumentOutOfRangeException>(() => new WeightQuantization(QuantFormat.Mxfp4, From: 1)).Message);
        var qatFrom = Assert.Throws<ArgumentOutOfRangeException>(() => (Options with { QatFrom = 1.5 }).Validate());
        Assert.Equal(nameof(TrainingOptions.QatFrom), qatFrom.ParamName);
        Assert.Equal(1.5, qatFrom.ActualValue);
    }

    private static Tensor Tokens(int seed)
    {
        using var generator = new Generator((ulong)seed);
        return randint(0, 97, new long[] { 2, 16 }, generator: generator);
    }

    private static List<string> Shapes(nn.Module model) => model.named_parameters().Select(p => $"{p.name} {SafeTensors.FormatShape(p.parameter.shape)}").ToList();

    private static void CopyWeights(nn.Module from, nn.Module to)
    {
        using var _ = no_grad();
        var targets = to.state_dict();
        foreach (var (name, tensor) in from.state_dict()) targets[name].copy_(tensor);
    }

    public void Dispose() => Directory.Delete(folder, recursive: true);
}
