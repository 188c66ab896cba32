using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using LlmEff.Export;

namespace LlmEff.Runtime.Tests.Export;

public sealed class GgufFileTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("llmeff-gguf-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private string File(string name) => Path.Combine(folder, name);

    private static GgufTensorSource Tensor(string name, long[] shape, GgufTensorType type, byte fill) =>
        new(name, shape, type, stream =>
        {
            var bytes = (long)GgufFile.DataBytes(type, (ulong)shape.Aggregate(1L, (p, s) => p * s));
            stream.Write(Enumerable.Repeat(fill, (int)bytes).ToArray());
        });

    [Fact]
    public void Every_metadata_type_round_trips_with_its_type()
    {
        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            new("u8", GgufValue.UInt8(200)), new("i8", GgufValue.Int8(-100)),
            new("u16", GgufValue.UInt16(60000)), new("i16", GgufValue.Int16(-30000)),
            new("u32", GgufValue.UInt32(4_000_000_000)), new("i32", GgufValue.Int32(-2_000_000_000)),
            new("f32", GgufValue.Float32(1e-5f)), new("bool", GgufValue.Bool(true)),
            new("string", GgufValue.String("no_vocab")),
            new("u64", GgufValue.UInt64(ulong.MaxValue)), new("i64", GgufValue.Int64(long.MinValue)),
            new("f64", GgufValue.Float64(Math.PI)),
            new("strings", GgufValue.Array(new[] { "a", "", "ü" })),
            new("floats", GgufValue.Array(GgufValueType.Float32, new[] { GgufValue.Float32(1), GgufValue.Float32(-2.5f) })),
            new("nested", GgufValue.Array(GgufValueType.Array, new[] { GgufValue.Array(GgufValueType.Int32, new[] { GgufValue.Int32(7) }), GgufValue.Array(GgufValueType.Int32, Array.Empty<GgufValue>()) })),
        };
        GgufFile.Write(File("m.gguf"), metadata, Array.Empty<GgufTensorSource>());

        var read = GgufFile.Read(File("m.gguf"));

        Assert.Equal(GgufFile.Version, read.Version);
        Assert.Equal(GgufValue.UInt32(GgufFile.Alignment), read[GgufFile.AlignmentKey]);
        Assert.Equal(metadata, read.Metadata.Skip(1));
    }

    [Fact]
    public void The_header_is_magic_version_3_and_u64_counts_and_strings_are_utf8_after_a_u64_byte_count()
    {
        GgufFile.Write(File("s.gguf"), new List<KeyValuePair<string, GgufValue>> { new("k", GgufValue.String("é")) }, Array.Empty<GgufTensorSource>());
        var bytes = System.IO.File.ReadAllBytes(File("s.gguf"));

        Assert.Equal("GGUF"u8.ToArray(), bytes[..4]);
        Assert.Equal(3u, BitConverter.ToUInt32(bytes, 4));
        Assert.Equal(0ul, BitConverter.ToUInt64(bytes, 8));   // tensors
        Assert.Equal(2ul, BitConverter.ToUInt64(bytes, 16));  // keys: general.alignment, k
        // The second key: u64 length 1, "k", type String, then "é" as its two UTF-8 bytes after a u64 length 2.
        var second = 24 + 8 + GgufFile.AlignmentKey.Length + 4 + 4;
        Assert.Equal(1ul, BitConverter.ToUInt64(bytes, second));
        Assert.Equal((byte)'k', bytes[second + 8]);
        Assert.Equal((uint)GgufValueType.String, BitConverter.ToUInt32(bytes, second + 9));
        Assert.Equal(2ul, BitConverter.ToUInt64(bytes, second + 13));
        Assert.Equal(Encoding.UTF8.GetBytes("é"), bytes[(second + 21)..(second + 23)]);
    }

    [Fact]
    public void Every_tensor_starts_at_an_aligned_offset_with_dimensions_innermost_first_and_its_bytes_intact()
    {
        var tensors = new[]
        {
            Tensor("odd", new long[] { 3 }, GgufTensorType.F32, 1),          // 12 bytes: the next one must skip to 32
            Tensor("matrix", new long[] { 5, 7 }, GgufTensorType.F16, 2),    // 70 bytes
            Tensor("bf", new long[] { 2, 3, 1 }, GgufTensorType.BF16, 3),
        };
        var path = File("t.gguf");
        GgufFile.Write(path, new List<KeyValuePair<string, GgufValue>> { new("general.architecture", GgufValue.String("llama")) }, tensors);

        var read = GgufFile.Read(path);

        Assert.Equal(0, read.DataStart % GgufFile.Alignment);
        Assert.All(read.Tensors, t => Assert.Equal(0ul, t.Offset % GgufFile.Alignment));
        Assert.Equal(new ulong[] { 0, 32, 128 }, read.Tensors.Select(t => t.Offset));
        Assert.Equal(new ulong[] { 7, 5 }, read.Tensor("matrix").Dimensions);
        Assert.Equal(new ulong[] { 1, 3, 2 }, read.Tensor("bf").Dimensions);
        Assert.Equal(GgufTensorType.F16, read.Tensor("matrix").Type);
        Assert.All(GgufFile.ReadData(path, read, read.Tensor("matrix")), b => Assert.Equal(2, b));
        Assert.Equal(0, new FileInfo(path).Length % GgufFile.Alignment);
    }

    [Fact]
    public void A_q8_0_tensor_takes_34_bytes_per_32_values_and_rows_that_are_not_whole_blocks_are_refused()
    {
        var path = File("q.gguf");
        var metadata = new List<KeyValuePair<string, GgufValue>> { new("general.architecture", GgufValue.String("llama")) };
        GgufFile.Write(path, metadata, new[] { Tensor("q", new long[] { 3, 64 }, GgufTensorType.Q8_0, 4), Tensor("next", new long[] { 1 }, GgufTensorType.F32, 5) });

        var read = GgufFile.Read(path);

        Assert.Equal(3ul * 2 * 34, read.Tensor("q").Bytes); // 3 rows of 2 blocks
        Assert.Equal(new ulong[] { 64, 3 }, read.Tensor("q").Dimensions);
        Assert.Equal(224ul, read.Tensor("next").Offset); // 204 bytes, aligned up to 32
        var odd = Assert.Throws<ArgumentException>(() => GgufFile.Write(File("odd.gguf"), metadata, new[] { Tensor("odd", new long[] { 2, 48 }, GgufTensorType.Q8_0, 1) }));
        Assert.Contains("rows of 48 values, not a whole number of Q8_0's 32-value blocks", odd.Message);
    }

    [Fact]
    public void A_tensor_that_writes_the_wrong_byte_count_is_refused_and_leaves_no_file()
    {
        var path = File("short.gguf");
        var wrong = new GgufTensorSource("w", new long[] { 4 }, GgufTensorType.F32, stream => stream.Write(new byte[15]));

        var error = Assert.Throws<InvalidOperationException>(() => GgufFile.Write(path, new List<KeyValuePair<string, GgufValue>>(), new[] { wrong }));

        Assert.Contains("'w' wrote 15 bytes", error.Message);
        Assert.False(System.IO.File.Exists(path));
        Assert.Empty(Directory.GetFiles(folder));
    }

    [Fact]
    public void Names_over_ggml_limit_duplicate_keys_and_mixed_arrays_are_refused_naming_them()
    {
        var none = new List<KeyValuePair<string, GgufValue>>();
        var longName = new string('x', GgufFile.MaxNameBytes + 1);
        Assert.Contains(longName, Assert.Throws<ArgumentException>(() => GgufFile.Write(File("a"), none, new[] { Tensor(longName, new long[] { 1 }, GgufTensorType.F32, 0) })).Message);
        Assert.Contains("'general.alignment' appears twice", Assert.Throws<ArgumentException>(() =>
            GgufFile.Write(File("b"), new List<KeyValuePair<string, GgufValue>> { new("general.alignment", GgufValue.UInt32(64)) }, Array.Empty<GgufTensorSource>())).Message);
        Assert.Contains("Element 1", Assert.Throws<ArgumentException>(() => GgufValue.Array(GgufValueType.UInt32, new[] { GgufValue.UInt32(1), GgufValue.Int32(1) })).Message);
    }

    [Fact]
    public void A_file_that_is_not_gguf_or_is_cut_short_is_refused_saying_so()
    {
        System.IO.File.WriteAllText(File("x.gguf"), "not a model");
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => GgufFile.Read(File("x.gguf"))).Message);

        GgufFile.Write(File("y.gguf"), new List<KeyValuePair<string, GgufValue>>(), new[] { Tensor("w", new long[] { 64 }, GgufTensorType.F32, 1) });
        var bytes = System.IO.File.ReadAllBytes(File("y.gguf"));
        System.IO.File.WriteAllBytes(File("y.gguf"), bytes[..^10]);
        Assert.Contains("cut short", Assert.Throws<InvalidDataException>(() => GgufFile.Read(File("y.gguf"))).Message);
    }
}
