using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using LlmEff.Layers;
using LlmEff.Quantization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Checkpoints;

/// <summary>What a model's weights occupy in memory: its parameters, plus the codes and scales of packed layers.</summary>
/// <param name="TotalBytes">Everything: full-precision parameters and packed weights.</param>
/// <param name="PackedBytes">The packed weights' codes, block scales and tensor scales.</param>
/// <param name="PackedValues">How many weights those bytes hold.</param>
public sealed record WeightMemory(long TotalBytes, long PackedBytes, long PackedValues)
{
    /// <summary>Storage bits per packed weight (4.25 for MXFP4); NaN when nothing is packed.</summary>
    public double BitsPerPackedValue => PackedValues == 0 ? double.NaN : 8.0 * PackedBytes / PackedValues;

    /// <summary>How many times smaller the packed weights are than the same weights in fp32.</summary>
    public double PackedRatioToFp32 => PackedBytes == 0 ? double.NaN : 4.0 * PackedValues / PackedBytes;

    /// <summary>Weight memory of <paramref name="model"/> as it is now: every parameter at its element size, plus
    /// the packed codes and scales of layers running from them (whose fp32 weights are gone).</summary>
    public static WeightMemory Of(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long parameters = model.parameters().Sum(p => p.numel() * p.ElementSize);
        var packed = QuantizedLinear.In(model).Select(l => l.Packed).OfType<PackedTensor>().ToList();
        var packedBytes = packed.Sum(p => p.Bytes);
        return new WeightMemory(parameters + packedBytes, packedBytes, packed.Sum(p => p.NumberOfValues));
    }
}

/// <summary>
/// Inference exports of models declared with <c>[Quant]</c>: one safetensors file in which every targeted weight is
/// stored packed (as <see cref="Quantizer.Quantize"/> packs it) and everything else as in a checkpoint. A weight
/// <c>P.weight</c> of a quantized layer <c>P</c> becomes
/// <list type="bullet">
/// <item><c>P.weight.codes</c>: U8, output × input/2 (two 4-bit codes per byte, low nibble first), or output × input
/// bytes for FP8;</item>
/// <item><c>P.weight.scales</c>: the block scales, output × input/block: U8 E8M0 (MXFP4) or E4M3 (NVFP4) bytes, F32 for
/// Int4; absent for FP8;</item>
/// <item><c>P.weight.tensor_scale</c>: the F32 scale of the whole tensor (NVFP4, FP8), a scalar.</item>
/// </list>
/// Codes are always laid out output × input, blocks running along the input, whatever the layout of the fp32 weight
/// (GPT-2's input × output weights are packed transposed). <see cref="Load"/> turns a freshly built model into one
/// that runs from the packed codes, dequantizing them on the fly.
/// </summary>
public static class PackedWeights
{
    /// <summary>Value of the <c>format</c> metadata key.</summary>
    public const string Format = "llmeff-packed/1";

    /// <summary>Suffix of a packed weight's codes.</summary>
    public const string CodesSuffix = ".weight.codes";

    /// <summary>Suffix of a packed weight's block scales.</summary>
    public const string ScalesSuffix = ".weight.scales";

    /// <summary>Suffix of a packed weight's tensor scale.</summary>
    public const string TensorScaleSuffix = ".weight.tensor_scale";

    private const string FormatKey = "format";
    private const string ModelKey = "model";
    private const string QuantFormatKey = "quant_format";
    private const string BlockSizeKey = "block_size";
    private const string PackedValuesKey = "packed_values";
    private const string PackedBytesKey = "packed_bytes";
    private const int NamesShown = 5;

    /// <summary>Writes <paramref name="model"/> with its quantized layers' weights packed to <paramref name="path"/>
    /// (atomically, like a checkpoint). The model itself is not changed.</summary>
    /// <returns>The weight memory the export holds.</returns>
    /// <exception cref="ArgumentException">The model declares no <c>[Quant]</c>, or <paramref name="facts"/> are another model's.</exception>
    /// <exception cref="InvalidDataException">A weight holds NaN or infinity (the model diverged).</exception>
    public static WeightMemory Save(string path, nn.Module<Tensor, Tensor> model, ModelFacts facts)
    {
        var (settings, layers) = Quantized(model, facts);
        var packedNames = layers.Select(l => l.Name + ".weight").ToHashSet(StringComparer.Ordinal);
        var tensors = model.state_dict().Where(p => !packedNames.Contains(p.Key)).Select(p => (p.Key, p.Value)).ToList();
        foreach (var (name, tensor) in tensors.Concat(layers.Where(l => l.Layer.weight is not null).Select(l => (l.Name + ".weight", (Tensor)l.Layer.weight!))))
            RequireFinite(path, name, tensor);

        var created = new List<PackedTensor>();
        try
        {
            long packedBytes = 0, packedValues = 0, otherBytes = tensors.Sum(t => t.Value.numel() * t.Value.ElementSize);
            foreach (var (name, layer) in layers)
            {
                var packed = layer.Packed;
                if (packed is null)
                {
                    packed = layer.Pack();
                    created.Add(packed);
                }
                tensors.Add((name + CodesSuffix, packed.Codes));
                if (packed.BlockScales is { } scales) tensors.Add((name + ScalesSuffix, scales));
                if (packed.TensorScale is { } tensorScale) tensors.Add((name + TensorScaleSuffix, tensorScale));
                packedBytes += packed.Bytes;
                packedValues += packed.NumberOfValues;
            }
            SafeTensors.Save(path, tensors, new Dictionary<string, string>
            {
                [FormatKey] = Format,
                [ModelKey] = facts.Name,
                [QuantFormatKey] = QuantFormats.DisplayName(settings.Format),
                [BlockSizeKey] = Text(settings.BlockSize),
                [PackedValuesKey] = Text(packedValues),
                [PackedBytesKey] = Text(packedBytes),
            });
            return new WeightMemory(otherBytes + packedBytes, packedBytes, packedValues);
        }
        finally
        {
            foreach (var packed in created) packed.Dispose();
        }
    }

    /// <summary>
    /// Loads an export written by <see cref="Save"/> into <paramref name="model"/>, a freshly built instance of the same
    /// declaration: full-precision tensors are copied in, and every quantized layer drops its fp32 weight and runs from
    /// the packed codes (on the model's device). Everything is checked before the model changes.
    /// </summary>
    /// <returns>The model's weight memory afterwards.</returns>
    /// <exception cref="InvalidDataException">The file is not a packed export of this model and format, or a tensor is
    /// missing, unexpected or misshapen; the message names it.</exception>
    public static WeightMemory Load(string path, nn.Module<Tensor, Tensor> model, ModelFacts facts)
    {
        var (settings, layers) = Quantized(model, facts);
        if (layers.Any(l => l.Layer.Packed is not null))
            throw new ArgumentException($"The {facts.Name} passed already runs from packed weights; load into a freshly built model.", nameof(model));
        var header = SafeTensors.ReadHeader(path);
        var expected = Expected(model, layers, settings);
        CheckFits(header, expected, facts, settings);
        using var file = SafeTensors.Load(path);
        CheckFits(file.Header, expected, facts, settings); // the file may have been replaced in between

        var device = model.parameters().First().device;
        var packed = new List<PackedTensor>();
        try
        {
            foreach (var (name, layer) in layers)
            {
                Tensor Copy(string suffix) => file.Tensors[name + suffix].clone().to(device).DetachFromDisposeScope();
                packed.Add(new PackedTensor(settings.Format, new[] { layer.OutFeatures, layer.InFeatures }, settings.BlockSize, Copy(CodesSuffix),
                    file.Tensors.ContainsKey(name + ScalesSuffix) ? Copy(ScalesSuffix) : null,
                    file.Tensors.ContainsKey(name + TensorScaleSuffix) ? Copy(TensorScaleSuffix) : null));
            }
        }
        catch
        {
            foreach (var p in packed) p.Dispose();
            throw;
        }
        var targets = model.state_dict();
        using (no_grad())
        {
            foreach (var (name, target) in targets)
                if (!expected.Packed.Contains(name)) target.copy_(file.Tensors[name]);
        }
        for (var i = 0; i < layers.Count; i++) layers[i].Layer.UsePacked(packed[i]);
        return WeightMemory.Of(model);
    }

    /// <summary>Whether <paramref name="path"/> is a packed export (by its header alone; a missing or malformed file
    /// throws as <see cref="SafeTensors.ReadHeader(string)"/> does).</summary>
    public static bool IsPackedExport(string path) => SafeTensors.ReadHeader(path).Metadata.GetValueOrDefault(FormatKey) == Format;

    private static (WeightQuantization Settings, IReadOnlyList<(string Name, QuantizedLinear Layer)> Layers) Quantized(nn.Module<Tensor, Tensor> model, ModelFacts facts)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(facts);
        if (model.GetName() != facts.Name)
            throw new ArgumentException($"The facts describe {facts.Name}, but the model is {model.GetName()}.", nameof(facts));
        var settings = facts.Quant?.Settings
            ?? throw new ArgumentException($"{facts.Name} declares no [Quant], so it has no weights to pack.", nameof(facts));
        var layers = QuantizedLinear.NamedIn(model);
        if (layers.Count == 0) throw new ArgumentException($"{facts.Name} has no quantized layers.", nameof(model));
        return (settings, layers);
    }

    /// <summary>Names and shapes the file must hold for this model.</summary>
    private sealed record ExpectedTensors(Dictionary<string, (ScalarType DType, long[] Shape)> All, HashSet<string> Packed);

    private static ExpectedTensors Expected(nn.Module<Tensor, Tensor> model, IReadOnlyList<(string Name, QuantizedLinear Layer)> layers, WeightQuantization settings)
    {
        var packedWeights = layers.Select(l => l.Name + ".weight").ToHashSet(StringComparer.Ordinal);
        var all = model.state_dict().Where(p => !packedWeights.Contains(p.Key)).ToDictionary(p => p.Key, p => (p.Value.dtype, p.Value.shape), StringComparer.Ordinal);
        var block = settings.BlockSize;
        foreach (var (name, layer) in layers)
        {
            long rows = layer.OutFeatures, columns = layer.InFeatures;
            if (settings.Format == QuantFormat.Fp8E4M3)
            {
                all[name + CodesSuffix] = (ScalarType.Byte, new[] { rows, columns });
                all[name + TensorScaleSuffix] = (ScalarType.Float32, Array.Empty<long>());
                continue;
            }
            var padded = (columns + block - 1) / block * block;
            all[name + CodesSuffix] = (ScalarType.Byte, new[] { rows, padded / 2 });
            all[name + ScalesSuffix] = (settings.Format == QuantFormat.Int4 ? ScalarType.Float32 : ScalarType.Byte, new[] { rows, padded / block });
            if (settings.Format == QuantFormat.Nvfp4) all[name + TensorScaleSuffix] = (ScalarType.Float32, Array.Empty<long>());
        }
        return new ExpectedTensors(all, packedWeights);
    }

    private static void CheckFits(SafeTensorsHeader header, ExpectedTensors expected, ModelFacts facts, WeightQuantization settings)
    {
        var path = header.Path;
        var metadata = header.Metadata;
        if (metadata.GetValueOrDefault(FormatKey) is not { } format)
            throw Invalid(path, $"is not a packed LlmEff export: its metadata has no '{FormatKey}' entry");
        if (format != Format)
            throw Invalid(path, format == Checkpoint.Format
                ? "is a full-precision checkpoint, not a packed export (write one with PackedWeights.Save or 'llmeff qat')"
                : $"is not a packed export this version reads: its format is '{format}', expected '{Format}'");
        var savedModel = metadata.GetValueOrDefault(ModelKey);
        if (savedModel != facts.Name)
            throw Invalid(path, $"is a packed export of {(savedModel is null ? "an unnamed model" : $"model '{savedModel}'")}, not of '{facts.Name}'");
        var savedFormat = metadata.GetValueOrDefault(QuantFormatKey);
        var savedBlock = metadata.GetValueOrDefault(BlockSizeKey);
        var declaredFormat = QuantFormats.DisplayName(settings.Format);
        if (savedFormat != declaredFormat || savedBlock != Text(settings.BlockSize))
            throw Invalid(path, $"holds {savedFormat ?? "an unnamed format"} in blocks of {savedBlock ?? "?"}, but {facts.Name} declares {declaredFormat} in blocks of {settings.BlockSize}");

        var missing = expected.All.Keys.Where(n => !header.Tensors.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        var unexpected = header.Tensors.Keys.Where(n => !expected.All.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        var misshapen = expected.All
            .Where(e => header.Tensors.TryGetValue(e.Key, out var entry) && (entry.DType != e.Value.DType || !entry.Shape.SequenceEqual(e.Value.Shape)))
            .OrderBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => $"{e.Key} expected {e.Value.DType} {SafeTensors.FormatShape(e.Value.Shape)}, found {header.Tensors[e.Key].DType} {SafeTensors.FormatShape(header.Tensors[e.Key].Shape)}")
            .ToList();
        if (missing.Count + unexpected.Count + misshapen.Count == 0) return;
        var problems = new List<string>();
        if (missing.Count > 0) problems.Add($"missing {Abridged(missing)}");
        if (unexpected.Count > 0) problems.Add($"unexpected {Abridged(unexpected)}");
        if (misshapen.Count > 0) problems.Add($"mismatched {Abridged(misshapen)}");
        throw Invalid(path, $"does not fit this {facts.Name}: {string.Join("; ", problems)}");
    }

    private static void RequireFinite(string path, string name, Tensor tensor)
    {
        if (!tensor.is_floating_point()) return;
        using var finite = tensor.isfinite().all();
        if (!finite.item<bool>())
            throw new InvalidDataException($"Refusing to write {path}: {name} holds NaN or infinite values (the model has diverged).");
    }

    private static string Abridged(IReadOnlyList<string> items) =>
        items.Count <= NamesShown ? string.Join(", ", items) : $"{string.Join(", ", items.Take(NamesShown))} and {items.Count - NamesShown} more";

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static InvalidDataException Invalid(string path, string problem) => new($"{path} {problem}.");
}
