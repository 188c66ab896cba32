using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.Linq;
using System.Text;

namespace LlmEff.Cli.Commands;

/// <summary>
/// <c>llmeff inspect</c>: every declared model's compile-time facts: parameters by component, active
/// parameters, KV cache at chosen contexts and element types, FLOPs per token, and the memory AdamW training needs.
/// Nothing is built or allocated: the numbers are the generator's constants.
/// </summary>
internal static class InspectCommand
{
    /// <summary>Bytes per element of the cache types offered.</summary>
    internal static readonly Dictionary<string, double> ElementBytes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["fp32"] = 4, ["bf16"] = 2, ["fp16"] = 2, ["fp8"] = 1, ["fp4"] = 0.5,
    };

    /// <summary>Training bytes per parameter with AdamW: weights, gradients, two moments (and fp32 master weights in mixed precision).</summary>
    internal static readonly (string Name, int Bytes, string Parts)[] TrainingRecipes =
    {
        ("fp32", 16, "weights 4 + gradients 4 + AdamW moments 8"),
        ("bf16 mixed", 16, "bf16 weights 2 + gradients 2 + fp32 master 4 + moments 8"),
        ("bf16 pure", 8, "weights 2 + gradients 2 + moments 4"),
    };

    public static Command Create()
    {
        var models = new Option<string>("--models") { Description = "Comma-separated models or prefixes ending in '*' (e.g. Tiny*), or 'all'.", DefaultValueFactory = _ => "all" };
        var summary = new Option<bool>("--summary") { Description = "One line per model: parameters, KV cache per token (bf16), forward FLOPs per token, context." };
        var contexts = new Option<string>("--contexts") { Description = "Context lengths for the KV-cache column, comma-separated; 'max' is each model's own.", DefaultValueFactory = _ => "2048,max" };
        var dtypes = new Option<string>("--dtypes") { Description = $"KV-cache element types: {string.Join(", ", ElementBytes.Keys)}.", DefaultValueFactory = _ => "bf16,fp8" };
        var assembly = CommandLine.Assembly();
        var command = new Command("inspect", "Show every declared model's parameters by component, active parameters, KV cache, FLOPs per token and training memory.")
        {
            models, contexts, dtypes, assembly, summary,
        };
        command.SetAction(result => CommandLine.Guard(() =>
        {
            var all = ModelCatalog.In(CommandLine.LoadModels(result.GetValue(assembly)));
            var names = result.GetValue(models)!;
            var chosen = names.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)
                ? all
                : names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).SelectMany(n => Matching(all, n)).Distinct().ToList();
            var types = result.GetValue(dtypes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => ElementBytes.ContainsKey(t) ? t : throw new ArgumentException($"--dtypes: unknown type '{t}'; choose from {string.Join(", ", ElementBytes.Keys)}."))
                .ToList();
            var contextList = result.GetValue(contexts)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            if (result.GetValue(summary)) Console.Write(Summary(chosen.Select(m => m.Facts).ToList()));
            else foreach (var model in chosen) Console.Write(Describe(model.Facts, contextList, types));
            return 0;
        }));
        return command;
    }

    /// <summary>The model named <paramref name="name"/>, or every model starting with it when it ends in '*'.</summary>
    private static IEnumerable<DeclaredModelType> Matching(IReadOnlyList<DeclaredModelType> all, string name)
    {
        if (!name.EndsWith('*')) return new[] { ModelCatalog.Find(all, name) };
        var found = all.Where(m => m.Facts.Name.StartsWith(name[..^1], StringComparison.OrdinalIgnoreCase)).ToList();
        return found.Count > 0 ? found : throw new ArgumentException($"No model name starts with '{name[..^1]}'.");
    }

    /// <summary>One aligned line per model.</summary>
    internal static string Summary(IReadOnlyList<ModelFacts> models)
    {
        var width = Math.Max(5, models.Max(m => m.Name.Length));
        var text = new StringBuilder();
        text.Append(string.Create(CultureInfo.InvariantCulture, $"{"model".PadRight(width)}  {"parameters",15}  {"active",15}  {"KV B/token",10}  {"MFLOP/token",11}  {"context",7}\n"));
        foreach (var f in models)
        {
            var cache = f.Causal ? f.KvCacheBytesPerToken().ToString("N0", CultureInfo.InvariantCulture) : "—";
            text.Append(string.Create(CultureInfo.InvariantCulture, $"{f.Name.PadRight(width)}  {f.ParameterCount,15:N0}  {f.ActiveParameterCount,15:N0}  {cache,10}  {f.FlopsPerToken / 1e6,11:N1}  {f.Context,7}\n"));
        }
        text.Append("Active: parameters one token uses (fewer than all only with routed experts). KV cache in bf16 (2 bytes per element; encoders keep none); FLOPs of one forward token at full context.\n");
        if (models.Any(m => m.KvCacheElements is not null))
            text.Append("Compressed attention (DeepSeek V4) caches a bounded window, an entry per window and fixed state: its KV B/token is the cache at full context spread over the context.\n");
        return text.ToString();
    }

    /// <summary>The text block for one model.</summary>
    internal static string Describe(ModelFacts facts, IReadOnlyList<string> contexts, IReadOnlyList<string> types)
    {
        var text = new StringBuilder();
        void Line(string line) => text.Append(line).Append('\n');
        string N(double value) => value.ToString("N0", CultureInfo.InvariantCulture);
        string Share(long part) => (100.0 * part / facts.ParameterCount).ToString("F1", CultureInfo.InvariantCulture) + "%";

        Line($"{facts.Name}: {facts.Layers} layers, width {facts.Dim}, vocabulary {N(facts.Vocab)}, context {N(facts.Context)}");
        var b = facts.Breakdown;
        foreach (var (name, count) in new[] { ("embeddings", b.Embeddings), ("attention", b.Attention), ("MLP", b.Mlp), ("norms", b.Norms), ("output head", b.OutputHead) })
            Line($"  {name,-13}{N(count),18}  {Share(count),6}");
        Line($"  {"total",-13}{N(facts.ParameterCount),18}");
        Line(facts.ActiveParameterCount == facts.ParameterCount
            ? $"  {"active",-13}{N(facts.ActiveParameterCount),18}  (dense: every parameter is used for every token)"
            : $"  {"active",-13}{N(facts.ActiveParameterCount),18}  {Share(facts.ActiveParameterCount),6}  (per token: routed experts it does not choose excluded)");
        Line($"  FLOPs/token  {N(facts.FlopsPerToken),18}  (forward, at position {N(facts.Context)})");
        if (facts.Quant is { } quant)
            Line(string.Create(CultureInfo.InvariantCulture,
                $"  quantized    {N(quant.Parameters),18}  {Share(quant.Parameters),6}  ({quant.Target} in {Quantization.QuantFormats.DisplayName(quant.Settings.Format)}: {Bytes(quant.Bytes)} at {quant.BitsPerValue:0.###} bits per value, {Bytes(quant.Fp32Bytes)} in fp32)"));
        foreach (var context in contexts)
        {
            long length;
            if (context.Equals("max", StringComparison.OrdinalIgnoreCase)) length = facts.Context;
            else if (!long.TryParse(context, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length <= 0)
                throw new ArgumentException($"--contexts: '{context}' is not a positive length or 'max'.");
            var elements = facts.KvCacheElementsAt(length);
            var cells = types.Select(t => $"{t} {Bytes((double)elements * ElementBytes[t])}");
            // Compressed attention's cache is no multiple of the tokens: state what it holds per token at this length.
            var perToken = facts.KvCacheElements is null
                ? $"{N(facts.KvCacheElementsPerToken)} elements per token"
                : $"{((double)elements / length).ToString("N1", CultureInfo.InvariantCulture)} elements per token at this length: window, compressed entries, index keys and state";
            Line($"  KV cache at {N(length)} tokens: {string.Join(", ", cells)}  ({perToken})");
        }
        foreach (var (name, bytes, parts) in TrainingRecipes)
            Line($"  training memory, {name}: {Bytes((double)facts.ParameterCount * bytes)} ({parts} bytes per parameter; activations not included)");
        Line("");
        return text.ToString();
    }

    /// <summary>Binary units: 1 KiB = 1024 bytes.</summary>
    internal static string Bytes(double bytes)
    {
        string[] units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        var unit = 0;
        while (bytes >= 1024 && unit < units.Length - 1)
        {
            bytes /= 1024;
            unit++;
        }
        return bytes.ToString(unit == 0 ? "F0" : "F2", CultureInfo.InvariantCulture) + " " + units[unit];
    }
}
