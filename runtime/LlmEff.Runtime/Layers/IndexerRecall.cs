using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>One way of computing index scores: what queries and keys are quantized to, whether they are Hadamard-rotated
/// first, and whether the scores are rounded to bf16 before the top-k.</summary>
public sealed record IndexerScoring(IndexerPrecision Precision, bool Hadamard, bool Bf16Scores)
{
    /// <summary>A short label: "FP4 + Hadamard, bf16 scores".</summary>
    public override string ToString() =>
        $"{Precision.ToString().ToUpperInvariant()}{(Hadamard ? " + Hadamard" : "")}{(Bf16Scores ? ", bf16 scores" : "")}";
}

/// <summary>Synthetic indexer inputs: queries [queries, heads, dim], keys [entries, dim], head weights [queries, heads].</summary>
public sealed record IndexerProblem(int Queries, int Entries, int Heads, int Dim, int TopK, int OutlierChannels, double OutlierScale, int Seed);

/// <summary>
/// The top-k recall of low-precision index scoring against fp32: <c>|top-k(low) ∩ top-k(fp32)| / k</c>, averaged over
/// queries (the measure vLLM uses for DeepSeek's indexer). Scores are DeepSeek's <c>Σ_h w_h·ReLU(q_h·k_s)</c>. Inputs are
/// Gaussian, optionally with a few outlier channels that are large in both queries and keys, as real activations have;
/// those are what a shared block scale handles badly and what the Hadamard rotation spreads out.
/// </summary>
public static class IndexerRecall
{
    /// <summary>The scorings DeepSeek's choices are made of, the fp32 reference first.</summary>
    public static IReadOnlyList<IndexerScoring> StandardScorings { get; } = new[]
    {
        new IndexerScoring(IndexerPrecision.Fp32, false, false),
        new IndexerScoring(IndexerPrecision.Fp32, false, true),
        new IndexerScoring(IndexerPrecision.Bf16, false, false),
        new IndexerScoring(IndexerPrecision.Fp8, true, false),
        new IndexerScoring(IndexerPrecision.Fp4, false, false),
        new IndexerScoring(IndexerPrecision.Fp4, true, false),
        new IndexerScoring(IndexerPrecision.Fp4, true, true),
    };

    /// <summary>Recall of each scoring in <paramref name="scorings"/> on the inputs <paramref name="problem"/> describes.</summary>
    public static IReadOnlyList<(IndexerScoring Scoring, double Recall)> Measure(IndexerProblem problem, IEnumerable<IndexerScoring> scorings)
    {
        ArgumentNullException.ThrowIfNull(problem);
        ArgumentNullException.ThrowIfNull(scorings);
        if (problem.TopK <= 0 || problem.TopK > problem.Entries)
            throw new ArgumentOutOfRangeException(nameof(problem), problem.TopK, $"TopK must be between 1 and the {problem.Entries} entries.");
        if (problem.OutlierChannels < 0 || problem.OutlierChannels > problem.Dim)
            throw new ArgumentOutOfRangeException(nameof(problem), problem.OutlierChannels, $"Outlier channels must be between 0 and {problem.Dim}.");
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)problem.Seed);
        var channelScale = ones(problem.Dim);
        if (problem.OutlierChannels > 0)
        {
            var outliers = randperm(problem.Dim, generator: generator).narrow(0, 0, problem.OutlierChannels);
            channelScale.index_fill_(0, outliers, problem.OutlierScale);
        }
        var q = randn(new long[] { problem.Queries, problem.Heads, problem.Dim }, generator: generator) * channelScale;
        var k = randn(new long[] { problem.Entries, problem.Dim }, generator: generator) * channelScale;
        var w = randn(new long[] { problem.Queries, problem.Heads }, generator: generator);
        var reference = TopK(Scores(q, k, w, new IndexerScoring(IndexerPrecision.Fp32, false, false)), problem.TopK);
        var results = new List<(IndexerScoring, double)>();
        foreach (var scoring in scorings)
        {
            using var inner = NewDisposeScope();
            var chosen = TopK(Scores(q, k, w, scoring), problem.TopK);
            // |A ∩ B| per query: a one-hot of each set, multiplied and summed.
            var overlap = (OneHot(chosen, problem.Entries) * OneHot(reference, problem.Entries)).sum(-1).to(ScalarType.Float64);
            results.Add((scoring, (overlap / problem.TopK).mean().item<double>()));
        }
        return results;
    }

    /// <summary>
    /// Recall of each scoring on a model's own index inputs (<see cref="CompressedAttention.IndexerScoreInputs"/>):
    /// queries [batch, time, heads, dim], keys [batch, entries, dim] and head weights [batch, time, heads] of sequences
    /// at positions 0 …, with entries pooling <paramref name="ratio"/> tokens each. Each query chooses among the entries
    /// it may see (complete windows only, as in attention); only queries that see more than <paramref name="topK"/>
    /// entries count, since the others keep every entry whatever the precision. Returns the recalls and how many
    /// queries counted (0: none saw enough entries, and every recall is NaN).
    /// </summary>
    public static (IReadOnlyList<(IndexerScoring Scoring, double Recall)> Recalls, long Queries) MeasureOn(
        Tensor queries, Tensor keys, Tensor headWeights, int ratio, int topK, IEnumerable<IndexerScoring> scorings)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(headWeights);
        ArgumentNullException.ThrowIfNull(scorings);
        if (topK <= 0) throw new ArgumentOutOfRangeException(nameof(topK), topK, "TopK must keep at least one entry.");
        using var scope = NewDisposeScope();
        long batch = queries.shape[0], time = queries.shape[1], entries = keys.shape[1];
        var visible = CompressedAttention.VisibleEntries(time, entries, ratio, queries.device);
        // Queries that see more entries than they keep: the only ones whose choice can differ.
        var counted = visible.sum(-1).gt(topK);
        var rows = counted.sum().item<long>();
        var list = scorings.ToList();
        if (rows == 0) return (list.Select(s => (s, double.NaN)).ToList(), 0);
        var hidden = visible.logical_not();
        var overlaps = new double[list.Count];
        for (long b = 0; b < batch; b++)
        {
            using var inner = NewDisposeScope();
            Tensor Choose(IndexerScoring scoring) => TopK(
                Scores(queries[b][counted], keys[b], headWeights[b][counted], scoring).masked_fill(hidden[counted], double.NegativeInfinity), topK);
            var reference = OneHot(Choose(new IndexerScoring(IndexerPrecision.Fp32, false, false)), (int)entries);
            for (var i = 0; i < list.Count; i++)
                overlaps[i] += (OneHot(Choose(list[i]), (int)entries) * reference).sum().to(ScalarType.Float64).item<double>();
        }
        return (list.Select((scoring, i) => (scoring, overlaps[i] / ((double)rows * batch * topK))).ToList(), rows * batch);
    }

    private static Tensor Scores(Tensor q, Tensor k, Tensor w, IndexerScoring scoring)
    {
        if (scoring.Hadamard)
        {
            q = Hadamard.Rotate(q);
            k = Hadamard.Rotate(k);
        }
        q = IndexerQuantizer.FakeQuantize(q, scoring.Precision);
        k = IndexerQuantizer.FakeQuantize(k, scoring.Precision);
        var scores = (torch.einsum("qhd,sd->qhs", q, k).relu() * w.unsqueeze(-1)).sum(1);
        return scoring.Bf16Scores ? scores.to(ScalarType.BFloat16).to(ScalarType.Float32) : scores;
    }

    private static Tensor TopK(Tensor scores, int k) => scores.topk(k, dim: -1).indexes;

    private static Tensor OneHot(Tensor indices, int entries) =>
        torch.zeros(indices.shape[0], entries).scatter_(-1, indices, torch.ones(indices.shape));
}
