using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using static TorchSharp.torch;

namespace LlmEff.Export;

/// <summary>What <see cref="GgufExporter.Export(nn.Module, GgufExport, string, string, GgufTensorType, GgufVocabulary)"/> wrote.</summary>
/// <param name="Path">The file, as a full path.</param>
/// <param name="Architecture">llama.cpp's architecture name in it.</param>
/// <param name="Tensors">Tensors in the file.</param>
/// <param name="Bytes">The file's length.</param>
public sealed record GgufExportResult(string Path, string Architecture, int Tensors, long Bytes);

/// <summary>
/// Writes a declared model's weights as a GGUF file llama.cpp runs, following the tensor table the generator
/// rendered from the model's layout plan (<see cref="IDeclaredModel{TSelf}.Gguf"/>): names, transforms, metadata.
/// </summary>
public static class GgufExporter
{
    /// <summary>llama.cpp's <c>general.file_type</c> key: the type most weights have (its LLAMA_FTYPE numbers).</summary>
    public const string FileTypeKey = "general.file_type";

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
    /// </summary>
    public static GgufExportResult Export(nn.Module model, GgufExport export, string modelName, string path, GgufTensorType type = GgufTensorType.F32, GgufVocabulary? vocabulary = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(export);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!export.IsAvailable) throw new NotSupportedException($"{modelName} cannot be exported to GGUF: {export.Refusal}.");
        _ = GgufFile.ElementBytes(type);

        var state = model.state_dict();
        var unmapped = state.Keys.Except(export.Tensors.Select(t => t.Source), StringComparer.Ordinal).ToList();
        if (unmapped.Count > 0)
            throw new InvalidOperationException($"{modelName}'s state dict has tensors the GGUF table does not map: {string.Join(", ", unmapped)}. The generated table and the module disagree; rebuild.");
        var missing = export.Tensors.Where(t => !state.ContainsKey(t.Source)).Select(t => t.Source).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"The GGUF table of {modelName} maps tensors its state dict lacks: {string.Join(", ", missing)}. The generated table and the module disagree; rebuild.");

        if (vocabulary is not null && export.Tensors.FirstOrDefault(t => t.Name == "token_embd.weight") is { } embedding
            && state[embedding.Source].shape[0] != vocabulary.Tokens.Count)
            throw new ArgumentException($"The {vocabulary.Name} vocabulary has {vocabulary.Tokens.Count:N0} tokens; {modelName} embeds {state[embedding.Source].shape[0]:N0}.", nameof(vocabulary));

        var prepared = new List<(GgufTensorMapping Mapping, Tensor Data)>();
        try
        {
            using (no_grad())
            {
                foreach (var mapping in export.Tensors)
                    prepared.Add((mapping, Prepare(state[mapping.Source], mapping, type)));
            }
            var metadata = WithVocabulary(export.Metadata, vocabulary).Append(new(FileTypeKey, GgufValue.UInt32(FileType(type)))).ToList();
            var sources = prepared.Select(p => new GgufTensorSource(p.Mapping.Name, p.Data.shape, TypeOf(p.Data), stream => WriteBytes(p.Data, stream))).ToList();
            GgufFile.Write(path, metadata, sources);
        }
        finally
        {
            foreach (var (_, data) in prepared) data.Dispose();
        }
        return new GgufExportResult(Path.GetFullPath(path), export.Architecture!, prepared.Count, new FileInfo(path).Length);
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
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a type the exporter writes."),
    };

    /// <summary>The tensor as it goes into the file: on the CPU, transformed, in its file type, contiguous.</summary>
    private static Tensor Prepare(Tensor tensor, GgufTensorMapping mapping, GgufTensorType type)
    {
        using var scope = NewDisposeScope();
        var values = tensor.detach().to(CPU).to(ScalarType.Float32);
        RefuseNonFinite(values, mapping, "");
        if (mapping.Transform == GgufTransform.RotaryPairs) values = PairRotaryRows(values, mapping);
        if (mapping.Repeats != 1) values = RepeatHeads(values, mapping);
        var fileType = tensor.dim() == 1 ? GgufTensorType.F32 : type;
        var converted = fileType switch
        {
            GgufTensorType.F16 => values.to(ScalarType.Float16),
            GgufTensorType.BF16 => values.to(ScalarType.BFloat16),
            _ => values,
        };
        if (fileType != GgufTensorType.F32) RefuseNonFinite(converted, mapping, $" once rounded to {fileType} (values beyond its range)");
        return converted.contiguous().MoveToOuterDisposeScope();
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
        var rest = weight.shape.Skip(1).ToArray();
        // [heads, half, i, …] → [heads, i, half, …]: row h·d + half·d/2 + i lands at h·d + 2i + half.
        var split = weight.reshape(new long[] { mapping.Heads, 2, headDim / 2 }.Concat(rest).ToArray());
        return split.transpose(1, 2).reshape(weight.shape);
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

    private static GgufTensorType TypeOf(Tensor data) => data.dtype switch
    {
        ScalarType.Float32 => GgufTensorType.F32,
        ScalarType.Float16 => GgufTensorType.F16,
        ScalarType.BFloat16 => GgufTensorType.BF16,
        var other => throw new InvalidOperationException($"No GGUF type for {other}."),
    };

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
