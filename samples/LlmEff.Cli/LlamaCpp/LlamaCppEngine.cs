using System;
using System.Collections.Generic;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LlmEff.Cli.LlamaCpp;

/// <summary>
/// llama.cpp (LLamaSharp's CPU build) running a GGUF file: the engine behind <c>generate --gguf</c> and the decode
/// benchmark, and the independent implementation the GGUF parity tests compare our modules with. It returns the
/// logits of every position of a prompt, decodes one cached token at a time, and tokenizes with the file's vocabulary.
/// </summary>
public sealed class LlamaCppEngine : IDisposable
{
    private static readonly object Configure = new();
    private static bool configured;
    // llama.cpp says why it refuses a file only in its log; the last warnings and errors are kept to say it in ours.
    private static readonly Queue<string> RecentProblems = new();

    private readonly LLamaWeights weights;
    private readonly LLamaContext context = null!; // set once the weights have sized it, before any other use
    private int position;

    /// <summary>Loads <paramref name="path"/> with room for <paramref name="contextSize"/> tokens, on
    /// <paramref name="threads"/> CPU threads.</summary>
    public LlamaCppEngine(string path, int contextSize, int threads = 2) : this(path, _ => contextSize, threads)
    {
    }

    /// <summary>Loads <paramref name="path"/> once and then sizes the context: <paramref name="contextSize"/> may read
    /// what the weights alone tell (<see cref="Tokenize"/>, <see cref="Vocab"/>, <see cref="TrainedContext"/>,
    /// <see cref="HasTokenizer"/>), so a prompt is measured without loading the file twice.</summary>
    public LlamaCppEngine(string path, Func<LlamaCppEngine, int> contextSize, int threads = 2)
    {
        ArgumentNullException.ThrowIfNull(contextSize);
        lock (Configure)
        {
            // llama.cpp logs every tensor it loads; keep the output to what we print. Settable only before the first load.
            if (!configured) NativeLibraryConfig.All.WithLogCallback(Remember);
            configured = true;
            RecentProblems.Clear();
        }
        var parameters = new ModelParams(path)
        {
            GpuLayerCount = 0,
            Threads = threads,
            BatchThreads = threads,
            // The cache defaults to f16, which would round keys and values that our f32 model keeps exact.
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            // llama.cpp's CPU flash attention rounds queries to f16 (measured: logits off by 8.5e-3 with it, 2e-5 without).
            FlashAttention = false,
        };
        try
        {
            weights = LLamaWeights.LoadFromFile(parameters);
        }
        catch (LLama.Exceptions.LoadWeightsFailedException)
        {
            string said;
            lock (Configure) said = string.Join(" ", RecentProblems);
            throw new System.IO.InvalidDataException($"llama.cpp could not load {path}: {(said.Length > 0 ? said : "it gave no reason")}");
        }
        try
        {
            var size = contextSize(this);
            if (size < 1) throw new ArgumentOutOfRangeException(nameof(contextSize), size, "The context must hold at least one token.");
            parameters.ContextSize = parameters.BatchSize = parameters.UBatchSize = (uint)size;
            context = weights.CreateContext(parameters);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    private static void Remember(LLamaLogLevel level, string message)
    {
        if (level is not (LLamaLogLevel.Error or LLamaLogLevel.Warning) || string.IsNullOrWhiteSpace(message)) return;
        lock (Configure)
        {
            RecentProblems.Enqueue(message.Trim());
            while (RecentProblems.Count > 4) RecentProblems.Dequeue();
        }
    }

    /// <summary>Tokens in the file's vocabulary (its <c>vocab_size</c> when it has none).</summary>
    public int Vocab => weights.Vocab.Count;

    /// <summary>The context the model was trained for, from the file.</summary>
    public int TrainedContext => weights.ContextSize;

    /// <summary>Whether the file carries a tokenizer (otherwise it is <c>no_vocab</c> and takes ids).</summary>
    public bool HasTokenizer => weights.Vocab.Type != LLamaVocabType.None;

    /// <summary>Token ids of <paramref name="text"/> by the file's own tokenizer, with no beginning-of-sequence token.</summary>
    public int[] Tokenize(string text)
    {
        if (!HasTokenizer) throw new InvalidOperationException("The GGUF file has no tokenizer ('no_vocab'): give token ids.");
        var tokens = weights.Tokenize(text, add_bos: false, special: false, Encoding.UTF8);
        return Array.ConvertAll(tokens, t => (int)t);
    }

    /// <summary>Text of <paramref name="tokens"/> by the file's own tokenizer.</summary>
    public string Detokenize(IEnumerable<int> tokens)
    {
        var decoder = new StreamingTokenDecoder(context);
        foreach (var token in tokens) decoder.Add((LLamaToken)token);
        return decoder.Read();
    }

    /// <summary>Logits [position][token] for every position of <paramref name="tokens"/>, decoded from an empty cache.</summary>
    public float[][] Logits(IReadOnlyList<int> tokens)
    {
        Prefill(tokens, everyPosition: true);
        var logits = new float[tokens.Count][];
        for (var i = 0; i < tokens.Count; i++) logits[i] = context.NativeHandle.GetLogitsIth(i).ToArray();
        return logits;
    }

    /// <summary>Empties the cache and runs <paramref name="prompt"/> through it; returns the last position's logits.</summary>
    public float[] Start(IReadOnlyList<int> prompt)
    {
        if (prompt.Count == 0) throw new ArgumentException("The prompt has no tokens.", nameof(prompt));
        Prefill(prompt, everyPosition: false);
        return context.NativeHandle.GetLogitsIth(prompt.Count - 1).ToArray();
    }

    /// <summary>Appends <paramref name="token"/> to the cache (one decode step) and returns the next token's logits.</summary>
    public float[] Next(int token)
    {
        var batch = new LLamaBatch();
        batch.Add((LLamaToken)token, position, LLamaSeqId.Zero, logits: true);
        Decode(batch);
        position++;
        return context.NativeHandle.GetLogitsIth(0).ToArray();
    }

    /// <summary>The <paramref name="count"/> tokens greedy decoding appends to <paramref name="prompt"/>, one cached step at a time.</summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int count)
    {
        var chosen = new int[count];
        var logits = Start(prompt);
        for (var step = 0; step < count; step++)
        {
            chosen[step] = ArgMax(logits);
            if (step + 1 < count) logits = Next(chosen[step]);
        }
        return chosen;
    }

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    private void Prefill(IReadOnlyList<int> tokens, bool everyPosition)
    {
        context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (var i = 0; i < tokens.Count; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, logits: everyPosition || i == tokens.Count - 1);
        Decode(batch);
        position = tokens.Count;
    }

    private void Decode(LLamaBatch batch)
    {
        var result = context.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp could not decode the batch: {result}.");
    }

    public void Dispose()
    {
        context.Dispose();
        weights.Dispose();
    }
}
