using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using LlmEff.IO;

namespace LlmEff.Export;

/// <summary>Tensor element types this writer emits, numbered as ggml numbers them.</summary>
public enum GgufTensorType : uint
{
    /// <summary>IEEE 754 single precision, 4 bytes.</summary>
    F32 = 0,

    /// <summary>IEEE 754 half precision, 2 bytes.</summary>
    F16 = 1,

    /// <summary>bfloat16 (the top half of an f32), 2 bytes.</summary>
    BF16 = 30,

    /// <summary>ggml's Q8_0: blocks of 32 consecutive values along the innermost dimension, each an f16 scale d
    /// followed by 32 signed bytes q, the values being d·q (34 bytes per block).</summary>
    Q8_0 = 8,

    /// <summary>ggml's MXFP4 (ggml-common.h <c>block_mxfp4</c>): blocks of 32 consecutive values along the innermost
    /// dimension, each one E8M0 scale byte e followed by 16 bytes of E2M1 codes, value j in the low nibble of byte j and
    /// value j + 16 in its high nibble; a value is E2M1(code)·2^(e−127) (17 bytes per block).</summary>
    MXFP4 = 39,
}

/// <summary>One tensor to write: its name, its shape outermost dimension first (as torch lists it; the file lists
/// it innermost first), its element type, and a callback that writes exactly its bytes, row-major.</summary>
public sealed record GgufTensorSource(string Name, long[] Shape, GgufTensorType Type, Action<Stream> WriteData);

/// <summary>One tensor descriptor as the file holds it.</summary>
/// <param name="Name">Its GGUF name.</param>
/// <param name="Type">Its element type.</param>
/// <param name="Dimensions">Innermost dimension first (ggml's ne[0], ne[1], …).</param>
/// <param name="Offset">Where its data start, counted from the start of the data section.</param>
public sealed record GgufTensorInfo(string Name, ulong[] Dimensions, GgufTensorType Type, ulong Offset)
{
    /// <summary>Elements in the tensor.</summary>
    public ulong Elements => Dimensions.Aggregate(1UL, (product, size) => checked(product * size));

    /// <summary>Bytes of its data.</summary>
    public ulong Bytes => GgufFile.DataBytes(Type, Elements);
}

/// <summary>What a GGUF file holds besides the tensor data: the version, the metadata in file order, the tensor
/// descriptors and where the data section starts.</summary>
public sealed record GgufContents(uint Version, IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata, IReadOnlyList<GgufTensorInfo> Tensors, long DataStart, uint Alignment)
{
    /// <summary>The value of <paramref name="key"/>; throws naming the key when absent.</summary>
    public GgufValue this[string key] => Metadata.FirstOrDefault(kv => kv.Key == key).Value ?? throw new KeyNotFoundException($"The GGUF file has no metadata key '{key}'.");

    /// <summary>The descriptor of tensor <paramref name="name"/>; throws naming it when absent.</summary>
    public GgufTensorInfo Tensor(string name) => Tensors.FirstOrDefault(t => t.Name == name) ?? throw new KeyNotFoundException($"The GGUF file has no tensor '{name}'.");
}

/// <summary>
/// Writes and reads GGUF version 3, the file format of llama.cpp: the magic "GGUF", the version, the tensor and
/// metadata counts (u64), the typed metadata, the tensor descriptors, then the tensor data, each tensor starting at
/// a multiple of <c>general.alignment</c> (32 unless the metadata says otherwise) from the data section's start,
/// which is itself aligned. Little-endian throughout; strings are UTF-8 after a u64 byte count.
/// </summary>
public static class GgufFile
{
    /// <summary>The version this writer writes and the reader reads.</summary>
    public const uint Version = 3;

    /// <summary>The alignment written in <c>general.alignment</c>: llama.cpp's default.</summary>
    public const uint Alignment = 32;

    /// <summary>The key holding the alignment.</summary>
    public const string AlignmentKey = "general.alignment";

    /// <summary>ggml's longest tensor name (its name buffer holds 64 bytes with the terminator).</summary>
    public const int MaxNameBytes = 63;

    /// <summary>ggml tensors have at most 4 dimensions.</summary>
    public const int MaxDimensions = 4;

    private static readonly byte[] Magic = "GGUF"u8.ToArray();
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Values per block of <paramref name="type"/> (1 for the float types), along the innermost dimension.</summary>
    public static int BlockValues(GgufTensorType type) => type is GgufTensorType.Q8_0 or GgufTensorType.MXFP4 ? 32 : BlockBytes(type) > 0 ? 1 : 0;

    /// <summary>Bytes per block of <paramref name="type"/>: an element of the float types, 34 for Q8_0's 32 values, 17
    /// for MXFP4's.</summary>
    public static int BlockBytes(GgufTensorType type) => type switch
    {
        GgufTensorType.F32 => 4,
        GgufTensorType.F16 or GgufTensorType.BF16 => 2,
        GgufTensorType.Q8_0 => 2 + 32,
        GgufTensorType.MXFP4 => 1 + 32 / 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a tensor type this writer knows."),
    };

    /// <summary>Bytes of <paramref name="elements"/> values of <paramref name="type"/> (a whole number of blocks).</summary>
    public static ulong DataBytes(GgufTensorType type, ulong elements) => checked(elements / (ulong)BlockValues(type) * (ulong)BlockBytes(type));

    /// <summary>
    /// Writes <paramref name="metadata"/> (in order; <c>general.alignment</c> is added first) and
    /// <paramref name="tensors"/> to <paramref name="path"/> atomically: a failure leaves any old file untouched.
    /// </summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorSource> tensors)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(tensors);
        var keys = new HashSet<string>(StringComparer.Ordinal) { AlignmentKey };
        foreach (var (key, value) in metadata)
        {
            if (string.IsNullOrEmpty(key)) throw new ArgumentException("A GGUF metadata key is empty.", nameof(metadata));
            ArgumentNullException.ThrowIfNull(value, key);
            if (!keys.Add(key)) throw new ArgumentException($"GGUF metadata key '{key}' appears twice{(key == AlignmentKey ? " (the writer sets it)" : "")}.", nameof(metadata));
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        var offsets = new ulong[tensors.Count];
        ulong offset = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            var tensor = tensors[i];
            Check(tensor);
            if (!names.Add(tensor.Name)) throw new ArgumentException($"Tensor '{tensor.Name}' appears twice.", nameof(tensors));
            offsets[i] = offset;
            offset = Align(checked(offset + Bytes(tensor)));
        }

        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, Utf8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(Version);
            writer.Write((ulong)tensors.Count);
            writer.Write(checked((ulong)metadata.Count + 1));
            WriteString(writer, AlignmentKey);
            WriteValue(writer, GgufValue.UInt32(Alignment));
            foreach (var (key, value) in metadata)
            {
                WriteString(writer, key);
                WriteValue(writer, value);
            }
            for (var i = 0; i < tensors.Count; i++)
            {
                var tensor = tensors[i];
                WriteString(writer, tensor.Name);
                writer.Write((uint)tensor.Shape.Length);
                for (var d = tensor.Shape.Length - 1; d >= 0; d--) writer.Write((ulong)tensor.Shape[d]);
                writer.Write((uint)tensor.Type);
                writer.Write(offsets[i]);
            }
            writer.Flush();
            Pad(stream);
            var dataStart = stream.Position;
            for (var i = 0; i < tensors.Count; i++)
            {
                var tensor = tensors[i];
                var start = dataStart + (long)offsets[i];
                if (stream.Position != start) throw new InvalidOperationException($"Tensor '{tensor.Name}' would start at {stream.Position}, not at its declared offset {start}.");
                tensor.WriteData(stream);
                var written = stream.Position - start;
                if ((ulong)written != Bytes(tensor))
                    throw new InvalidOperationException($"Tensor '{tensor.Name}' wrote {written} bytes; its shape [{string.Join(", ", tensor.Shape)}] in {tensor.Type} takes {Bytes(tensor)}.");
                Pad(stream);
            }
        });
    }

    /// <summary>Reads the header, metadata and tensor descriptors of <paramref name="path"/>, checking the format's rules.</summary>
    public static GgufContents Read(string path)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream, Utf8);
        try
        {
            if (!reader.ReadBytes(4).AsSpan().SequenceEqual(Magic)) throw Invalid(path, "does not start with the magic 'GGUF'");
            var version = reader.ReadUInt32();
            if (version != Version) throw Invalid(path, $"is GGUF version {version}; this reader reads version {Version}");
            var tensorCount = reader.ReadUInt64();
            var keyCount = reader.ReadUInt64();
            // Every entry takes at least 8 bytes, so counts beyond the file's length are corruption, not big models.
            if (tensorCount > (ulong)stream.Length / 8 || keyCount > (ulong)stream.Length / 8) throw Invalid(path, $"claims {tensorCount} tensors and {keyCount} keys, more than its {stream.Length} bytes can hold");
            var metadata = new List<KeyValuePair<string, GgufValue>>();
            for (ulong i = 0; i < keyCount; i++)
            {
                var key = ReadString(reader, stream);
                var type = (GgufValueType)reader.ReadUInt32();
                metadata.Add(new(key, ReadValue(reader, stream, type)));
            }
            var alignmentValue = metadata.FirstOrDefault(kv => kv.Key == AlignmentKey).Value;
            var alignment = alignmentValue is null ? Alignment : alignmentValue.Type == GgufValueType.UInt32 ? (uint)alignmentValue.Value : throw Invalid(path, $"has {AlignmentKey} of type {alignmentValue.Type}, not UInt32");
            if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw Invalid(path, $"has {AlignmentKey} {alignment}, not a power of two");
            var tensors = new List<GgufTensorInfo>();
            for (ulong i = 0; i < tensorCount; i++)
            {
                var name = ReadString(reader, stream);
                var dimensionCount = reader.ReadUInt32();
                if (dimensionCount is 0 or > MaxDimensions) throw Invalid(path, $"gives tensor '{name}' {dimensionCount} dimensions (1 to {MaxDimensions} allowed)");
                var dimensions = new ulong[dimensionCount];
                for (var d = 0; d < dimensions.Length; d++) dimensions[d] = reader.ReadUInt64();
                var type = (GgufTensorType)reader.ReadUInt32();
                if (!Enum.IsDefined(type)) throw Invalid(path, $"gives tensor '{name}' type {(uint)type}, which this reader does not know");
                if (dimensions[0] % (ulong)BlockValues(type) != 0) throw Invalid(path, $"gives tensor '{name}' rows of {dimensions[0]} values, not whole {type} blocks");
                var offset = reader.ReadUInt64();
                if (offset % alignment != 0) throw Invalid(path, $"places tensor '{name}' at offset {offset}, not a multiple of the alignment {alignment}");
                tensors.Add(new GgufTensorInfo(name, dimensions, type, offset));
            }
            var dataStart = (long)AlignUp((ulong)stream.Position, alignment);
            foreach (var tensor in tensors)
                if ((ulong)dataStart + tensor.Offset + tensor.Bytes > (ulong)stream.Length)
                    throw Invalid(path, $"is cut short: tensor '{tensor.Name}' ends past the end of the file");
            return new GgufContents(version, metadata, tensors, dataStart, alignment);
        }
        catch (EndOfStreamException)
        {
            throw Invalid(path, "is cut short inside its header");
        }
    }

    /// <summary>The raw bytes of <paramref name="tensor"/> in the file <paramref name="contents"/> were read from.</summary>
    public static byte[] ReadData(string path, GgufContents contents, GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(contents);
        ArgumentNullException.ThrowIfNull(tensor);
        using var stream = File.OpenRead(path);
        stream.Position = contents.DataStart + (long)tensor.Offset;
        var bytes = new byte[checked((int)tensor.Bytes)];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Bytes of <paramref name="tensor"/>'s data (shape already checked).</summary>
    private static ulong Bytes(GgufTensorSource tensor) =>
        DataBytes(tensor.Type, tensor.Shape.Aggregate(1UL, (product, size) => checked(product * (ulong)size)));

    private static void Check(GgufTensorSource tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (string.IsNullOrEmpty(tensor.Name)) throw new ArgumentException("A tensor has an empty name.", nameof(tensor));
        if (Utf8.GetByteCount(tensor.Name) > MaxNameBytes) throw new ArgumentException($"Tensor name '{tensor.Name}' is over ggml's {MaxNameBytes} bytes.", nameof(tensor));
        if (tensor.Shape.Length is 0 or > MaxDimensions) throw new ArgumentException($"Tensor '{tensor.Name}' has {tensor.Shape.Length} dimensions; ggml takes 1 to {MaxDimensions}.", nameof(tensor));
        if (tensor.Shape.Any(size => size <= 0)) throw new ArgumentException($"Tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape)}]; every dimension must be positive.", nameof(tensor));
        var block = BlockValues(tensor.Type);
        if (tensor.Shape[^1] % block != 0)
            throw new ArgumentException($"Tensor '{tensor.Name}' has rows of {tensor.Shape[^1]} values, not a whole number of {tensor.Type}'s {block}-value blocks.", nameof(tensor));
    }

    private static ulong Align(ulong offset) => AlignUp(offset, Alignment);

    private static ulong AlignUp(ulong offset, uint alignment) => checked((offset + alignment - 1) / alignment * alignment);

    private static void Pad(Stream stream)
    {
        var padding = (int)(Align((ulong)stream.Position) - (ulong)stream.Position);
        Span<byte> zeros = stackalloc byte[(int)Alignment];
        stream.Write(zeros[..padding]);
    }

    private static void WriteString(BinaryWriter writer, string value)
    {
        var bytes = Utf8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static void WriteValue(BinaryWriter writer, GgufValue value)
    {
        writer.Write((uint)value.Type);
        WritePayload(writer, value);
    }

    private static void WritePayload(BinaryWriter writer, GgufValue value)
    {
        switch (value.Type)
        {
            case GgufValueType.UInt8: writer.Write((byte)value.Value); break;
            case GgufValueType.Int8: writer.Write((sbyte)value.Value); break;
            case GgufValueType.UInt16: writer.Write((ushort)value.Value); break;
            case GgufValueType.Int16: writer.Write((short)value.Value); break;
            case GgufValueType.UInt32: writer.Write((uint)value.Value); break;
            case GgufValueType.Int32: writer.Write((int)value.Value); break;
            case GgufValueType.Float32: writer.Write((float)value.Value); break;
            case GgufValueType.Bool: writer.Write((bool)value.Value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(writer, (string)value.Value); break;
            case GgufValueType.UInt64: writer.Write((ulong)value.Value); break;
            case GgufValueType.Int64: writer.Write((long)value.Value); break;
            case GgufValueType.Float64: writer.Write((double)value.Value); break;
            case GgufValueType.Array:
                var items = value.Items;
                writer.Write((uint)value.ElementType);
                writer.Write((ulong)items.Count);
                // An element that is itself an array carries its own element type and count, then its elements.
                foreach (var item in items) WriteNested(writer, item);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(value), value.Type, "Not a GGUF value type.");
        }
    }

    private static void WriteNested(BinaryWriter writer, GgufValue value)
    {
        if (value.Type != GgufValueType.Array)
        {
            WritePayload(writer, value);
            return;
        }
        writer.Write((uint)value.ElementType);
        writer.Write((ulong)value.Items.Count);
        foreach (var item in value.Items) WriteNested(writer, item);
    }

    private static string ReadString(BinaryReader reader, Stream stream)
    {
        var length = reader.ReadUInt64();
        if (length > (ulong)(stream.Length - stream.Position)) throw new EndOfStreamException();
        return Utf8.GetString(reader.ReadBytes((int)length));
    }

    private static GgufValue ReadValue(BinaryReader reader, Stream stream, GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => GgufValue.UInt8(reader.ReadByte()),
        GgufValueType.Int8 => GgufValue.Int8(reader.ReadSByte()),
        GgufValueType.UInt16 => GgufValue.UInt16(reader.ReadUInt16()),
        GgufValueType.Int16 => GgufValue.Int16(reader.ReadInt16()),
        GgufValueType.UInt32 => GgufValue.UInt32(reader.ReadUInt32()),
        GgufValueType.Int32 => GgufValue.Int32(reader.ReadInt32()),
        GgufValueType.Float32 => GgufValue.Float32(reader.ReadSingle()),
        GgufValueType.Bool => reader.ReadByte() switch
        {
            0 => GgufValue.Bool(false),
            1 => GgufValue.Bool(true),
            var b => throw new InvalidDataException($"A GGUF bool holds {b}, not 0 or 1."),
        },
        GgufValueType.String => GgufValue.String(ReadString(reader, stream)),
        GgufValueType.UInt64 => GgufValue.UInt64(reader.ReadUInt64()),
        GgufValueType.Int64 => GgufValue.Int64(reader.ReadInt64()),
        GgufValueType.Float64 => GgufValue.Float64(reader.ReadDouble()),
        GgufValueType.Array => ReadArray(reader, stream),
        _ => throw new InvalidDataException($"GGUF value type {(uint)type} is not one of the format's types."),
    };

    private static GgufValue ReadArray(BinaryReader reader, Stream stream)
    {
        var elementType = (GgufValueType)reader.ReadUInt32();
        var count = reader.ReadUInt64();
        if (count > (ulong)(stream.Length - stream.Position)) throw new EndOfStreamException();
        var items = new GgufValue[count];
        for (ulong i = 0; i < count; i++) items[i] = ReadValue(reader, stream, elementType);
        return GgufValue.Array(elementType, items);
    }

    private static InvalidDataException Invalid(string path, string problem) => new($"{Path.GetFullPath(path)} {problem}.");
}
