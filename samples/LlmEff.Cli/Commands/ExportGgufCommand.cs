using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
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
        var checkpoint = new Option<string?>("--checkpoint") { Description = "A checkpoint of the model (from 'llmeff train'); default: freshly initialised weights." };
        var tokenizer = new Option<string>("--tokenizer") { Description = "The tokenizer written into the file, so llama.cpp takes text: byte or gpt2 (the one the model was trained with), or none (token ids only).", DefaultValueFactory = _ => "byte" };
        var type = new Option<string>("--type") { Description = "Type of the matrices and embeddings: f32, f16, bf16 or q8_0 (norm weights stay f32; with q8_0 the expert router stays f32 and rows that are not whole 32-value blocks f16).", DefaultValueFactory = _ => "f32" };

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
            if (source is not null) Checkpoint.Load(source, model, declared.Facts);
            model.eval();
            var written = GgufExporter.Export(model, declared.Gguf, declared.Facts.Name, path, tensorType, vocabulary);

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Wrote {written.Path}: {declared.Facts.Name} as llama.cpp's '{written.Architecture}', {written.Tensors} tensors, {result.GetValue(type)!.ToLowerInvariant()}, {written.Bytes:N0} bytes{(source is null ? " (untrained: freshly initialised weights)" : "")}."));
            // Aliased projections and latent attention: llama.cpp's cache does not shrink as ours does.
            if (declared.Gguf.Note is { } note) Console.WriteLine("Note: " + note);
            Console.WriteLine(vocabulary is null
                ? "Its tokenizer is 'no_vocab': give llama.cpp token ids, not text."
                : $"Its tokenizer is the {vocabulary.Name} tokenizer as llama.cpp's byte-level BPE: llama.cpp turns text into the ids the model was trained on.");
            return 0;
        }));
        return command;
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
