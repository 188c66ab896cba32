using System.Globalization;
using System.Linq;
using LlmEff.Generator.Model;
using LlmEff.Generator.Planning;

namespace LlmEff.Generator.Emitting;

/// <summary>
/// Renders a model's layout plan as llama.cpp reads it: the generated C# part exposing <c>IDeclaredModel.Gguf</c>,
/// which holds the llama.cpp architecture, the metadata keys its loader expects for that architecture, and a tensor
/// table from each state-dict name to its GGUF name with the transform it needs. A plan with a feature llama.cpp has
/// no kind for yet gets a part that carries the refusal instead (see <see cref="Refusal"/>). Decides nothing about
/// the layout: every name, width and flag comes from the plan.
/// </summary>
internal static class GgufEmitter
{
    /// <summary>llama.cpp's architecture for Llama-style dense decoders.</summary>
    public const string LlamaArchitecture = "llama";

    public static string HintName(TypeTarget target) => GeneratedPart.HintName(target, ".Gguf.g.cs");

    /// <summary>
    /// Why <paramref name="plan"/> cannot be written as GGUF yet, naming the feature; null when it can. Every feature
    /// is checked here, in one place, before anything is emitted: a kind becomes exportable by removing its check
    /// when its renderer and its parity test through llama.cpp land.
    /// </summary>
    public static string? Refusal(LayoutPlan plan)
    {
        const string Later = ": no GGUF export yet";
        if (!plan.Causal) return $"an encoder (bidirectional attention){Later}; llama.cpp's llama architecture is causal";
        if (plan.Names.FusedProjections) return $"GPT-2 naming (fused c_attn and c_fc, LayerNorm){Later}";
        if (plan.Latent is not null) return $"latent attention{Later}";
        if (plan.Indexer is not null) return $"sparse attention (lightning indexer){Later}; llama.cpp has no kind for it";
        if (plan.Hybrid) return $"hybrid short-convolution layers{Later}";
        if (plan.Mixture is not null) return $"[MoE] mixture of experts{Later}";
        if (plan.Quant is not null) return $"[Quant] fake-quantized weights ({plan.Quant.FormatName}){Later}: the float weights alone would not compute what the model computes";
        if (plan.Attention is not { } attention) return $"a model without standard attention{Later}";
        if (attention.SharesKeyValues) return $"cross-layer key/value sharing (ShareKvEvery = {attention.ShareKvEvery}){Later}";
        if (attention.ScoreMixer) return "the positional score term (BreakSymmetry) cannot be exported: llama.cpp has no kind for it";
        if (attention.QueryNorm is not null || attention.KeyNorm is not null) return $"QkNorm (per-head query/key norms){Later}";
        if (plan.LearnedPositions) return $"learned positions{Later}";
        if (plan.StackRotary is not { } rotary) return $"attention without rotary positions{Later}";
        if (rotary.Dims != attention.HeadDim) return $"partial rotary ({rotary.Dims} of {attention.HeadDim} head channels){Later}";
        if (plan.Bias) return $"biases{Later}";
        if (new[] { plan.MixerNorm, plan.FeedForwardNorm, plan.FinalNorm }.Any(n => n.Kind != NormKind.RmsNorm)) return $"LayerNorm{Later}";
        if (plan.Dense is not { } dense) return $"a model without a dense feed-forward{Later}";
        if (dense.Activation != ActivationKind.SwiGlu) return $"the {dense.Activation} feed-forward{Later}";
        if (dense.ClampLimit is { } limit) return $"SwiGLU clamping (ClampLimit = {limit.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}){Later}: llama.cpp's llama architecture does not clamp, so it would compute another model";
        // What is left is the Llama layout, which the table below renders; a layer differing from it would need more.
        if (plan.Layers.Any(l => l.Mixer != TokenMixer.Attention || l.FeedForward != FeedForwardKind.Dense || !l.OwnsKeysAndValues))
            return $"layers of different kinds{Later}";
        return null;
    }

    /// <summary>The generated C# part: a <c>Gguf</c> property holding the export's description or its refusal.</summary>
    public static string Emit(ModelToEmit model)
    {
        var target = model.Target;
        var plan = model.Plan;
        return GeneratedPart.Write(target, $"{target.FullName} as llama.cpp reads it (llmeff export-gguf writes the .gguf file).", writer =>
        {
            using var part = writer.Block($"partial class {target.Name}");
            if (Refusal(plan) is { } refusal)
            {
                writer.Line("/// <summary>This declaration has no GGUF export yet; the reason says which feature.</summary>")
                    .Line($"public static global::LlmEff.GgufExport Gguf {{ get; }} = global::LlmEff.GgufExport.Refused({GeneratedPart.StringLiteral(refusal)});");
            }
            else
            {
                EmitLlama(writer, target, plan);
            }
        });
    }

    private static void EmitLlama(SourceWriter writer, TypeTarget target, LayoutPlan plan)
    {
        var attention = plan.Attention!;
        var rotary = plan.StackRotary!;
        var names = plan.Names;
        const string Value = "global::LlmEff.Export.GgufValue";
        string Key(string key) => $"{LlamaArchitecture}.{key}";

        writer.Line("/// <summary>The model as llama.cpp's <c>llama</c> architecture: its metadata and the GGUF name of every state-dict tensor.</summary>")
            .Line($"public static global::LlmEff.GgufExport Gguf {{ get; }} = global::LlmEff.GgufExport.Model({GeneratedPart.StringLiteral(LlamaArchitecture)},");
        writer.Line("    new global::System.Collections.Generic.KeyValuePair<string, global::LlmEff.Export.GgufValue>[]").Line("    {");
        void Entry(string key, string value) => writer.Line($"        new({GeneratedPart.StringLiteral(key)}, {Value}.{value}),");
        Entry("general.architecture", $"String({GeneratedPart.StringLiteral(LlamaArchitecture)})");
        Entry("general.name", $"String({GeneratedPart.StringLiteral(target.Name)})");
        Entry(Key("vocab_size"), UInt32(plan.Vocab));
        Entry(Key("context_length"), UInt32(plan.Context));
        Entry(Key("embedding_length"), UInt32(plan.Dim));
        Entry(Key("block_count"), UInt32(plan.Layers.Count));
        Entry(Key("feed_forward_length"), UInt32(plan.Dense!.Hidden));
        Entry(Key("attention.head_count"), UInt32(attention.Heads));
        Entry(Key("attention.head_count_kv"), UInt32(attention.KvHeads));
        Entry(Key("attention.key_length"), UInt32(attention.HeadDim));
        Entry(Key("attention.value_length"), UInt32(attention.HeadDim));
        Entry(Key("attention.layer_norm_rms_epsilon"), Float32(plan.MixerNorm.Eps));
        Entry(Key("rope.dimension_count"), UInt32(rotary.Dims));
        Entry(Key("rope.freq_base"), Float32(rotary.Theta));
        // Token ids go in directly: "no_vocab" makes llama.cpp size its vocabulary from vocab_size and tokenize nothing.
        Entry("tokenizer.ggml.model", "String(\"no_vocab\")");
        writer.Line("    },");
        if (AliasNote(plan) is { } note) writer.Line("    GgufTensorTable(),").Line($"    {GeneratedPart.StringLiteral(note)});").Line();
        else writer.Line("    GgufTensorTable());").Line();

        var stack = names.Stack + ".";
        var layer = $"{stack}{names.Layers}.{{i}}.";
        const string Mapping = "global::LlmEff.Export.GgufTensorMapping";
        writer.Line("/// <summary>Each state-dict tensor and the GGUF tensor it becomes, in file order.</summary>");
        using (writer.Block($"private static global::System.Collections.Generic.IEnumerable<{Mapping}> GgufTensorTable()"))
        {
            writer.Line($"yield return new({GeneratedPart.StringLiteral(stack + names.TokenEmbedding + ".weight")}, \"token_embd.weight\");");
            using (writer.Block($"for (var i = 0; i < {plan.Layers.Count}; i++)"))
            {
                void Row(string source, string gguf, string transform = "") =>
                    writer.Line($"yield return new($\"{layer}{source}.weight\", $\"blk.{{i}}.{gguf}.weight\"{transform});");
                string Pairs(int heads) => $", global::LlmEff.Export.GgufTransform.RotaryPairs, Heads: {heads}";
                Row(plan.MixerNorm.Name, "attn_norm");
                var attentionPrefix = names.Attention + ".";
                // Queries and keys are rotated: their rows go from our half-split pairs to llama.cpp's adjacent ones.
                // llama.cpp has no kind for aliased projections: the one a tensor is aliased to is written again under
                // its name (same numbers, and the same pairing where it is rotated as queries or keys are).
                var source = Aliases(attention);
                Row(attentionPrefix + source["q"], "attn_q", attention.RepeatedQueries
                    ? Pairs(attention.KvHeads) + $", Repeats: {attention.Heads / attention.KvHeads}" // query head h is key head h / Repeats
                    : Pairs(attention.Heads));
                Row(attentionPrefix + source["k"], "attn_k", Pairs(attention.KvHeads));
                Row(attentionPrefix + source["v"], "attn_v");
                Row(attentionPrefix + attention.Output.Name, "attn_output");
                Row(plan.FeedForwardNorm.Name, "ffn_norm");
                var dense = plan.Dense!.Linears;
                var mlpPrefix = names.Mlp + ".";
                Row(mlpPrefix + dense[0].Name, "ffn_gate");
                Row(mlpPrefix + dense[1].Name, "ffn_up");
                Row(mlpPrefix + dense[2].Name, "ffn_down");
            }
            writer.Line($"yield return new({GeneratedPart.StringLiteral(stack + plan.FinalNorm.Name + ".weight")}, \"output_norm.weight\");");
            // Without output.weight llama.cpp reuses token_embd.weight: the tied head.
            if (plan.OutputHead is { } head) writer.Line($"yield return new({GeneratedPart.StringLiteral(head.Name + ".weight")}, \"output.weight\");");
        }
    }

    /// <summary>The linear layer whose weight llama.cpp gets as each of q, k and v: a projection of its own, or the one
    /// the plan aliases it to (q := k, k := v, q := k := v).</summary>
    private static System.Collections.Generic.Dictionary<string, string> Aliases(AttentionPlan attention)
    {
        var linear = attention.Parts.Zip(attention.Projections, (p, l) => (p.Name, l.Name)).ToDictionary(p => p.Item1, p => p.Item2);
        var v = linear.TryGetValue("qkv", out var shared) ? shared : linear["v"];
        var k = attention.KeysAreValues ? v : linear["k"];
        var q = attention.QueriesAreKeys ? k : linear["q"];
        return new() { ["q"] = q, ["k"] = k, ["v"] = v };
    }

    /// <summary>
    /// For a plan with aliased projections, one line saying what llama.cpp gets instead and what it costs its cache:
    /// it caches keys and values separately (head_count_kv × (key_length + value_length) per layer) where our cached
    /// decoding keeps the plan's cache streams; bytes at f16, llama.cpp's default cache type. Null without aliasing.
    /// </summary>
    internal static string? AliasNote(LayoutPlan plan)
    {
        var attention = plan.Attention!;
        if (attention.Aliasing == QueryKeyAliasing.None) return null;
        var source = Aliases(attention);
        var (what, written) = attention.Aliasing switch
        {
            QueryKeyAliasing.KeysAreValues => ("keys that are the values", $"{source["v"]} is written twice (as attn_v and attn_k"),
            QueryKeyAliasing.QueriesAreKeys => ("queries that are the keys", $"{source["k"]} is written twice (as attn_k and attn_q"),
            _ => ("one projection for queries, keys and values", $"{source["v"]} is written three times (as attn_q, attn_k and attn_v"),
        };
        var repeated = attention.RepeatedQueries
            ? $", the attn_q copy repeating each of its {attention.KvHeads} heads for the {attention.Heads / attention.KvHeads} query heads of its group"
            : "";
        // f16, llama.cpp's default cache type, is 2 bytes like bf16, which our sizes are quoted in.
        var ours = Sizing.ModelSizing.InBf16(plan.Layers.Sum(l => l.Cache.Sum(c => c.ElementsPerToken)));
        const int KeysAndValues = 2;
        var theirs = Sizing.ModelSizing.InBf16(plan.Layers.Count * KeysAndValues * attention.KvWidth);
        var cost = ours < theirs
            ? $"{Bytes(theirs)} bytes per token at f16 where our cached decoding keeps {Bytes(ours)}: no KV-cache saving there"
            : $"{Bytes(theirs)} bytes per token at f16, as our cached decoding does";
        return $"{attention.Variant} attention: llama.cpp has no kind for {what}, so {written}, same numbers{repeated}) " +
               $"and llama.cpp caches keys and values separately, {cost}.";
    }

    private static string Bytes(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string UInt32(long value) => $"UInt32({value.ToString(CultureInfo.InvariantCulture)})";

    private static string Float32(double value) => $"Float32({((float)value).ToString("R", CultureInfo.InvariantCulture)}f)";

}
