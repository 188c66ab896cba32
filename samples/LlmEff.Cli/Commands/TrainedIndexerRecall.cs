using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using LlmEff.Cli.Reporting;
using LlmEff.Data;
using LlmEff.Layers;
using LlmEff.Quantization;
using LlmEff.Training;
using static TorchSharp.torch;

namespace LlmEff.Cli.Commands;

/// <summary>
/// <c>indexer-recall --model</c>: the recall of low-precision index scoring on a declared model's own index queries and
/// keys, in every compressed sparse attention layer, on held-out text: once as the model starts and once after training
/// it on the embedded data as <c>ablate</c> does. Each seed is its own model (its start, batches and held-out text), so
/// the intervals cover how much the result depends on the run, and both states of a seed are paired.
/// </summary>
internal static class TrainedIndexerRecall
{
    private static readonly IndexerScoring Reference = new(IndexerPrecision.Fp32, false, false);

    public static RecallResults Measure(DeclaredModelType declared, IReadOnlyList<int> seeds, int steps, int batch)
    {
        var name = declared.Facts.Name;
        var tokens = declared.Facts.Context;
        var inputs = new[] { $"{name} untrained", string.Create(CultureInfo.InvariantCulture, $"{name} after {steps} steps") };
        List<IndexerScoring>? scorings = null;
        var data = new TextWithRecall(TokenDataset.EmbeddedDefault(), new AssociativeRecall(tokens, 4), recallShare: 0.5);
        var runs = new List<RecallRun>();
        int layers = 0, topK = 0;
        long queries = 0;
        foreach (var seed in seeds)
        {
            Seeding.Seed(seed);
            using var model = declared.Create();
            var sparse = model.modules().OfType<CompressedAttention>().Where(l => l.Indexer is not null).ToList();
            if (sparse.Count == 0)
                throw new ArgumentException($"--model {name} has no compressed sparse attention layer: nothing selects entries, so there is no recall to measure.");
            layers = sparse.Count;
            topK = sparse[0].Options.TopK;
            // A precision whose scale blocks do not divide the model's index width cannot quantize it (FP8's are 128 wide).
            var indexDim = sparse[0].Indexer!.IndexDim;
            scorings ??= IndexerRecall.StandardScorings.Where(s => s != Reference && indexDim % IndexerQuantizer.BlockSize(s.Precision) == 0).ToList();
            var options = new TrainingOptions { Steps = steps, BatchSize = batch, SequenceLength = tokens, Seed = seed, WarmupSteps = Math.Min(20, steps / 10) };
            options.Validate();
            for (var state = 0; state < inputs.Length; state++)
            {
                if (state == 1)
                {
                    using var run = new TrainingRun(model, data, options);
                    var result = RunView.Track($"{name} seed {seed}", steps, 0, onStep => run.Complete(onStep));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name} seed {seed}: trained {steps} steps, held-out loss {result.HeldOutLoss:F4}"));
                }
                var (recalls, counted) = OnHeldOutText(model, sparse, data, batch, tokens, seed, scorings);
                queries = counted;
                runs.AddRange(recalls.Select(r => new RecallRun(inputs[state], r.Scoring.ToString(), seed, r.Recall)));
            }
        }
        return new RecallResults(IndexerRecallCommand.Now(), inputs, seeds, runs)
        {
            Model = new ModelRecallProbe(name, layers, topK, batch, tokens, steps, queries),
        };
    }

    /// <summary>Every scoring's recall over the given layers on one held-out batch (the same batch for a seed before and
    /// after training), weighted by the queries each layer counts.</summary>
    private static (List<(IndexerScoring Scoring, double Recall)> Recalls, long Queries) OnHeldOutText(nn.Module<Tensor, Tensor> model,
        IReadOnlyList<CompressedAttention> layers, TextWithRecall data, int batch, int tokens, int seed, IReadOnlyList<IndexerScoring> scorings)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        // Each layer's input (the normalised hidden states) is copied on its way in, out of every dispose scope (the
        // model's forward disposes its own; these are disposed at the end); the layer runs unchanged.
        var seen = new Dictionary<CompressedAttention, Tensor>();
        var observations = layers.Select(layer => layer.ObserveInputs(x => seen[layer] = x.detach().clone().DetachFromDisposeScope())).ToList();
        var wasTraining = model.training;
        try
        {
            model.eval();
            var (text, _) = data.Text.SampleHeldOut(new Random(seed), batch, tokens);
            model.forward(text);
        }
        finally
        {
            foreach (var observation in observations) observation.Dispose();
            model.train(wasTraining);
        }
        var sums = new double[scorings.Count];
        long counted = 0;
        try
        {
            foreach (var layer in layers)
            {
                var (queries, keys, weights) = layer.IndexerScoreInputs(seen[layer]);
                var (recalls, rows) = IndexerRecall.MeasureOn(queries, keys, weights, layer.Options.Ratio, layer.Options.TopK, scorings);
                if (rows == 0) continue;
                for (var i = 0; i < scorings.Count; i++) sums[i] += recalls[i].Recall * rows;
                counted += rows;
            }
        }
        finally
        {
            foreach (var input in seen.Values) input.Dispose();
        }
        if (counted == 0)
            throw new ArgumentException($"No query of a {tokens}-token sequence sees more than top-k compressed entries in any layer: raise the context or lower TopK, or every precision keeps the same entries.");
        return (scorings.Select((s, i) => (s, sums[i] / counted)).ToList(), counted);
    }
}
