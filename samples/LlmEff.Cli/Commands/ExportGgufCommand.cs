using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using LlmEff.Checkpoints;
using LlmEff.Export;

namespace LlmEff.Cli.Commands;

/// <summary><c>llmeff export-gguf</c>: a declared model (fresh or from a checkpoint) as a GGUF file llama.cpp runs.</summary>
internal static class ExportGgufCommand
{
    /// <summary>The tensor types --type accepts, by the names llama.cpp's tools use.</summary>
    internal static GgufTensorType ParseType(string name) => name.ToLowerInvariant() switch
    {
        "f32" => GgufTensorType.F32,
        "f16" => GgufTensorType.F16,
        "bf16" => GgufTensorType.BF16,
        "q8_0" => GgufTensorType.Q8_0,
        _ => throw new ArgumentException($"--type: '{name}' is not a type export-gguf writes; use f32, f16, bf16 or q8_0."),
    };

    public static Command Create()
    {
        var modelName = new Argument<string>("model") { Description = "Declared model to export (see 'llmeff inspect')." };
        var assembly = CommandLine.Assembly();
        var output = new Option<string>("--out") { Description = "The .gguf file to write.", Required = true };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "A checkpoint of the model (from 'llmeff train'), or a packed export of a [Quant] model (from 'llmeff qat'); default: freshly initialised weights." };
        var tokenizer = new Option<string>("--tokenizer") { Description = "The tokenizer written into the file, so llama.cpp takes text: byte or gpt2 (the one the model was trained with), or none (token ids only).", DefaultValueFactory = _ => "byte" };
        var type = new Option<string>("--type") { Description = "Type of the matrices and embeddings: f32, f16, bf16 or q8_0 (norm weights stay f32; with q8_0 the expert router stays f32 and rows that are not whole 32-value blocks f16). The weights a [Quant(Mxfp4)] model quantizes are written mxfp4, as its codes.", DefaultValueFactory = _ => "f32" };

        var command = new Command("export-gguf", "Write a declared model as a GGUF file that llama.cpp (and Ollama, LM Studio) runs; token ids go in directly.")
        {
            modelName, assembly, output, checkpoint, type, tokenizer,
        };
        command.SetAction(result => CommandLine.Guard(() =>
        {
            var declared = ModelCatalog.Find(CommandLine.LoadModels(result.GetValue(assembly)), result.GetValue(modelName)!);
            var tensorType = ParseType(result.GetValue(type)!);
            if (!declared.Gguf.IsAvailable)
                throw new ArgumentException($"{declared.Facts.Name} cannot be exported to GGUF: {declared.Gguf.Refusal}.");
            var tokenizerName = result.GetValue(tokenizer)!;
            var vocabulary = tokenizerName.Equals("none", StringComparison.OrdinalIgnoreCase) ? null : Vocabulary(tokenizerName, declared.Facts);
            var path = result.GetValue(output)!;
            var source = result.GetValue(checkpoint);
            if (source is not null && !File.Exists(source)) throw new FileNotFoundException($"--checkpoint: no file at {Path.GetFullPath(source)}.", source);

            using var model = declared.Create();
            // A packed export's codes are written as they are; a checkpoint's weights are quantized on the way (MXFP4 only).
            if (source is not null && PackedWeights.IsPackedExport(source)) PackedWeights.Load(source, model, declared.Facts);
            else if (source is not null) Checkpoint.Load(source, model, declared.Facts);
            model.eval();
            var written = GgufExporter.Export(model, declared.Gguf, declared.Facts.Name, path, tensorType, vocabulary);

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Wrote {written.Path}: {declared.Facts.Name} as llama.cpp's '{written.Architecture}', {written.Tensors} tensors, {result.GetValue(type)!.ToLowerInvariant()}, {written.Bytes:N0} bytes{(source is null ? " (untrained: freshly initialised weights)" : "")}."));
            if (written.Mxfp4Tensors > 0) Console.WriteLine(Mxfp4Line(declared.Gguf, written, result.GetValue(type)!.ToLowerInvariant()));
            // Aliased projections and latent attention: llama.cpp's cache does not shrink as ours does.
            if (declared.Gguf.Note is { } note) Console.WriteLine("Note: " + note);
            Console.WriteLine(vocabulary is null
                ? "Its tokenizer is 'no_vocab': give llama.cpp token ids, not text."
                : $"Its tokenizer is the {vocabulary.Name} tokenizer as llama.cpp's byte-level BPE: llama.cpp turns text into the ids the model was trained on.");
            return 0;
        }));
        return command;
    }

    /// <summary>What an export with MXFP4 tensors holds: which tensors (per layer), how many weights, and that they are the
    /// quantized model's, written so whatever state training left the layers in.</summary>
    internal static string Mxfp4Line(GgufExport export, GgufExportResult written, string type)
    {
        var kinds = export.Tensors.Where(t => t.Type == GgufTensorType.MXFP4)
            .Select(t => Regex.Replace(t.Name, @"^blk\.\d+\.|\.weight$", "")).Distinct().ToList();
        return string.Create(CultureInfo.InvariantCulture,
            $"MXFP4: {written.Mxfp4Tensors} tensors ({string.Join(", ", kinds)}), {written.Mxfp4Values:N0} weights as our E2M1 codes and E8M0 scales, " +
            $"the model as it computes with quantization on (training from From on, 'generate --checkpoint'), also before training reached From; the rest {type}.");
    }

    /// <summary>The vocabulary --tokenizer names for <paramref name="facts"/>' model; a model with fewer tokens than the
    /// tokenizer is refused naming both.</summary>
    private static GgufVocabulary Vocabulary(string name, ModelFacts facts)
    {
        var tokenizer = LlmEff.Data.Tokenizers.ByName(name);
        if (facts.Vocab < tokenizer.VocabSize)
            throw new ArgumentException($"--tokenizer {name}: {facts.Name} has a vocabulary of {facts.Vocab:N0}, smaller than the tokenizer's {tokenizer.VocabSize:N0}; use the tokenizer it was trained with, or --tokenizer none.");
        return GgufVocabulary.For(name, facts.Vocab);
    }
}
