using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LlmEff.Checkpoints;
using LlmEff.Runtime.Tests.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>The safetensors reader and writer, and training checkpoints built on them.</summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("llmeff-checkpoint-tests-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private string PathOf(string name) => Path.Combine(folder, name);

    // ---- safetensors ----

    [Fact]
    public void Every_supported_dtype_round_trips_bit_for_bit_with_scalars_empty_and_strided_tensors()
    {
        var tensors = new List<(string Name, Tensor Tensor)>
        {
            ("bool", tensor(new[] { true, false, true })),
            ("u8", tensor(new byte[] { 0, 1, 255 })),
            ("i8", tensor(new sbyte[] { -128, 0, 127 })),
            ("i16", tensor(new short[] { short.MinValue, -1, short.MaxValue })),
            ("i32", tensor(new[] { int.MinValue, 7, int.MaxValue }, new long[] { 3, 1 })),
            ("i64", tensor(new[] { long.MinValue, 0, long.MaxValue })),
            ("f16", tensor(new[] { 1.5f, -0f, 65504f, float.NaN }).to(ScalarType.Float16)),
            ("bf16", tensor(new[] { 1.5f, -0f, 3e38f, float.NegativeInfinity }).to(ScalarType.BFloat16)),
            ("f32", tensor(new[] { 1e-45f, -0f, float.NaN, float.MaxValue, 0.1f, 2f }, new long[] { 2, 3 })),
            ("f64", tensor(new[] { Math.PI, -0d, double.Epsilon })),
            ("c64", randn(new long[] { 2, 2 }, ScalarType.ComplexFloat32)),
            ("scalar", tensor(42.5f)),
            ("empty", zeros(new long[] { 0, 3 }, ScalarType.Float32)),
            ("transposed", arange(6, ScalarType.Float32).reshape(2, 3).t()),
        };
        var path = PathOf("all.safetensors");

        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["note"] = "ünïcode ✓" });
        using var loaded = SafeTensors.Load(path);

        Assert.Equal(tensors.Select(t => t.Name).Order(), loaded.Tensors.Keys.Order());
        foreach (var (name, expected) in tensors)
        {
            var actual = loaded.Tensors[name];
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.Equal(TorchSharp.DeviceType.CPU, actual.device_type);
            Assert.Equal(expected.contiguous().bytes.ToArray(), actual.bytes.ToArray());
        }
        Assert.Equal(0, loaded.Tensors["scalar"].dim());
        Assert.Equal("ünïcode ✓", loaded.Metadata["note"]);
        Assert.Matches("^[0-9a-f]{64}$", loaded.Metadata[SafeTensors.ChecksumKey]);
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void A_tensor_larger_than_one_copy_chunk_round_trips()
    {
        var path = PathOf("large.safetensors");
        using var large = arange(5_000_000, ScalarType.Float32).reshape(1000, 5000); // 20 MB: two 16 MiB chunks

        SafeTensors.Save(path, new[] { ("large", large) });
        using var loaded = SafeTensors.Load(path);

        Assert.True(SameBits(large, loaded.Tensors["large"]));
    }

    [Fact]
    public void The_file_follows_the_format_byte_for_byte()
    {
        var path = PathOf("spec.safetensors");
        using var bytes = tensor(new byte[] { 1, 2, 3 });
        using var floats = tensor(new[] { 1.5f, -2f });
        using var scalar = tensor(7L);

        SafeTensors.Save(path, new[] { ("b_floats", floats), ("a_bytes", bytes), ("c_scalar", scalar) }, new Dictionary<string, string> { ["k"] = "v" });

        var file = File.ReadAllBytes(path);
        var headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        Assert.Equal(0, headerLength % 8);
        var headerText = Encoding.UTF8.GetString(file, 8, headerLength);
        Assert.StartsWith("{", headerText);
        Assert.Matches(@"^\{.*\} *$", headerText); // padded with spaces only
        using var header = JsonDocument.Parse(headerText);
        // Metadata first, then the tensors by name.
        Assert.Equal(new[] { "__metadata__", "a_bytes", "b_floats", "c_scalar" }, header.RootElement.EnumerateObject().Select(p => p.Name));

        // Data packed largest elements first (I64, F32, U8), so each tensor is aligned to its element size.
        AssertEntry(header.RootElement.GetProperty("c_scalar"), "I64", new long[0], 0, 8);
        AssertEntry(header.RootElement.GetProperty("b_floats"), "F32", new long[] { 2 }, 8, 16);
        AssertEntry(header.RootElement.GetProperty("a_bytes"), "U8", new long[] { 3 }, 16, 19);
        var data = file.AsSpan(8 + headerLength);
        Assert.Equal(19, data.Length);
        Assert.Equal(7L, BinaryPrimitives.ReadInt64LittleEndian(data));
        Assert.Equal(1.5f, BinaryPrimitives.ReadSingleLittleEndian(data[8..]));
        Assert.Equal(-2f, BinaryPrimitives.ReadSingleLittleEndian(data[12..]));
        Assert.Equal(new byte[] { 1, 2, 3 }, data[16..].ToArray());

        var metadata = header.RootElement.GetProperty("__metadata__");
        Assert.Equal("v", metadata.GetProperty("k").GetString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data)), metadata.GetProperty("sha256").GetString());

        static void AssertEntry(JsonElement entry, string dtype, long[] shape, long begin, long end)
        {
            Assert.Equal(dtype, entry.GetProperty("dtype").GetString());
            Assert.Equal(shape, entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
            Assert.Equal(new[] { begin, end }, entry.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        }
    }

    [Fact]
    public void A_file_written_by_another_writer_without_padding_or_checksum_loads()
    {
        var path = PathOf("foreign.safetensors");
        var data = new byte[12];
        BinaryPrimitives.WriteSingleLittleEndian(data, 0.25f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -8f);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(8), -3);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(10), 300);
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"i":{"dtype":"I16","shape":[2],"data_offsets":[8,12]}}""", data);

        using var loaded = SafeTensors.Load(path);

        Assert.Empty(loaded.Metadata);
        Assert.Equal(new[] { 0.25f, -8f }, loaded.Tensors["w"].data<float>().ToArray());
        Assert.Equal(new long[] { 1, 2 }, loaded.Tensors["w"].shape);
        Assert.Equal(new short[] { -3, 300 }, loaded.Tensors["i"].data<short>().ToArray());
    }

    [Fact]
    public void A_truncated_file_is_refused_with_the_byte_counts()
    {
        var path = SaveSample("cut.safetensors");
        var length = new FileInfo(path).Length;
        using (var stream = File.OpenWrite(path)) stream.SetLength(length - 5);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("cut.safetensors is truncated: header promises", error.Message);
        Assert.Contains(" bytes of data, ", error.Message);
    }

    [Fact]
    public void A_flipped_data_bit_fails_the_checksum()
    {
        var path = SaveSample("flipped.safetensors");
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x10;
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("flipped.safetensors has a checksum mismatch: the data was modified or damaged", error.Message);
        // The header alone is still well formed: only reading the data can notice.
        Assert.Equal(2, SafeTensors.ReadHeader(path).Tensors.Count);
    }

    [Fact]
    public void Garbage_and_tiny_files_are_not_safetensors_files()
    {
        var garbage = PathOf("garbage.bin");
        var random = new Random(5);
        var noise = new byte[1000];
        random.NextBytes(noise);
        noise[7] = 0x40; // a header length in the exabytes, whatever the seed
        File.WriteAllBytes(garbage, noise);
        var tiny = PathOf("tiny.bin");
        File.WriteAllBytes(tiny, new byte[] { 1, 2, 3 });
        var text = PathOf("text.bin");
        File.WriteAllBytes(text, [.. BitConverter.GetBytes(16L), .. "not json at all!"u8.ToArray()]);

        var fromGarbage = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(garbage));
        var fromTiny = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(tiny));
        var fromText = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(text));

        Assert.Contains("garbage.bin is not a safetensors file (header length ", fromGarbage.Message);
        Assert.Contains("exceeds the file size, 1,000 bytes", fromGarbage.Message);
        Assert.Contains("tiny.bin is not a safetensors file (it is 3 bytes long", fromTiny.Message);
        Assert.Contains("text.bin is not a safetensors file (its header is not valid JSON", fromText.Message);
    }

    [Fact]
    public void A_missing_file_is_reported_as_missing()
    {
        var error = Assert.Throws<FileNotFoundException>(() => SafeTensors.Load(PathOf("nowhere.safetensors")));
        Assert.Contains("nowhere.safetensors does not exist", error.Message);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "has overlapping tensors 'a' (bytes 0–8) and 'b' (bytes 4–12)")]
    [InlineData("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}""", 4, "leaves bytes 0–2 of its data section unused, before tensor 'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 6, "has 2 bytes after the 4 bytes of data its header describes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "gives tensor 'a' (F32 [3], 12 bytes) data_offsets [0, 8] that span 8 bytes")]
    [InlineData("""{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}""", 4, "has tensor 'a' of unknown dtype 'F33'")]
    [InlineData("""{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}""", 4, "has tensor 'a' of dtype F8_E4M3, which TorchSharp has no element type for")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4, "gives tensor 'a' a shape with '-1', not a non-negative integer")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}""", 4, "gives tensor 'a' data_offsets [4, 0]; expected [begin, end] with begin ≤ end")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1]}}""", 4, "gives tensor 'a' no data_offsets array")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, "has a header that names 'a' twice")]
    [InlineData("""{"__metadata__":{"x":1}}""", 0, "has '__metadata__' entry 'x' that is a JSON Number; the format allows strings only")]
    [InlineData("""{"__metadata__":{"sha256":"abc"}}""", 0, "has 'sha256' metadata that is not a SHA-256 digest")]
    [InlineData("""[1, 2]""", 0, "is not a safetensors file (its header is a JSON Array, not an object)")]
    public void Inconsistent_headers_are_refused_with_what_is_wrong(string header, int dataBytes, string problem)
    {
        var path = PathOf("bad.safetensors");
        WriteRaw(path, header, new byte[dataBytes]);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("bad.safetensors " + problem, error.Message);
    }

    [Fact]
    public void A_write_interrupted_half_way_leaves_the_old_file_intact_and_no_temporary_behind()
    {
        var path = SaveSample("stable.safetensors");
        var before = File.ReadAllBytes(path);
        using var first = ones(1000);
        using var second = zeros(1000);
        var tensorsWritten = 0;

        void DiskFullAfterTheFirstTensor(string name)
        {
            tensorsWritten++;
            // Mid-write: the new data exist only in a temporary file beside the destination.
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.Equal(2, Directory.GetFiles(folder).Length);
            throw new IOException("No space left on device (simulated)");
        }

        var error = Assert.Throws<IOException>(() =>
            SafeTensors.SaveObserved(path, new[] { ("first", first), ("second", second) }, null, DiskFullAfterTheFirstTensor));

        Assert.Contains("simulated", error.Message);
        Assert.Equal(1, tensorsWritten);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(folder));
        using var stillReadable = SafeTensors.Load(path);
        Assert.Equal(2, stillReadable.Tensors.Count);
    }

    [Fact]
    public void Unsavable_input_is_refused_before_any_file_is_created()
    {
        var path = PathOf("never.safetensors");
        using var plain = ones(2);
        using var meta = empty(new long[] { 2 }, device: META);
        using var complex128 = zeros(new long[] { 2 }, ScalarType.ComplexFloat64);

        Assert.Contains("named 'x'", Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, new[] { ("x", plain), ("x", plain) })).Message);
        Assert.Contains("meta device", Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, new[] { ("m", meta) })).Message);
        Assert.Contains("ComplexFloat64", Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, new[] { ("c", complex128) })).Message);
        Assert.Contains("'sha256' is reserved", Assert.Throws<ArgumentException>(() =>
            SafeTensors.Save(path, new[] { ("x", plain) }, new Dictionary<string, string> { ["sha256"] = "mine" })).Message);
        Assert.Empty(Directory.GetFiles(folder));
    }

    // ---- checkpoints ----

    [Fact]
    public void Weights_round_trip_into_a_fresh_model_with_identical_logits()
    {
        var path = PathOf("weights.safetensors");
        manual_seed(1);
        using var original = new FullMha();
        manual_seed(2);
        using var restored = new FullMha();
        using var tokens = Tokens(seed: 3);
        original.eval();
        restored.eval();
        using var _ = no_grad();
        using var expected = original.forward(tokens);
        using (var beforeLoading = restored.forward(tokens)) Assert.False(SameBits(beforeLoading, expected));

        Checkpoint.SaveWeights(path, original, FullMha.Facts);
        var loaded = Checkpoint.Load(path, restored, FullMha.Facts);

        using var actual = restored.forward(tokens);
        Assert.True(SameBits(actual, expected));
        Assert.Null(loaded.TrainerState);
        Assert.Equal(Checkpoint.Format, loaded.Metadata["format"]);
        Assert.Equal("FullMha", loaded.Metadata["model"]);
        Assert.Equal(FullMha.ParameterCount.ToString(System.Globalization.CultureInfo.InvariantCulture), loaded.Metadata["parameters"]);
        // An ordinary weights file under the model's own (Hugging Face) names.
        Assert.Contains("model.layers.0.self_attn.q_proj.weight", SafeTensors.ReadHeader(path).Tensors.Keys);
    }

    [Fact]
    public void Loading_keeps_the_models_device_and_dtype()
    {
        var path = PathOf("fp32.safetensors");
        manual_seed(1);
        using var single = new FullMha();
        using var wide = FullMha.Create(dtype: ScalarType.Float64);
        Checkpoint.SaveWeights(path, single, FullMha.Facts);

        Checkpoint.Load(path, wide, FullMha.Facts);

        var expected = single.state_dict();
        foreach (var (name, parameter) in wide.state_dict())
        {
            Assert.Equal(ScalarType.Float64, parameter.dtype);
            using var widened = expected[name].to(ScalarType.Float64);
            Assert.True(SameBits(parameter, widened), name);
        }
    }

    [Fact]
    public void A_checkpoint_of_another_model_is_refused_and_the_model_left_alone()
    {
        var path = PathOf("fullmha.safetensors");
        manual_seed(1);
        using var full = new FullMha();
        using var noKey = new NoKeyMha();
        Checkpoint.SaveWeights(path, full, FullMha.Facts);
        var before = Snapshot(noKey);

        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, noKey, NoKeyMha.Facts));

        Assert.Contains("fullmha.safetensors is a checkpoint of model 'FullMha', not of 'NoKeyMha'", error.Message);
        AssertUnchanged(before, noKey);
        // Nor can a checkpoint claim to be another model than it holds.
        Assert.Throws<ArgumentException>(() => Checkpoint.SaveWeights(PathOf("mislabelled.safetensors"), full, NoKeyMha.Facts));
    }

    [Fact]
    public void Missing_unexpected_and_misshapen_tensors_are_listed()
    {
        var path = PathOf("misfit.safetensors");
        manual_seed(1);
        using var model = new FullMha();
        var state = model.state_dict();
        using var narrow = zeros(new long[] { 64, 32 });
        using var stray = zeros(new long[] { 3 });
        var tensors = state.Where(p => p.Key != "model.norm.weight").Select(p => (p.Key, p.Value))
            .Where(p => p.Key != "model.layers.1.self_attn.k_proj.weight")
            .Append(("model.layers.1.self_attn.k_proj.weight", narrow))
            .Append(("model.layers.9.extra", stray));
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = Checkpoint.Format, ["model"] = "FullMha" });
        var before = Snapshot(model);

        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, model, FullMha.Facts));

        Assert.Contains("misfit.safetensors does not fit this FullMha: 1 tensor missing (model.norm.weight); "
            + "1 unexpected tensor (model.layers.9.extra); "
            + "1 shape mismatch (model.layers.1.self_attn.k_proj.weight expected [64, 64], found [64, 32])", error.Message);
        AssertUnchanged(before, model);
    }

    [Fact]
    public void A_plain_safetensors_file_is_not_a_checkpoint()
    {
        var path = SaveSample("plain.safetensors");
        using var model = new FullMha();

        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, model, FullMha.Facts));

        Assert.Contains("plain.safetensors is not an LlmEff checkpoint: its metadata has no 'format' entry", error.Message);
    }

    [Fact]
    public void A_damaged_checkpoint_is_refused_and_the_model_left_alone()
    {
        var path = PathOf("damaged.safetensors");
        manual_seed(1);
        using var saved = new FullMha();
        Checkpoint.SaveWeights(path, saved, FullMha.Facts);
        var bytes = File.ReadAllBytes(path);
        bytes[^100] ^= 0x01;
        File.WriteAllBytes(path, bytes);
        manual_seed(2);
        using var model = new FullMha();
        var before = Snapshot(model);

        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, model, FullMha.Facts));

        Assert.Contains("checksum mismatch", error.Message);
        AssertUnchanged(before, model);
    }

    [Fact]
    public void Asking_for_optimizer_state_from_a_weights_only_file_says_so()
    {
        var path = PathOf("weights-only.safetensors");
        using var model = new FullMha();
        using var optimizer = optim.AdamW(model.parameters());
        Checkpoint.SaveWeights(path, model, FullMha.Facts);

        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, model, FullMha.Facts, optimizer));

        Assert.Contains("weights-only.safetensors holds no optimizer state", error.Message);
    }

    [Fact]
    public void Resuming_from_a_checkpoint_continues_training_bit_for_bit()
    {
        var path = PathOf("resume.safetensors");
        const string progress = """{"step":2,"tokens":64}""";
        using var inputs = Tokens(seed: 10);
        using var targets = Tokens(seed: 11);
        manual_seed(1);
        using var model = new FullMha();
        using var optimizer = optim.AdamW(model.parameters(), lr: 1e-2, weight_decay: 0.1);
        TrainStep(model, optimizer, inputs, targets);
        TrainStep(model, optimizer, inputs, targets);

        Checkpoint.Save(path, model, FullMha.Facts, optimizer, progress);
        manual_seed(2);
        using var resumed = new FullMha();
        using var resumedOptimizer = optim.AdamW(resumed.parameters(), lr: 1e-2, weight_decay: 0.1);
        var loaded = Checkpoint.Load(path, resumed, FullMha.Facts, resumedOptimizer);
        // Control: the same weights with a fresh optimizer, to show the restored moments matter.
        using var weightsOnly = new FullMha();
        using var freshOptimizer = optim.AdamW(weightsOnly.parameters(), lr: 1e-2, weight_decay: 0.1);
        Checkpoint.Load(path, weightsOnly, FullMha.Facts);

        TrainStep(model, optimizer, inputs, targets);
        TrainStep(resumed, resumedOptimizer, inputs, targets);
        TrainStep(weightsOnly, freshOptimizer, inputs, targets);

        Assert.Equal(progress, loaded.TrainerState);
        Assert.Equal("AdamW", loaded.Metadata["optimizer"]);
        var expected = model.state_dict();
        foreach (var (name, parameter) in resumed.state_dict())
            Assert.True(SameBits(parameter, expected[name]), $"{name} differs after the resumed step");
        Assert.Contains(weightsOnly.state_dict(), p => !SameBits(p.Value, expected[p.Key]));
    }

    private static void TrainStep(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, Tensor inputs, Tensor targets)
    {
        using var scope = NewDisposeScope();
        model.train();
        optimizer.zero_grad();
        var logits = model.forward(inputs);
        nn.functional.cross_entropy(logits.view(-1, logits.shape[^1]), targets.view(-1)).backward();
        optimizer.step();
    }

    private static Tensor Tokens(int seed)
    {
        var random = new Random(seed);
        var ids = new long[2 * 16];
        for (var i = 0; i < ids.Length; i++) ids[i] = random.Next(FullMha.Facts.Vocab);
        return tensor(ids, new long[] { 2, 16 });
    }

    // TorchSharp's Tensor.equal is elementwise (it is eq); comparing bytes also tells -0 from 0 and NaN payloads apart.
    private static bool SameBits(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.contiguous().bytes.SequenceEqual(b.contiguous().bytes);

    private static Dictionary<string, byte[]> Snapshot(nn.Module model) =>
        model.state_dict().ToDictionary(p => p.Key, p => p.Value.contiguous().bytes.ToArray());

    private static void AssertUnchanged(Dictionary<string, byte[]> before, nn.Module model)
    {
        foreach (var (name, parameter) in model.state_dict())
            Assert.True(before[name].AsSpan().SequenceEqual(parameter.contiguous().bytes), $"{name} was modified");
    }

    private string SaveSample(string name)
    {
        var path = PathOf(name);
        using var weights = arange(12, ScalarType.Float32).reshape(3, 4);
        using var ids = tensor(new long[] { 5, 6, 7 });
        SafeTensors.Save(path, new[] { ("weights", weights), ("ids", ids) });
        return path;
    }

    private static void WriteRaw(string path, string header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var prefix = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)json.Length);
        File.WriteAllBytes(path, [.. prefix, .. json, .. data]);
    }
}
