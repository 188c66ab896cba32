using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using LlmEff.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>Settings of one mixture-of-experts router (what <c>[MoE]</c> declares).</summary>
/// <param name="Dim">Width of the tokens routed.</param>
/// <param name="Experts">Routed experts.</param>
/// <param name="Active">Experts chosen per token (top-k).</param>
/// <param name="Scoring">Softmax or sigmoid scores.</param>
/// <param name="Balance">How load is balanced.</param>
/// <param name="NormalizeWeights">Renormalise the chosen scores to sum to one.</param>
/// <param name="RoutedScale">Factor on the chosen weights.</param>
/// <param name="AuxLossWeight">Weight of the auxiliary loss (<see cref="ExpertBalance.AuxLoss"/>).</param>
/// <param name="BiasUpdateRate">Bias step per training step (<see cref="ExpertBalance.AuxLossFree"/>).</param>
/// <param name="SequenceAuxLossWeight">Weight of DeepSeek-V3's sequence-wise balance loss, with any balancing; 0: none.</param>
/// <param name="HashVocab">Hash routing (DeepSeek V4's first layers): the vocabulary of the fixed token→experts table
/// <c>tid2eid</c> [HashVocab, Active] that chooses each token's experts; 0: the scores choose them.</param>
public sealed record RouterOptions(int Dim, int Experts, int Active, RouterScoring Scoring = RouterScoring.Softmax, ExpertBalance Balance = ExpertBalance.AuxLoss,
    bool NormalizeWeights = true, double RoutedScale = 1.0, double AuxLossWeight = 0.01, double BiasUpdateRate = 0.001, double SequenceAuxLossWeight = 0,
    int HashVocab = 0)
{
    /// <summary>Whether a fixed token→experts table chooses the experts (<see cref="HashVocab"/> &gt; 0).</summary>
    public bool HashRouted => HashVocab > 0;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first setting that is out of range.</summary>
    public void Validate()
    {
        if (Dim <= 0) throw new ArgumentOutOfRangeException(nameof(Dim), Dim, "Dim must be positive.");
        if (Experts <= 0) throw new ArgumentOutOfRangeException(nameof(Experts), Experts, "Experts must be positive.");
        if (Active <= 0 || Active > Experts)
            throw new ArgumentOutOfRangeException(nameof(Active), Active, $"Active must lie in 1..Experts ({Experts}).");
        if (!(RoutedScale > 0) || double.IsInfinity(RoutedScale)) throw new ArgumentOutOfRangeException(nameof(RoutedScale), RoutedScale, "RoutedScale must be a positive number.");
        if (!(AuxLossWeight >= 0) || double.IsInfinity(AuxLossWeight)) throw new ArgumentOutOfRangeException(nameof(AuxLossWeight), AuxLossWeight, "AuxLossWeight must be zero or positive.");
        if (!(BiasUpdateRate >= 0) || double.IsInfinity(BiasUpdateRate)) throw new ArgumentOutOfRangeException(nameof(BiasUpdateRate), BiasUpdateRate, "BiasUpdateRate must be zero or positive.");
        if (!(SequenceAuxLossWeight >= 0) || double.IsInfinity(SequenceAuxLossWeight))
            throw new ArgumentOutOfRangeException(nameof(SequenceAuxLossWeight), SequenceAuxLossWeight, "SequenceAuxLossWeight must be zero or positive.");
        if (HashVocab < 0) throw new ArgumentOutOfRangeException(nameof(HashVocab), HashVocab, "HashVocab must be zero (no hash routing) or the vocabulary size.");
    }
}

/// <summary>
/// Where a batch of tokens goes: its <c>tokens × Active</c> (token, expert) slots sorted by expert, so each expert
/// reads one contiguous run of them. Tensors belong to the caller's dispose scope.
/// </summary>
/// <param name="TokenOfSlot">Token row of every slot, grouped by expert [tokens·Active].</param>
/// <param name="WeightOfSlot">Combination weight of every slot, same order [tokens·Active].</param>
/// <param name="TokensPerExpert">Length of each expert's run (on the CPU, so dispatch need not synchronise again).</param>
public readonly record struct ExpertRouting(Tensor TokenOfSlot, Tensor WeightOfSlot, long[] TokensPerExpert);

/// <summary>How many routed slots each expert received, and how unevenly.</summary>
/// <param name="TokensPerExpert">Slots per expert.</param>
public sealed record ExpertLoad(long[] TokensPerExpert)
{
    /// <summary>All slots counted.</summary>
    public long Total => TokensPerExpert.Sum();

    /// <summary>Share of the slots per expert (zeros when nothing was routed).</summary>
    public double[] Fractions => TokensPerExpert.Select(c => Total == 0 ? 0.0 : (double)c / Total).ToArray();

    /// <summary>Busiest expert's load over the mean load: 1 is perfectly even, <c>Experts</c> is everything on one expert.</summary>
    public double Imbalance => Total == 0 ? 1.0 : TokensPerExpert.Max() * (double)TokensPerExpert.Length / Total;

    /// <summary>Standard deviation of the loads over their mean (0 when even).</summary>
    public double CoefficientOfVariation
    {
        get
        {
            if (Total == 0) return 0;
            var mean = (double)Total / TokensPerExpert.Length;
            return Math.Sqrt(TokensPerExpert.Average(c => (c - mean) * (c - mean))) / mean;
        }
    }
}

/// <summary>
/// Mixture-of-experts router: scores every expert for every token (<c>x·Wᵀ</c>, softmax or sigmoid), picks the
/// top <see cref="RouterOptions.Active"/>, and weighs them by their unbiased scores (renormalised, scaled).
/// Balancing: with <see cref="ExpertBalance.AuxLoss"/> each training forward leaves an auxiliary loss for the
/// trainer to add; with <see cref="ExpertBalance.AuxLossFree"/> a per-expert bias (a buffer, saved in checkpoints)
/// shifts selection only, and <see cref="UpdateSelectionBias"/> moves it toward equal load after each step. A
/// sequence-wise balance loss (<see cref="RouterOptions.SequenceAuxLossWeight"/>) can be added to either.
/// Routing runs in fp32 whatever the model's dtype, as DeepSeek-V3 does, so near-ties choose the same experts.
/// <para>
/// Hash routing (<see cref="RouterOptions.HashVocab"/>, DeepSeek V4's first layers): a fixed table <c>tid2eid</c>
/// [Vocab, Active] chooses each token's experts by its id, and the scores only weigh them. As in V4's reference
/// <c>Gate</c> (inference/model.py: a hash gate keeps <c>weight</c>, has <c>tid2eid</c> and no <c>bias</c>; the
/// weights are <c>original_scores.gather(1, tid2eid[input_ids])</c>), a hash router keeps its weight, has no selection
/// bias and leaves no balancing loss: the table decides who is chosen, so a bias or a loss on the scores could not move
/// the load; they would only reshape the weights. Load is still counted, to show how even the table is.
/// </para>
/// </summary>
public sealed class ExpertRouter : nn.Module, IAuxiliaryLoss
{
    private readonly long[] loadSinceReset;
    private readonly long[] loadSinceBiasUpdate;
    private Tensor? auxiliaryLoss;

    /// <summary>Creates the router; the weight is N(0, 0.02²), the selection bias zero.</summary>
    public ExpertRouter(RouterOptions options, Device? device = null, ScalarType? dtype = null) : base(nameof(ExpertRouter))
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        weight = new Parameter(torch.empty(options.Experts, options.Dim, dtype: dtype, device: device));
        register_parameter(nameof(weight), weight);
        Init.Normal(weight);
        if (options.HashRouted)
        {
            // A buffer, not a parameter (V4's is nn.Parameter(requires_grad=False)): saved in checkpoints, never trained.
            tid2eid = HashRouter.NewTable(options.HashVocab, options.Experts, options.Active, device);
            register_buffer(nameof(tid2eid), tid2eid);
        }
        else if (options.Balance == ExpertBalance.AuxLossFree)
        {
            // DeepSeek-V3's name for it, so checkpoints line up; fp32 because the steps are tiny.
            e_score_correction_bias = torch.zeros(options.Experts, dtype: ScalarType.Float32, device: device);
            register_buffer(nameof(e_score_correction_bias), e_score_correction_bias);
        }
        loadSinceReset = new long[options.Experts];
        loadSinceBiasUpdate = new long[options.Experts];
    }

    /// <summary>The router's settings.</summary>
    public RouterOptions Options { get; }

    /// <summary>Router weight [Experts, Dim].</summary>
    public Parameter weight { get; }

    /// <summary>Selection bias [Experts] of auxiliary-loss-free balancing, else null (always null when hash-routed).</summary>
    public Tensor? e_score_correction_bias { get; }

    /// <summary>Hash routing's token→experts table [Vocab, Active] (int64, distinct experts per row), else null.</summary>
    public Tensor? tid2eid { get; }

    /// <summary>Every router inside <paramref name="model"/>, in layer order.</summary>
    public static IReadOnlyList<ExpertRouter> In(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.modules().OfType<ExpertRouter>().ToList();
    }

    /// <summary>Routes <paramref name="tokens"/> [tokens, Dim]: <paramref name="sequenceLength"/> consecutive rows make
    /// one sequence (needed only for the sequence-wise loss; 0: not given). In training mode it also counts load and
    /// leaves the balancing losses (<see cref="ExpertBalance.AuxLoss"/>'s, the sequence-wise one) for
    /// <see cref="TakeAuxiliaryLoss"/>. A hash router needs <paramref name="tokenIds"/>, the ids of the same tokens
    /// (any shape with one id per row), and leaves no loss.</summary>
    public ExpertRouting Route(Tensor tokens, long sequenceLength = 0, Tensor? tokenIds = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.dim() != 2 || tokens.shape[1] != Options.Dim)
            throw new ArgumentException($"Expected tokens [n, {Options.Dim}], got [{string.Join(", ", tokens.shape)}].", nameof(tokens));
        if (tid2eid is not null && (tokenIds is null || tokenIds.numel() != tokens.shape[0]))
            throw new ArgumentException(tokenIds is null
                ? "A hash-routed layer chooses experts by token id: pass the token ids."
                : $"A hash-routed layer needs one token id per row: {tokenIds.numel()} ids for {tokens.shape[0]} rows.", nameof(tokenIds));
        var sequenceLoss = training && Options.SequenceAuxLossWeight > 0 && tid2eid is null;
        if (sequenceLoss && (sequenceLength <= 0 || tokens.shape[0] % sequenceLength != 0))
            throw new ArgumentException($"The sequence-wise balance loss needs the {tokens.shape[0]} tokens to be whole sequences of a given length; got {sequenceLength}.", nameof(sequenceLength));
        var o = Options;
        var logits = nn.functional.linear(tokens, weight).to(ScalarType.Float32);
        var scores = Score(logits, o.Scoring);

        Tensor chosen;
        using (no_grad())
        {
            // The bias decides who is chosen, never how much they count.
            if (tid2eid is not null) chosen = tid2eid.index_select(0, tokenIds!.reshape(-1).to(ScalarType.Int64));
            else
            {
                var selection = e_score_correction_bias is null ? scores : scores + e_score_correction_bias;
                chosen = selection.topk(o.Active, dim: -1).indexes;
            }
        }
        var weights = scores.gather(-1, chosen);
        if (o.NormalizeWeights) weights = weights / weights.sum(-1, keepdim: true);
        if (o.RoutedScale != 1.0) weights = weights * o.RoutedScale;

        var expertOfSlot = chosen.reshape(-1);
        var order = expertOfSlot.argsort();
        var counts = expertOfSlot.bincount(null!, minlength: o.Experts).cpu().data<long>().ToArray();
        var routing = new ExpertRouting(
            TokenOfSlot: order.div(o.Active, RoundingMode.floor),
            WeightOfSlot: weights.reshape(-1).index_select(0, order).to(tokens.dtype),
            TokensPerExpert: counts);

        if (training)
        {
            for (var e = 0; e < counts.Length; e++)
            {
                loadSinceReset[e] += counts[e];
                loadSinceBiasUpdate[e] += counts[e];
            }
            var loss = o.Balance == ExpertBalance.AuxLoss && o.AuxLossWeight > 0 && tid2eid is null ? BatchBalanceLoss(scores, counts) : null;
            if (sequenceLoss)
            {
                var perSequence = SequenceBalanceLoss(scores, chosen, sequenceLength);
                loss = loss is null ? perSequence : loss + perSequence;
            }
            if (loss is not null)
            {
                auxiliaryLoss?.Dispose();
                // Outlives the layer's dispose scope until the trainer takes it.
                auxiliaryLoss = loss.DetachFromDisposeScope();
            }
        }
        return routing;
    }

    /// <summary>Expert scores from router logits: softmax over the experts, or per expert sigmoid or √softplus
    /// (DeepSeek V4's <c>F.softplus(x).sqrt()</c>).</summary>
    public static Tensor Score(Tensor logits, RouterScoring scoring) => scoring switch
    {
        RouterScoring.Softmax => logits.softmax(-1),
        RouterScoring.Sigmoid => logits.sigmoid(),
        RouterScoring.SqrtSoftplus => nn.functional.softplus(logits).sqrt(),
        _ => throw new ArgumentOutOfRangeException(nameof(scoring), scoring, "Router scoring must be Softmax, Sigmoid or SqrtSoftplus."),
    };

    /// <summary>
    /// <c>weight · Experts · Σ_e f_e · P_e</c>: f_e the share of slots expert e received (a constant), P_e its mean
    /// score over the batch (scores renormalised per token for sigmoid and √softplus routers). It is smallest when load is even.
    /// </summary>
    private Tensor BatchBalanceLoss(Tensor scores, long[] counts)
    {
        var total = (double)counts.Sum();
        var fractions = torch.tensor(counts.Select(c => (float)(c / total)).ToArray(), device: scores.device);
        return (fractions * Probabilities(scores).mean(new long[] { 0 })).sum() * (Options.AuxLossWeight * Options.Experts);
    }

    /// <summary>
    /// DeepSeek-V3's complementary sequence-wise balance loss (report §2.1.2, eqs. 17–20), which V4 keeps:
    /// per sequence of T tokens, <c>α · Σ_e f_e · P_e</c> with <c>f_e = Experts / (Active · T) · (tokens of the sequence
    /// sent to e)</c> (a constant) and <c>P_e</c> the mean over the sequence of e's score renormalised per token; averaged
    /// over the sequences. It is α when the sequence spreads evenly. f counts the experts actually chosen, with the
    /// selection bias, since that is the load the loss exists to even out.
    /// </summary>
    private Tensor SequenceBalanceLoss(Tensor scores, Tensor chosen, long sequenceLength)
    {
        var (experts, sequences) = (Options.Experts, scores.shape[0] / sequenceLength);
        var probabilities = Probabilities(scores).view(sequences, sequenceLength, experts).mean(new long[] { 1 });
        Tensor fractions;
        using (no_grad())
        {
            var picked = torch.zeros(scores.shape[0], experts, device: scores.device).scatter_(1, chosen, torch.ones(chosen.shape, device: scores.device));
            fractions = picked.view(sequences, sequenceLength, experts).sum(1) * (experts / (double)(Options.Active * sequenceLength));
        }
        return (fractions * probabilities).sum(-1).mean() * Options.SequenceAuxLossWeight;
    }

    /// <summary>Scores as probabilities over the experts: softmax's as they are, sigmoid's and √softplus's renormalised per token.</summary>
    private Tensor Probabilities(Tensor scores) =>
        Options.Scoring == RouterScoring.Softmax ? scores : scores / scores.sum(-1, keepdim: true);

    /// <summary>The auxiliary loss of the last training forward, once (the caller disposes it); null when there is none.</summary>
    public Tensor? TakeAuxiliaryLoss()
    {
        var loss = auxiliaryLoss;
        auxiliaryLoss = null;
        return loss;
    }

    /// <summary>Load counted over training forwards since the last <see cref="ResetLoad"/>.</summary>
    public ExpertLoad Load => new(loadSinceReset.ToArray());

    /// <summary>Starts a new load count.</summary>
    public void ResetLoad() => Array.Clear(loadSinceReset);

    /// <summary>
    /// Auxiliary-loss-free balancing, after each optimizer step: every expert loaded above the mean has its bias
    /// lowered by <see cref="RouterOptions.BiasUpdateRate"/>, every one below raised (DeepSeek-V3's sign rule).
    /// Does nothing for other balancing modes or when nothing was routed since the last update.
    /// </summary>
    public void UpdateSelectionBias()
    {
        var counts = loadSinceBiasUpdate.ToArray();
        Array.Clear(loadSinceBiasUpdate);
        if (e_score_correction_bias is null || Options.BiasUpdateRate == 0) return;
        var mean = counts.Sum() / (double)counts.Length;
        if (mean == 0) return;
        var steps = counts.Select(c => (float)(Options.BiasUpdateRate * Math.Sign(mean - c))).ToArray();
        using var _ = no_grad();
        using var delta = torch.tensor(steps, device: e_score_correction_bias.device);
        e_score_correction_bias.add_(delta);
    }

    /// <summary>Releases a pending auxiliary loss with the module.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) auxiliaryLoss?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Runs each expert on its own tokens only and adds the weighted results back in place.</summary>
public static class ExpertDispatch
{
    /// <summary>
    /// Output [tokens, Dim]: for every expert that received tokens, gathers them, runs the expert once, and
    /// scatter-adds its weighted output back (<c>index_add_</c>). Experts with no tokens are not called, so cost
    /// follows <c>Active</c>, not <c>Experts</c>, and unchosen experts get no gradient at all.
    /// </summary>
    public static Tensor Combine<TExpert>(Tensor tokens, ExpertRouting routing, IList<TExpert> experts) where TExpert : nn.Module<Tensor, Tensor>
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(experts);
        if (experts.Count != routing.TokensPerExpert.Length)
            throw new ArgumentException($"The routing covers {routing.TokensPerExpert.Length} experts, but {experts.Count} were given.", nameof(experts));
        var output = torch.zeros_like(tokens);
        long offset = 0;
        for (var e = 0; e < experts.Count; e++)
        {
            var count = routing.TokensPerExpert[e];
            if (count == 0) continue;
            var rows = routing.TokenOfSlot.narrow(0, offset, count);
            var weights = routing.WeightOfSlot.narrow(0, offset, count).unsqueeze(1);
            output.index_add_(0, rows, experts[e].forward(tokens.index_select(0, rows)) * weights, 1);
            offset += count;
        }
        return output;
    }
}
