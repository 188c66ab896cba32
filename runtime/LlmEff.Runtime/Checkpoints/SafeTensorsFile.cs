using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace LlmEff.Checkpoints;

/// <summary>One tensor as a safetensors header describes it; its data are not read.</summary>
public sealed class SafeTensorEntry
{
    internal SafeTensorEntry(string name, string dtypeName, ScalarType dtype, long[] shape, long dataBegin, long dataEnd)
    {
        Name = name;
        DTypeName = dtypeName;
        DType = dtype;
        Shape = shape;
        DataBegin = dataBegin;
        DataEnd = dataEnd;
    }

    /// <summary>The tensor's key in the header.</summary>
    public string Name { get; }

    /// <summary>The format's name of the element type (<c>F32</c>, <c>BF16</c>, …).</summary>
    public string DTypeName { get; }

    /// <summary>The TorchSharp element type the data load as.</summary>
    public ScalarType DType { get; }

    /// <summary>Row-major shape; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>First byte of the tensor, counted from the start of the data section.</summary>
    public long DataBegin { get; }

    /// <summary>One past the last byte of the tensor, counted from the start of the data section.</summary>
    public long DataEnd { get; }

    /// <summary>Bytes the tensor occupies in the file.</summary>
    public long ByteCount => DataEnd - DataBegin;

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {DTypeName} {SafeTensors.FormatShape(Shape)}";
}

/// <summary>What a safetensors header says: the tensors' layout and the string metadata.</summary>
public sealed class SafeTensorsHeader
{
    internal SafeTensorsHeader(string path, IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, SafeTensorEntry> tensors, long dataStart)
    {
        Path = path;
        Metadata = metadata;
        Tensors = tensors;
        DataStart = dataStart;
    }

    /// <summary>The file the header was read from, as the caller named it.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorEntry> Tensors { get; }

    /// <summary>File offset of the data section: 8 bytes of length prefix plus the header.</summary>
    public long DataStart { get; }

    /// <summary>The tensors in the order their data follow one another in the file.</summary>
    internal IEnumerable<SafeTensorEntry> InDataOrder() =>
        Tensors.Values.OrderBy(e => e.DataBegin).ThenBy(e => e.DataEnd);
}

/// <summary>
/// A loaded safetensors file: its header and every tensor on the CPU. Disposing it releases the tensors,
/// so copy out (or <c>clone()</c>) whatever must outlive it.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private readonly Dictionary<string, Tensor> tensors;

    internal SafeTensorsFile(SafeTensorsHeader header, Dictionary<string, Tensor> tensors)
    {
        Header = header;
        this.tensors = tensors;
    }

    /// <summary>The header the tensors were read by.</summary>
    public SafeTensorsHeader Header { get; }

    /// <summary>The <c>__metadata__</c> map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    /// <summary>Every tensor by name, on the CPU, in the file's element type.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors => tensors;

    /// <summary>Releases the tensors' native memory.</summary>
    public void Dispose()
    {
        foreach (var tensor in tensors.Values) tensor.Dispose();
        tensors.Clear();
    }
}
