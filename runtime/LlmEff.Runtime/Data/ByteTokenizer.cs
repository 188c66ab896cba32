using System;
using System.Text;

namespace LlmEff.Data;

/// <summary>Byte-level tokenizer: every UTF-8 byte is one token, so any text round-trips and the vocabulary is 256.</summary>
public sealed class ByteTokenizer : ITokenizer
{
    /// <summary>Tokens this tokenizer can produce.</summary>
    public const int Vocab = 256;

    /// <inheritdoc/>
    public int VocabSize => Vocab;

    /// <summary>UTF-8 bytes of <paramref name="text"/> as token ids.</summary>
    public long[] Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var tokens = new long[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) tokens[i] = bytes[i];
        return tokens;
    }

    /// <summary>Text of token ids; ids outside 0..255 are a caller error.</summary>
    public string Decode(ReadOnlySpan<long> tokens)
    {
        var bytes = new byte[tokens.Length];
        for (var i = 0; i < tokens.Length; i++)
        {
            if ((ulong)tokens[i] >= Vocab) throw new ArgumentOutOfRangeException(nameof(tokens), $"Token {tokens[i]} at index {i} is not a byte.");
            bytes[i] = (byte)tokens[i];
        }
        return Encoding.UTF8.GetString(bytes);
    }
}
