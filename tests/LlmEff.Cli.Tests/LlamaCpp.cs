using System;
using System.Collections.Generic;
using System.Linq;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LlmEff.Cli.Tests;

/// <summary>
/// llama.cpp (LLamaSharp's CPU build) as the independent engine the GGUF parity tests compare with: it loads a GGUF
/// file, returns the logits of every position of a prompt, and decodes greedily.
/// </summary>
internal sealed class LlamaCpp : IDisposable
{
    private static readonly object Configure = new();
    private static bool configured;
    // What llama.cpp logged since the last load, to say why a file was refused (it logs the reason at any level).
    private static readonly System.Text.StringBuilder problems = new();

    private readonly LLamaWeights weights;
    private readonly LLamaContext context;

    public LlamaCpp(string path, int contextSize)
    {
        lock (Configure)
        {
            // llama.cpp logs every tensor it loads: keep it out of the test output, for the message when a load fails.
            // Settable only before the first load.
            if (!configured) NativeLibraryConfig.All.WithLogCallback((level, message) => { lock (problems) problems.Append(message); });
            configured = true;
            lock (problems) problems.Clear();
        }
        var parameters = new ModelParams(path)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            GpuLayerCount = 0,
            Threads = 2,
            BatchThreads = 2,
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
        catch (LLama.Exceptions.LoadWeightsFailedException e)
        {
            string[] errors;
            lock (problems) errors = problems.ToString().Split('\n').Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).ToArray();
            throw new InvalidOperationException($"llama.cpp refused {path}: {string.Join(" ", errors)}", e);
        }
        context = weights.CreateContext(parameters);
    }

    public int Vocab => weights.Vocab.Count;

    /// <summary>Logits [position][token] for every position of <paramref name="tokens"/>, decoded from an empty cache.</summary>
    public float[][] Logits(IReadOnlyList<int> tokens)
    {
        context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (var i = 0; i < tokens.Count; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, logits: true);
        Decode(batch);
        var logits = new float[tokens.Count][];
        for (var i = 0; i < tokens.Count; i++) logits[i] = context.NativeHandle.GetLogitsIth(i).ToArray();
        return logits;
    }

    /// <summary>The <paramref name="count"/> tokens greedy decoding appends to <paramref name="prompt"/>, one cached step at a time.</summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int count)
    {
        context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Count; i++) batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Count - 1);
        Decode(batch);
        var chosen = new int[count];
        for (var step = 0; step < count; step++)
        {
            chosen[step] = ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
            batch.Clear();
            batch.Add((LLamaToken)chosen[step], prompt.Count + step, LLamaSeqId.Zero, logits: true);
            Decode(batch);
        }
        return chosen;
    }

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
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
