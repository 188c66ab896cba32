using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;

namespace LlmEff.Generator.Emitting;

/// <summary>
/// Writes the PyTorch twin of a declared model: a readable <c>torch.nn.Module</c> (Python source) with the same
/// architecture and the same parameter names and shapes as the TorchSharp module's <c>state_dict</c>, so one
/// checkpoint serves both. Pure: spec records in, text out. <see cref="Emit"/> wraps the Python in the generated
/// C# part that exposes it (<c>IDeclaredModel.PyTorch</c>); a spec with a feature that has no port yet gets a
/// part that carries the refusal instead (see <see cref="Refusal"/>).
/// </summary>
internal static class PyTorchEmitter
{
    public static string HintName(TypeTarget target) => GeneratedPart.HintName(target, ".PyTorch.g.cs");

    /// <summary>
    /// Why <paramref name="spec"/> cannot be written as PyTorch, naming the feature; null when it can. Every feature
    /// is checked here before anything is emitted, so a new block kind is refused by adding one check until its port
    /// lands, and the emitter never has to guess.
    /// </summary>
    public static string? Refusal(ModelSpec spec)
    {
        var a = spec.Attention;
        if (!Known(a.Projections)) return $"attention projections {(int)a.Projections} (not Full, NoKey, NoQuery or Shared) have no PyTorch port";
        if (!Known(spec.Norm)) return $"norm kind {(int)spec.Norm} has no PyTorch port";
        if (!Known(spec.Positions)) return $"position kind {(int)spec.Positions} has no PyTorch port";
        if (!Known(spec.Mlp.Activation)) return $"activation {(int)spec.Mlp.Activation} has no PyTorch port";
        if (!Known(spec.Naming)) return $"parameter naming {(int)spec.Naming} has no PyTorch port";
        if (spec.Moe is { } m)
        {
            if (!Known(m.Router)) return $"[MoE] router scoring {(int)m.Router} has no PyTorch port";
            if (!Known(m.Balance)) return $"[MoE] balancing {(int)m.Balance} has no PyTorch port";
        }
        if (spec.Quant is { } q && !Known(q.Format)) return $"[Quant] format {(int)q.Format} has no PyTorch port";
        return null;
    }

    private static bool Known<T>(T value) where T : struct, System.Enum => System.Enum.IsDefined(typeof(T), value);

    /// <summary>The generated C# part: a <c>PyTorch</c> property holding the Python source or the refusal.</summary>
    public static string Emit(ModelToEmit model)
    {
        var target = model.Target;
        return GeneratedPart.Write(target, $"the PyTorch twin of {target.FullName} (llmeff export-pytorch writes it to a .py file).", writer =>
        {
            using var part = writer.Block($"partial class {target.Name}");
            if (Refusal(model.Spec) is { } refusal)
            {
                writer.Line("/// <summary>This declaration has no PyTorch twin yet; the reason says which feature.</summary>")
                    .Line($"public static global::LlmEff.PyTorchExport PyTorch {{ get; }} = global::LlmEff.PyTorchExport.Refused({GeneratedPart.StringLiteral(refusal)});");
            }
            else
            {
                var python = EmitPython(model);
                var delimiter = new string('"', System.Math.Max(3, LongestQuoteRun(python) + 1));
                writer.Line("/// <summary>The equivalent PyTorch module (Python source): same architecture, same parameter names and shapes.</summary>")
                    .Line($"public static global::LlmEff.PyTorchExport PyTorch {{ get; }} = global::LlmEff.PyTorchExport.Module({GeneratedPart.StringLiteral(target.Name + ".py")},")
                    .Line($"    {delimiter}");
                // Every line of a raw string literal is indented at least as far as its closing delimiter, which
                // the compiler strips: indent each Python line by exactly that much, so the text comes out verbatim.
                foreach (var line in python.TrimEnd('\n').Split('\n'))
                    writer.Line(line.Length == 0 ? "" : "    " + line);
                writer.Line($"    {delimiter});");
            }
        });
    }

    private static int LongestQuoteRun(string text)
    {
        int longest = 0, run = 0;
        foreach (var c in text)
        {
            run = c == '"' ? run + 1 : 0;
            if (run > longest) longest = run;
        }
        return longest;
    }


    /// <summary>The Python module for a spec that <see cref="Refusal"/> accepts.</summary>
    public static string EmitPython(ModelToEmit model) => new ModuleWriter(model).Write();

    private sealed class ModuleWriter
    {
        private readonly PythonWriter w = new();
        private readonly ModelSpec spec;
        private readonly ModelSizes sizes;
        private readonly TypeTarget target;
        private readonly Planning.NamingScheme names;
        private readonly LayoutPlan plan;
        private readonly AttentionSpec a;
        private readonly AttentionPlan? attention;
        private readonly bool rope;
        private readonly bool fused;
        private readonly LatentSpec? latent;
        private readonly HybridSpec? hybrid;
        private readonly SparseSpec? sparse;
        private readonly CompressedPlan? compressed;

        public ModuleWriter(ModelToEmit model)
        {
            spec = model.Spec;
            sizes = model.Sizes;
            target = model.Target;
            names = model.Plan.Names;
            plan = model.Plan;
            a = spec.Attention;
            attention = plan.Attention;
            // Rotary tables the stack owns and hands to attention layers (latent attention owns its own).
            rope = plan.StackRotary is not null;
            fused = names.FusedProjections;
            latent = a.Latent;
            hybrid = spec.Hybrid;
            sparse = spec.Sparse;
            compressed = plan.Compressed;
        }

        private bool Sharing => plan.SharesKeyValues;
        private bool MixedFeedForward => plan.MixedFeedForward;
        private bool QuantizesAttention => attention is { Quantized: true };
        private bool AnyQuantized => QuantizesAttention || plan.FeedForwardQuantization != FeedForwardQuantization.None;
        private string Bias => plan.Bias ? "True" : "False";
        private string Causal => spec.Causal ? "True" : "False";

        /// <summary>Inputs a layer takes besides the hidden states.</summary>
        private string LayerArguments => (plan.Takes(LayerInputs.RotaryAngles) ? ", cos, sin" : "") + (plan.Takes(LayerInputs.KeyValueShare) ? ", shared" : "");

        /// <summary>Hash routing (DeepSeek V4): every block takes the token ids, which its hash-routed mixture chooses
        /// experts by; without hash layers nothing of it is rendered.</summary>
        private bool TokenIds => plan.Mixture is { HashRouted: true };

        /// <summary>Some routed layers are hash-routed and some are not, so each block and mixture is told which.</summary>
        private bool PartlyHashed => plan.Mixture is { HashRouted: true } m && plan.Layers.Any(l => l.FeedForward == FeedForwardKind.Mixture && !m.IsHashRouted(l.Index));

        /// <summary>A block's parameters and the stack's arguments for them: the layers' (<see cref="LayerArguments"/>), then
        /// the token ids with hash routing.</summary>
        private string BlockParameters => LayerArguments + (TokenIds ? ", token_ids" : "");
        private string BlockArguments => LayerArguments + (TokenIds ? ", tokens" : "");

        public string Write()
        {
            WriteHeader();
            WriteConstants();
            foreach (var block in RuntimeBlocks()) w.Text(PythonRuntime.Included(block)).Line().Line();
            if (attention is not null) WriteAttention(attention);
            WriteFeedForward();
            if (plan.Mixture is { } mixture) WriteMixture(mixture);
            WriteLayer();
            WriteStack();
            WriteModel();
            return w.ToString();
        }

        /// <summary>The runtime blocks (paths under runtime/LlmEff.Runtime) this model uses, in the order the twin
        /// includes them; nothing else is included, so a twin carries no Python it does not run.</summary>
        public List<string> RuntimeBlocks()
        {
            var blocks = new List<string>();
            // nn.LayerNorm has the same parameters (weight, bias) and maths; per-head Q/K norms and latent norms are RMSNorms.
            if (plan.MixerNorm.Kind != NormKind.LayerNorm || attention?.KeyNorm is not null || latent is not null || compressed is not null) blocks.Add("Layers/rms_norm.py");
            if (fused) blocks.Add("Layers/transposed_linear.py");
            if (AnyQuantized)
            {
                var format = spec.Quant!.Format;
                if (format is QuantFormatKind.Mxfp4 or QuantFormatKind.Nvfp4) blocks.Add("Quantization/e2m1.py");
                if (format is QuantFormatKind.Nvfp4 or QuantFormatKind.Fp8E4M3) blocks.Add("Quantization/e4m3.py");
                if (format == QuantFormatKind.Mxfp4) blocks.Add("Quantization/e8m0.py");
                blocks.Add("Quantization/quantizer.py");
                blocks.Add("Quantization/straight_through.py");
                blocks.Add("Layers/quantized_linear.py");
            }
            if (rope || plan.Latent is not null || compressed is not null) blocks.Add("Layers/rotary_embedding.py");
            blocks.Add("Layers/attention.py");
            if (attention is { ScoreMixer: true }) blocks.Add("Layers/positional_score_mixer.py");
            if (plan.Indexer is not null) blocks.Add("Layers/lightning_indexer.py");
            if (plan.Latent is not null) blocks.Add("Layers/latent_attention.py");
            if (plan.Conv is not null) blocks.Add("Layers/short_conv.py");
            if (compressed is not null)
            {
                // The indexer's rotation and fake quantization only where a CSA layer has an indexer; a block [Quant]
                // already brought is not included twice.
                var kinds = plan.Layers.Select(l => l.Compressed!.Kind).ToList();
                var csa = kinds.Contains(CompressedKind.CompressedSparse);
                var needed = new List<string>();
                if (csa) needed.AddRange(new[] { "Quantization/e2m1.py", "Quantization/e4m3.py", "Quantization/hadamard.py", "Quantization/indexer_quantizer.py" });
                if (kinds.Any(k => k != CompressedKind.SlidingWindow)) needed.Add("Layers/compressor.py");
                if (csa) needed.Add("Layers/compressed_indexer.py");
                needed.Add("Layers/compressed_attention.py");
                blocks.AddRange(needed.Where(b => !blocks.Contains(b)));
            }
            if (plan.Mixture is not null) blocks.Add("Layers/expert_router.py");
            if (plan.Streams is not null) blocks.Add("Layers/hyper_connections.py");
            if (plan.Mixture is { HashRouted: true }) blocks.Add("Layers/hash_router.py");
            return blocks;
        }

        /// <summary>fake_quantize's name for a format (runtime/LlmEff.Runtime/Quantization/quantizer.py).</summary>
        private static string PythonFormat(QuantFormatKind format) => format switch
        {
            QuantFormatKind.Mxfp4 => "mxfp4",
            QuantFormatKind.Nvfp4 => "nvfp4",
            QuantFormatKind.Fp8E4M3 => "fp8_e4m3",
            _ => "int4",
        };

        private static string PythonBool(bool value) => value ? "True" : "False";

        /// <summary>LatentAttention's construction, with its indexer when the attention is sparse.</summary>
        private string NewLatentAttention(LatentPlan l) =>
            $"LatentAttention(DIM, HEADS, HEAD_DIM, ROPE_DIM, KV_RANK, {(l.QRank > 0 ? "Q_RANK" : "0")}, NORM_EPS, CONTEXT, ROPE_THETA, causal={Causal}"
            + (sparse is not null ? $", indexer={NewIndexer}" : "") + ")";

        private const string NewIndexer = "LightningIndexer(DIM, INDEXER_HEADS, INDEXER_DIM, TOP_K)";

        /// <summary>CompressedAttention's construction for the layer's kind (the twin's compressed_attention.py).</summary>
        private const string NewCompressedAttention =
            "CompressedAttention(DIM, HEADS, HEAD_DIM, ROPE_DIM, Q_RANK, OUTPUT_GROUPS, OUTPUT_RANK, WINDOW, kind, " +
            "SPARSE_RATIO if kind == \"compressed_sparse\" else HEAVY_RATIO if kind == \"heavily_compressed\" else 0, " +
            "INDEXER_HEADS, INDEXER_DIM, TOP_K, INDEXER_PRECISION, BF16_SCORES, CONTEXT, ROPE_THETA, NORM_EPS)";

        /// <summary>ExpertRouter's construction: the [MoE] scoring, balancing and weighting as arguments.</summary>
        private static string NewRouter(MoeSpec m)
        {
            var arguments = new List<string> { "DIM", "EXPERTS", "ACTIVE_EXPERTS", m.Router switch { RouterKind.Softmax => "\"softmax\"", RouterKind.Sigmoid => "\"sigmoid\"", _ => "\"sqrt_softplus\"" } };
            arguments.Add(m.Balance switch
            {
                BalanceKind.AuxLoss => "\"aux_loss\", aux_loss_weight=AUX_LOSS_WEIGHT",
                BalanceKind.AuxLossFree => "\"aux_loss_free\", bias_update_rate=BIAS_UPDATE_RATE",
                _ => "\"none\"",
            });
            arguments.Add($"normalize_weights={PythonBool(m.NormalizeWeights)}");
            if (m.RoutedScale != 1.0) arguments.Add($"routed_scale={D(m.RoutedScale)}");
            if (m.SequenceAuxLossWeight > 0) arguments.Add("sequence_aux_loss_weight=SEQUENCE_AUX_LOSS_WEIGHT");
            return $"ExpertRouter({string.Join(", ", arguments)})";
        }

        /// <summary>HashRouter's construction: the table's vocabulary, the scoring and weighting (no balancing: the table
        /// decides the load).</summary>
        private static string NewHashRouter(MoeSpec m)
        {
            var arguments = new List<string> { "VOCAB", "DIM", "EXPERTS", "ACTIVE_EXPERTS", m.Router switch { RouterKind.Softmax => "\"softmax\"", RouterKind.Sigmoid => "\"sigmoid\"", _ => "\"sqrt_softplus\"" } };
            arguments.Add($"normalize_weights={PythonBool(m.NormalizeWeights)}");
            if (m.RoutedScale != 1.0) arguments.Add($"routed_scale={D(m.RoutedScale)}");
            return $"HashRouter({string.Join(", ", arguments)})";
        }

        private void WriteHeader()
        {
            w.Line($"# {target.Name}: {Describe()}")
             .Line("#")
             .Line($"# Generated by {ModelEmitter.GeneratorName} from the attributes of {target.FullName}; change the declaration, not")
             .Line("# this file. Parameter and buffer names and shapes equal the TorchSharp module's state_dict, so checkpoints")
             .Line("# written by `llmeff train` load here unchanged and the ones written here load there. Runs on PyTorch 1.13")
             .Line("# (no scaled_dot_product_attention: attention is written out) and on 2.x (which uses it when it can).")
             .Line()
             .Line("import math")
             .Line()
             .Line("import torch")
             .Line("import torch.distributed as dist")
             .Line("import torch.nn as nn")
             .Line("import torch.nn.functional as F");
            if (spec.Checkpointing) w.Line("from torch.utils.checkpoint import checkpoint");
            w.Line().Line();
        }

        private string Describe()
        {
            var kind = spec.Causal ? "decoder-only transformer" : "encoder (bidirectional) transformer";
            var heads = a.KvHeads == a.Heads ? $"{a.Heads} heads" : $"{a.Heads} query heads sharing {a.KvHeads} KV heads";
            var attention = latent is { } l
                ? $"latent attention with {a.Heads} heads (KV rank {l.KvRank}, rotary {l.RopeDim}{(l.QRank > 0 ? $", query rank {l.QRank}" : "")})"
                : compressed is { } c
                ? $"compressed attention (DeepSeek V4) with {a.Heads} heads and one key = value head of {c.HeadDim}, window {c.Window}, " +
                  $"{plan.Layers.Count(x => x.Compressed!.Kind == CompressedKind.CompressedSparse)} CSA and {plan.Layers.Count(x => x.Compressed!.Kind == CompressedKind.HeavilyCompressed)} HCA layers"
                : $"{a.Projections} attention{(a.QkNorm ? " (per-head Q/K norm)" : "")} with {heads}";
            if (sparse is { } s) attention += $" over the top {s.TopK} tokens a {s.IndexerHeads}-head indexer picks";
            if (hybrid is { } h) attention += $" in layers {string.Join(", ", h.AttentionLayers)}, short convolutions (kernel {h.ConvKernel}) elsewhere";
            var moe = spec.Moe is { } m ? $", {m.Active} of {m.Experts} experts{(m.Shared > 0 ? $" + {m.Shared} shared" : "")}{(m.FirstLayer > 0 ? $" from layer {m.FirstLayer}" : "")}" : "";
            var quant = spec.Quant is { } q ? $", {q.FormatName} quantization-aware" : "";
            var streams = plan.Streams is { } r ? $", {r.Streams} residual streams (mHC)" : "";
            return $"{kind}, {spec.Layers} layers, width {spec.Dim}, {attention}{moe}{quant}{streams}.";
        }

        private void WriteConstants()
        {
            w.Line($"MODEL_NAME = \"{target.Name}\"  # checkpoint metadata names the model; loading checks it")
             .Line($"PARAMETER_COUNT = {L(sizes.Parameters)}")
             .Line($"VOCAB = {spec.Vocab}")
             .Line($"DIM = {spec.Dim}")
             .Line($"LAYERS = {spec.Layers}")
             .Line($"CONTEXT = {spec.Context}")
             .Line($"HEADS = {a.Heads}")
             .Line($"KV_HEADS = {a.KvHeads}")
             .Line(latent is null ? $"HEAD_DIM = {a.HeadDim}" : $"HEAD_DIM = {a.HeadDim}  # the position-free part of a query/key head, and a value head")
             .Line($"NORM_EPS = {D(spec.NormEps)}");
            if ((plan.StackRotary?.Theta ?? plan.Latent?.RopeTheta ?? plan.Compressed?.RopeTheta) is { } theta) w.Line($"ROPE_THETA = {D(theta)}");
            if (compressed is { } c)
            {
                string Layers(CompressedKind kind)
                {
                    var listed = plan.Layers.Where(l => l.Compressed!.Kind == kind).Select(l => l.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
                    return listed.Count == 1 ? $"({listed[0]},)" : $"({string.Join(", ", listed)})";
                }
                w.Line($"ROPE_DIM = {c.RopeDim}  # rotary channels at the end of queries, keys and compressed entries")
                 .Line($"Q_RANK = {c.QueryRank}  # the normalised query latent")
                 .Line($"OUTPUT_GROUPS = {c.OutputGroups}  # groups of heads sharing one low-rank output projection")
                 .Line($"OUTPUT_RANK = {c.OutputRank}")
                 .Line($"WINDOW = {c.Window}  # tokens of the sliding window, the query's own included")
                 .Line($"SPARSE_LAYERS = {Layers(CompressedKind.CompressedSparse)}  # CSA: overlapping entries of SPARSE_RATIO tokens, the indexer's TOP_K")
                 .Line($"HEAVY_LAYERS = {Layers(CompressedKind.HeavilyCompressed)}  # HCA: every entry of HEAVY_RATIO tokens; the others: the window only")
                 .Line($"SPARSE_RATIO = {c.SparseRatio}")
                 .Line($"HEAVY_RATIO = {c.HeavyRatio}")
                 .Line($"INDEXER_HEADS = {c.IndexerHeads}")
                 .Line($"INDEXER_DIM = {c.IndexerDim}")
                 .Line($"TOP_K = {c.TopK}  # compressed entries each CSA query keeps")
                 .Line($"INDEXER_PRECISION = \"{c.Precision.ToString().ToLowerInvariant()}\"")
                 .Line($"BF16_SCORES = {PythonBool(c.Bf16Scores)}");
            }
            if (latent is { } l)
            {
                w.Line($"KV_RANK = {l.KvRank}  # the normalised latent keys and values are expanded from")
                 .Line($"ROPE_DIM = {l.RopeDim}  # the rotary part of a query head, and the one rotary key head all heads share");
                if (l.QRank > 0) w.Line($"Q_RANK = {l.QRank}  # the compressed query");
            }
            if (sparse is { } s)
            {
                w.Line($"INDEXER_HEADS = {s.IndexerHeads}")
                 .Line($"INDEXER_DIM = {s.IndexerDim}")
                 .Line($"TOP_K = {s.TopK}  # keys each query attends to");
            }
            if (hybrid is { } h)
            {
                w.Line($"ATTENTION_LAYERS = ({string.Join(", ", h.AttentionLayers)}{(h.AttentionLayers.Count == 1 ? "," : "")})  # the other layers mix tokens with a short convolution")
                 .Line($"CONV_KERNEL = {h.ConvKernel}");
            }
            if (spec.Moe is { } m)
            {
                w.Line($"EXPERTS = {m.Experts}")
                 .Line($"ACTIVE_EXPERTS = {m.Active}");
                if (m.Balance == BalanceKind.AuxLoss) w.Line($"AUX_LOSS_WEIGHT = {D(m.AuxLossWeight)}");
                if (m.Balance == BalanceKind.AuxLossFree) w.Line($"BIAS_UPDATE_RATE = {D(m.BiasUpdateRate)}");
                if (m.SequenceAuxLossWeight > 0) w.Line($"SEQUENCE_AUX_LOSS_WEIGHT = {D(m.SequenceAuxLossWeight)}");
                if (m.HashLayers > 0) w.Line($"HASH_LAYERS = {m.HashLayers}  # the first routed layers choose experts from a fixed token->experts table");
            }
            if (plan.Streams is { } streams)
                w.Line($"STREAMS = {streams.Streams}  # residual streams (DeepSeek V4's hc_mult)")
                 .Line($"SINKHORN_ITERATIONS = {streams.SinkhornIterations}  # hc_sinkhorn_iters")
                 .Line($"HC_EPS = {D(StreamsPlan.Eps)}  # hc_eps");
            w.Line("# Routed experts make which parameters receive gradients depend on the batch (DDP must be told).")
             .Line($"HAS_EXPERTS = {(spec.Moe is null ? "False" : "True")}");
            if (spec.Quant is { } quant)
                w.Line("# [Quant]: fake quantization switches on at step floor(QUANT_FROM * steps), as in the C# trainer.")
                 .Line($"QUANT_FROM = {D(quant.From)}")
                 .Line($"QUANTIZATION = dict(fmt=\"{PythonFormat(quant.Format)}\", block_size={quant.BlockSize}, clipped={PythonBool(quant.Clipped)})  # QuantizedLinear's settings");
            else w.Line("QUANT_FROM = None  # no [Quant]: nothing is fake-quantized");
            w.Line().Line();
        }

        /// <summary>DeepSeek V4's Block.forward over residual streams x: each sub-block reads the streams mixed by pre and
        /// writes post ⊗ out + combᵀ·streams.</summary>
        private void WriteStreamsLayerForward()
        {
            var mix = $"self.{names.Attention}(normed{LayerArguments})";
            w.Line($"h, post, comb = {PythonStreamsPre(StreamsPlan.AttentionMap)}")
             .Line($"normed = self.{names.AttentionNorm}(h)")
             .Line($"x = hc_post({(hybrid is not null ? $"self.conv(normed) if self.conv is not None else {mix}" : mix)}, x, post, comb)")
             .Line($"h, post, comb = {PythonStreamsPre(StreamsPlan.FeedForwardMap)}")
             .Line($"return hc_post({FeedForwardCall($"self.{names.MlpNorm}(h)")}, x, post, comb)");
        }

        /// <summary>A layer's call of its feed-forward on <paramref name="input"/>: with hash routing a mixture also takes
        /// the token ids (layers that keep a dense feed-forward do not).</summary>
        private string FeedForwardCall(string input) =>
            !TokenIds ? $"self.{names.Mlp}({input})"
            : !MixedFeedForward ? $"self.{names.Mlp}({input}, token_ids)"
            : $"(self.{names.Mlp}({input}, token_ids) if isinstance(self.{names.Mlp}, MixtureOfExperts) else self.{names.Mlp}({input}))";

        /// <summary>hc_pre around one sub-block of a layer (x: the streams).</summary>
        private static string PythonStreamsPre(string map) =>
            $"hc_pre(x, self.{map}_fn, self.{map}_scale, self.{map}_base, SINKHORN_ITERATIONS, NORM_EPS, HC_EPS)";

        private static string NewNorm(NormPlan norm) => norm.Kind == NormKind.LayerNorm ? "nn.LayerNorm(DIM, eps=NORM_EPS)" : "RMSNorm(DIM, NORM_EPS)";

        /// <summary>A linear layer of the naming scheme, quantization-aware where <paramref name="quantized"/> says so
        /// (a Python expression: "True", "False" or a variable).</summary>
        private string Linear(string inputs, string outputs, string quantized = "False")
        {
            var plain = fused ? $"TransposedLinear({inputs}, {outputs}, bias={Bias})" : $"nn.Linear({inputs}, {outputs}, bias={Bias})";
            var quant = fused ? $"QuantizedLinear({inputs}, {outputs}, bias={Bias}, transposed=True, **QUANTIZATION)" : $"QuantizedLinear({inputs}, {outputs}, bias={Bias}, **QUANTIZATION)";
            return quantized switch
            {
                "False" => plain,
                "True" => quant,
                _ => $"{quant} if {quantized} else {plain}",
            };
        }

        private void WriteAttention(AttentionPlan attention)
        {
            var parts = attention.Parts.Select(p => (p.Name, p.Width, Heads: p.QueryHeads ? "HEADS" : "KV_HEADS")).ToList();
            var repeatedQueries = attention.RepeatedQueries;
            var quantized = attention.Quantized ? "True" : "False";
            var notes = AttentionNotes();

            using (w.Block("class SelfAttention(nn.Module):"))
            {
                w.Line($"\"\"\"{(spec.Causal ? "Causal" : "Bidirectional")} self-attention, {attention.Variant} projections ({attention.AliasingSummary}): {a.Heads} query heads and")
                 .Line($"{a.KvHeads} key/value heads of width {a.HeadDim}.{(notes.Count == 0 ? "\"\"\"" : "")}");
                for (var i = 0; i < notes.Count; i++) w.Line(notes[i] + (i == notes.Count - 1 ? "\"\"\"" : ""));
                w.Line();
                using (w.Block(Sharing ? "def __init__(self, owns_keys_and_values):" : "def __init__(self):"))
                {
                    w.Line("super().__init__()");
                    if (Sharing) w.Line("self.owns_keys_and_values = owns_keys_and_values");
                    if (fused)
                    {
                        var width = Sharing ? $"{attention.Projections[0].Outputs} if owns_keys_and_values else {attention.QueryOnlyProjections[0].Outputs}" : L(attention.Projections[0].Outputs);
                        w.Line(Sharing
                            ? $"self.c_attn = {Linear("DIM", $"({width})", quantized)}  # fused Q, K, V (Q alone where K and V are reused)"
                            : $"self.c_attn = {Linear("DIM", width, quantized)}  # fused {string.Join(", ", parts.Select(p => p.Name.ToUpperInvariant()))}");
                    }
                    else
                    {
                        foreach (var part in parts)
                        {
                            var line = $"self.{part.Name}_proj = {Linear("DIM", L(part.Width), quantized)}";
                            w.Line(Sharing && part.Heads == "KV_HEADS" ? $"self.{part.Name}_proj = {Linear("DIM", L(part.Width), quantized)} if owns_keys_and_values else None" : line);
                        }
                    }
                    w.Line($"self.{attention.Output.Name} = {Linear(L(attention.Output.Inputs), "DIM", quantized)}");
                    if (attention.ScoreMixer) w.Line(plan.ScoreMixerStd is { } mixerStd ? $"self.score_mixer = PositionalScoreMixer(weight_std={D(mixerStd)})" : "self.score_mixer = PositionalScoreMixer()");
                    if (attention.QueryNorm is { } queryNorm) w.Line($"self.{queryNorm.Name} = RMSNorm(HEAD_DIM, NORM_EPS)  # per head, before rotation");
                    if (attention.KeyNorm is { } keyNorm) w.Line($"self.{keyNorm.Name} = RMSNorm(HEAD_DIM, NORM_EPS)  # per head, before rotation{(attention.KeysAreValues ? " (of the values, which are the keys)" : "")}");
                    if (plan.Indexer is not null) w.Line($"self.indexer = {NewIndexer}");
                }
                w.Line();
                using (w.Block($"def forward(self, x{LayerArguments}):"))
                {
                    if (Sharing) WriteSharedProjections(parts);
                    else WriteProjections(parts);
                    if (plan.Indexer is not null) WriteSparseAttend();
                    else
                    {
                        var attend = attention.ScoreMixer
                            ? $"self.score_mixer(q, k, v, causal={Causal})  # symmetric scores plus the learned positional term"
                            : $"attend(q, k, v, causal={Causal})";
                        w.Line($"mixed = {attend}");
                    }
                    if (repeatedQueries)
                    {
                        w.Line("# Every query head of a group equals its key head, so their outputs are equal: attend once per key/value")
                         .Line("# head, then give each query head its group's result.")
                         .Line("mixed = mixed.repeat_interleave(HEADS // KV_HEADS, dim=1)");
                    }
                    w.Line($"return self.{attention.Output.Name}(merge_heads(mixed))");
                }
            }
            w.Line().Line();
        }

        /// <summary>The attention docstring's further lines, one per feature that changes what the class does.</summary>
        private List<string> AttentionNotes()
        {
            var notes = new List<string>();
            if (Sharing) notes.Add($"Only the first layer of every {a.ShareKvEvery} projects keys and values; the others reuse them (cross-layer KV sharing).");
            if (attention?.KeyNorm is not null) notes.Add(attention.QueryNorm is not null && !attention.KeysAreValues
                ? "Queries and keys get a per-head RMSNorm (q_layernorm, k_layernorm) before rotation."
                : "The keys get a per-head RMSNorm (k_layernorm) before rotation.");
            if (plan.Indexer is not null) notes.Add("Each query attends only to the TOP_K past tokens its lightning indexer selects.");
            return notes;
        }

        private void WriteProjections(List<(string Name, long Width, string Heads)> parts)
        {
            if (fused)
            {
                w.Line($"{string.Join(", ", parts.Select(p => Local(p.Name)))}{(parts.Count == 1 ? "," : "")} = self.c_attn(x).split([{string.Join(", ", parts.Select(p => L(p.Width)))}], dim=-1)");
                foreach (var part in parts) w.Line($"{Local(part.Name)} = split_heads({Local(part.Name)}, {part.Heads})");
            }
            else
            {
                foreach (var part in parts) w.Line($"{Local(part.Name)} = split_heads(self.{part.Name}_proj(x), {part.Heads})");
            }
            var attention = plan.Attention!;
            if (attention.QueryNorm is { } queryNorm) w.Line($"q = self.{queryNorm.Name}(q)");
            if (attention.KeyNorm is { } keyNorm && !attention.KeysAreValues) w.Line($"k = self.{keyNorm.Name}(k)");
            var values = attention.KeyNorm is { } valueNorm ? $"self.{valueNorm.Name}(v)" : "v";
            switch (attention.Aliasing)
            {
                case QueryKeyAliasing.None:
                    if (rope) w.Line("q, k = rotate(q, cos, sin), rotate(k, cos, sin)");
                    break;
                case QueryKeyAliasing.KeysAreValues:
                    w.Line(rope ? $"k = rotate({values}, cos, sin)  # keys are the values, rotated for scoring" : $"k = {values}  # keys are the values");
                    if (rope) w.Line("q = rotate(q, cos, sin)");
                    break;
                case QueryKeyAliasing.QueriesAreKeys:
                    if (rope) w.Line("k = rotate(k, cos, sin)");
                    w.Line("q = k  # queries are the keys: symmetric scores");
                    break;
                default:
                    w.Line(rope ? $"k = rotate({values}, cos, sin)" : $"k = {values}");
                    w.Line("q = k  # one projection is query, key and value");
                    break;
            }
        }

        private void WriteSharedProjections(List<(string Name, long Width, string Heads)> parts)
        {
            if (fused)
            {
                w.Line("projected = self.c_attn(x)");
                w.Line($"q = split_heads(projected[..., :{plan.Attention!.QueryOnlyProjections[0].Outputs}], HEADS)");
            }
            else w.Line("q = split_heads(self.q_proj(x), HEADS)");
            if (rope) w.Line("q = rotate(q, cos, sin)");
            using (w.Block("if self.owns_keys_and_values:"))
            {
                var offset = plan.Attention!.Parts.Where(p => p.QueryHeads).Sum(p => p.Width);
                foreach (var part in parts.Where(p => p.Heads == "KV_HEADS"))
                {
                    var projected = fused ? $"projected[..., {offset}:{offset + part.Width}]" : $"self.{part.Name}_proj(x)";
                    w.Line($"{part.Name} = split_heads({projected}, KV_HEADS)");
                    offset += part.Width;
                }
                if (plan.Attention!.Aliasing == QueryKeyAliasing.KeysAreValues)
                    w.Line(rope ? "k = rotate(v, cos, sin)  # keys are the values, rotated for scoring" : "k = v  # keys are the values");
                else if (rope)
                    w.Line("k = rotate(k, cos, sin)");
                w.Line("shared[\"kv\"] = (k, v)  # for the layers of this group that follow");
            }
            using (w.Block("else:"))
                w.Line("k, v = shared[\"kv\"]  # the keys and values of this group's first layer");
        }

        /// <summary>Standard attention over the keys the indexer selects; in training the indexer's loss is left behind.</summary>
        private void WriteSparseAttend()
        {
            w.Line("index_keys = self.indexer.keys(x.detach())  # the indexer's loss must not reach the layers below")
             .Line("# In training the indexer also learns which keys attention uses, from the same index scores it ranks by.")
             .Line("keep = self.indexer.select_and_supervise(q, k, x, index_keys) if self.training else self.indexer.select(x, index_keys)")
             .Line("mixed = attend_kept(q, k, v, keep)  # each query sees its top-k past tokens");
        }

        private static string Local(string part) => part == "qkv" ? "v" : part;


        private void WriteFeedForward()
        {
            // One class serves every feed-forward; with experts it takes its width (and, under [Quant], whether it is
            // quantized) as arguments.
            var template = plan.Dense ?? plan.Mixture!.Expert;
            var swiGlu = template.Activation == ActivationKind.SwiGlu;
            var moe = plan.Mixture is not null;
            string Hidden(long multiple) => !moe ? L(multiple * template.Hidden) : multiple == 1 ? "hidden" : $"{multiple} * hidden";
            // As in C#: only when the plan quantizes some feed-forwards and not others is each one told which.
            var perInstance = plan.FeedForwardQuantization == FeedForwardQuantization.PerInstance;
            var quantized = perInstance ? "quantized" : plan.FeedForwardQuantization == FeedForwardQuantization.All ? "True" : "False";
            using (w.Block("class FeedForward(nn.Module):"))
            {
                w.Line(swiGlu
                    ? template.ClampLimit is { } limit
                        ? $"\"\"\"SwiGLU feed-forward: down(silu(min(gate(x), {D(limit)})) * clamp(up(x), {D(-limit)}, {D(limit)})).\"\"\""
                        : "\"\"\"SwiGLU feed-forward: down(silu(gate(x)) * up(x)).\"\"\""
                    : "\"\"\"GELU feed-forward (tanh approximation): down(gelu(up(x))).\"\"\"")
                 .Line();
                var parameters = (moe ? ", hidden" : "") + (perInstance ? ", quantized" : "");
                using (w.Block($"def __init__(self{parameters}):"))
                {
                    w.Line("super().__init__()");
                    foreach (var linear in template.Inputs)
                        w.Line($"self.{linear.Name} = {Linear("DIM", Hidden(linear.Outputs / template.Hidden), quantized)}{(fused && swiGlu ? "  # gate and up, fused" : "")}");
                    w.Line($"self.{template.Output.Name} = {Linear(Hidden(1), "DIM", quantized)}");
                }
                w.Line();
                using (w.Block("def forward(self, x):"))
                {
                    var inputs = template.Inputs.Select(l => l.Name).ToList();
                    var down = template.Output.Name;
                    if (swiGlu && template.ClampLimit is { } clamp)
                    {
                        // DeepSeek V4's SwiGLU clamping: the gate from above only, the linear branch both ways.
                        if (fused) w.Line($"gate, up = self.{inputs[0]}(x).chunk(2, dim=-1)");
                        else w.Line($"gate, up = self.{inputs[0]}(x), self.{inputs[1]}(x)");
                        w.Line($"gate = gate.clamp(max={D(clamp)})")
                         .Line($"up = up.clamp(min={D(-clamp)}, max={D(clamp)})")
                         .Line($"return self.{down}(F.silu(gate) * up)");
                    }
                    else if (fused && swiGlu)
                    {
                        w.Line($"gate, up = self.{inputs[0]}(x).chunk(2, dim=-1)")
                         .Line($"return self.{down}(F.silu(gate) * up)");
                    }
                    else if (swiGlu) w.Line($"return self.{down}(F.silu(self.{inputs[0]}(x)) * self.{inputs[1]}(x))");
                    else w.Line($"return self.{down}(F.gelu(self.{inputs[0]}(x), approximate=\"tanh\"))");
                }
            }
            w.Line().Line();
        }

        private string FeedForwardArguments(FeedForwardPlan feedForward) =>
            plan.FeedForwardQuantization != FeedForwardQuantization.PerInstance ? L(feedForward.Hidden) : $"{L(feedForward.Hidden)}, quantized={(feedForward.Quantized ? "True" : "False")}";

        private void WriteMixture(MixturePlan mixture)
        {
            var m = mixture.Settings;
            using (w.Block("class MixtureOfExperts(nn.Module):"))
            {
                w.Line($"\"\"\"Each token goes to {m.Active} of {m.Experts} experts{(m.Shared > 0 ? $"; {m.Shared} shared expert{(m.Shared > 1 ? "s (fused into one MLP) see" : " sees")} every token" : "")}. Only chosen experts run, so")
                 .Line("unchosen ones get no gradient at all.\"\"\"")
                 .Line();
                using (w.Block(PartlyHashed ? "def __init__(self, hash_routed):" : "def __init__(self):"))
                {
                    w.Line("super().__init__()")
                     .Line($"self.gate = {(!TokenIds ? NewRouter(m) : PartlyHashed ? $"{NewHashRouter(m)} if hash_routed else {NewRouter(m)}" : NewHashRouter(m))}")
                     .Line($"self.experts = nn.ModuleList(FeedForward({FeedForwardArguments(mixture.Expert)}) for _ in range(EXPERTS))");
                    if (mixture.Shared is { } shared) w.Line($"self.shared_experts = FeedForward({FeedForwardArguments(shared)})");
                }
                w.Line();
                var route = m.SequenceAuxLossWeight > 0 ? "chosen, weights = self.gate(tokens, sequence_length=x.shape[1])  # the sequence-wise loss needs where sequences end" : "chosen, weights = self.gate(tokens)";
                if (TokenIds)
                    route = PartlyHashed
                        ? $"if isinstance(self.gate, HashRouter):\n    chosen, weights = self.gate(tokens, token_ids)  # the table chooses, the scores weigh\nelse:\n    {route}"
                        : "chosen, weights = self.gate(tokens, token_ids)  # the table chooses, the scores weigh";
                using (w.Block(TokenIds ? "def forward(self, x, token_ids):" : "def forward(self, x):"))
                {
                    w.Line("tokens = x.reshape(-1, DIM)");
                    foreach (var line in route.Split('\n')) w.Line(line);
                    w
                     .Line("out = torch.zeros_like(tokens)");
                    using (w.Block("for e, expert in enumerate(self.experts):"))
                    {
                        w.Line("rows, slots = (chosen == e).nonzero(as_tuple=True)")
                         .Line("if rows.numel() > 0:")
                         .Line("    out.index_add_(0, rows, expert(tokens[rows]) * weights[rows, slots].unsqueeze(1))");
                    }
                    if (m.Shared > 0) w.Line("out = out + self.shared_experts(tokens)");
                    w.Line("return out.view_as(x)");
                }
            }
            w.Line().Line();
        }

        private void WriteLayer()
        {
            var parameters = (Sharing ? ", owns_keys_and_values" : "") + (hybrid is not null ? ", attention" : "") + (MixedFeedForward ? ", routed_experts" : "");
            if (compressed is not null) parameters += ", kind";
            if (PartlyHashed) parameters += ", hash_routed";
            var newMixture = PartlyHashed ? "MixtureOfExperts(hash_routed)" : "MixtureOfExperts()";
            var newAttention = plan.Latent is { } latentPlan ? NewLatentAttention(latentPlan)
                : compressed is not null ? NewCompressedAttention
                : $"SelfAttention({(Sharing ? "owns_keys_and_values" : "")})";
            using (w.Block("class DecoderLayer(nn.Module):"))
            {
                w.Line(plan.Streams is { } described
                    ? $"\"\"\"Pre-norm block around {described.Streams} residual streams (DeepSeek V4's mHC): each sub-block reads the streams mixed by pre and writes post * out + comb^T streams.\"\"\""
                    : hybrid is not null
                    ? "\"\"\"Pre-norm block: x + mix(norm(x)), where mix is attention or a short convolution by layer, then + mlp(norm(.)).\"\"\""
                    : "\"\"\"Pre-norm block: x + attention(norm(x)), then + mlp(norm(.)).\"\"\"").Line();
                using (w.Block($"def __init__(self{parameters}):"))
                {
                    w.Line("super().__init__()")
                     .Line($"self.{names.AttentionNorm} = {NewNorm(plan.MixerNorm)}");
                    if (hybrid is not null)
                        w.Line($"self.{names.Attention} = {newAttention} if attention else None")
                         .Line($"self.conv = None if attention else ShortConv(DIM, CONV_KERNEL, bias={Bias})");
                    else w.Line($"self.{names.Attention} = {newAttention}");
                    w.Line($"self.{names.MlpNorm} = {NewNorm(plan.FeedForwardNorm)}");
                    string mlp;
                    if (plan.Mixture is null) mlp = "FeedForward()";
                    else if (MixedFeedForward) mlp = $"{newMixture} if routed_experts else FeedForward({FeedForwardArguments(plan.Dense!)})";
                    else mlp = newMixture;
                    w.Line($"self.{names.Mlp} = {mlp}");
                    if (plan.Streams is not null)
                        foreach (var map in new[] { StreamsPlan.AttentionMap, StreamsPlan.FeedForwardMap })
                            w.Line($"self.{map}_fn, self.{map}_base, self.{map}_scale = hc_parameters((2 + STREAMS) * STREAMS, STREAMS * DIM, 3)");
                }
                w.Line();
                using (w.Block($"def forward(self, x{BlockParameters}):"))
                {
                    if (plan.Streams is not null) WriteStreamsLayerForward();
                    else if (hybrid is not null)
                        w.Line($"normed = self.{names.AttentionNorm}(x)")
                         .Line($"h = x + (self.conv(normed) if self.conv is not None else self.{names.Attention}(normed{LayerArguments}))");
                    else w.Line($"h = x + self.{names.Attention}(self.{names.AttentionNorm}(x){LayerArguments})");
                    if (plan.Streams is null) w.Line($"return h + {FeedForwardCall($"self.{names.MlpNorm}(h)")}");
                }
            }
            w.Line().Line();
        }

        private void WriteStack()
        {
            var learned = plan.LearnedPositions;
            using (w.Block("class DecoderStack(nn.Module):"))
            {
                w.Line($"\"\"\"Token embedding{(learned ? ", learned positions" : "")}, {spec.Layers} layers and the final norm.\"\"\"").Line();
                using (w.Block("def __init__(self):"))
                {
                    w.Line("super().__init__()")
                     .Line($"self.{names.TokenEmbedding} = nn.Embedding(VOCAB, DIM)");
                    if (plan.InputBias) w.Line($"self.{InputBias} = nn.Parameter(torch.empty(DIM))  # the one-hot symbols through a biased linear layer");
                    if (plan.Streams is not null)
                        w.Line($"self.{StreamsPlan.HeadMap}_fn, self.{StreamsPlan.HeadMap}_base, self.{StreamsPlan.HeadMap}_scale = hc_parameters(STREAMS, STREAMS * DIM, 1)  # the final collapse");
                    if (learned) w.Line($"self.{names.PositionEmbedding} = nn.Embedding(CONTEXT, DIM)");
                    var arguments = new List<string>();
                    if (Sharing) arguments.Add($"owns_keys_and_values=i % {a.ShareKvEvery} == 0");
                    if (hybrid is not null) arguments.Add("attention=i in ATTENTION_LAYERS");
                    if (MixedFeedForward) arguments.Add($"routed_experts=i >= {plan.Mixture!.Settings.FirstLayer}");
                    if (compressed is not null)
                        arguments.Add("kind=\"compressed_sparse\" if i in SPARSE_LAYERS else \"heavily_compressed\" if i in HEAVY_LAYERS else \"sliding_window\"");
                    if (PartlyHashed)
                        arguments.Add(plan.Mixture!.Settings.FirstLayer == 0 ? "hash_routed=i < HASH_LAYERS" : $"hash_routed={plan.Mixture.Settings.FirstLayer} <= i < {plan.Mixture.Settings.FirstLayer} + HASH_LAYERS");
                    w.Line($"self.{names.Layers} = nn.ModuleList(DecoderLayer({string.Join(", ", arguments)}) for {(arguments.Count > 0 ? "i" : "_")} in range(LAYERS))")
                     .Line($"self.{names.FinalNorm} = {NewNorm(plan.FinalNorm)}");
                    if (rope) w.Line($"self.{names.Rotary} = RotaryEmbedding(HEAD_DIM, CONTEXT, ROPE_THETA)");
                }
                w.Line();
                using (w.Block("def forward(self, tokens):"))
                {
                    w.Line("time = tokens.shape[1]")
                     .Line("if time > CONTEXT:")
                     .Line("    raise ValueError(f\"{time} tokens exceed the declared context of {CONTEXT}.\")");
                    var input = plan.InputBias ? $"self.{names.TokenEmbedding}(tokens) + self.{InputBias}" : $"self.{names.TokenEmbedding}(tokens)";
                    w.Line(learned
                        ? $"x = {input} + self.{names.PositionEmbedding}(torch.arange(time, device=tokens.device))"
                        : $"x = {input}");
                    if (plan.Streams is not null) w.Line("x = hc_expand(x, STREAMS)  # the embedding copied into every residual stream");
                    if (rope) w.Line($"cos, sin = self.{names.Rotary}.cos[:time], self.{names.Rotary}.sin[:time]");
                    if (Sharing) w.Line($"shared = {{}}  # the first layer of every {a.ShareKvEvery} fills it");
                    if (plan.Checkpointing)
                    {
                        using (w.Block($"for i, layer in enumerate(self.{names.Layers}):"))
                        {
                            w.Line("# Activation checkpointing: every block but the last keeps only its input and recomputes in backward")
                             .Line("# (the last block's activations are what backward needs first). Numerically the same forward.")
                             .Line("if self.training and torch.is_grad_enabled() and i < LAYERS - 1:")
                             .Line($"    x = checkpoint(layer, x{BlockArguments}, use_reentrant=False)")
                             .Line("else:")
                             .Line($"    x = layer(x{BlockArguments})");
                        }
                    }
                    else
                    {
                        using (w.Block($"for layer in self.{names.Layers}:"))
                            w.Line($"x = layer(x{BlockArguments})");
                    }
                    w.Line(plan.Streams is null
                        ? $"return self.{names.FinalNorm}(x)"
                        : $"return self.{names.FinalNorm}(hc_head(x, self.{StreamsPlan.HeadMap}_fn, self.{StreamsPlan.HeadMap}_scale, self.{StreamsPlan.HeadMap}_base, NORM_EPS, HC_EPS))");
                }
            }
            w.Line().Line();
        }

        private void WriteModel()
        {
            var name = target.Name;
            var routers = spec.Moe is not null;
            using (w.Block($"class {name}(nn.Module):"))
            {
                w.Line($"\"\"\"{Describe()}\"\"\"").Line();
                using (w.Block("def __init__(self):"))
                {
                    w.Line("super().__init__()")
                     .Line($"self.{names.Stack} = DecoderStack()");
                    if (plan.OutputHead is { } head) w.Line($"self.{head.Name} = nn.Linear(DIM, VOCAB, bias={(head.Bias ? "True" : "False")})");
                    w.Line("self.reset_parameters()");
                }
                w.Line();
                using (w.Block("def forward(self, tokens):"))
                {
                    w.Line($"\"\"\"Next-token logits [batch, time, VOCAB] for tokens [batch, time], time <= CONTEXT.\"\"\"")
                     .Line($"hidden = self.{names.Stack}(tokens)");
                    w.Line(plan.TiedEmbeddings
                        ? $"return F.linear(hidden, self.{names.Stack}.{names.TokenEmbedding}.weight)  # tied: the embedding is the output head"
                        : "return self.lm_head(hidden)");
                }
                w.Line();
                using (w.Block("def auxiliary_loss(self):"))
                {
                    var sources = new List<string>();
                    if (spec.Moe is { Balance: BalanceKind.AuxLoss, AuxLossWeight: > 0 } or { SequenceAuxLossWeight: > 0 }) sources.Add("ExpertRouter");
                    if (plan.TrainsIndexers) sources.Add("indexer");
                    w.Line(!plan.TrainsIndexers
                        ? "\"\"\"The balancing losses the last training forward left, summed, for the trainer to add to the next-token loss;"
                        : $"\"\"\"The {(sources.Count > 1 ? "balancing and " : "")}indexer losses the last training forward left, summed, for the trainer to add to the next-token")
                     .Line(!plan.TrainsIndexers
                        ? "None when there are none. The reported loss stays the next-token loss alone, as in the C# trainer.\"\"\""
                        : "loss (unweighted, as the C# trainer adds them); None when there are none. The reported loss stays the next-token loss alone.\"\"\"");
                    if (sources.Count > 0)
                    {
                        // Any block that leaves a loss says so by take_auxiliary_loss(), as the C# blocks do by IAuxiliaryLoss.
                        w.Line("losses = []")
                         .Line("for module in self.modules():")
                         .Line("    take = getattr(module, \"take_auxiliary_loss\", None)")
                         .Line("    loss = take() if take is not None else None  # taken once: the block forgets it")
                         .Line("    if loss is not None:")
                         .Line("        losses.append(loss)")
                         .Line("return sum(losses) if losses else None");
                    }
                    else w.Line("return None");
                }
                w.Line();
                using (w.Block("def update_selection_bias(self):"))
                {
                    w.Line("\"\"\"Auxiliary-loss-free balancing, after each optimizer step (a no-op for other models).\"\"\"");
                    if (spec.Moe is { Balance: BalanceKind.AuxLossFree })
                    {
                        w.Line("with torch.no_grad():")
                         .Line("    for module in self.modules():")
                         .Line("        if isinstance(module, ExpertRouter):")
                         .Line("            module.update_selection_bias()");
                    }
                    else w.Line("pass");
                }
                w.Line();
                using (w.Block("def set_fake_quantization(self, on):"))
                {
                    w.Line("\"\"\"Switches fake quantization of the [Quant]-targeted weights; returns how many layers it touched.\"\"\"");
                    if (AnyQuantized)
                    {
                        w.Line("layers = [m for m in self.modules() if isinstance(m, QuantizedLinear)]")
                         .Line("for layer in layers:")
                         .Line("    layer.fake_quantize = on")
                         .Line("return len(layers)");
                    }
                    else w.Line("return 0");
                }
                w.Line();
                using (w.Block("def reset_parameters(self):"))
                {
                    if (plan.Init == InitKind.PyTorchDefault)
                    {
                        WritePyTorchDefaultInit();
                    }
                    else
                    {
                        w.Line("\"\"\"GPT-2's initialisation, as the TorchSharp module's: N(0, 0.02) weights, residual output projections")
                         .Line("N(0, (0.02 / sqrt(2 * LAYERS))^2), learned positions N(0, 0.01^2), biases zero, norms one.\"\"\"")
                         .Line("residual_std = 0.02 / math.sqrt(2 * LAYERS)");
                        // The projections the plan starts at the residual scale, by name (names are unique per role).
                        var residual = ResidualOutputNames().ToList();
                        var residualNames = $"({string.Join(", ", residual.Select(r => $"\"{r}\""))}{(residual.Count == 1 ? "," : "")})";
                        using (w.Block("for name, module in self.named_modules():"))
                        {
                            var linearTypes = new List<string> { "nn.Linear", "nn.Embedding" };
                            if (fused) linearTypes.Add("TransposedLinear");
                            if (AnyQuantized) linearTypes.Add("QuantizedLinear");
                            w.Line($"if isinstance(module, ({string.Join(", ", linearTypes)})):");
                            w.Line($"    std = residual_std if name.rsplit(\".\", 1)[-1] in {residualNames} else 0.02");
                            if (plan.LearnedPositions) w.Line($"    std = 0.01 if name.endswith(\"{names.PositionEmbedding}\") else std");
                            w.Line("    nn.init.normal_(module.weight, 0.0, std)")
                             .Line("    if getattr(module, \"bias\", None) is not None:")
                             .Line("        nn.init.zeros_(module.bias)");
                            if (routers)
                                w.Line("elif isinstance(module, ExpertRouter):")
                                 .Line("    nn.init.normal_(module.weight, 0.0, 0.02)");
                            if (hybrid is not null)
                                w.Line("elif isinstance(module, nn.Conv1d):")
                                 .Line("    nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))  # PyTorch's default for convolutions, as in C#")
                                 .Line("    if module.bias is not None:")
                                 .Line("        nn.init.zeros_(module.bias)");
                        }
                    }
                }
            }
            w.Line().Line()
             .Line($"MODEL = {name}  # what train.py builds");
        }

        /// <summary>reset_parameters for Init = InitScheme.PyTorchDefault, as the TorchSharp module's.</summary>
        private void WritePyTorchDefaultInit()
        {
            w.Line("\"\"\"PyTorch's defaults, as the TorchSharp module's: every nn.Linear U(+-1/sqrt(fan_in)) with its bias, the")
             .Line("symbols one-hot through a biased linear layer (embedding and bias U(+-1/sqrt(VOCAB))), learned positions N(0, 1),")
             .Line("the positional score mixer's weights N(0, 0.02^2), norms one and zero.\"\"\"")
             .Line("for module in self.modules():")
             .Line("    if isinstance(module, nn.Linear):")
             .Line("        module.reset_parameters()  # kaiming_uniform_(a=sqrt(5)): U(+-1/sqrt(fan_in)); bias the same");
            if (plan.Attention is { ScoreMixer: true })
                w.Line("    elif isinstance(module, PositionalScoreMixer):")
                 .Line($"        nn.init.normal_(module.weight, 0.0, {D(plan.ScoreMixerStd!.Value)})")
                 .Line("        nn.init.zeros_(module.bias)");
            w.Line("bound = 1.0 / math.sqrt(VOCAB)")
             .Line($"nn.init.uniform_(self.{names.Stack}.{names.TokenEmbedding}.weight, -bound, bound)")
             .Line($"nn.init.uniform_(self.{names.Stack}.{InputBias}, -bound, bound)");
            if (plan.LearnedPositions) w.Line($"nn.init.normal_(self.{names.Stack}.{names.PositionEmbedding}.weight, 0.0, {D(plan.PositionStd)})");
        }

        /// <summary>The stack's token-input bias parameter (<see cref="LayoutPlan.InputBias"/>).</summary>
        private string InputBias => PlannedTensors.InputBiasName(plan);

        /// <summary>Names of the linear layers the plan initialises at the residual scale.</summary>
        private IEnumerable<string> ResidualOutputNames()
        {
            var linears = new List<LinearPlan>();
            if (plan.Attention is { } a) linears.Add(a.Output);
            if (plan.Latent is { } l) linears.AddRange(l.Linears);
            foreach (var feedForward in new[] { plan.Dense, plan.Mixture?.Expert, plan.Mixture?.Shared })
                if (feedForward is not null) linears.AddRange(feedForward.Linears);
            if (plan.Conv is { } c) linears.Add(c.OutProjection);
            return linears.Where(l => l.Init == WeightInit.ResidualOutput).Select(l => l.Name).Distinct();
        }

        private static string L(long value) => value.ToString(CultureInfo.InvariantCulture);

        /// <summary>A double as a Python float literal that reads back as the same double.</summary>
        private static string D(double value)
        {
            var text = value.ToString("R", CultureInfo.InvariantCulture);
            return text.IndexOf('.') >= 0 || text.IndexOf('E') >= 0 ? text.Replace("E", "e") : text + ".0";
        }
    }
}
