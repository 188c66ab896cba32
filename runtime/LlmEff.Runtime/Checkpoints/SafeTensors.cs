using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;
using LlmEff.IO;
using TorchSharp;
using static System.FormattableString;
using static TorchSharp.torch;

// For SafeTensors.SaveObserved: an interrupted write cannot be produced from outside without a hook.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("LlmEff.Runtime.Tests")]

namespace LlmEff.Checkpoints;

/// <summary>
/// Reads and writes the safetensors format (Hugging Face): an 8-byte little-endian header length, a UTF-8
/// JSON header naming every tensor's dtype, shape and byte range, then the raw row-major little-endian data.
/// Written from the format's specification; TorchSharp's own serialisers are not involved.
/// </summary>
/// <remarks>
/// Files are written the way the reference implementation writes them: header padded with spaces to a
/// multiple of 8 bytes, data packed without gaps, largest elements first, so every tensor starts at an
/// offset aligned to its element size (readers that map the file can view the data in place). Header
/// entries are listed by name. <see cref="Save"/> also records a SHA-256 of the data section in the
/// metadata, which <see cref="Load"/> verifies.
/// </remarks>
public static class SafeTensors
{
    /// <summary>Metadata key holding the lowercase hexadecimal SHA-256 of the data section.</summary>
    public const string ChecksumKey = "sha256";

    /// <summary>The reference implementation's header limit; a larger length means the file is something else.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";
    private const int LengthPrefixBytes = 8;

    // Chunks keep every span under TorchSharp's int-sized Span limit, so tensors over 2 GiB still work.
    private const int ChunkBytes = 16 << 20;

    private static readonly Dictionary<string, ScalarType> TypeByName = new(StringComparer.Ordinal)
    {
        ["BOOL"] = ScalarType.Bool,
        ["U8"] = ScalarType.Byte,
        ["I8"] = ScalarType.Int8,
        ["I16"] = ScalarType.Int16,
        ["I32"] = ScalarType.Int32,
        ["I64"] = ScalarType.Int64,
        ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16,
        ["F32"] = ScalarType.Float32,
        ["F64"] = ScalarType.Float64,
        ["C64"] = ScalarType.ComplexFloat32,
    };

    private static readonly Dictionary<ScalarType, string> NameByType = TypeByName.ToDictionary(p => p.Value, p => p.Key);

    // Valid in the format, but TorchSharp 0.107 has no element type to load them into.
    private static readonly HashSet<string> TypesWithoutTorchSharpEquivalent = new(StringComparer.Ordinal)
    {
        "U16", "U32", "U64", "F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
    };

    /// <summary>
    /// Writes <paramref name="tensors"/> and <paramref name="metadata"/> to <paramref name="path"/> all or nothing:
    /// the file is assembled under a temporary name in the same folder, flushed to disk, then renamed over
    /// <paramref name="path"/>, so a crash or error leaves any previous file untouched.
    /// </summary>
    /// <param name="path">Destination; replaced if it exists.</param>
    /// <param name="tensors">Uniquely named tensors on any device, of any layout in memory; each is copied to the CPU one at a time while writing.</param>
    /// <param name="metadata">String pairs for the header's <c>__metadata__</c>; <see cref="ChecksumKey"/> is added and may not be given.</param>
    /// <exception cref="ArgumentException">A name is repeated or reserved, or a tensor's element type, layout or device cannot be stored.</exception>
    public static void Save(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        SaveObserved(path, tensors, metadata, afterTensorWritten: null);

    /// <summary>Like <see cref="Save"/>; <paramref name="afterTensorWritten"/> runs after each tensor's data reach the temporary file, so tests can interrupt a write half-way.</summary>
    internal static void SaveObserved(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata, Action<string>? afterTensorWritten)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        RequireLittleEndianMachine();
        var layout = PlanLayout(tensors);
        var headerMetadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>())
        {
            if (key == ChecksumKey) throw new ArgumentException($"The metadata key '{ChecksumKey}' is reserved: Save computes it.", nameof(metadata));
            headerMetadata[key] = value ?? throw new ArgumentException($"The metadata value of '{key}' is null; the format stores strings only.", nameof(metadata));
        }

        // The checksum goes in the header, which precedes the data it covers: reserve the header with a
        // placeholder digest of the same length, hash while writing the data, then write the header last.
        headerMetadata[ChecksumKey] = new string('0', 64);
        var placeholderHeader = EncodeHeader(layout, headerMetadata);

        AtomicFile.Write(path, stream =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            stream.Position = LengthPrefixBytes + placeholderHeader.Length;
            foreach (var planned in layout)
            {
                WriteData(planned, stream, hash);
                afterTensorWritten?.Invoke(planned.Name);
            }
            headerMetadata[ChecksumKey] = Convert.ToHexStringLower(hash.GetHashAndReset());
            var header = EncodeHeader(layout, headerMetadata);
            Debug.Assert(header.Length == placeholderHeader.Length, "the digest placeholder has the digest's length");
            stream.Position = 0;
            Span<byte> prefix = stackalloc byte[LengthPrefixBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
        });
    }

    /// <summary>
    /// Reads <paramref name="path"/> into CPU tensors after checking its structure, and its SHA-256 when the
    /// metadata records one.
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a well-formed safetensors file, is truncated, holds an element type TorchSharp lacks, or fails its checksum; the message names the file and the problem.</exception>
    public static SafeTensorsFile Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        RequireLittleEndianMachine();
        using var stream = OpenForReading(path);
        var header = ReadHeader(stream, path);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            stream.Position = header.DataStart;
            foreach (var entry in header.InDataOrder()) tensors.Add(entry.Name, ReadData(entry, stream, hash));
            if (header.Metadata.TryGetValue(ChecksumKey, out var recorded))
            {
                var computed = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (!string.Equals(recorded, computed, StringComparison.OrdinalIgnoreCase))
                    throw Invalid(path, $"has a checksum mismatch: the data was modified or damaged (SHA-256 in the header {recorded[..12]}…, of the data {computed[..12]}…)");
            }
        }
        catch (Exception error)
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
            // The length was checked against the header, so running out means the file shrank while being read.
            if (error is EndOfStreamException) throw Invalid(path, "ended while its data were being read (was it being rewritten?)", error);
            throw;
        }
        return new SafeTensorsFile(header, tensors);
    }

    /// <summary>Reads and checks only the header of <paramref name="path"/>: cheap, whatever the size of the data.</summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The header is malformed or does not match the file's length; the data and checksum are not read.</exception>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = OpenForReading(path);
        return ReadHeader(stream, path);
    }

    /// <summary>A shape as the messages print it: <c>[64, 256]</c>, <c>[]</c> for a scalar.</summary>
    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    private sealed record PlannedTensor(string Name, Tensor Tensor, string DTypeName, long ElementSize, long[] Shape, long DataBegin, long DataEnd);

    private static List<PlannedTensor> PlanLayout(IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var accepted = new List<(string Name, Tensor Tensor, string DTypeName, long ElementSize)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            if (name is null) throw new ArgumentException("A tensor has a null name.", nameof(tensors));
            if (name == MetadataKey) throw new ArgumentException($"'{MetadataKey}' is the format's metadata key and cannot name a tensor.", nameof(tensors));
            if (!names.Add(name)) throw new ArgumentException($"Two tensors are named '{name}'.", nameof(tensors));
            if (tensor is null) throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
            if (!NameByType.TryGetValue(tensor.dtype, out var dtypeName))
                throw new ArgumentException($"Tensor '{name}' is {tensor.dtype}, which safetensors cannot store (supported: {string.Join(", ", TypeByName.Values)}).", nameof(tensors));
            if (tensor.device_type == DeviceType.META)
                throw new ArgumentException($"Tensor '{name}' is on the meta device: it has a shape but no values to save.", nameof(tensors));
            if (tensor.is_sparse)
                throw new ArgumentException($"Tensor '{name}' is sparse; safetensors stores dense tensors (call to_dense() first).", nameof(tensors));
            accepted.Add((name, tensor, dtypeName, ElementSize(tensor.dtype)));
        }

        // Largest elements first, as the reference writer does: with every size a power of two, each
        // tensor then starts at a multiple of its own element size.
        var layout = new List<PlannedTensor>(accepted.Count);
        long offset = 0;
        foreach (var (name, tensor, dtypeName, elementSize) in accepted.OrderByDescending(t => t.ElementSize).ThenBy(t => t.Name, StringComparer.Ordinal))
        {
            var bytes = checked(tensor.numel() * elementSize);
            layout.Add(new PlannedTensor(name, tensor, dtypeName, elementSize, tensor.shape, offset, offset + bytes));
            offset += bytes;
        }
        return layout;
    }

    private static byte[] EncodeHeader(IReadOnlyList<PlannedTensor> layout, SortedDictionary<string, string> metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII tensor names and metadata readable; the output is still plain JSON.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject(MetadataKey);
            foreach (var (key, value) in metadata) json.WriteString(key, value);
            json.WriteEndObject();
            foreach (var planned in layout.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                json.WriteStartObject(planned.Name);
                json.WriteString("dtype", planned.DTypeName);
                json.WriteStartArray("shape");
                foreach (var size in planned.Shape) json.WriteNumberValue(size);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(planned.DataBegin);
                json.WriteNumberValue(planned.DataEnd);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        var header = new byte[(buffer.WrittenCount + 7) / 8 * 8];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        if (header.Length > MaxHeaderBytes)
            throw new ArgumentException(Invariant($"The header would take {header.Length:N0} bytes, over the format's limit of {MaxHeaderBytes:N0}: too many tensors or too much metadata."));
        return header;
    }

    private static void WriteData(PlannedTensor planned, Stream stream, IncrementalHash hash)
    {
        var elements = planned.Tensor.numel();
        if (elements == 0) return;
        using var scope = NewDisposeScope();
        var flat = planned.Tensor.detach().cpu().contiguous().reshape(-1);
        var elementsPerChunk = Math.Max(1, ChunkBytes / planned.ElementSize);
        for (long start = 0; start < elements; start += elementsPerChunk)
        {
            using var chunk = flat.narrow(0, start, Math.Min(elementsPerChunk, elements - start));
            ReadOnlySpan<byte> bytes = chunk.bytes;
            hash.AppendData(bytes);
            stream.Write(bytes);
        }
    }

    private static Tensor ReadData(SafeTensorEntry entry, Stream stream, IncrementalHash hash)
    {
        // Detached from any scope the caller opened: the SafeTensorsFile owns the tensor and disposes it.
        var tensor = empty(entry.Shape.ToArray(), entry.DType).DetachFromDisposeScope();
        try
        {
            var elements = tensor.numel();
            if (elements == 0) return tensor;
            var elementSize = ElementSize(entry.DType);
            var elementsPerChunk = Math.Max(1, ChunkBytes / elementSize);
            using var flat = tensor.view(-1);
            for (long start = 0; start < elements; start += elementsPerChunk)
            {
                // The span is the tensor's own memory, so the file's bytes land in place without a copy.
                using var chunk = flat.narrow(0, start, Math.Min(elementsPerChunk, elements - start));
                var bytes = chunk.bytes;
                stream.ReadExactly(bytes);
                hash.AppendData(bytes);
            }
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    private static FileStream OpenForReading(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist.", path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 20);
    }

    private static SafeTensorsHeader ReadHeader(FileStream stream, string path)
    {
        var fileLength = stream.Length;
        if (fileLength < LengthPrefixBytes)
            throw Invalid(path, Invariant($"is not a safetensors file (it is {fileLength} bytes long; the header length alone takes {LengthPrefixBytes})"));
        Span<byte> prefix = stackalloc byte[LengthPrefixBytes];
        stream.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(fileLength - LengthPrefixBytes))
            throw Invalid(path, Invariant($"is not a safetensors file (header length {headerLength:N0} exceeds the file size, {fileLength:N0} bytes), or it was cut short inside its header"));
        if ((long)headerLength > MaxHeaderBytes)
            throw Invalid(path, Invariant($"is not a safetensors file (header length {headerLength:N0} is over the format's limit of {MaxHeaderBytes:N0} bytes)"));
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        var dataStart = LengthPrefixBytes + (long)headerLength;
        return ParseHeader(headerBytes, path, dataStart, fileLength - dataStart);
    }

    private static SafeTensorsHeader ParseHeader(byte[] headerBytes, string path, long dataStart, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException error)
        {
            throw Invalid(path, $"is not a safetensors file (its header is not valid JSON: {error.Message})", error);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Invalid(path, $"is not a safetensors file (its header is a JSON {root.ValueKind}, not an object)");

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new Dictionary<string, SafeTensorEntry>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                // JSON allows repeated keys; which one wins would be up to the reader, so refuse instead.
                if (!seen.Add(property.Name)) throw Invalid(path, $"has a header that names '{property.Name}' twice");
                if (property.Name == MetadataKey) ReadMetadata(property.Value, metadata, path);
                else tensors.Add(property.Name, ReadEntry(property.Name, property.Value, path));
            }

            if (metadata.TryGetValue(ChecksumKey, out var digest) && (digest.Length != 64 || !digest.All(char.IsAsciiHexDigit)))
                throw Invalid(path, $"has '{ChecksumKey}' metadata that is not a SHA-256 digest (64 hexadecimal digits): '{digest}'");

            var header = new SafeTensorsHeader(path, metadata, tensors, dataStart);
            CheckDataLayout(header, dataLength);
            return header;
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"has a '{MetadataKey}' that is a JSON {value.ValueKind}, not an object of strings");
        foreach (var pair in value.EnumerateObject())
        {
            if (pair.Value.ValueKind != JsonValueKind.String)
                throw Invalid(path, $"has '{MetadataKey}' entry '{pair.Name}' that is a JSON {pair.Value.ValueKind}; the format allows strings only");
            if (!metadata.TryAdd(pair.Name, pair.Value.GetString()!))
                throw Invalid(path, $"has a '{MetadataKey}' that names '{pair.Name}' twice");
        }
    }

    private static SafeTensorEntry ReadEntry(string name, JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"describes tensor '{name}' with a JSON {value.ValueKind} instead of an object with dtype, shape and data_offsets");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Invalid(path, $"gives tensor '{name}' no dtype string");
        var dtypeName = dtypeElement.GetString()!;
        if (!TypeByName.TryGetValue(dtypeName, out var dtype))
        {
            throw TypesWithoutTorchSharpEquivalent.Contains(dtypeName)
                ? Invalid(path, $"has tensor '{name}' of dtype {dtypeName}, which TorchSharp has no element type for")
                : Invalid(path, $"has tensor '{name}' of unknown dtype '{dtypeName}'");
        }
        var shape = ReadNonNegativeIntegers(value, "shape", name, path);
        var offsets = ReadNonNegativeIntegers(value, "data_offsets", name, path);
        if (offsets.Length != 2 || offsets[0] > offsets[1])
            throw Invalid(path, $"gives tensor '{name}' data_offsets {FormatShape(offsets)}; expected [begin, end] with begin ≤ end");

        long bytes;
        try
        {
            bytes = checked(shape.Aggregate(1L, (product, size) => product * size) * ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw Invalid(path, $"gives tensor '{name}' the shape {FormatShape(shape)}, too large to address");
        }
        if (offsets[1] - offsets[0] != bytes)
            throw Invalid(path, Invariant($"gives tensor '{name}' ({dtypeName} {FormatShape(shape)}, {bytes:N0} bytes) data_offsets [{offsets[0]}, {offsets[1]}] that span {offsets[1] - offsets[0]:N0} bytes"));
        return new SafeTensorEntry(name, dtypeName, dtype, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadNonNegativeIntegers(JsonElement entry, string field, string name, string path)
    {
        if (!entry.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
            throw Invalid(path, $"gives tensor '{name}' no {field} array");
        var values = new long[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var number) || number < 0)
                throw Invalid(path, $"gives tensor '{name}' a {field} with '{item.GetRawText()}', not a non-negative integer");
            values[i++] = number;
        }
        return values;
    }

    /// <summary>The data section must be covered exactly once, without gaps or trailing bytes, as the reference reader demands.</summary>
    private static void CheckDataLayout(SafeTensorsHeader header, long dataLength)
    {
        var path = header.Path;
        long covered = 0;
        SafeTensorEntry? previous = null;
        foreach (var entry in header.InDataOrder())
        {
            if (entry.DataBegin < covered)
                throw Invalid(path, Invariant($"has overlapping tensors '{previous!.Name}' (bytes {previous.DataBegin:N0}–{previous.DataEnd:N0}) and '{entry.Name}' (bytes {entry.DataBegin:N0}–{entry.DataEnd:N0})"));
            if (entry.DataBegin > covered)
                throw Invalid(path, Invariant($"leaves bytes {covered:N0}–{entry.DataBegin:N0} of its data section unused, before tensor '{entry.Name}'"));
            covered = entry.DataEnd;
            previous = entry;
        }
        if (dataLength < covered)
            throw Invalid(path, Invariant($"is truncated: header promises {covered:N0} bytes of data, {dataLength:N0} present"));
        if (dataLength > covered)
            throw Invalid(path, Invariant($"has {dataLength - covered:N0} bytes after the {covered:N0} bytes of data its header describes"));
    }

    private static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Bool or ScalarType.Byte or ScalarType.Int8 => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 or ScalarType.ComplexFloat32 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors element type"),
    };

    private static void RequireLittleEndianMachine()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data are little-endian and this machine is not; byte swapping is not implemented.");
    }

    private static InvalidDataException Invalid(string path, string problem, Exception? inner = null) => new($"{path} {problem}.", inner);
}
