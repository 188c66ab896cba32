using System;
using System.Linq;
using Microsoft.ML.Tokenizers;

namespace LlmEff.Data;

/// <summary>Turns text into token ids and back.</summary>
public interface ITokenizer
{
    /// <summary>Ids lie in 0 .. VocabSize − 1; a model needs at least this vocabulary.</summary>
    int VocabSize { get; }

    /// <summary>Token ids of <paramref name="text"/>.</summary>
    long[] Encode(string text);

    /// <summary>Text of <paramref name="tokens"/>.</summary>
    string Decode(ReadOnlySpan<long> tokens);
}

/// <summary>The tokenizers the command-line program offers by name.</summary>
public static class Tokenizers
{
    /// <summary>Names accepted by <see cref="ByName"/>.</summary>
    public static readonly string[] Names = { "byte", "gpt2" };

    /// <summary>"byte" (UTF-8 bytes, vocabulary 256) or "gpt2" (GPT-2's byte-level BPE, vocabulary 50,257).</summary>
    public static ITokenizer ByName(string name) => name.ToLowerInvariant() switch
    {
        "byte" => new ByteTokenizer(),
        "gpt2" => new Gpt2Tokenizer(),
        _ => throw new ArgumentException($"Unknown tokenizer '{name}'; choose one of: {string.Join(", ", Names)}.", nameof(name)),
    };
}

/// <summary>GPT-2's byte-level BPE (Microsoft.ML.Tokenizers with its bundled vocabulary: no download).</summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    private readonly TiktokenTokenizer tokenizer = TiktokenTokenizer.CreateForModel("gpt2");

    /// <inheritdoc/>
    public int VocabSize => 50257;

    /// <inheritdoc/>
    public long[] Encode(string text) => Array.ConvertAll(tokenizer.EncodeToIds(text).ToArray(), id => (long)id);

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<long> tokens)
    {
        var ids = new int[tokens.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            if ((ulong)tokens[i] >= (ulong)VocabSize) throw new ArgumentOutOfRangeException(nameof(tokens), $"Token {tokens[i]} at index {i} is outside GPT-2's vocabulary.");
            ids[i] = (int)tokens[i];
        }
        return tokenizer.Decode(ids) ?? "";
    }
}
