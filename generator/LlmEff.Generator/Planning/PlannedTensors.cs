using System.Collections.Generic;
using System.Linq;
using LlmEff.Generator.Model;

namespace LlmEff.Generator.Planning;

/// <summary>One tensor of a model's checkpoint as the plan lays it out.</summary>
/// <param name="Name">Its full state-dict name ("model.layers.0.self_attn.q_proj.weight").</param>
/// <param name="Shape">Its shape, outermost dimension first.</param>
/// <param name="Trainable">A parameter (true) or a persistent buffer (false).</param>
internal sealed record PlannedTensor(string Name, long[] Shape, bool Trainable)
{
    public long Elements => checked(Shape.Aggregate(1L, (product, size) => product * size));
}

/// <summary>
/// Every tensor of a model's state dict, named and shaped as the plan says: what each back end must produce and
/// what a checkpoint holds. Lists one entry per tensor, so it is for checking and exporting models, not for sizing
/// very large declarations (<see cref="Sizing.ModelSizing"/> multiplies instead).
/// </summary>
internal static class PlannedTensors
{
    /// <summary>The token input's bias (<see cref="LayoutPlan.InputBias"/>), a parameter of the stack.</summary>
    public static string InputBiasName(LayoutPlan plan) => plan.Names.TokenEmbedding + "_bias";

    public static IEnumerable<PlannedTensor> Of(LayoutPlan plan)
    {
        var names = plan.Names;
        var stack = names.Stack + ".";
        // The stack's own parameter first: PyTorch's state_dict lists a module's parameters before its children's.
        if (plan.InputBias) yield return new(stack + InputBiasName(plan), new long[] { plan.Dim }, true);
        if (plan.Streams is { } streams)
            foreach (var (name, shape) in streams.Tensors(StreamsPlan.HeadMap)) yield return new(stack + name, shape, true);
        yield return new(stack + names.TokenEmbedding + ".weight", new long[] { plan.Vocab, plan.Dim }, true);
        if (plan.LearnedPositions) yield return new(stack + names.PositionEmbedding + ".weight", new long[] { plan.Context, plan.Dim }, true);
        foreach (var layer in plan.Layers)
        {
            var prefix = $"{stack}{names.Layers}.{layer.Index}.";
            // The layer's own parameters (the residual streams' maps) come before its children's, as in PyTorch's state_dict.
            if (plan.Streams is { } layerStreams)
                foreach (var (name, shape) in layerStreams.Tensors(StreamsPlan.AttentionMap).Concat(layerStreams.Tensors(StreamsPlan.FeedForwardMap)))
                    yield return new(prefix + name, shape, true);
            foreach (var tensor in Norm(prefix, plan.MixerNorm)) yield return tensor;
            switch (layer.Mixer)
            {
                case TokenMixer.Attention:
                    foreach (var tensor in Attention(prefix + names.Attention + ".", plan, plan.Attention!, layer.OwnsKeysAndValues)) yield return tensor;
                    break;
                case TokenMixer.LatentAttention:
                    var latent = plan.Latent!;
                    var attention = prefix + names.Attention + ".";
                    if (latent.QueryDown is { } queryDown)
                        foreach (var tensor in Linear(attention, queryDown).Concat(Norm(attention, latent.QueryNorm!))) yield return tensor;
                    foreach (var tensor in Linear(attention, latent.QueryUp)) yield return tensor;
                    foreach (var tensor in Linear(attention, latent.LatentDown).Concat(Norm(attention, latent.LatentNorm))) yield return tensor;
                    foreach (var tensor in Linear(attention, latent.LatentUp).Concat(Linear(attention, latent.Output))) yield return tensor;
                    foreach (var tensor in Indexer(attention, plan)) yield return tensor;
                    break;
                case TokenMixer.CompressedAttention:
                    foreach (var tensor in Compressed(prefix + names.Attention + ".", plan, layer.Compressed!)) yield return tensor;
                    break;
                case TokenMixer.ShortConvolution:
                    var conv = plan.Conv!;
                    var block = prefix + "conv.";
                    foreach (var tensor in Linear(block, conv.InProjection)) yield return tensor;
                    yield return new(block + "conv.weight", new long[] { conv.Channels, 1, conv.Kernel }, true);
                    if (conv.Bias) yield return new(block + "conv.bias", new[] { conv.Channels }, true);
                    foreach (var tensor in Linear(block, conv.OutProjection)) yield return tensor;
                    break;
            }
            foreach (var tensor in Norm(prefix, plan.FeedForwardNorm)) yield return tensor;
            var mlp = prefix + names.Mlp + ".";
            if (layer.FeedForward == FeedForwardKind.Dense)
            {
                foreach (var tensor in plan.Dense!.Linears.SelectMany(l => Linear(mlp, l))) yield return tensor;
                continue;
            }
            var mixture = plan.Mixture!;
            yield return new(mlp + "gate.weight", new long[] { mixture.Settings.Experts, plan.Dim }, true);
            if (mixture.IsHashRouted(layer.Index)) yield return new(mlp + "gate." + MixturePlan.TokenTableName, new long[] { plan.Vocab, mixture.Settings.Active }, false);
            if (mixture.SelectionBiasIn(layer.Index)) yield return new(mlp + "gate.e_score_correction_bias", new long[] { mixture.Settings.Experts }, false);
            for (var e = 0; e < mixture.Settings.Experts; e++)
                foreach (var tensor in mixture.Expert.Linears.SelectMany(l => Linear($"{mlp}experts.{e}.", l))) yield return tensor;
            if (mixture.Shared is { } shared)
                foreach (var tensor in shared.Linears.SelectMany(l => Linear(mlp + "shared_experts.", l))) yield return tensor;
        }
        foreach (var tensor in Norm(stack, plan.FinalNorm)) yield return tensor;
        if (plan.OutputHead is { } head)
            foreach (var tensor in Linear("", head)) yield return tensor;
    }

    private static IEnumerable<PlannedTensor> Attention(string prefix, LayoutPlan plan, AttentionPlan a, bool ownsKeysAndValues)
    {
        foreach (var linear in ownsKeysAndValues ? a.Projections : a.QueryOnlyProjections)
            foreach (var tensor in Linear(prefix, linear)) yield return tensor;
        foreach (var tensor in Linear(prefix, a.Output)) yield return tensor;
        if (a.ScoreMixer)
        {
            yield return new(prefix + "score_mixer.weight", new long[] { 1, AttentionPlan.ScoreMixerChannels, 1, 1 }, true);
            yield return new(prefix + "score_mixer.bias", new long[] { 1 }, true);
        }
        if (a.QueryNorm is { } queryNorm) foreach (var tensor in Norm(prefix, queryNorm)) yield return tensor;
        if (a.KeyNorm is { } keyNorm) foreach (var tensor in Norm(prefix, keyNorm)) yield return tensor;
        foreach (var tensor in Indexer(prefix, plan)) yield return tensor;
    }

    /// <summary>The runtime's CompressedAttention in PyTorch's state_dict order: a module's own parameters (the sink, the
    /// position bias ape) before its children's, children in the order the block creates them.</summary>
    private static IEnumerable<PlannedTensor> Compressed(string prefix, LayoutPlan plan, CompressedLayer layer)
    {
        var c = plan.Compressed!;
        yield return new(prefix + CompressedPlan.SinkName, new long[] { c.Heads }, true);
        var parts = Linear(prefix, c.QueryDown).Concat(Norm(prefix, c.QueryNorm)).Concat(Linear(prefix, c.QueryUp))
            .Concat(Linear(prefix, c.KeyValue)).Concat(Norm(prefix, c.KeyValueNorm))
            .Concat(Linear(prefix, c.OutputDown)).Concat(Linear(prefix, c.OutputUp));
        foreach (var tensor in parts) yield return tensor;
        if (c.Compressor(layer) is { } compressor)
            foreach (var tensor in Compressor(prefix + CompressedPlan.CompressorName + ".", plan.Dim, compressor)) yield return tensor;
        if (c.IndexerCompressor(layer) is { } indexerCompressor)
        {
            var indexer = prefix + CompressedPlan.IndexerName + ".";
            foreach (var tensor in Linear(indexer, c.IndexerQuery).Concat(Linear(indexer, c.IndexerWeights))) yield return tensor;
            foreach (var tensor in Compressor(indexer + CompressedPlan.CompressorName + ".", plan.Dim, indexerCompressor)) yield return tensor;
        }
    }

    private static IEnumerable<PlannedTensor> Compressor(string prefix, long dim, CompressorPlan c)
    {
        yield return new(prefix + CompressorPlan.PositionBias, new long[] { c.Ratio, c.Channels }, true);
        yield return new(prefix + CompressorPlan.Values + ".weight", new long[] { c.Channels, dim }, true);
        yield return new(prefix + CompressorPlan.Gates + ".weight", new long[] { c.Channels, dim }, true);
        yield return new(prefix + CompressorPlan.Norm + ".weight", new long[] { c.Width }, true);
    }

    private static IEnumerable<PlannedTensor> Indexer(string prefix, LayoutPlan plan) =>
        plan.Indexer is { } indexer ? indexer.Linears.SelectMany(l => Linear(prefix + "indexer.", l)) : Enumerable.Empty<PlannedTensor>();

    private static IEnumerable<PlannedTensor> Linear(string prefix, LinearPlan linear)
    {
        yield return new(prefix + linear.Name + ".weight", linear.Transposed ? new[] { linear.Inputs, linear.Outputs } : new[] { linear.Outputs, linear.Inputs }, true);
        if (linear.Bias) yield return new(prefix + linear.Name + ".bias", new[] { linear.Outputs }, true);
    }

    private static IEnumerable<PlannedTensor> Norm(string prefix, NormPlan norm)
    {
        yield return new(prefix + norm.Name + ".weight", new[] { norm.Width }, true);
        if (norm.Kind == NormKind.LayerNorm) yield return new(prefix + norm.Name + ".bias", new[] { norm.Width }, true);
    }
}
