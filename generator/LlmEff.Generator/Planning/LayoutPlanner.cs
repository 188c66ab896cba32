using System.Collections.Generic;
using System.Linq;
using LlmEff.Generator.Model;

namespace LlmEff.Generator.Planning;

/// <summary>
/// Decides a model's module layout from its validated spec: which blocks each layer has, every linear layer's name,
/// shape, bias, quantization and initialisation, which tensors alias, what layers take as inputs and what decoding
/// caches. The only place these decisions are made; back ends and sizing render or add up the plan.
/// </summary>
internal static class LayoutPlanner
{
    public static LayoutPlan Plan(ModelSpec spec)
    {
        var names = spec.Naming == NamingKind.Gpt2 ? NamingScheme.Gpt2 : NamingScheme.Llama;
        var quant = spec.Quant;
        bool Quantizes(QuantTargetKind target) => quant?.Targets(target) == true;

        var attention = spec.Attention.Latent is null ? PlanAttention(spec, names, Quantizes(QuantTargetKind.Attention)) : null;
        var latent = spec.Attention.Latent is { } l ? PlanLatent(spec, l) : null;
        var indexer = spec.Sparse is { } s ? PlanIndexer(spec, s) : null;
        var conv = spec.Hybrid is { } h ? PlanConv(spec, h) : null;

        // Dense feed-forward in layers before the first routed one (all layers without [MoE]); with [MoE] the shared
        // experts count as MLP for [Quant] (QuantTarget.Mlp), the routed experts as Experts.
        var moe = spec.Moe;
        var dense = moe is null || moe.FirstLayer > 0
            ? PlanFeedForward(spec, names, "MLP", "Hidden", spec.Mlp.Hidden, QuantTargetKind.Mlp, Quantizes(QuantTargetKind.Mlp))
            : null;
        MixturePlan? mixture = null;
        if (moe is not null)
        {
            var expert = PlanFeedForward(spec, names, "expert", "ExpertHidden", moe.ExpertHidden, QuantTargetKind.Experts, Quantizes(QuantTargetKind.Experts));
            var shared = moe.Shared > 0
                ? PlanFeedForward(spec, names, "shared-expert", "Shared × ExpertHidden", moe.SharedHidden, QuantTargetKind.Mlp, Quantizes(QuantTargetKind.Mlp))
                : null;
            mixture = new MixturePlan(moe, expert, shared);
        }
        var feedForwards = new[] { dense, mixture?.Expert, mixture?.Shared }.Where(f => f is not null).Select(f => f!.Quantized).Distinct().ToList();
        var feedForwardQuantization = feedForwards.Count > 1 ? FeedForwardQuantization.PerInstance
            : feedForwards.SingleOrDefault() ? FeedForwardQuantization.All : FeedForwardQuantization.None;

        // Latent attention rotates its own decoupled key; the stack's tables serve standard attention.
        var stackRotary = spec.Positions == PositionKind.Rope && attention is not null
            ? new RotaryPlan(spec.Attention.HeadDim, spec.Context, spec.RopeTheta)
            : null;
        var inputs = (stackRotary is not null ? LayerInputs.RotaryAngles : LayerInputs.None)
            | (attention is { SharesKeyValues: true } ? LayerInputs.KeyValueShare : LayerInputs.None);

        var layers = Enumerable.Range(0, spec.Layers).Select(i => PlanLayer(spec, i, attention, latent, indexer, conv)).ToEquatableArray();

        // PyTorch's defaults give the head nn.Linear's bias and uniform start; GPT-2's scheme has neither.
        var pytorch = spec.Init == InitKind.PyTorchDefault;
        LinearPlan? head = spec.TiedEmbeddings ? null
            : new LinearPlan("lm_head", "output head", "Dim", spec.Dim, spec.Vocab, Bias: pytorch, Transposed: false, QuantTargetKind.AllLinear, Quantized: false,
                pytorch ? WeightInit.PyTorchUniform : WeightInit.Normal);

        return new LayoutPlan(
            names, spec.Vocab, spec.Dim, spec.Context, spec.Causal, LinearBias(spec),
            LearnedPositions: spec.Positions == PositionKind.Learned,
            stackRotary,
            inputs,
            MixerNorm: Norm(spec, names.AttentionNorm),
            FeedForwardNorm: Norm(spec, names.MlpNorm),
            FinalNorm: Norm(spec, names.FinalNorm),
            attention, latent, indexer, conv, dense, mixture, feedForwardQuantization, head, layers,
            // The positional score term mixes whole score maps, so it has no cached path.
            Decodes: spec.Causal && !spec.Attention.BreakSymmetry,
            ExposesScores: attention is not null,
            spec.Checkpointing,
            quant,
            spec.Init);
    }

    /// <summary>Whether the blocks' linear layers carry biases: declared, or implied by PyTorch's defaults.</summary>
    private static bool LinearBias(ModelSpec spec) => spec.Bias || spec.Init == InitKind.PyTorchDefault;

    private static NormPlan Norm(ModelSpec spec, string name) => new(name, spec.Norm, spec.Dim, spec.NormEps);

    private static LinearPlan Linear(ModelSpec spec, NamingScheme names, string name, string role, string inputName, long inputs, long outputs,
        QuantTargetKind target, bool quantized, WeightInit init) =>
        spec.Init == InitKind.PyTorchDefault
            // nn.Linear's defaults: a bias, and weight and bias U(±1/√fan_in) whatever the layer's role.
            ? new(name, role, inputName, inputs, outputs, Bias: true, names.FusedProjections, target, quantized, WeightInit.PyTorchUniform)
            : new(name, role, inputName, inputs, outputs, spec.Bias, names.FusedProjections, target, quantized, init);

    private static AttentionPlan PlanAttention(ModelSpec spec, NamingScheme names, bool quantized)
    {
        var a = spec.Attention;
        var parts = new List<ProjectionPart>();
        if (a.HasQueryProjection) parts.Add(new("q", a.QueryWidth, QueryHeads: true));
        if (a.HasKeyProjection) parts.Add(new("k", a.KvWidth, QueryHeads: false));
        parts.Add(new(a.Projections == ProjectionKind.Shared ? "qkv" : "v", a.KvWidth, QueryHeads: false));

        const QuantTargetKind target = QuantTargetKind.Attention;
        List<LinearPlan> own, queryOnly = new();
        if (names.FusedProjections)
        {
            own = new() { Linear(spec, names, "c_attn", "fused attention projection (c_attn)", "Dim", spec.Dim, parts.Sum(p => p.Width), target, quantized, WeightInit.Normal) };
            if (a.ShareKvEvery > 1)
                queryOnly.Add(Linear(spec, names, "c_attn", "fused query projection (c_attn)", "Dim", spec.Dim, parts.Where(p => p.QueryHeads).Sum(p => p.Width), target, quantized, WeightInit.Normal));
        }
        else
        {
            own = parts.Select(p => Linear(spec, names, p.Name + "_proj", PartRole(p.Name), "Dim", spec.Dim, p.Width, target, quantized, WeightInit.Normal)).ToList();
            if (a.ShareKvEvery > 1) queryOnly.AddRange(own.Where((_, i) => parts[i].QueryHeads));
        }
        var output = Linear(spec, names, names.OutputProjection, "attention output projection", "Heads × HeadDim", a.QueryWidth, spec.Dim, target, quantized, WeightInit.ResidualOutput);

        var aliasing = a.Projections switch
        {
            ProjectionKind.NoKey => QueryKeyAliasing.KeysAreValues,
            ProjectionKind.NoQuery => QueryKeyAliasing.QueriesAreKeys,
            ProjectionKind.Shared => QueryKeyAliasing.OneProjection,
            _ => QueryKeyAliasing.None,
        };
        return new AttentionPlan(
            a.Projections, a.Heads, a.KvHeads, a.HeadDim, parts.ToEquatableArray(), own.ToEquatableArray(), queryOnly.ToEquatableArray(), output, aliasing,
            RepeatedQueries: !a.HasQueryProjection && a.KvHeads != a.Heads,
            QueryNorm: a.QkNorm && a.HasQueryProjection ? new NormPlan("q_layernorm", NormKind.RmsNorm, a.HeadDim, spec.NormEps) : null,
            KeyNorm: a.QkNorm ? new NormPlan("k_layernorm", NormKind.RmsNorm, a.HeadDim, spec.NormEps) : null,
            ScoreMixer: a.BreakSymmetry,
            a.ShareKvEvery,
            quantized);
    }

    private static string PartRole(string part) => part switch
    {
        "q" => "query projection",
        "k" => "key projection",
        "qkv" => "shared QKV projection",
        _ => "value projection",
    };

    /// <summary>LatentAttention builds these itself (no biases: the generated module does not pass DeepSeek's
    /// attention_bias); listed so sizing and checks see every tensor.</summary>
    private static LatentPlan PlanLatent(ModelSpec spec, LatentSpec l)
    {
        var a = spec.Attention;
        long dim = spec.Dim, heads = a.Heads, headWidth = a.HeadDim + l.RopeDim;
        const QuantTargetKind target = QuantTargetKind.Attention;
        LinearPlan Make(string name, string role, string inputName, long inputs, long outputs, WeightInit init = WeightInit.Normal) =>
            new(name, role, inputName, inputs, outputs, Bias: false, Transposed: false, target, Quantized: false, init);
        var queryDown = l.QRank > 0 ? Make("q_a_proj", "query down projection (q_a_proj)", "Dim", dim, l.QRank) : null;
        var queryNorm = l.QRank > 0 ? new NormPlan("q_a_layernorm", NormKind.RmsNorm, l.QRank, spec.NormEps) : null;
        var queryUp = l.QRank > 0
            ? Make("q_b_proj", "query up projection (q_b_proj)", "QRank", l.QRank, heads * headWidth)
            : Make("q_proj", "query projection", "Dim", dim, heads * headWidth);
        return new LatentPlan(a.Heads, a.HeadDim, l.KvRank, l.RopeDim, l.QRank, spec.RopeTheta,
            queryDown, queryNorm, queryUp,
            LatentDown: Make("kv_a_proj_with_mqa", "latent key/value projection (kv_a_proj_with_mqa)", "Dim", dim, (long)l.KvRank + l.RopeDim),
            LatentNorm: new NormPlan("kv_a_layernorm", NormKind.RmsNorm, l.KvRank, spec.NormEps),
            LatentUp: Make("kv_b_proj", "key/value up projection (kv_b_proj)", "KvRank", l.KvRank, heads * 2L * a.HeadDim),
            Output: Make("o_proj", "attention output projection", "Heads × HeadDim", heads * a.HeadDim, dim, WeightInit.ResidualOutput));
    }

    private static IndexerPlan PlanIndexer(ModelSpec spec, SparseSpec s)
    {
        LinearPlan Make(string name, string role, long outputs) =>
            new(name, role, "Dim", spec.Dim, outputs, Bias: false, Transposed: false, QuantTargetKind.Attention, Quantized: false, WeightInit.Normal);
        return new IndexerPlan(s.IndexerHeads, s.IndexerDim, s.TopK, new[]
        {
            Make("wq", "indexer query projection (wq)", (long)s.IndexerHeads * s.IndexerDim),
            Make("wk", "indexer key projection (wk)", s.IndexerDim),
            Make("weights_proj", "indexer head weights (weights_proj)", s.IndexerHeads),
        }.ToEquatableArray());
    }

    private static ConvPlan PlanConv(ModelSpec spec, HybridSpec h)
    {
        LinearPlan Make(string name, string role, long outputs, WeightInit init) =>
            new(name, role, "Dim", spec.Dim, outputs, spec.Bias, Transposed: false, QuantTargetKind.Attention, Quantized: false, init);
        return new ConvPlan(h.ConvKernel, spec.Dim, spec.Bias,
            Make("in_proj", "short-convolution input projection (in_proj)", 3L * spec.Dim, WeightInit.Normal),
            Make("out_proj", "short-convolution output projection (out_proj)", spec.Dim, WeightInit.ResidualOutput));
    }

    private static FeedForwardPlan PlanFeedForward(ModelSpec spec, NamingScheme names, string kind, string hiddenName, long hidden, QuantTargetKind target, bool quantized)
    {
        var swiGlu = spec.Mlp.Activation == ActivationKind.SwiGlu;
        var linears = new List<LinearPlan>();
        if (names.FusedProjections)
            linears.Add(Linear(spec, names, names.FeedForwardInput, $"{kind} input projection (c_fc)", "Dim", spec.Dim, swiGlu ? 2 * hidden : hidden, target, quantized, WeightInit.Normal));
        else
        {
            if (swiGlu) linears.Add(Linear(spec, names, names.FeedForwardGate, $"{kind} gate projection", "Dim", spec.Dim, hidden, target, quantized, WeightInit.Normal));
            linears.Add(Linear(spec, names, names.FeedForwardInput, $"{kind} up projection", "Dim", spec.Dim, hidden, target, quantized, WeightInit.Normal));
        }
        linears.Add(Linear(spec, names, names.FeedForwardOutput, $"{kind} down projection", hiddenName, hidden, spec.Dim, target, quantized, WeightInit.ResidualOutput));
        return new FeedForwardPlan(kind, hidden, spec.Mlp.Activation, linears.ToEquatableArray(), quantized, swiGlu ? spec.Mlp.ClampLimit : null);
    }

    private static LayerPlan PlanLayer(ModelSpec spec, int index, AttentionPlan? attention, LatentPlan? latent, IndexerPlan? indexer, ConvPlan? conv)
    {
        var mixer = !spec.IsAttentionLayer(index) ? TokenMixer.ShortConvolution
            : latent is not null ? TokenMixer.LatentAttention
            : TokenMixer.Attention;
        var owns = attention is null || spec.Attention.OwnsKeysAndValues(index);
        var feedForward = spec.Moe is { } moe && moe.IsRouted(index) ? FeedForwardKind.Mixture : FeedForwardKind.Dense;

        var cache = new List<CacheStream>();
        switch (mixer)
        {
            case TokenMixer.ShortConvolution:
                cache.Add(new CacheStream(CacheSlots.ConvolutionWindow, "convolution state", 0, conv!.StateElements));
                break;
            case TokenMixer.LatentAttention:
                cache.Add(new CacheStream(CacheSlots.Latents, "latent", latent!.KvRank));
                cache.Add(new CacheStream(CacheSlots.RopeKeys, "rotary key", latent.RopeDim));
                break;
            case TokenMixer.Attention when owns:
                // Keys that are the values are not cached: they are derived from the cached values.
                if (attention!.KeysAreValues) cache.Add(new CacheStream(CacheSlots.Keys, "values (the keys)", attention.KvWidth));
                else
                {
                    cache.Add(new CacheStream(CacheSlots.Keys, "keys", attention.KvWidth));
                    cache.Add(new CacheStream(CacheSlots.Values, "values", attention.KvWidth));
                }
                break;
        }
        if (mixer != TokenMixer.ShortConvolution && indexer is not null)
            cache.Add(new CacheStream(CacheSlots.IndexerKeys, "indexer keys", indexer.Dim));
        return new LayerPlan(index, mixer, owns, feedForward, cache.ToEquatableArray());
    }
}
