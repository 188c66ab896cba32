using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;

namespace LlmEff.Generator.Emitting;

/// <summary>
/// Writes the generated half of a model class: size constants, the TorchSharp module and its nested
/// blocks, specialised to the spec (only the layers the declaration has, literal sizes, no runtime switches).
/// </summary>
internal static class ModelEmitter
{
    public const string GeneratorName = "LlmEff.Generator";

    public static string HintName(TypeTarget target) => GeneratedPart.HintName(target, ".g.cs");

    public static string Emit(ModelToEmit model)
    {
        var source = GeneratedPart.Write(model.Target, $"the TorchSharp module declared by the attributes of {model.Target.FullName}.",
            writer => new ClassWriter(writer, model).Write());
        // No using directive: every outside name is global::-qualified, so no user type beside the model can capture it.
        return GlobalNames.Qualify(source);
    }

    /// <summary>Writes one model class from its layout plan; holds the plan so helper methods stay short. Every
    /// architectural decision is read from <see cref="LayoutPlan"/>; the spec serves prose only.</summary>
    private sealed class ClassWriter
    {
        private readonly SourceWriter w;
        private readonly ModelSpec spec;
        private readonly LayoutPlan plan;
        private readonly ModelSizes sizes;
        private readonly string name;
        private readonly NamingScheme names;
        private readonly bool rope;

        public ClassWriter(SourceWriter writer, ModelToEmit model)
        {
            w = writer;
            spec = model.Spec;
            plan = model.Plan;
            sizes = model.Sizes;
            name = model.Target.Name;
            names = plan.Names;
            rope = plan.StackRotary is not null;
        }

        private bool Latent => plan.Latent is not null;
        private bool Compressed => plan.Compressed is not null;
        private bool Hybrid => plan.Hybrid;
        private bool Decodes => plan.Decodes;
        private bool ExposesScores => plan.ExposesScores;

        /// <summary>The module type of a layer's attention.</summary>
        private string AttentionType => Latent ? "LatentAttention" : Compressed ? "CompressedAttention" : "SelfAttention";

        private bool Sharing => plan.SharesKeyValues;

        /// <summary>0-based layers whose tokens mix by attention (in a hybrid, the others are short convolutions).</summary>
        private IEnumerable<int> AttentionLayerIndices => plan.Layers.Where(l => l.Mixer != TokenMixer.ShortConvolution).Select(l => l.Index);

        /// <summary>Inputs layers take besides the hidden states, as C# parameters.</summary>
        private IEnumerable<(string Type, string Name)> LayerInputs
        {
            get
            {
                if (plan.Takes(Planning.LayerInputs.RotaryAngles)) { yield return ("Tensor", "cos"); yield return ("Tensor", "sin"); }
                if (plan.Takes(Planning.LayerInputs.KeyValueShare)) yield return ("KeyValueShare", "shared");
            }
        }

        private string LayerParameters => string.Concat(LayerInputs.Select(i => $", {i.Type} {i.Name}"));
        private string LayerArguments => string.Concat(LayerInputs.Select(i => $", {i.Name}"));
        private string LayerModule => $"nn.Module<{string.Join(", ", new[] { "Tensor" }.Concat(LayerInputs.Select(i => i.Type)).Append("Tensor"))}>";
        private string OwnsParameter => Sharing ? "bool ownsKeysAndValues, " : "";

        private bool MixedFeedForward => plan.MixedFeedForward;
        private string RoutedParameter => MixedFeedForward ? "bool routedExperts, " : "";
        private string FeedForwardFieldType => plan.Mixture is null ? "FeedForward" : MixedFeedForward ? (TokenIds ? "nn.Module" : "nn.Module<Tensor, Tensor>") : "MixtureOfExperts";

        private string NewFeedForward() => plan.Mixture is null
            ? "new FeedForward(device, dtype)"
            : MixedFeedForward
                ? $"routedExperts ? new MixtureOfExperts({HashArgument}device, dtype) : new FeedForward(hidden: {plan.Dense!.Hidden}, {FeedForwardQuantizationArgument(plan.Dense)}device, dtype)"
                : $"new MixtureOfExperts({HashArgument}device, dtype)";

        /// <summary>Hash routing (DeepSeek V4): the stack hands every block the token ids, which the hash-routed mixtures
        /// choose experts by, as V4's Block.forward takes input_ids. Without hash layers nothing of it is rendered.</summary>
        private bool TokenIds => plan.Mixture is { HashRouted: true };

        /// <summary>Some routed layers are hash-routed and some are not, so each block and mixture is told which it is.</summary>
        private bool PartlyHashed => plan.Mixture is { HashRouted: true } m && plan.Layers.Any(l => l.FeedForward == FeedForwardKind.Mixture && !m.IsHashRouted(l.Index));
        private string HashParameter => PartlyHashed ? "bool hashRouted, " : "";
        private string HashArgument => PartlyHashed ? "hashRouted, " : "";

        /// <summary>The stack's test of layer i for hash routing.</summary>
        private string HashedLayerCondition
        {
            get
            {
                var m = plan.Mixture!.Settings;
                return m.FirstLayer == 0 ? $"i < {m.HashLayers}" : $"i >= {m.FirstLayer} && i < {m.FirstLayer + m.HashLayers}";
            }
        }

        /// <summary>A block's inputs: the layers' (<see cref="LayerParameters"/>), then the token ids with hash routing.</summary>
        private string BlockParameters => LayerParameters + (TokenIds ? ", Tensor tokens" : "");
        private string BlockArguments => LayerArguments + (TokenIds ? ", tokens" : "");
        private string BlockModule => TokenIds
            ? $"nn.Module<{string.Join(", ", new[] { "Tensor" }.Concat(LayerInputs.Select(i => i.Type)).Append("Tensor").Append("Tensor"))}>"
            : LayerModule;

        /// <summary>A block's call of its feed-forward on <paramref name="input"/>.</summary>
        private string FeedForwardCall(string input) =>
            !TokenIds ? $"{names.Mlp}.forward({input})" : MixedFeedForward ? $"RunFeedForward({input}, tokens)" : $"{names.Mlp}.forward({input}, tokens)";
        private string NormType => plan.MixerNorm.Kind == NormKind.LayerNorm ? "LayerNorm" : "RmsNorm";
        private string PlainLinearType => names.FusedProjections ? "TransposedLinear" : "Linear";

        /// <summary>What FeedForward hands its linear layers: its own parameter, the model's settings, or nothing.</summary>
        private string? FeedForwardQuantization => plan.FeedForwardQuantization switch
        {
            Planning.FeedForwardQuantization.PerInstance => "quantization",
            Planning.FeedForwardQuantization.All => "Quantization",
            _ => null,
        };

        private string FeedForwardQuantizationArgument(FeedForwardPlan feedForward) =>
            plan.FeedForwardQuantization == Planning.FeedForwardQuantization.PerInstance ? $"quantization: {(feedForward.Quantized ? "Quantization" : "null")}, " : "";

        private string LinearType(string? quantization) => quantization is null ? PlainLinearType : "QuantizedLinear";
        private string? AttentionQuantization => plan.Attention is { Quantized: true } ? "Quantization" : null;

        public void Write()
        {
            w.Line($"/// <summary>{Describe()}</summary>");
            var interfaces = $"nn.Module<Tensor, Tensor>, IDeclaredModel<{name}>" + (ExposesScores ? ", IAttentionScores" : "") + (Decodes ? ", IDecoder" : "");
            using (w.Block($"partial class {name} : {interfaces}"))
            {
                WriteFacts();
                w.Line();
                WriteTopModule();
                w.Line();
                WriteStack();
                w.Line();
                WriteLayer();
                if (!Latent && !Compressed)
                {
                    w.Line();
                    WriteAttention();
                }
                w.Line();
                WriteMlp();
                if (plan.Mixture is { } mixture)
                {
                    w.Line();
                    WriteMixtureOfExperts(mixture);
                }
            }
        }

        private string Describe()
        {
            var a = spec.Attention;
            var attention = a.Latent is { } l ? $"{a.Heads}-head latent attention (KV rank {l.KvRank}, rotary {l.RopeDim}{(l.QRank > 0 ? $", query rank {l.QRank}" : "")})"
                : a.KvHeads == a.Heads ? $"{a.Heads}-head attention" : a.KvHeads == 1 ? $"{a.Heads}-head multi-query attention" : $"{a.Heads}-head attention with {a.KvHeads} KV heads";
            if (spec.Sparse is { } sparse) attention += $" attending to the top {sparse.TopK} tokens a {sparse.IndexerHeads}-head indexer picks";
            if (plan.Compressed is { } c) attention = DescribeCompressed(c);
            if (spec.Hybrid is { } h)
                attention += $" in layers {string.Join(", ", h.AttentionLayers)} and short convolutions (kernel {h.ConvKernel}) in the other {spec.ConvLayers}";
            return $"{(spec.Causal ? "Decoder-only" : "Encoder (bidirectional)")} {(Hybrid ? "hybrid" : "transformer")}: {spec.Layers} layers, width {spec.Dim}, {attention}, " +
                   $"{(spec.Mlp.Activation == ActivationKind.SwiGlu ? "SwiGLU" : "GELU")} MLP of width {spec.Mlp.Hidden}{DescribeExperts()}, vocabulary {spec.Vocab}, context {spec.Context}{DescribeQuant()}{DescribeStreams()}.";
        }

        /// <summary>"8-head compressed attention (...)": the kinds and how many layers of each.</summary>
        private string DescribeCompressed(CompressedPlan c)
        {
            var kinds = new List<string>();
            int Count(CompressedKind kind) => plan.Layers.Count(l => l.Compressed?.Kind == kind);
            if (Count(CompressedKind.SlidingWindow) is > 0 and var sliding) kinds.Add($"{sliding} sliding-window");
            if (Count(CompressedKind.CompressedSparse) is > 0 and var csa) kinds.Add($"{csa} CSA (ratio {c.SparseRatio}, top {c.TopK} of a {c.IndexerHeads}-head indexer)");
            if (Count(CompressedKind.HeavilyCompressed) is > 0 and var hca) kinds.Add($"{hca} HCA (ratio {c.HeavyRatio})");
            return $"{c.Heads}-head compressed attention (one key = value head of width {c.HeadDim}, window {c.Window}, query rank {c.QueryRank}, " +
                   $"{c.OutputGroups} output groups of rank {c.OutputRank}; {string.Join(", ", kinds)} layers)";
        }

        private string DescribeExperts()
        {
            if (spec.Moe is not { } m) return "";
            var where = m.FirstLayer == 0 ? "" : $" from layer {m.FirstLayer} on";
            return $" (replaced{where} by {m.Active} of {m.Experts} experts of width {m.ExpertHidden}{(m.Shared > 0 ? $" plus {m.Shared} shared" : "")})";
        }

        private string DescribeStreams() => Streams is { } s
            ? $"; {s.Streams} residual streams (mHC, {s.SinkhornIterations} Sinkhorn iterations)"
            : "";

        private string DescribeQuant() => spec.Quant is { } q
            ? $"; {QuantizedWeightsText()} weights trained for {q.FormatName} {QatStartText(q)}"
            : "";

        /// <summary>"attention and MLP", "expert", …: the targeted parts this model has.</summary>
        private string QuantizedWeightsText()
        {
            var parts = new List<string>();
            if (plan.Attention is { Quantized: true }) parts.Add("attention");
            if (plan.Dense is { Quantized: true } || plan.Mixture?.Shared is { Quantized: true }) parts.Add("MLP");
            if (plan.Mixture?.Expert is { Quantized: true }) parts.Add("expert");
            return parts.Count == 1 ? parts[0] : string.Join(", ", parts.Take(parts.Count - 1)) + " and " + parts[parts.Count - 1];
        }

        private static string QatStartText(QuantSpec q) => q.From == 0
            ? "throughout (fake quantization from the first step)"
            : $"(fake quantization from {StepsPercent(q.From)} of the steps)";

        /// <summary>0.8 → "80%" (through decimal, so 0.29 does not print as 28.999…%).</summary>
        private static string StepsPercent(double from) => ((decimal)from * 100).ToString("0.##", CultureInfo.InvariantCulture) + "%";

        /// <summary>The runtime enum member for a format (the enum's Fp4 alias shares Mxfp4's value, so not its ToString()).</summary>
        private static string FormatMember(QuantFormatKind format) => format switch
        {
            QuantFormatKind.Mxfp4 => "Mxfp4",
            QuantFormatKind.Nvfp4 => "Nvfp4",
            QuantFormatKind.Fp8E4M3 => "Fp8E4M3",
            _ => "Int4",
        };

        private static string TargetExpression(QuantTargetKind target) => target == QuantTargetKind.AllLinear
            ? "QuantTarget.AllLinear"
            : string.Join(" | ", new[] { QuantTargetKind.Experts, QuantTargetKind.Mlp, QuantTargetKind.Attention }
                .Where(flag => (target & flag) != 0).Select(flag => "QuantTarget." + flag));

        private void WriteQuantFacts(QuantSpec q)
        {
            var bits = 8.0 * sizes.QuantizedWeightBytes / sizes.QuantizedParameters;
            var settings = new List<string> { $"QuantFormat.{FormatMember(q.Format)}", $"From: {D(q.From)}" };
            if (q.Clipped) settings.Add("Clipped: true");
            if (q.GroupSize > 0) settings.Add($"GroupSize: {q.GroupSize}");
            w.Line($"/// <summary>Weights [Quant] targets, {QuantizedWeightsText()} matrices: {N(sizes.QuantizedParameters)} ({Percent(sizes.QuantizedParameters, sizes.Parameters)} of the parameters). " +
                   "They train with fake quantization and are packed on export.</summary>")
             .Line($"public const long QuantizedParameterCount = {L(sizes.QuantizedParameters)};")
             .Line()
             .Line($"/// <summary>Their storage in {q.FormatName}, codes and scales included: {bits.ToString("0.###", CultureInfo.InvariantCulture)} bits per value, " +
                   $"{(1.0 * sizes.QuantizedFp32Bytes / sizes.QuantizedWeightBytes).ToString("F2", CultureInfo.InvariantCulture)}x smaller than fp32.</summary>")
             .Line($"public const long QuantizedWeightBytes = {L(sizes.QuantizedWeightBytes)};")
             .Line()
             .Line("/// <summary>The same weights in fp32, for comparison.</summary>")
             .Line($"public const long QuantizedWeightFp32Bytes = {L(sizes.QuantizedFp32Bytes)};")
             .Line()
             .Line("/// <summary>The same weights in bf16, for comparison.</summary>")
             .Line($"public const long QuantizedWeightBf16Bytes = {L(Sizing.ModelSizing.InBf16(sizes.QuantizedParameters))};")
             .Line()
             .Line($"/// <summary>How the targeted weights train: {q.FormatName}, {(q.Clipped ? "clipped" : "plain")} straight-through gradients, " +
                   $"{(q.From == 0 ? "fake quantization from the first step" : $"full precision until {StepsPercent(q.From)} of the steps")}.</summary>")
             .Line($"public static WeightQuantization Quantization {{ get; }} = new({string.Join(", ", settings)});")
             .Line();
        }

        private void WriteFacts()
        {
            var a = spec.Attention;
            w.Line($"/// <summary>Trainable parameters: {N(sizes.Parameters)} (embeddings {N(sizes.EmbeddingParameters)}, attention {N(sizes.AttentionParameters)}, " +
                   (Hybrid ? $"short convolutions {N(sizes.ConvParameters)}, " : "") +
                   $"{(spec.Moe is null ? "MLP" : "MLP and experts")} {N(sizes.MlpParameters)}, norms {N(spec.Layers * sizes.NormParametersPerLayer + sizes.FinalNormParameters)}, " +
                   $"output head {(spec.TiedEmbeddings ? "tied" : N(sizes.OutputHeadParameters))}" +
                   (Streams is null ? "" : $", residual streams {N(sizes.ResidualStreamParameters)}") + ").</summary>")
             .Line($"public const long ParameterCount = {L(sizes.Parameters)};")
             .Line()
             .Line(spec.Moe is { } moe
                 ? $"/// <summary>Parameters one token uses: all but the {N(moe.Experts - moe.Active)} routed experts per layer it does not choose " +
                   $"({N(sizes.ActiveParameters)}, {Percent(sizes.ActiveParameters, sizes.Parameters)} of the total).</summary>"
                 : "/// <summary>Parameters one token uses: all of them (the model has no routed experts).</summary>")
             .Line($"public const long ActiveParameterCount = {L(sizes.ActiveParameters)};")
             .Line()
             .Line($"/// <summary>Key/value cache elements per token, all layers: {KvCacheFormula()} " +
                   $"= {N(sizes.KvCacheElementsPerToken)} ({N(Sizing.ModelSizing.InBf16(sizes.KvCacheElementsPerToken))} bytes in bf16).</summary>")
             .Line($"public const long KvCacheElementsPerToken = {L(sizes.KvCacheElementsPerToken)};")
             .Line();
            if (plan.Compressed is { } compressed) WriteCompressedCacheFacts(compressed);
            if (Streams is { } residual)
                w.Line($"/// <summary>Residual state per token between blocks: {residual.Streams} streams × {spec.Dim} = {N(sizes.ResidualStateElementsPerToken)} values, " +
                       $"{residual.Streams}× an ordinary residual's; every layer reads and writes it, and training keeps it at each block boundary.</summary>")
                 .Line($"public const long ResidualStateElementsPerToken = {L(sizes.ResidualStateElementsPerToken)};")
                 .Line();
            if (spec.Hybrid is { } hybrid)
                w.Line($"/// <summary>Decoding state of the {spec.ConvLayers} short-convolution blocks per sequence: the last {hybrid.ConvKernel - 1} inputs × {spec.Dim} channels each. " +
                       "Constant: it does not grow with the context.</summary>")
                 .Line($"public const long ConvStateElements = {L(sizes.ConvStateElements)};")
                 .Line();
            w
             .Line($"/// <summary>Forward FLOPs of one token at position {N(spec.Context)}: 2 per weight multiply-accumulate " +
                   (Compressed
                       ? "plus 4·HeadDim per query head, layer and key seen (the window, and the visible compressed entries: all in HCA, the top k in CSA) and the CSA indexer's scores"
                       : "plus 4·Context·HeadDim per query head and layer for attention scores and mixing") +
                   (Streams is { } fs ? $"; the residual streams' maps count as weights, and mixing the streams {2 * fs.MixRows}·Dim per block" : "") +
                   (spec.Moe is null ? ".</summary>" : "; in expert layers only the router, the chosen and the shared experts count.</summary>"))
             .Line($"public const long FlopsPerToken = {L(sizes.FlopsPerToken)};")
             .Line();
            if (spec.Quant is { } quant) WriteQuantFacts(quant);
            w.Line("/// <summary>The declaration's sizes, for tools that handle models generically.</summary>")
             .Line($"public static ModelFacts Facts {{ get; }} = new(\"{name}\", Vocab: {spec.Vocab}, Dim: {spec.Dim}, Layers: {spec.Layers}, Context: {spec.Context},")
             .Line("    ParameterCount: ParameterCount, ActiveParameterCount: ActiveParameterCount, KvCacheElementsPerToken: KvCacheElementsPerToken, FlopsPerToken: FlopsPerToken,")
             .Line($"    MatmulFlopsPerToken: {L(sizes.MatmulFlopsPerToken)},")
             .Line($"    Breakdown: new(Embeddings: {L(sizes.EmbeddingParameters)}, Attention: {L(sizes.AttentionParameters)}, Mlp: {L(sizes.MlpParameters)}, " +
                   $"Norms: {L(spec.Layers * sizes.NormParametersPerLayer + sizes.FinalNormParameters)}, OutputHead: {L(sizes.OutputHeadParameters)}" +
                   $"{(Hybrid ? $", Convolution: {L(sizes.ConvParameters)}" : "")}{(Streams is null ? "" : $", ResidualStreams: {L(sizes.ResidualStreamParameters)}")}){(spec.Causal ? "" : ", Causal: false")}" +
                   (spec.Quant is null ? ")" + FactsInitializer + ";" : ","));
            if (spec.Quant is { } q)
                w.Line($"    Quant: new(Quantization, {TargetExpression(q.Target)}, Parameters: QuantizedParameterCount, Bytes: QuantizedWeightBytes)){FactsInitializer};");
            w.Line()
             .Line("/// <summary>Builds the module; see the constructor.</summary>")
             .Line($"public static {name} Create(Device? device = null, ScalarType? dtype = null) => new(device, dtype);");
        }

        /// <summary>Compressed attention's cache as a function of the context: a bounded window, an entry per window of
        /// Ratio tokens (CSA: and an index key), and the compressors' fixed state, summed over the layers of each kind.</summary>
        private void WriteCompressedCacheFacts(CompressedPlan c)
        {
            var terms = new List<string>();
            var comments = new List<string>();
            foreach (var group in plan.Layers.GroupBy(l => l.Compressed!))
            {
                var layer = group.Key;
                var count = group.Count();
                var parts = new List<string> { $"System.Math.Min(tokens, {c.Window}) * {c.HeadDim}" };
                var state = group.First().Cache.Sum(stream => stream.StateElements);
                if (layer.Kind != CompressedKind.SlidingWindow)
                    parts.Add($"tokens / {layer.Ratio} * {(layer.Kind == CompressedKind.CompressedSparse ? $"({c.HeadDim} + {c.IndexerDim})" : L(c.HeadDim))}");
                if (state > 0) parts.Add(L(state));
                terms.Add($"{count} * ({string.Join(" + ", parts)})");
                comments.Add(layer.Kind switch
                {
                    CompressedKind.SlidingWindow => $"{Layers(count, "sliding-window")}: the last {c.Window} keys = values",
                    CompressedKind.CompressedSparse => $"{Layers(count, "CSA")}: the window, an entry and an index key per {layer.Ratio} tokens, {N(state)} state values",
                    _ => $"{Layers(count, "HCA")}: the window, an entry per {layer.Ratio} tokens, {N(state)} state values",
                });
            }
            var limit = Sizing.ModelSizing.CacheElementsPerTokenLimit(plan);
            w.Line($"/// <summary>Decoding-cache elements of one sequence after <paramref name=\"tokens\"/> tokens, every layer: {string.Join("; ", comments)}. " +
                   $"At the full context of {N(spec.Context)} tokens: {N(sizes.KvCacheElementsAtContext)}.</summary>")
             .Line("/// Beyond the context the model cannot decode; the formula goes on, for what-if sizing.")
             .Line("public static long KvCacheElements(long tokens) => tokens < 0")
             .Line("    ? throw new System.ArgumentOutOfRangeException(nameof(tokens), tokens, \"A token count cannot be negative.\")")
             .Line($"    : checked({string.Join(" + ", terms)});")
             .Line()
             .Line($"/// <summary>Elements the cache grows by per token once the context is long (the compressed entries and index keys; the " +
                   $"window and the state stay fixed): {limit.ToString("0.###", CultureInfo.InvariantCulture)}, against {N(sizes.KvCacheElementsPerToken)} per token at full context.</summary>")
             .Line($"public const double KvCacheElementsPerTokenLimit = {D(limit)};")
             .Line();
        }

        private static string Layers(int count, string kind) => $"{count} {kind} layer{(count == 1 ? "" : "s")}";

        /// <summary>What the facts carry beyond the constructor: compressed attention's cache as a function of the tokens.</summary>
        private string FactsInitializer => Compressed ? " { KvCacheElements = KvCacheElements }" : "";

        /// <summary>How the cache per token adds up, for the facts' comment.</summary>
        private string KvCacheFormula()
        {
            var a = spec.Attention;
            if (plan.Compressed is not null)
                return $"everything the compressed-attention caches hold at full context ({N(sizes.KvCacheElementsAtContext)}, see KvCacheElements) over its {N(spec.Context)} tokens, rounded up";
            var layers = Hybrid ? $"{spec.AttentionLayers} attention layers (short convolutions cache nothing per token)" : $"{spec.Layers} layers";
            var indexer = spec.Sparse is { } sparse ? $" + {sparse.IndexerDim} (indexer key)" : "";
            if (a.Latent is { } l) return $"{layers} × ({l.KvRank} (latent) + {l.RopeDim} (rotary key){indexer})";
            var perLayer = $"{(a.CachedStreams == 2 ? "2 (K and V)" : "1 (keys are the values)")} × {a.KvHeads} KV heads × {a.HeadDim}";
            if (a.ShareKvEvery > 1) return $"{a.KvOwningLayers(spec.Layers)} KV-owning layers (one per {a.ShareKvEvery}) × {perLayer}{indexer}";
            return indexer.Length == 0 ? $"{layers} × {perLayer}" : $"{layers} × ({perLayer}{indexer})";
        }

        /// <summary>The stack's token-input bias parameter (<see cref="LayoutPlan.InputBias"/>).</summary>
        private string InputBias => PlannedTensors.InputBiasName(plan);

        /// <summary>Logits from the final hidden states <c>hidden</c>: through the token embedding when tied (by the runtime
        /// Linear's product, so a decoding step's head runs on its matrix-vector kernel like every other layer).</summary>
        private string Logits => plan.TiedEmbeddings
            ? $"Linear.Apply(hidden, {names.Stack}.{names.TokenEmbedding}.weight!)"
            : $"{plan.OutputHead!.Name}.forward(hidden)";

        private void WriteTopModule()
        {
            w.Line($"private readonly DecoderStack {names.Stack};");
            if (plan.OutputHead is { } head) w.Line($"private readonly Linear {head.Name};");
            w.Line();
            w.Line("/// <summary>Builds the module with freshly initialised weights. On <c>torch.META</c> nothing is allocated,");
            w.Line("/// which is how sizes of very large declarations are checked.</summary>");
            using (w.Block($"public {name}(Device? device = null, ScalarType? dtype = null) : base(\"{name}\")"))
            {
                w.Line($"{names.Stack} = new DecoderStack(device, dtype);");
                if (plan.OutputHead is { } outputHead) WriteLinear(outputHead, quantization: null);
                w.Line("RegisterComponents();");
            }
            w.Line();
            w.Line($"/// <summary>Next-token logits [batch, time, {spec.Vocab}] for tokens [batch, time], time ≤ {spec.Context}.</summary>");
            using (w.Block("public override Tensor forward(Tensor tokens)"))
            {
                w.Line("using var scope = NewDisposeScope();");
                w.Line($"var hidden = {names.Stack}.forward(tokens);");
                w.Line($"return {Logits}.MoveToOuterDisposeScope();");
            }
            if (Decodes)
            {
                w.Line();
                w.Line($"/// <summary>An empty decoding cache for up to {spec.Context} tokens.</summary>");
                w.Line($"public DecodingCache NewCache() => new({spec.Layers}, capacity: {spec.Context});");
                w.Line();
                w.Line("/// <summary>Logits [batch, time, vocab] for tokens that continue what <paramref name=\"cache\"/> holds; equal to the");
                w.Line("/// matching rows of <see cref=\"forward(Tensor)\"/> over the whole sequence, at the cost of the new tokens only.</summary>");
                using (w.Block("public Tensor forward(Tensor tokens, DecodingCache cache)"))
                {
                    w.Line("using var scope = NewDisposeScope();");
                    if (plan.DecodesOnKernels)
                        w.Line($"using var threads = SingleTokenStep.HandOverThreads(tokens, {names.Stack}.{names.TokenEmbedding}.weight!); // one token: every product is matrix × vector");
                    if (plan.DecodesInOneKernel)
                    {
                        var headArguments = plan.OutputHead is { } untied
                            ? $"{untied.Name}.weight!, {untied.Name}.bias"
                            : $"{names.Stack}.{names.TokenEmbedding}.weight!, null";
                        w.Line("// One token of one sequence: the whole step in one call of the runtime's fused kernel, where it applies.");
                        w.Line($"if ({names.Stack}.DecodeOneToken(tokens, cache, {headArguments}) is {{ }} logits) return logits.MoveToOuterDisposeScope();");
                    }
                    w.Line($"var hidden = {names.Stack}.Decode(tokens, cache);");
                    w.Line($"return {Logits}.MoveToOuterDisposeScope();");
                }
            }
            if (ExposesScores)
            {
                w.Line();
                w.Line("/// <summary>Pre-softmax attention scores [batch, heads, time, time] of 0-based <paramref name=\"layer\"/> for");
                w.Line("/// <paramref name=\"tokens\"/>, unmasked: to inspect what the attention looks at (e.g. whether scores are symmetric).</summary>");
                w.Line($"public Tensor AttentionScores(Tensor tokens, int layer) => {names.Stack}.AttentionScores(tokens, layer);");
            }
        }

        private void WriteStack()
        {
            var positions = plan.LearnedPositions;
            w.Line($"/// <summary>Token embedding{(positions ? ", learned positions" : "")}, {spec.Layers} decoder layers and the final norm.</summary>");
            using (w.Block("public sealed class DecoderStack : nn.Module<Tensor, Tensor>"))
            {
                w.Line($"private const int Context = {spec.Context};");
                if (Hybrid)
                    w.Line($"private static readonly int[] AttentionLayers = {{ {string.Join(", ", AttentionLayerIndices)} }};");
                if (Compressed)
                {
                    w.Line($"private static readonly int[] SparseLayers = {{ {string.Join(", ", CompressedLayerIndices(CompressedKind.CompressedSparse))} }}; // CSA");
                    w.Line($"private static readonly int[] HeavyLayers = {{ {string.Join(", ", CompressedLayerIndices(CompressedKind.HeavilyCompressed))} }}; // HCA");
                }
                w.Line($"internal readonly Embedding {names.TokenEmbedding};");
                if (plan.InputBias) w.Line($"private readonly Parameter {InputBias};");
                if (Streams is { } streamFields) WriteStreamFields(streamFields, StreamsPlan.HeadMap);
                if (positions) w.Line($"private readonly Embedding {names.PositionEmbedding};");
                w.Line($"private readonly ModuleList<DecoderLayer> {names.Layers};");
                w.Line($"private readonly {NormType} {names.FinalNorm};");
                if (rope) w.Line($"private readonly RotaryEmbedding {names.Rotary};");
                w.Line();
                using (w.Block("internal DecoderStack(Device? device, ScalarType? dtype) : base(nameof(DecoderStack))"))
                {
                    w.Line($"{names.TokenEmbedding} = nn.Embedding({spec.Vocab}, {spec.Dim}, device: device, dtype: dtype);");
                    if (plan.InputBias)
                    {
                        // The symbols one-hot through a biased linear layer: its weight, transposed, is this table.
                        w.Line($"{InputBias} = new Parameter(torch.empty({spec.Dim}, device: device, dtype: dtype));");
                        w.Line($"Init.PyTorchLinear({names.TokenEmbedding}.weight, {InputBias}, fanIn: {spec.Vocab});");
                    }
                    else w.Line($"Init.Normal({names.TokenEmbedding}.weight);");
                    if (Streams is { } headStreams) WriteStreamParameters(headStreams, StreamsPlan.HeadMap);
                    if (positions)
                    {
                        w.Line($"{names.PositionEmbedding} = nn.Embedding(Context, {spec.Dim}, device: device, dtype: dtype);");
                        w.Line($"Init.Normal({names.PositionEmbedding}.weight, std: {D(plan.PositionStd)});");
                    }
                    w.Line($"{names.Layers} = new ModuleList<DecoderLayer>();");
                    var layerArguments = (Sharing ? $"ownsKeysAndValues: i % {plan.Attention!.ShareKvEvery} == 0, " : "") +
                                         (Hybrid ? "attention: System.Array.IndexOf(AttentionLayers, i) >= 0, " : "") +
                                         (MixedFeedForward ? $"routedExperts: i >= {plan.Mixture!.Settings.FirstLayer}, " : "") +
                                         (Compressed ? "kind: System.Array.IndexOf(SparseLayers, i) >= 0 ? CompressedAttentionKind.CompressedSparse " +
                                                       ": System.Array.IndexOf(HeavyLayers, i) >= 0 ? CompressedAttentionKind.HeavilyCompressed : CompressedAttentionKind.SlidingWindow, " : "") +
                                         (PartlyHashed ? $"hashRouted: {HashedLayerCondition}, " : "");
                    w.Line($"for (var i = 0; i < {spec.Layers}; i++) {names.Layers}.Add(new DecoderLayer({layerArguments}device, dtype));");
                    w.Line($"{names.FinalNorm} = {NewNorm(plan.FinalNorm)};");
                    if (plan.StackRotary is { } rotary) w.Line($"{names.Rotary} = new RotaryEmbedding({rotary.Dims}, Context, {D(rotary.Theta)}, device, dtype);");
                    w.Line("RegisterComponents();");
                }
                w.Line();
                w.Line($"/// <summary>Final hidden states [batch, time, {spec.Dim}] for tokens [batch, time].</summary>");
                using (w.Block("public override Tensor forward(Tensor tokens)"))
                {
                    w.Line("using var scope = NewDisposeScope();");
                    WriteLayerInputs();
                    if (plan.Checkpointing)
                    {
                        // The last block's activations are what backward needs first: recomputing them would only cost time.
                        w.Line("// Every block but the last keeps only its input and recomputes its activations in backward.");
                        using (w.Block($"for (var i = 0; i < {spec.Layers - 1}; i++)"))
                        {
                            w.Line($"var layer = {names.Layers}[i]; // captured per block: the recomputation runs after this loop");
                            w.Line(rope
                                ? "x = ActivationCheckpoint.Apply((input, angles) => layer.forward(input, angles[0], angles[1]), x, cos, sin);"
                                : "x = ActivationCheckpoint.Apply((input, _) => layer.forward(input), x);");
                        }
                        w.Line($"x = {names.Layers}[{spec.Layers - 1}].forward(x{BlockArguments});");
                    }
                    else
                        w.Line($"foreach (var layer in {names.Layers}) x = layer.forward(x{BlockArguments});");
                    w.Line($"return {names.FinalNorm}.forward({CollapsedStreams}).MoveToOuterDisposeScope();");
                }
                w.Line();
                if (ExposesScores)
                {
                    w.Line("/// <summary>Pre-softmax attention scores [batch, heads, time, time] of 0-based <paramref name=\"layer\"/>, unmasked, for inspection.</summary>");
                    using (w.Block("internal Tensor AttentionScores(Tensor tokens, int layer)"))
                    {
                        w.Line($"if (layer < 0 || layer >= {spec.Layers})");
                        w.Line($"    throw new System.ArgumentOutOfRangeException(nameof(layer), layer, \"The model has layers 0 to {spec.Layers - 1}.\");");
                        if (Hybrid)
                        {
                            w.Line("if (System.Array.IndexOf(AttentionLayers, layer) < 0)");
                            w.Line($"    throw new System.ArgumentException($\"Layer {{layer}} is a short-convolution block; attention layers are {string.Join(", ", AttentionLayerIndices)}.\", nameof(layer));");
                        }
                        w.Line("using var scope = NewDisposeScope();");
                        WriteLayerInputs();
                        w.Line($"for (var i = 0; i < layer; i++) x = {names.Layers}[i].forward(x{BlockArguments});");
                        w.Line($"return {names.Layers}[layer].AttentionScores(x{LayerArguments}).MoveToOuterDisposeScope();");
                    }
                    w.Line();
                }
                if (Decodes) WriteStackDecode();
                using (w.Block("private Tensor Embed(Tensor tokens, long offset = 0)"))
                {
                    w.Line("var time = tokens.shape[1];");
                    w.Line("if (offset + time > Context)");
                    w.Line($"    throw new System.ArgumentException($\"{{offset + time}} tokens exceed the declared context of {{Context}}.\", nameof(tokens));");
                    var input = plan.InputBias ? $"{names.TokenEmbedding}.forward(tokens) + {InputBias}" : $"{names.TokenEmbedding}.forward(tokens)";
                    w.Line(positions
                        ? $"return {input} + {names.PositionEmbedding}.forward(torch.arange(offset, offset + time, device: tokens.device));"
                        : $"return {input};");
                }
            }
        }

        /// <summary>The stack's cached path: embed the new tokens at their positions, run every layer against its state.</summary>
        private void WriteStackDecode()
        {
            w.Line("/// <summary>Final hidden states for tokens that continue what <paramref name=\"cache\"/> holds.</summary>");
            using (w.Block("internal Tensor Decode(Tensor tokens, DecodingCache cache)"))
            {
                w.Line($"if (cache.Layers != {spec.Layers} || cache.Capacity > Context)");
                w.Line($"    throw new System.ArgumentException($\"The cache was made for {{cache.Layers}} layers and {{cache.Capacity}} tokens; this model has {spec.Layers} layers and a context of {{Context}}.\", nameof(cache));");
                w.Line("using var scope = NewDisposeScope();");
                w.Line("var offset = cache.Position;");
                w.Line("var x = Embed(tokens, offset);");
                WriteStreamExpansion();
                if (rope)
                    w.Line(!plan.Attention!.KeysAreValues
                        ? $"var (cos, sin) = {names.Rotary}.Angles(offset + tokens.shape[1]); // every position so far; the new tokens' are the last rows"
                        : $"var (cos, sin) = {names.Rotary}.Angles(offset + tokens.shape[1]); // every position so far: keys are re-rotated from the cached values");
                if (Sharing) w.Line($"using var shared = new KeyValueShare(); // the first layer of every {plan.Attention!.ShareKvEvery} fills it");
                w.Line($"for (var i = 0; i < {spec.Layers}; i++) x = {names.Layers}[i].Decode(x{BlockArguments}, cache[i], offset);");
                w.Line("cache.Advance(tokens.shape[1]);");
                w.Line($"return {names.FinalNorm}.forward({CollapsedStreams}).MoveToOuterDisposeScope();");
            }
            w.Line();
            if (!plan.DecodesInOneKernel) return;
            w.Line("/// <summary>Logits of a one-token step of one sequence, computed whole by the runtime's fused kernel (embedding, every");
            w.Line("/// block, norm and head in one call), or null where <see cref=\"SingleTokenDecoder.TryStep\"/> does not apply; the cache");
            w.Line("/// advances only when it ran.</summary>");
            using (w.Block("internal Tensor? DecodeOneToken(Tensor tokens, DecodingCache cache, Tensor headWeight, Tensor? headBias)"))
            {
                w.Line($"var blocks = new DecoderBlockWeights[{spec.Layers}];");
                w.Line($"for (var i = 0; i < {spec.Layers}; i++) blocks[i] = {names.Layers}[i].KernelWeights();");
                w.Line($"return SingleTokenDecoder.TryStep(tokens, cache, Context, {names.TokenEmbedding}.weight!, {(rope ? names.Rotary : "rotary: null")}, blocks, {names.FinalNorm}, headWeight, headBias);");
            }
            w.Line();
        }

        /// <summary>The hidden states entering layer 0, and what every layer takes besides them.</summary>
        private void WriteLayerInputs()
        {
            w.Line("var x = Embed(tokens);");
            WriteStreamExpansion();
            if (rope) w.Line($"var (cos, sin) = {names.Rotary}.Angles(tokens.shape[1]);");
            if (Sharing) w.Line($"using var shared = new KeyValueShare(); // the first layer of every {plan.Attention!.ShareKvEvery} fills it");
        }

        private void WriteLayer()
        {
            if (Streams is { } described)
                w.Line($"/// <summary>Pre-norm block around {described.Streams} residual streams (DeepSeek V4's mHC): {(Hybrid ? "attention or a short convolution by layer" : "attention")}, then the MLP, " +
                       "each reading the streams mixed by pre and writing post ⊗ out + combᵀ·streams.</summary>");
            else
                w.Line(Hybrid
                    ? "/// <summary>Pre-norm block: x + mix(norm(x)), where mix is attention or a short convolution by layer, then + mlp(norm(·)).</summary>"
                    : "/// <summary>Pre-norm block: x + attention(norm(x)), then + mlp(norm(·)).</summary>");
            using (w.Block($"public sealed class DecoderLayer : {BlockModule}"))
            {
                var optional = Hybrid ? "?" : "";
                w.Line($"private readonly {NormType} {names.AttentionNorm};");
                w.Line($"private readonly {AttentionType}{optional} {names.Attention};");
                if (Hybrid) w.Line($"private readonly ShortConv? {ConvPlan.BlockName};");
                w.Line($"private readonly {NormType} {names.MlpNorm};");
                w.Line($"private readonly {FeedForwardFieldType} {names.Mlp};");
                if (Streams is { } layerStreams)
                {
                    WriteStreamFields(layerStreams, StreamsPlan.AttentionMap);
                    WriteStreamFields(layerStreams, StreamsPlan.FeedForwardMap);
                }
                w.Line();
                using (w.Block($"internal DecoderLayer({OwnsParameter}{(Hybrid ? "bool attention, " : "")}{RoutedParameter}{(Compressed ? "CompressedAttentionKind kind, " : "")}{HashParameter}Device? device, ScalarType? dtype) : base(nameof(DecoderLayer))"))
                {
                    w.Line($"{names.AttentionNorm} = {NewNorm(plan.MixerNorm)};");
                    if (plan.Conv is { } conv)
                    {
                        w.Line($"if (attention) {names.Attention} = {NewAttention()};");
                        w.Line($"else {ConvPlan.BlockName} = new ShortConv({conv.Channels}, kernel: {conv.Kernel}, bias: {(conv.Bias ? "true" : "false")}, layers: {plan.Layers.Count}, device, dtype);");
                    }
                    else if (plan.Compressed is { } compressed)
                        WriteNewCompressedAttention(compressed);
                    else
                        w.Line($"{names.Attention} = {NewAttention()};");
                    w.Line($"{names.MlpNorm} = {NewNorm(plan.FeedForwardNorm)};");
                    w.Line($"{names.Mlp} = {NewFeedForward()};");
                    if (Streams is { } newStreams)
                    {
                        WriteStreamParameters(newStreams, StreamsPlan.AttentionMap);
                        WriteStreamParameters(newStreams, StreamsPlan.FeedForwardMap);
                    }
                    w.Line("RegisterComponents();");
                }
                w.Line();
                w.Line(Streams is null ? "/// <summary>The block applied to hidden states [batch, time, dim].</summary>" : "/// <summary>The block applied to residual streams [batch, time, streams, dim].</summary>");
                using (w.Block($"public override Tensor forward(Tensor x{BlockParameters})"))
                {
                    w.Line("using var scope = NewDisposeScope();");
                    if (Streams is { } forwardStreams)
                    {
                        var mix = $"{names.Attention}.forward(normed{LayerArguments})";
                        WriteStreamBlock(forwardStreams, Hybrid ? $"({names.Attention} is not null ? {mix} : conv!.forward(normed))" : mix);
                    }
                    else
                    {
                        var attend = $"{names.Attention}.forward({(Hybrid ? "normed" : $"{names.AttentionNorm}.forward(x)")}{LayerArguments})";
                        if (Hybrid)
                        {
                            w.Line($"var normed = {names.AttentionNorm}.forward(x);");
                            w.Line($"var h = x + ({names.Attention} is not null ? {attend} : conv!.forward(normed));");
                        }
                        else
                            w.Line($"var h = x + {attend};");
                        w.Line($"return (h + {FeedForwardCall($"{names.MlpNorm}.forward(h)")}).MoveToOuterDisposeScope();");
                    }
                }
                if (Decodes)
                {
                    w.Line();
                    w.Line(Hybrid
                        ? "/// <summary>The block for new tokens at <paramref name=\"offset\"/> on, with this layer's keys and values or convolution state in <paramref name=\"state\"/>.</summary>"
                        : "/// <summary>The block for new tokens at <paramref name=\"offset\"/> on, with this layer's cached keys and values in <paramref name=\"state\"/>.</summary>");
                    using (w.Block($"internal Tensor Decode(Tensor x{BlockParameters}, LayerState state, long offset)"))
                    {
                        w.Line("using var scope = NewDisposeScope();");
                        var attend = Latent ? $"{names.Attention}.forward(normed, state, offset)"
                            : Compressed ? $"{names.Attention}.Decode(normed, state.Block(LayerState.CompressedAttention, () => {names.Attention}.NewCache(x.shape[0])))"
                            : $"{names.Attention}.Decode(normed{LayerArguments}, state, offset)";
                        if (Streams is { } decodeStreams)
                        {
                            WriteStreamBlock(decodeStreams, Hybrid ? $"({names.Attention} is not null ? {attend} : conv!.forward(normed, state))" : attend);
                        }
                        else
                        {
                            w.Line($"var normed = {names.AttentionNorm}.forward(x);");
                            w.Line(Hybrid
                                ? $"var h = x + ({names.Attention} is not null ? {attend} : conv!.forward(normed, state));"
                                : $"var h = x + {attend};");
                            w.Line($"return (h + {FeedForwardCall($"{names.MlpNorm}.forward(h)")}).MoveToOuterDisposeScope();");
                        }
                    }
                }
                if (plan.DecodesInOneKernel)
                {
                    w.Line();
                    w.Line("/// <summary>This block's weights for the fused single-token step.</summary>");
                    using (w.Block("internal DecoderBlockWeights KernelWeights()"))
                    {
                        var attentionMixer = Latent ? $"new LatentMixer({names.Attention})" : $"{names.Attention}.KernelMixer";
                        w.Line(Hybrid
                            ? $"BlockMixer mixer = {names.Attention} is not null ? {attentionMixer} : new ConvolutionMixer({ConvPlan.BlockName}!);"
                            : $"BlockMixer mixer = {attentionMixer};");
                        w.Line(MixedFeedForward
                            ? $"BlockFeedForward feedForward = {names.Mlp} is MixtureOfExperts experts ? experts.KernelFeedForward() : ((FeedForward){names.Mlp}).KernelFeedForward();"
                            : $"BlockFeedForward feedForward = {names.Mlp}.KernelFeedForward();");
                        w.Line($"return new({names.AttentionNorm}, mixer, {names.MlpNorm}, feedForward);");
                    }
                }
                if (ExposesScores)
                {
                    w.Line();
                    w.Line("/// <summary>This layer's pre-softmax attention scores for hidden states <paramref name=\"x\"/> (inspection).</summary>");
                    if (Streams is { } scoreStreams)
                        using (w.Block($"internal Tensor AttentionScores(Tensor x{LayerParameters})"))
                        {
                            w.Line("using var scope = NewDisposeScope();");
                            w.Line($"var (h, _, _) = {StreamsPre(scoreStreams, StreamsPlan.AttentionMap)};");
                            w.Line($"return {names.Attention}{(Hybrid ? "!" : "")}.Scores({names.AttentionNorm}.forward(h){LayerArguments}).MoveToOuterDisposeScope();");
                        }
                    else
                        w.Line($"internal Tensor AttentionScores(Tensor x{LayerParameters}) => {names.Attention}{(Hybrid ? "!" : "")}.Scores({names.AttentionNorm}.forward(x){LayerArguments});");
                }
                if (TokenIds && MixedFeedForward)
                {
                    w.Line();
                    w.Line("/// <summary>This layer's feed-forward: a mixture takes the token ids (its hash-routed layers choose by them), a dense one does not.</summary>");
                    w.Line($"private Tensor RunFeedForward(Tensor x, Tensor tokens) => {names.Mlp} is MixtureOfExperts experts ? experts.forward(x, tokens) : ((FeedForward){names.Mlp}).forward(x);");
                }
            }
        }

        private StreamsPlan? Streams => plan.Streams;

        /// <summary>The streams collapsed for the final norm (DeepSeek's hc_head), or the hidden states without streams.</summary>
        private string CollapsedStreams => Streams is { } s
            ? $"HyperConnections.Head(x, {StreamsPlan.HeadMap}_fn, {StreamsPlan.HeadMap}_scale, {StreamsPlan.HeadMap}_base, normEps: {D(s.NormEps)})"
            : "x";

        /// <summary>The embedding copied into every residual stream.</summary>
        private void WriteStreamExpansion()
        {
            if (Streams is { } s) w.Line($"x = HyperConnections.Expand(x, {s.Streams}); // [batch, time, {s.Streams} streams, {plan.Dim}]");
        }

        private void WriteStreamFields(StreamsPlan streams, string map)
        {
            foreach (var (tensor, _) in streams.Tensors(map)) w.Line($"private readonly Parameter {tensor};");
        }

        private void WriteStreamParameters(StreamsPlan streams, string map)
        {
            foreach (var (tensor, shape) in streams.Tensors(map))
                w.Line($"{tensor} = new Parameter(torch.empty({string.Join(", ", shape.Select(L))}, device: device, dtype: dtype));");
            w.Line($"HyperConnections.Initialize({map}_fn, {map}_base, {map}_scale);");
        }

        private string StreamsPre(StreamsPlan streams, string map) =>
            $"HyperConnections.Pre(x, {map}_fn, {map}_scale, {map}_base, iterations: {streams.SinkhornIterations}, normEps: {D(streams.NormEps)})";

        /// <summary>A layer around residual streams x [batch, time, n, dim] (DeepSeek V4's Block.forward): each sub-block
        /// reads the streams mixed by pre, and its output is spread by post over the streams mixed by comb.</summary>
        private void WriteStreamBlock(StreamsPlan streams, string mixNormed)
        {
            w.Line($"var (h, post, comb) = {StreamsPre(streams, StreamsPlan.AttentionMap)};");
            w.Line($"var normed = {names.AttentionNorm}.forward(h);");
            w.Line($"x = HyperConnections.Post({mixNormed}, x, post, comb);");
            w.Line($"(h, post, comb) = {StreamsPre(streams, StreamsPlan.FeedForwardMap)};");
            w.Line($"return HyperConnections.Post({FeedForwardCall($"{names.MlpNorm}.forward(h)")}, x, post, comb).MoveToOuterDisposeScope();");
        }

        /// <summary>The constructor call of the planned lightning indexer; null without one.</summary>
        private string? NewIndexer => plan.Indexer is { } ix
            ? $"new LightningIndexer({plan.Dim}, heads: {ix.Heads}, indexDim: {ix.Dim}, topK: {ix.TopK}, device, dtype)"
            : null;

        /// <summary>0-based layers of one compressed-attention kind.</summary>
        private IEnumerable<int> CompressedLayerIndices(CompressedKind kind) => plan.Layers.Where(l => l.Compressed?.Kind == kind).Select(l => l.Index);

        /// <summary>The options of a compressed-attention layer of <paramref name="kind"/>, literal sizes.</summary>
        private string CompressedOptions(CompressedPlan c, CompressedKind kind)
        {
            var ratio = kind switch { CompressedKind.CompressedSparse => c.SparseRatio, CompressedKind.HeavilyCompressed => c.HeavyRatio, _ => 0 };
            var sparse = kind == CompressedKind.CompressedSparse;
            return $"new CompressedAttentionOptions(Dim: {plan.Dim}, Heads: {c.Heads}, HeadDim: {c.HeadDim}, RopeDim: {c.RopeDim}, QueryRank: {c.QueryRank}, " +
                   $"OutputGroups: {c.OutputGroups}, OutputRank: {c.OutputRank}, Window: {c.Window}, Kind: CompressedAttentionKind.{kind}, Ratio: {ratio}, " +
                   $"IndexerHeads: {(sparse ? c.IndexerHeads : 0)}, IndexerDim: {(sparse ? c.IndexerDim : 0)}, TopK: {(sparse ? c.TopK : 0)}, " +
                   $"Precision: IndexerPrecision.{c.Precision}, Bf16Scores: {(sparse && c.Bf16Scores ? "true" : "false")}, " +
                   $"Context: {plan.Context}, RopeTheta: {D(c.RopeTheta)}, NormEps: {D(c.NormEps)})";
        }

        /// <summary>A layer's compressed attention: one switch arm per kind the model has, the options' sizes literal.</summary>
        private void WriteNewCompressedAttention(CompressedPlan c)
        {
            var arms = new[] { CompressedKind.CompressedSparse, CompressedKind.HeavilyCompressed, CompressedKind.SlidingWindow }
                .Where(k => plan.Layers.Any(l => l.Compressed?.Kind == k)).ToList();
            w.Line($"{names.Attention} = new CompressedAttention(kind switch");
            w.Line("{");
            for (var i = 0; i < arms.Count; i++)
                w.Line($"    {(i == arms.Count - 1 ? "_" : $"CompressedAttentionKind.{arms[i]}")} => {CompressedOptions(c, arms[i])},");
            w.Line("}, device, dtype);");
        }

        /// <summary>The constructor call of a layer's attention.</summary>
        private string NewAttention()
        {
            var indexer = NewIndexer ?? "null";
            if (plan.Latent is { } l)
                return $"new LatentAttention(new LatentAttentionOptions(Dim: {plan.Dim}, Heads: {l.Heads}, HeadDim: {l.HeadDim}, KvRank: {l.KvRank}, RopeDim: {l.RopeDim}, QRank: {l.QRank}, " +
                       $"Context: {plan.Context}, RopeTheta: {D(l.RopeTheta)}, NormEps: {D(l.LatentNorm.Eps)}, Layers: {plan.Layers.Count}{(plan.Causal ? "" : ", Causal: false")}), indexer: {indexer}, device, dtype)";
            return Sharing ? "new SelfAttention(ownsKeysAndValues, device, dtype)" : "new SelfAttention(device, dtype)";
        }

        private void WriteAttention()
        {
            var a = plan.Attention!;
            var parts = a.Parts;
            var repeatedQueries = a.RepeatedQueries;

            w.Line($"/// <summary>{(plan.Causal ? "Causal" : "Bidirectional")} self-attention, {a.Variant} projections ({a.AliasingSummary}): " +
                   $"{a.Heads} query heads and {a.KvHeads} key/value heads of width {a.HeadDim}.</summary>");
            using (w.Block($"public sealed class SelfAttention : {LayerModule}"))
            {
                w.Line(repeatedQueries
                    ? $"private const int Heads = {a.Heads}, KvHeads = {a.KvHeads}, QueriesPerKvHead = {a.Heads / a.KvHeads};"
                    : $"private const int Heads = {a.Heads}, KvHeads = {a.KvHeads};");
                // With KV sharing, layers that reuse a group's keys and values lack the projections only owners have
                // (a fused c_attn exists in both, narrower in the reusing layers).
                var queryOnly = a.QueryOnlyProjections.Select(l => l.Name).ToList();
                bool OwnersOnly(LinearPlan linear) => Sharing && !queryOnly.Contains(linear.Name);
                foreach (var linear in a.Projections)
                    w.Line($"private readonly {LinearType(AttentionQuantization)}{(OwnersOnly(linear) ? "?" : "")} {linear.Name};");
                w.Line($"private readonly {LinearType(AttentionQuantization)} {a.Output.Name};");
                if (a.ScoreMixer) w.Line("private readonly PositionalScoreMixer score_mixer;");
                if (a.QueryNorm is { } queryNorm) w.Line($"private readonly RmsNorm {queryNorm.Name};");
                if (a.KeyNorm is { } keyNorm) w.Line($"private readonly RmsNorm {keyNorm.Name};");
                if (plan.Indexer is not null) w.Line("private readonly LightningIndexer indexer;");
                if (Sharing) w.Line("private readonly bool ownsKeysAndValues;");
                w.Line();
                using (w.Block($"internal SelfAttention({OwnsParameter}Device? device, ScalarType? dtype) : base(nameof(SelfAttention))"))
                {
                    if (Sharing) w.Line("this.ownsKeysAndValues = ownsKeysAndValues;");
                    foreach (var linear in a.Projections.Where(l => !OwnersOnly(l)))
                    {
                        // A fused projection is narrower in layers that reuse their group's keys and values.
                        var reused = a.QueryOnlyProjections.FirstOrDefault(q => q.Name == linear.Name);
                        var outputs = Sharing && reused is not null && reused.Outputs != linear.Outputs ? $"ownsKeysAndValues ? {linear.Outputs} : {reused.Outputs}" : L(linear.Outputs);
                        WriteLinear(linear, AttentionQuantization, outputs);
                    }
                    if (a.Projections.Any(OwnersOnly))
                    {
                        using (w.Block("if (ownsKeysAndValues)"))
                            foreach (var linear in a.Projections.Where(OwnersOnly))
                                WriteLinear(linear, AttentionQuantization);
                    }
                    WriteLinear(a.Output, AttentionQuantization);
                    if (a.ScoreMixer) w.Line(plan.ScoreMixerStd is { } mixerStd ? $"score_mixer = new PositionalScoreMixer(device, dtype, weightStd: {D(mixerStd)});" : "score_mixer = new PositionalScoreMixer(device, dtype);");
                    foreach (var norm in new[] { a.QueryNorm, a.KeyNorm }.Where(n => n is not null))
                        w.Line($"{norm!.Name} = new RmsNorm({norm.Width}, eps: {D(norm.Eps)}, device, dtype);");
                    if (NewIndexer is { } newIndexer) w.Line($"indexer = {newIndexer};");
                    w.Line("RegisterComponents();");
                }
                w.Line();
                w.Line(rope
                    ? "/// <summary>Attention output [batch, time, dim] for normalised inputs and the rotary angles of their positions.</summary>"
                    : "/// <summary>Attention output [batch, time, dim] for normalised inputs.</summary>");
                using (w.Block($"public override Tensor forward(Tensor x{LayerParameters})"))
                {
                    w.Line("using var scope = NewDisposeScope();");
                    w.Line($"var (q, k, v) = Project(x{LayerArguments});");
                    var attend = plan.Causal ? "Attention.Causal(q, k, v)" : "Attention.Bidirectional(q, k, v)";
                    if (plan.Indexer is not null)
                    {
                        w.Line("var indexKeys = indexer.Keys(x.detach()); // the indexer's loss must not reach the layers below");
                        w.Line("// In training the indexer also learns which keys attention uses, from the same index scores it ranks by.");
                        w.Line("var keep = training ? indexer.SelectAndSupervise(q, k, x, indexKeys, offset: 0) : indexer.Select(x, indexKeys, offset: 0);");
                        w.Line("var mixed = Attention.Masked(q, k, v, keep); // each query sees its top-k past tokens");
                    }
                    else
                        w.Line(a.ScoreMixer
                            ? $"var mixed = score_mixer.Attend(q, k, v{(plan.Causal ? "" : ", causal: false")}); // symmetric scores plus the learned positional term"
                            : $"var mixed = {attend};");
                    WriteAttentionOutput(repeatedQueries);
                }
                if (Decodes)
                {
                    w.Line();
                    WriteAttentionDecode(repeatedQueries);
                }
                w.Line();
                w.Line("/// <summary>Pre-softmax scores [batch, heads, time, time], unmasked, for inspection (with the positional term when declared).</summary>");
                using (w.Block($"internal Tensor Scores(Tensor x{LayerParameters})"))
                {
                    w.Line("using var scope = NewDisposeScope();");
                    w.Line($"var (q, k, _) = Project(x{LayerArguments});");
                    w.Line($"return {(a.ScoreMixer ? "score_mixer.Scores(q, k)" : "Attention.Scores(q, k)")}.MoveToOuterDisposeScope();");
                }
                if (plan.DecodesInOneKernel)
                {
                    w.Line();
                    w.Line("/// <summary>The projections and heads, for the fused single-token step.</summary>");
                    var norms = (a.QueryNorm is { } qn ? $", QueryNorm: {qn.Name}" : "") + (a.KeyNorm is { } kn ? $", KeyNorm: {kn.Name}" : "");
                    string Projection(string part) => a.Parts.FirstOrDefault(p => p.Name == part) is { } found ? ProjectionOf(a, found).Name : "null";
                    var key = Projection("k") == "null" ? "Key: null" : Projection("k");
                    w.Line($"internal AttentionMixer KernelMixer => new({Projection("q")}, {key}, {Projection("v")}, {a.Output.Name}, Heads, KvHeads{norms});");
                }
                w.Line();
                w.Line("/// <summary>Queries, keys and values split into heads, rotated where positions are rotary.</summary>");
                using (w.Block($"private (Tensor Q, Tensor K, Tensor V) Project(Tensor x{LayerParameters})"))
                {
                    if (Sharing) WriteSharedKeyValues();
                    else if (names.FusedProjections)
                    {
                        w.Line($"var projected = {a.Projections[0].Name}.forward(x).split(new long[] {{ {string.Join(", ", parts.Select(p => p.Width))} }}, dim: -1);");
                        for (var i = 0; i < parts.Count; i++)
                            w.Line($"var {Local(parts[i].Name)} = Attention.SplitHeads(projected[{i}], {HeadsOf(parts[i])});");
                    }
                    else
                    {
                        foreach (var part in parts)
                            w.Line($"var {Local(part.Name)} = Attention.SplitHeads({ProjectionOf(a, part).Name}.forward(x), {HeadsOf(part)});");
                    }
                    if (a.QueryNorm is not null || (a.KeyNorm is not null && !a.KeysAreValues))
                    {
                        w.Line("// Per-head RMSNorm of queries and keys before rotation (QkNorm).");
                        if (a.QueryNorm is { } queries) w.Line($"q = {queries.Name}.forward(q);");
                        if (a.KeyNorm is { } keys && !a.KeysAreValues) w.Line($"k = {keys.Name}.forward(k);");
                    }
                    if (!Sharing) WriteQueryKeyAliases(a);
                    w.Line("return (q, k, v);");
                }
            }
        }

        private static string Local(string part) => part == "qkv" ? "v" : part;

        private static string HeadsOf(ProjectionPart part) => part.QueryHeads ? "Heads" : "KvHeads";

        /// <summary>The linear layer that computes <paramref name="part"/> when projections are not fused (one per part).</summary>
        private static LinearPlan ProjectionOf(AttentionPlan a, ProjectionPart part) => a.Projections[a.Parts.ToList().IndexOf(part)];

        /// <summary>Heads back to [batch, time, dim] through the output projection.</summary>
        private void WriteAttentionOutput(bool repeatedQueries)
        {
            if (repeatedQueries)
            {
                w.Line("// Every query head of a group equals its key head, so their outputs are equal: attend once per");
                w.Line("// key/value head, then give each query head its group's result.");
                w.Line("mixed = mixed.repeat_interleave(QueriesPerKvHead, dim: 1);");
            }
            w.Line($"return {plan.Attention!.Output.Name}.forward(Attention.MergeHeads(mixed)).MoveToOuterDisposeScope();");
        }

        /// <summary>
        /// The cached path: project only the new tokens, append to this layer's cache and attend over everything cached.
        /// Variants whose keys are the values cache the values alone (the KV-cache saving they exist for) and derive
        /// the keys by rotating them at every step.
        /// </summary>
        private void WriteAttentionDecode(bool repeatedQueries)
        {
            var a = plan.Attention!;
            w.Line(rope
                ? "/// <summary>Attention output for new tokens at <paramref name=\"offset\"/> on; <paramref name=\"cos\"/> and <paramref name=\"sin\"/> cover positions 0 … offset + time − 1.</summary>"
                : "/// <summary>Attention output for new tokens at <paramref name=\"offset\"/> on, over everything this layer has cached.</summary>");
            using (w.Block($"internal Tensor Decode(Tensor x{LayerParameters}, LayerState state, long offset)"))
            {
                w.Line("using var scope = NewDisposeScope();");
                var projectArguments = rope ? "x, cos.narrow(0, offset, x.shape[1]), sin.narrow(0, offset, x.shape[1])" : "x";
                if (Sharing) projectArguments += ", shared";
                w.Line($"var (q, k, v) = Project({projectArguments});");
                void Cache()
                {
                    if (a.KeysAreValues)
                    {
                        w.Line($"values = state.Append({Slot(nameof(CacheSlots.Keys))}, v, dim: 2); // keys are the values: only the values are cached");
                        var normalized = a.KeyNorm is { } keyNorm ? $"{keyNorm.Name}.forward(values)" : "values";
                        w.Line(rope ? $"keys = RotaryEmbedding.Rotate({normalized}, cos, sin);" : $"keys = {normalized};");
                    }
                    else
                    {
                        w.Line($"keys = state.Append({Slot(nameof(CacheSlots.Keys))}, k, dim: 2);");
                        w.Line($"values = state.Append({Slot(nameof(CacheSlots.Values))}, v, dim: 2);");
                    }
                }
                w.Line("Tensor keys, values;");
                if (Sharing)
                {
                    using (w.Block("if (ownsKeysAndValues)"))
                    {
                        Cache();
                        w.Line("shared.Set(keys, values); // the whole cache, for the layers of this group that reuse it");
                    }
                    w.Line("else");
                    w.Line("    (keys, values) = (k, v); // already the group's whole cache");
                }
                else Cache();
                if (plan.Indexer is not null)
                {
                    w.Line($"var indexKeys = state.Append({Slot(nameof(CacheSlots.IndexerKeys))}, indexer.Keys(x), dim: 1);");
                    w.Line("var mixed = Attention.Masked(q, keys, values, indexer.Select(x, indexKeys, offset));");
                }
                else
                    w.Line("var mixed = Attention.CausalFrom(q, keys, values, offset);");
                WriteAttentionOutput(repeatedQueries);
            }
        }

        /// <summary>Queries from this layer; keys and values from this layer if it owns them, else from its group's first layer.</summary>
        private void WriteSharedKeyValues()
        {
            var a = plan.Attention!;
            var query = a.Parts.Single(p => p.QueryHeads);
            if (names.FusedProjections)
            {
                w.Line($"var projected = {a.Projections[0].Name}.forward(x);");
                w.Line($"var q = Attention.SplitHeads(projected.narrow(-1, 0, {query.Width}), Heads);");
            }
            else
                w.Line($"var q = Attention.SplitHeads({a.QueryOnlyProjections[0].Name}.forward(x), Heads);");
            if (rope) w.Line("q = RotaryEmbedding.Rotate(q, cos, sin);");
            w.Line("Tensor k, v;");
            using (w.Block("if (ownsKeysAndValues)"))
            {
                long offset = query.Width;
                foreach (var part in a.Parts.Where(p => p.KeyValue))
                {
                    var projected = names.FusedProjections ? $"projected.narrow(-1, {offset}, {part.Width})" : $"{ProjectionOf(a, part).Name}!.forward(x)";
                    w.Line($"{part.Name} = Attention.SplitHeads({projected}, KvHeads);");
                    offset += part.Width;
                }
                if (a.Aliasing == QueryKeyAliasing.KeysAreValues)
                    w.Line(rope ? "k = RotaryEmbedding.Rotate(v, cos, sin); // keys are the values, rotated for scoring" : "k = v; // keys are the values");
                else if (rope)
                    w.Line("k = RotaryEmbedding.Rotate(k, cos, sin);");
                w.Line("shared.Set(k, v);");
            }
            w.Line("else");
            w.Line("    (k, v) = shared.Get(); // the keys and values of this group's first layer");
        }

        /// <summary>Binds q and k for variants that reuse a projection, rotating each distinct tensor once.</summary>
        private void WriteQueryKeyAliases(AttentionPlan a)
        {
            var values = a.KeyNorm is { } keyNorm ? $"{keyNorm.Name}.forward(v)" : "v";
            switch (a.Aliasing)
            {
                case QueryKeyAliasing.None:
                    if (rope)
                    {
                        w.Line("q = RotaryEmbedding.Rotate(q, cos, sin);");
                        w.Line("k = RotaryEmbedding.Rotate(k, cos, sin);");
                    }
                    break;
                case QueryKeyAliasing.KeysAreValues:
                    w.Line(rope ? $"var k = RotaryEmbedding.Rotate({values}, cos, sin); // keys are the values, rotated for scoring" : $"var k = {values}; // keys are the values");
                    if (rope) w.Line("q = RotaryEmbedding.Rotate(q, cos, sin);");
                    break;
                case QueryKeyAliasing.QueriesAreKeys:
                    if (rope) w.Line("k = RotaryEmbedding.Rotate(k, cos, sin);");
                    w.Line("var q = k; // queries are the keys: symmetric scores");
                    break;
                case QueryKeyAliasing.OneProjection:
                    w.Line(rope ? $"var k = RotaryEmbedding.Rotate({values}, cos, sin);" : $"var k = {values};");
                    w.Line("var q = k; // one projection is query, key and value");
                    break;
            }
        }


        /// <summary>A decoding-cache stream by the runtime's name for it.</summary>
        private static string Slot(string name) => "LayerState." + name;

        private void WriteMlp()
        {
            // One class serves every feed-forward of the model; with experts it serves three widths (dense layers,
            // each expert, the shared experts) and takes its width as an argument.
            var template = plan.Dense ?? plan.Mixture!.Expert;
            var swiGlu = template.Activation == ActivationKind.SwiGlu;
            var widthNote = plan.Mixture is { } mixture
                ? $" {(plan.Dense is { } dense ? $"{dense.Hidden} wide in dense layers, " : "")}{mixture.Expert.Hidden} per expert{(mixture.Shared is { } shared ? $", {shared.Hidden} for the shared experts" : "")}"
                : $" of width {template.Hidden}";
            var quantizationNote = plan.FeedForwardQuantization == Planning.FeedForwardQuantization.PerInstance
                ? $" Fake-quantized only where built with a quantization: in {(plan.Mixture!.Expert.Quantized ? "the routed experts" : "the dense layers and shared experts")}."
                : "";
            var clampNote = template.ClampLimit is { } limit ? $" The gate is clamped to at most {D(limit)} and up to [−{D(limit)}, {D(limit)}] before SiLU (SwiGLU clamping)." : "";
            w.Line(swiGlu
                ? $"/// <summary>SwiGLU feed-forward{widthNote}: down(silu(gate(x)) ⊙ up(x)).{clampNote}{quantizationNote}</summary>"
                : $"/// <summary>GELU feed-forward{widthNote}: down(gelu(up(x))).{quantizationNote}</summary>");
            using (w.Block("public sealed class FeedForward : nn.Module<Tensor, Tensor>"))
            {
                var widthArgument = plan.Mixture is not null;
                // Widths as the class writes them: literal, or in terms of its hidden-width argument.
                string Hidden(long multiple) => !widthArgument ? L(multiple * template.Hidden) : multiple == 1 ? "hidden" : $"{multiple} * hidden";
                foreach (var linear in template.Linears) w.Line($"private readonly {LinearType(FeedForwardQuantization)} {linear.Name};");
                w.Line();
                var quantizationParameter = plan.FeedForwardQuantization == Planning.FeedForwardQuantization.PerInstance ? "WeightQuantization? quantization, " : "";
                using (w.Block($"internal FeedForward({(widthArgument ? "long hidden, " : "")}{quantizationParameter}Device? device, ScalarType? dtype) : base(nameof(FeedForward))"))
                {
                    foreach (var linear in template.Inputs) WriteLinear(linear, FeedForwardQuantization, Hidden(linear.Outputs / template.Hidden));
                    WriteLinear(template.Output, FeedForwardQuantization, inputs: Hidden(1));
                    w.Line("RegisterComponents();");
                }
                w.Line();
                w.Line("/// <summary>Feed-forward output [..., dim] for normalised inputs [..., dim].</summary>");
                using (w.Block("public override Tensor forward(Tensor x)"))
                {
                    w.Line("using var scope = NewDisposeScope();");
                    var inputs = template.Inputs.ToList();
                    var down = template.Output.Name;
                    string result;
                    if (swiGlu)
                    {
                        string gate, up;
                        if (names.FusedProjections)
                        {
                            w.Line($"var gateAndUp = {inputs[0].Name}.forward(x).chunk(2, dim: -1);");
                            (gate, up) = ("gateAndUp[0]", "gateAndUp[1]");
                        }
                        else (gate, up) = ($"{inputs[0].Name}.forward(x)", $"{inputs[1].Name}.forward(x)");
                        if (template.ClampLimit is { } clamp)
                        {
                            w.Line($"var gate = {gate}.clamp_max({D(clamp)});")
                             .Line($"var up = {up}.clamp({D(-clamp)}, {D(clamp)});");
                            (gate, up) = ("gate", "up");
                        }
                        result = $"{down}.forward(nn.functional.silu({gate}) * {up})";
                    }
                    else
                        result = $"{down}.forward(nn.functional.gelu({inputs[0].Name}.forward(x), GELU.Approximate.tanh))";
                    w.Line($"return {result}.MoveToOuterDisposeScope();");
                }
                if (plan.DecodesInOneKernel)
                {
                    w.Line();
                    w.Line("/// <summary>The three projections, for the fused single-token step.</summary>");
                    w.Line($"internal SwiGluWeights KernelFeedForward() => new({string.Join(", ", template.Linears.Select(l => l.Name))});");
                }
            }
        }

        private void WriteMixtureOfExperts(MixturePlan mixture)
        {
            var m = mixture.Settings;
            var scoring = m.Router switch { RouterKind.Softmax => "softmax", RouterKind.Sigmoid => "sigmoid", _ => "√softplus" };
            var balance = m.Balance switch
            {
                BalanceKind.AuxLoss => "an auxiliary balancing loss",
                BalanceKind.AuxLossFree => "auxiliary-loss-free balancing (a selection bias nudged after each step)",
                _ => "no balancing",
            };
            if (m.SequenceAuxLossWeight > 0) balance += $" and a sequence-wise balance loss (weight {D(m.SequenceAuxLossWeight)})";
            var hashed = m.HashLayers == 0 ? ""
                : $"; the first {(m.HashLayers == 1 ? "routed layer chooses" : $"{m.HashLayers} routed layers choose")} each token's experts from a fixed token→experts table, " +
                  "which the router's scores only weigh (hash routing: no selection bias, no balancing loss there)";
            w.Line($"/// <summary>Mixture of experts: a {scoring} router sends each token to {m.Active} of {m.Experts} experts, with {balance}" +
                   $"{(m.Shared > 0 ? $"; {m.Shared} shared expert{(m.Shared > 1 ? "s see" : " sees")} every token" : "")}{hashed}. Only chosen experts run.</summary>");
            using (w.Block(TokenIds ? "public sealed class MixtureOfExperts : nn.Module<Tensor, Tensor, Tensor>" : "public sealed class MixtureOfExperts : nn.Module<Tensor, Tensor>"))
            {
                w.Line($"private const int Experts = {m.Experts};");
                w.Line($"private readonly ExpertRouter {MixturePlan.RouterName};");
                w.Line($"private readonly ModuleList<FeedForward> {MixturePlan.ExpertsName};");
                if (m.Shared > 0) w.Line($"private readonly FeedForward {MixturePlan.SharedName};");
                w.Line();
                using (w.Block($"internal MixtureOfExperts({HashParameter}Device? device, ScalarType? dtype) : base(nameof(MixtureOfExperts))"))
                {
                    w.Line($"gate = new ExpertRouter(new RouterOptions(Dim: {plan.Dim}, Experts: Experts, Active: {m.Active}, Scoring: RouterScoring.{m.Router}, Balance: ExpertBalance.{m.Balance},");
                    w.Line($"    NormalizeWeights: {(m.NormalizeWeights ? "true" : "false")}, RoutedScale: {D(m.RoutedScale)}, AuxLossWeight: {D(m.AuxLossWeight)}, BiasUpdateRate: {D(m.BiasUpdateRate)}" +
                           (m.SequenceAuxLossWeight > 0 ? $", SequenceAuxLossWeight: {D(m.SequenceAuxLossWeight)}" : "") +
                           (TokenIds ? $", HashVocab: {(PartlyHashed ? $"hashRouted ? {plan.Vocab} : 0" : $"{plan.Vocab}")}" : "") + "), device, dtype);");
                    w.Line("experts = new ModuleList<FeedForward>();");
                    w.Line($"for (var i = 0; i < Experts; i++) experts.Add(new FeedForward(hidden: {mixture.Expert.Hidden}, {FeedForwardQuantizationArgument(mixture.Expert)}device, dtype));");
                    if (mixture.Shared is { } shared) w.Line($"shared_experts = new FeedForward(hidden: {L(shared.Hidden)}, {FeedForwardQuantizationArgument(shared)}device, dtype);");
                    w.Line("RegisterComponents();");
                }
                w.Line();
                w.Line(TokenIds
                    ? "/// <summary>Weighted sum of the chosen experts' outputs [batch, time, dim] for normalised inputs and their token ids [batch, time] (a hash-routed layer chooses by them).</summary>"
                    : "/// <summary>Weighted sum of the chosen experts' outputs [batch, time, dim] for normalised inputs.</summary>");
                using (w.Block(TokenIds ? "public override Tensor forward(Tensor x, Tensor tokenIds)" : "public override Tensor forward(Tensor x)"))
                {
                    w.Line("using var scope = NewDisposeScope();");
                    w.Line($"var tokens = x.reshape(-1, {plan.Dim});");
                    // The sequence-wise balance loss needs to know where one sequence ends: x is [batch, time, dim].
                    var sequence = m.SequenceAuxLossWeight > 0 ? ", sequenceLength: x.shape[1]" : "";
                    var ids = TokenIds ? ", tokenIds: tokenIds" : "";
                    w.Line($"var routed = ExpertDispatch.Combine(tokens, gate.Route(tokens{sequence}{ids}), experts);");
                    w.Line(m.Shared > 0
                        ? "return (routed + shared_experts.forward(tokens)).view_as(x).MoveToOuterDisposeScope();"
                        : "return routed.view_as(x).MoveToOuterDisposeScope();");
                }
                if (plan.DecodesInOneKernel)
                {
                    w.Line();
                    w.Line("/// <summary>The router and the experts, for the fused single-token step.</summary>");
                    using (w.Block("internal MixtureWeights KernelFeedForward()"))
                    {
                        w.Line("var routed = new SwiGluWeights[Experts];");
                        w.Line($"for (var i = 0; i < Experts; i++) routed[i] = {MixturePlan.ExpertsName}[i].KernelFeedForward();");
                        w.Line($"return new({MixturePlan.RouterName}, routed, {(m.Shared > 0 ? $"{MixturePlan.SharedName}.KernelFeedForward()" : "Shared: null")});");
                    }
                }
            }
        }

        /// <summary>Creates one planned linear layer; with <paramref name="quantization"/> (an expression for its settings)
        /// a QuantizedLinear, whose parameters have the same names and shapes. <paramref name="inputs"/> and
        /// <paramref name="outputs"/> replace the literal widths where the class takes them as arguments.</summary>
        private void WriteLinear(LinearPlan linear, string? quantization, string? outputs = null, string? inputs = null)
        {
            var field = linear.Name;
            var bias = linear.Bias ? "true" : "false";
            inputs ??= L(linear.Inputs);
            outputs ??= L(linear.Outputs);
            if (quantization is not null)
                w.Line(linear.Transposed
                    ? $"{field} = new QuantizedLinear({inputs}, {outputs}, hasBias: {bias}, {quantization}, transposed: true, device, dtype);"
                    : $"{field} = new QuantizedLinear({inputs}, {outputs}, hasBias: {bias}, {quantization}, device: device, dtype: dtype);");
            else
                w.Line(linear.Transposed
                    ? $"{field} = new TransposedLinear({inputs}, {outputs}, hasBias: {bias}, device, dtype);"
                    : $"{field} = new Linear({inputs}, {outputs}, hasBias: {bias}, device, dtype);");
            switch (linear.Init)
            {
                case WeightInit.PyTorchUniform:
                    w.Line($"Init.PyTorchLinear({field}.weight, {field}.bias, fanIn: {L(linear.Inputs)});");
                    break;
                case WeightInit.ResidualOutput:
                    w.Line($"Init.ResidualOutput({field}.weight, layers: {plan.Layers.Count});");
                    if (linear.Bias) w.Line($"Init.Zeros({field}.bias);");
                    break;
                default:
                    w.Line($"Init.Normal({field}.weight);");
                    if (linear.Bias) w.Line($"Init.Zeros({field}.bias);");
                    break;
            }
        }

        private static string NewNorm(NormPlan norm) => norm.Kind == NormKind.LayerNorm
            ? $"nn.LayerNorm({norm.Width}, eps: {D(norm.Eps)}, device: device, dtype: dtype)"
            : $"new RmsNorm({norm.Width}, eps: {D(norm.Eps)}, device, dtype)";

        private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
        private static string Percent(long part, long whole) => (100.0 * part / whole).ToString("F1", CultureInfo.InvariantCulture) + "%";
        private static string L(long value) => value.ToString(CultureInfo.InvariantCulture);
        private static string D(double value) => value.ToString("R", CultureInfo.InvariantCulture);
    }
}
