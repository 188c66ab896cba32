using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using LlmEff.Layers;
using LlmEff.Quantization;
using static TorchSharp.torch;

namespace LlmEff.Export;

/// <summary>What <see cref="GgufExporter.Export(nn.Module, GgufExport, string, string, GgufTensorType, GgufVocabulary)"/> wrote.</summary>
/// <param name="Path">The file, as a full path.</param>
/// <param name="Architecture">llama.cpp's architecture name in it.</param>
/// <param name="Tensors">Tensors in the file.</param>
/// <param name="Bytes">The file's length.</param>
/// <param name="Mxfp4Tensors">Tensors written as MXFP4: the weights the model quantizes (<c>[Quant]</c>), as our codes.</param>
/// <param name="Mxfp4Values">The values those tensors hold (a weight written twice, an aliased projection, counts twice).</param>
public sealed record GgufExportResult(string Path, string Architecture, int Tensors, long Bytes, int Mxfp4Tensors = 0, long Mxfp4Values = 0);

/// <summary>
/// Writes a declared model's weights as a GGUF file llama.cpp runs, following the tensor table the generator
/// rendered from the model's layout plan (<see cref="IDeclaredModel{TSelf}.Gguf"/>): names, transforms, metadata.
/// </summary>
public static class GgufExporter
{
    /// <summary>llama.cpp's <c>general.file_type</c> key: the type most weights have (its LLAMA_FTYPE numbers).</summary>
    public const string FileTypeKey = "general.file_type";

    /// <summary>llama.cpp's LLAMA_FTYPE_MOSTLY_MXFP4_MOE (llama.h), the file type llama-quantize writes for a file
    /// with MXFP4 weights; llama.cpp only displays it.</summary>
    public const uint Mxfp4FileType = 38;

    /// <summary>Exports <paramref name="model"/> to <paramref name="path"/> with matrices in <paramref name="type"/>.</summary>
    public static GgufExportResult Export<TModel>(TModel model, string path, GgufTensorType type = GgufTensorType.F32, GgufVocabulary? vocabulary = null)
        where TModel : nn.Module<Tensor, Tensor>, IDeclaredModel<TModel> =>
        Export(model, TModel.Gguf, TModel.Facts.Name, path, type, vocabulary);

    /// <summary>
    /// Exports <paramref name="model"/>, whose generated GGUF table is <paramref name="export"/>, to
    /// <paramref name="path"/> atomically. Matrices and embeddings take <paramref name="type"/>; vectors (norm
    /// weights) stay f32, as llama.cpp's own converter keeps them. Refuses, naming the reason, a model the generator
    /// refused, a state dict that does not match the table, and a tensor holding NaN or infinity (before or after
    /// rounding to <paramref name="type"/>). With a <paramref name="vocabulary"/> the file carries that tokenizer, so
    /// llama.cpp turns text into our token ids; without one it says <c>no_vocab</c> and takes ids.
    /// <para>Rows whose table says <see cref="GgufTensorType.MXFP4"/> (the weights of a <c>[Quant(Mxfp4)]</c> model) are
    /// written as the codes and scales our quantizer packs (<see cref="QuantizedLinear.Pack"/>, or the codes of a layer
    /// already running packed), whatever <paramref name="type"/> says and whether or not the layer is fake-quantizing
    /// now: the file holds the quantized model, the one training from <c>From</c> on and <c>generate --checkpoint</c>
    /// compute, also for a model exported before its quantized steps (a fresh one, or trained in full precision:
    /// then it is post-training quantization).</para>
    /// </summary>
    public static GgufExportResult Export(nn.Module model, GgufExport export, string modelName, string path, GgufTensorType type = GgufTensorType.F32, GgufVocabulary? vocabulary = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(export);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!export.IsAvailable) throw new NotSupportedException($"{modelName} cannot be exported to GGUF: {export.Refusal}.");
        _ = FileType(type);

        var state = model.state_dict();
        var quantized = QuantizedWeights(model, export, modelName);
        var unmapped = state.Keys.Except(export.Tensors.SelectMany(t => t.Sources), StringComparer.Ordinal).ToList();
        if (unmapped.Count > 0)
            throw new InvalidOperationException($"{modelName}'s state dict has tensors the GGUF table does not map: {string.Join(", ", unmapped)}. The generated table and the module disagree; rebuild.");
        // A layer running from packed codes has no weight in the state dict: its codes are read from the layer.
        var missing = export.Tensors.Where(t => t.Type != GgufTensorType.MXFP4).SelectMany(t => t.Sources).Where(s => !state.ContainsKey(s)).Distinct().ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"The GGUF table of {modelName} maps tensors its state dict lacks: {string.Join(", ", missing)}. The generated table and the module disagree; rebuild.");

        if (vocabulary is not null && export.Tensors.FirstOrDefault(t => t.Name == "token_embd.weight") is { } embedding
            && state[embedding.Source].shape[0] != vocabulary.Tokens.Count)
            throw new ArgumentException($"The {vocabulary.Name} vocabulary has {vocabulary.Tokens.Count:N0} tokens; {modelName} embeds {state[embedding.Source].shape[0]:N0}.", nameof(vocabulary));

        var prepared = new List<(GgufTensorMapping Mapping, Tensor Data, long[] Shape, GgufTensorType Type)>();
        try
        {
            using (no_grad())
            {
                foreach (var mapping in export.Tensors)
                    prepared.Add(mapping.Type == GgufTensorType.MXFP4 ? PrepareMxfp4(quantized, mapping) : Prepare(state, mapping, type));
            }
            var anyMxfp4 = prepared.Any(p => p.Type == GgufTensorType.MXFP4);
            var metadata = WithVocabulary(export.Metadata, vocabulary).Append(new(FileTypeKey, GgufValue.UInt32(anyMxfp4 ? Mxfp4FileType : FileType(type)))).ToList();
            var sources = prepared.Select(p => new GgufTensorSource(p.Mapping.Name, p.Shape, p.Type, stream => WriteBytes(p.Data, stream))).ToList();
            GgufFile.Write(path, metadata, sources);
        }
        finally
        {
            foreach (var p in prepared) p.Data.Dispose();
        }
        var mxfp4 = prepared.Where(p => p.Type == GgufTensorType.MXFP4).ToList();
        return new GgufExportResult(Path.GetFullPath(path), export.Architecture!, prepared.Count, new FileInfo(path).Length,
            mxfp4.Count, mxfp4.Sum(p => p.Shape.Aggregate(1L, (product, size) => checked(product * size))));
    }

    /// <summary>
    /// The layers whose weights the table writes as MXFP4, by weight name (<c>….q_proj.weight</c>): each must be a
    /// layer of the model that quantizes to MXFP4 (its <see cref="QuantizedLinear.Quantization"/>), else the table
    /// and the module disagree and nothing is written.
    /// </summary>
    private static Dictionary<string, QuantizedLinear> QuantizedWeights(nn.Module model, GgufExport export, string modelName)
    {
        var layers = QuantizedLinear.NamedIn(model).ToDictionary(l => l.Name + ".weight", l => l.Layer, StringComparer.Ordinal);
        var result = new Dictionary<string, QuantizedLinear>(StringComparer.Ordinal);
        foreach (var source in export.Tensors.Where(t => t.Type is not null).SelectMany(t => t.Sources).Distinct(StringComparer.Ordinal))
        {
            var mapping = export.Tensors.First(t => t.Sources.Contains(source));
            if (mapping.Type != GgufTensorType.MXFP4)
                throw new InvalidOperationException($"The GGUF table of {modelName} asks for {mapping.Name} as {mapping.Type}; only weights the model quantizes to MXFP4 take a type of their own.");
            if (!layers.TryGetValue(source, out var layer))
                throw new InvalidOperationException($"The GGUF table of {modelName} writes {source} as MXFP4, but the model has no quantized layer of that name. The generated table and the module disagree; rebuild.");
            if (layer.Quantization!.Format != QuantFormat.Mxfp4)
                throw new InvalidOperationException($"The GGUF table of {modelName} writes {source} as MXFP4, but the layer quantizes to {QuantFormats.DisplayName(layer.Quantization.Format)}. The generated table and the module disagree; rebuild.");
            result[source] = layer;
        }
        return result;
    }

    /// <summary>
    /// A weight the model quantizes to MXFP4, as ggml's MXFP4 tensor: the codes and scales of our quantizer (packed from
    /// the fp32 weight, or the layer's own packed codes), rearranged into ggml's blocks (<see cref="Mxfp4Blocks"/>), then
    /// given the row transforms the table asks for. Quantization runs along each row and the transforms only move or
    /// repeat whole rows, so moving the blocks gives exactly the codes of the moved weight.
    /// </summary>
    private static (GgufTensorMapping, Tensor, long[], GgufTensorType) PrepareMxfp4(IReadOnlyDictionary<string, QuantizedLinear> layers, GgufTensorMapping mapping)
    {
        // Only a Llama-style linear weight is quantized: gpt2's transposed or joined weights are refused with [Quant].
        if (mapping.Transform is not (GgufTransform.None or GgufTransform.RotaryPairs))
            throw new InvalidOperationException($"{mapping.Name} cannot be both MXFP4 and {mapping.Transform}: only Llama-style linear weights are written as MXFP4.");
        using var scope = NewDisposeScope();
        var parts = mapping.Sources.Select(source => Mxfp4Blocks(layers[source], source)).ToArray();
        var odd = Array.FindIndex(parts, p => !p.shape.SequenceEqual(parts[0].shape));
        if (odd >= 0)
            throw new InvalidOperationException($"{mapping.Sources[odd]} is {parts[odd].shape[0]} × {parts[odd].shape[1] * Mxfp4BlockValues}, not {parts[0].shape[0]} × {parts[0].shape[1] * Mxfp4BlockValues} like {mapping.Sources[0]}: tensors stacked as {mapping.Name} must have one shape.");
        var blocks = mapping.Stacked is null ? parts[0] : stack(parts, 0);
        if (mapping.Transform == GgufTransform.RotaryPairs) blocks = PairRotaryRows(blocks, mapping);
        if (mapping.Repeats != 1) blocks = RepeatHeads(blocks, mapping);
        var shape = blocks.shape[..^2].Append(checked(blocks.shape[^2] * Mxfp4BlockValues)).ToArray();
        return (mapping, blocks.contiguous().MoveToOuterDisposeScope(), shape, GgufTensorType.MXFP4);
    }

    private static readonly int Mxfp4BlockValues = GgufFile.BlockValues(GgufTensorType.MXFP4);

    /// <summary>
    /// ggml's block_mxfp4 bytes (ggml-common.h) of <paramref name="layer"/>'s weight as our quantizer packs it,
    /// [output, input / 32, 17]: per block of 32 inputs, the E8M0 scale byte as we store it, then 16 bytes whose low
    /// nibble is value j and high nibble value j + 16 (dequantize_row_mxfp4 in ggml-quants.c). Our packing pairs
    /// neighbours (value 2i low, 2i + 1 high), so the codes are regrouped, never re-rounded. The scale needs no change:
    /// ggml decodes a value as kvalues_mxfp4[code] · 2^(e−128) (GGML_E8M0_TO_FP32_HALF in ggml-impl.h, the E2M1
    /// table doubled), which is E2M1(code) · 2^(e−127), ours, for every e from 0 to 254.
    /// </summary>
    private static Tensor Mxfp4Blocks(QuantizedLinear layer, string source)
    {
        if (layer.weight is { } weight)
        {
            using var finite = weight.isfinite().all();
            if (!finite.item<bool>()) throw new InvalidDataException($"Refusing to export: {source} holds NaN or infinite values.");
        }
        var created = layer.Packed is null ? layer.Pack() : null;
        try
        {
            var packed = created ?? layer.Packed!;
            if (packed.Format != QuantFormat.Mxfp4 || packed.BlockSize != Mxfp4BlockValues || packed.Shape.Count != 2)
                throw new InvalidOperationException($"{source} is packed as {QuantFormats.DisplayName(packed.Format)} in blocks of {packed.BlockSize}, not MXFP4 in blocks of {Mxfp4BlockValues}.");
            var (rows, columns) = (packed.Shape[0], packed.Shape[1]);
            // llama.cpp's mxfp4 rows are whole blocks; our quantizer would pad a partial one with zeros, which ggml cannot.
            if (columns % Mxfp4BlockValues != 0)
                throw new InvalidOperationException($"{source} has rows of {columns} inputs, not whole {Mxfp4BlockValues}-value MXFP4 blocks: llama.cpp's mxfp4 tensors cannot hold a padded block.");
            var blocks = columns / Mxfp4BlockValues;
            using var scope = NewDisposeScope();
            var scales = packed.BlockScales!.reshape(rows, blocks, 1).to(CPU);
            using (var poisoned = scales.eq(E8M0.NaNCode).any())
                if (poisoned.item<bool>()) throw new InvalidDataException($"Refusing to export: {source} holds NaN or infinite values (an MXFP4 block with the NaN scale).");
            // [rows, blocks, half, j]: value j of the block's first or second half.
            var codes = packed.UnpackCodes().to(CPU).reshape(rows, blocks, 2, Mxfp4BlockValues / 2);
            var bytes = (codes.select(2, 0) + codes.select(2, 1) * 16).to(ScalarType.Byte);
            return cat(new[] { scales, bytes }, 2).MoveToOuterDisposeScope();
        }
        finally
        {
            created?.Dispose();
        }
    }

    /// <summary>The generated metadata with its <c>tokenizer.*</c> keys replaced by <paramref name="vocabulary"/>'s, when given.</summary>
    private static IEnumerable<KeyValuePair<string, GgufValue>> WithVocabulary(IEnumerable<KeyValuePair<string, GgufValue>> metadata, GgufVocabulary? vocabulary) =>
        vocabulary is null ? metadata : metadata.Where(entry => !entry.Key.StartsWith("tokenizer.", StringComparison.Ordinal)).Concat(vocabulary.Metadata());

    /// <summary>llama.cpp's LLAMA_FTYPE for a file whose matrices are <paramref name="type"/>.</summary>
    public static uint FileType(GgufTensorType type) => type switch
    {
        GgufTensorType.F32 => 0,
        GgufTensorType.F16 => 1,
        GgufTensorType.BF16 => 32,
        GgufTensorType.Q8_0 => 7,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a type the exporter writes."),
    };

    /// <summary>What a row reads from the state dict, as fp32 on the CPU: one tensor, its experts stacked, or zeros
    /// (in the caller's dispose scope).</summary>
    private static Tensor Read(IDictionary<string, Tensor> state, GgufTensorMapping mapping)
    {
        Tensor Values(string source) => state[source].detach().to(CPU).to(ScalarType.Float32);
        Tensor values;
        if (mapping.Transform == GgufTransform.ZeroBias) values = zeros(state[mapping.Source].shape[0], dtype: ScalarType.Float32);
        else if (mapping.Stacked is { } joined && mapping.Transform == GgufTransform.Concatenated)
        {
            var tensors = joined.Select(Values).ToArray();
            var rest = tensors[0].shape.Skip(1).ToArray();
            var odd = Array.FindIndex(tensors, t => !t.shape.Skip(1).SequenceEqual(rest));
            if (odd >= 0)
                throw new InvalidOperationException($"{joined[odd]} is [{string.Join(", ", tensors[odd].shape)}]: tensors joined as {mapping.Name} must agree past their first dimension with {joined[0]} [{string.Join(", ", tensors[0].shape)}].");
            values = cat(tensors, 0);
        }
        else if (mapping.Stacked is { } parts)
        {
            var tensors = parts.Select(Values).ToArray();
            var shape = tensors[0].shape;
            var odd = Array.FindIndex(tensors, t => !t.shape.SequenceEqual(shape));
            if (odd >= 0)
                throw new InvalidOperationException($"{parts[odd]} is [{string.Join(", ", tensors[odd].shape)}], not [{string.Join(", ", shape)}] like {parts[0]}: tensors stacked as {mapping.Name} must have one shape.");
            values = stack(tensors, 0);
        }
        else values = Values(mapping.Source);
        return values;
    }

    /// <summary>The tensor as it goes into the file: on the CPU, transformed, in its file type, contiguous (Q8_0 as its
    /// blocks' bytes), with its shape and type.</summary>
    private static (GgufTensorMapping, Tensor, long[], GgufTensorType) Prepare(IDictionary<string, Tensor> state, GgufTensorMapping mapping, GgufTensorType type)
    {
        using var scope = NewDisposeScope();
        var values = Read(state, mapping);
        RefuseNonFinite(values, mapping, "");
        if (mapping.Transform == GgufTransform.Transposed)
        {
            if (values.dim() != 2) throw new InvalidOperationException($"{mapping.Source} is [{string.Join(", ", values.shape)}], not a matrix to transpose.");
            values = values.t();
        }
        if (mapping.Transform == GgufTransform.RotaryPairs) values = PairRotaryRows(values, mapping);
        if (mapping.Repeats != 1) values = RepeatHeads(values, mapping);
        if (mapping.Transform == GgufTransform.DepthwiseFilter)
        {
            if (values.dim() != 3 || values.shape[1] != 1)
                throw new InvalidOperationException($"{mapping.Source} is [{string.Join(", ", values.shape)}], not a depthwise filter [channels, 1, taps].");
            values = values.squeeze(1);
        }
        var fileType = TypeFor(mapping, values, type);
        var converted = fileType switch
        {
            GgufTensorType.F16 => values.to(ScalarType.Float16),
            GgufTensorType.BF16 => values.to(ScalarType.BFloat16),
            GgufTensorType.Q8_0 => Q8_0Blocks(values),
            _ => values,
        };
        if (fileType is GgufTensorType.F16 or GgufTensorType.BF16) RefuseNonFinite(converted, mapping, $" once rounded to {fileType} (values beyond its range)");
        return (mapping, converted.contiguous().MoveToOuterDisposeScope(), values.shape, fileType);
    }

    /// <summary>
    /// The type a tensor is written in when matrices are <paramref name="type"/>: vectors (norms, biases) stay f32, as
    /// llama.cpp's converter keeps them. For Q8_0, as llama.cpp's own quantizer does: the expert router
    /// (ffn_gate_inp, whose choices a rounding would change) stays f32, and a matrix whose rows do not split into
    /// 32-value blocks (a short filter, a 176-wide expert) is written f16.
    /// </summary>
    private static GgufTensorType TypeFor(GgufTensorMapping mapping, Tensor values, GgufTensorType type)
    {
        if (values.dim() == 1) return GgufTensorType.F32;
        if (type != GgufTensorType.Q8_0) return type;
        if (mapping.Name.EndsWith("ffn_gate_inp.weight", StringComparison.Ordinal)) return GgufTensorType.F32;
        return values.shape[^1] % GgufFile.BlockValues(GgufTensorType.Q8_0) == 0 ? GgufTensorType.Q8_0 : GgufTensorType.F16;
    }

    /// <summary>
    /// ggml's Q8_0 bytes of <paramref name="values"/> (innermost dimension a multiple of 32): [blocks, 2 + 32], each
    /// block's scale d as little-endian f16, then its 32 signed codes (see <see cref="Q8_0Encode"/>).
    /// </summary>
    public static Tensor Q8_0Blocks(Tensor values)
    {
        ArgumentNullException.ThrowIfNull(values);
        using var scope = NewDisposeScope();
        var (scale, codes) = Q8_0Encode(values);
        var scaleBytes = scale.contiguous().bytes;
        var codeBytes = codes.contiguous().bytes;
        var blocks = (int)codes.shape[0];
        const int ScaleBytes = 2, Block = 32;
        var packed = new byte[checked(blocks * (ScaleBytes + Block))];
        for (var b = 0; b < blocks; b++)
        {
            scaleBytes.Slice(b * ScaleBytes, ScaleBytes).CopyTo(packed.AsSpan(b * (ScaleBytes + Block)));
            codeBytes.Slice(b * Block, Block).CopyTo(packed.AsSpan(b * (ScaleBytes + Block) + ScaleBytes));
        }
        return tensor(packed).reshape(blocks, ScaleBytes + Block).MoveToOuterDisposeScope();
    }

    /// <summary>What llama.cpp reads back from a Q8_0 tensor of <paramref name="values"/>: d·q per value, in fp32 and the same shape.</summary>
    public static Tensor Q8_0Values(Tensor values)
    {
        ArgumentNullException.ThrowIfNull(values);
        using var scope = NewDisposeScope();
        var (scale, codes) = Q8_0Encode(values);
        return (scale.to(ScalarType.Float32) * codes.to(ScalarType.Float32)).reshape(values.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ggml's reference quantize_row_q8_0, per block of 32 consecutive values: d = max|x| / 127, q = round(x / d) half
    /// away from zero (0 where d is 0), d stored as f16. Returns d [blocks, 1] in f16 and q [blocks, 32] in int8.
    /// </summary>
    private static (Tensor Scale, Tensor Codes) Q8_0Encode(Tensor values)
    {
        var block = GgufFile.BlockValues(GgufTensorType.Q8_0);
        if (values.dim() == 0 || values.shape[^1] % block != 0)
            throw new ArgumentException($"Q8_0 needs rows that split into {block}-value blocks; these are [{string.Join(", ", values.shape)}].", nameof(values));
        var blocks = values.detach().to(ScalarType.Float32).reshape(-1, block);
        var d = blocks.abs().amax(new long[] { 1 }, keepdim: true) / 127f;
        var scaled = blocks * where(d > 0, 1f / d, zeros_like(d));
        var codes = (scaled.sign() * (scaled.abs() + 0.5f).floor()).to(ScalarType.Int8);
        var half = d.to(ScalarType.Float16);
        if (!half.isfinite().all().item<bool>()) throw new InvalidDataException("Refusing to export: a Q8_0 block scale is beyond f16's range.");
        return (half, codes);
    }

    private static void RefuseNonFinite(Tensor values, GgufTensorMapping mapping, string when)
    {
        using var finite = values.isfinite().all();
        if (!finite.item<bool>())
            throw new InvalidDataException($"Refusing to export: {mapping.Source} holds NaN or infinite values{when}.");
    }

    /// <summary>Reorders each head's rows from halves (i, i + d/2) to adjacent pairs (2i, 2i + 1); see <see cref="GgufTransform.RotaryPairs"/>.</summary>
    private static Tensor PairRotaryRows(Tensor weight, GgufTensorMapping mapping)
    {
        var rows = weight.shape[0];
        if (mapping.Heads <= 0 || rows % mapping.Heads != 0 || rows / mapping.Heads % 2 != 0)
            throw new InvalidOperationException($"{mapping.Source} has {rows} rows, which do not split into {mapping.Heads} heads of an even width.");
        var headDim = rows / mapping.Heads;
        var rotated = mapping.RotaryRows == 0 ? headDim : mapping.RotaryRows;
        if (rotated < 0 || rotated > headDim || rotated % 2 != 0)
            throw new InvalidOperationException($"{mapping.Source}'s heads are {headDim} rows wide, so {mapping.RotaryRows} of them cannot be rotated in pairs.");
        var rest = weight.shape.Skip(1).ToArray();
        var heads = weight.reshape(new long[] { mapping.Heads, headDim }.Concat(rest).ToArray());
        var kept = heads.narrow(1, 0, headDim - rotated);
        // [heads, half, i, …] → [heads, i, half, …]: row half·r/2 + i of a head's rotated part lands at 2i + half.
        var split = heads.narrow(1, headDim - rotated, rotated).reshape(new long[] { mapping.Heads, 2, rotated / 2 }.Concat(rest).ToArray());
        var paired = split.transpose(1, 2).reshape(new long[] { mapping.Heads, rotated }.Concat(rest).ToArray());
        return cat(new[] { kept, paired }, 1).reshape(weight.shape);
    }

    /// <summary>Writes each head's rows <see cref="GgufTensorMapping.Repeats"/> times in a row: head h of the result is head h / Repeats.</summary>
    private static Tensor RepeatHeads(Tensor weight, GgufTensorMapping mapping)
    {
        var rows = weight.shape[0];
        if (mapping.Repeats < 1 || mapping.Heads <= 0 || rows % mapping.Heads != 0)
            throw new InvalidOperationException($"{mapping.Source} has {rows} rows, which cannot be written {mapping.Repeats} times per head of {mapping.Heads} heads.");
        var rest = weight.shape.Skip(1).ToArray();
        var heads = weight.reshape(new long[] { mapping.Heads, rows / mapping.Heads }.Concat(rest).ToArray());
        return heads.repeat_interleave(mapping.Repeats, dim: 0).reshape(new long[] { rows * mapping.Repeats }.Concat(rest).ToArray());
    }

    /// <summary>Writes the tensor's bytes in pieces, so a tensor over 2 GiB (past a span's reach) writes too.</summary>
    private static void WriteBytes(Tensor data, Stream stream)
    {
        const long ChunkBytes = 16 << 20;
        using var flat = data.flatten();
        var elementsPerChunk = ChunkBytes / data.ElementSize;
        for (long start = 0; start < flat.numel(); start += elementsPerChunk)
        {
            using var chunk = flat.narrow(0, start, Math.Min(elementsPerChunk, flat.numel() - start));
            stream.Write(chunk.bytes);
        }
    }
}
