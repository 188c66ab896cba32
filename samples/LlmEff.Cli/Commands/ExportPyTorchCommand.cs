using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using LlmEff.Checkpoints;
using LlmEff.Data;
using static TorchSharp.torch;

namespace LlmEff.Cli.Commands;

/// <summary><c>llmeff export-pytorch</c>: a declared model's PyTorch twin, a torchrun training script, a safetensors
/// reader/writer and the training data, so the same model continues training on PyTorch's distributed engine.</summary>
internal static class ExportPyTorchCommand
{
    /// <summary>Files written besides the model's module, from the embedded copies.</summary>
    internal static readonly string[] SupportFiles = { "train.py", "llmeff_safetensors.py", "muon.py" };

    /// <summary>Name of the token file.</summary>
    internal const string TokensFile = "tokens.safetensors";

    public static Command Create()
    {
        var modelName = new Argument<string>("model") { Description = "Declared model to export (see 'llmeff inspect')." };
        var assembly = CommandLine.Assembly();
        var output = new Option<string>("--out") { Description = "Folder to write the module, train.py, the safetensors module and the tokens into.", Required = true };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "A checkpoint of the model (from 'llmeff train'): checked against the model and copied beside it to start from." };
        var data = new Option<string[]>("--data") { Description = "Text files or folders to tokenize for training; default: the embedded corpus.", AllowMultipleArgumentsPerToken = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "byte or gpt2 (as for 'llmeff train').", DefaultValueFactory = _ => "byte" };

        var command = new Command("export-pytorch", "Write a declared model as a PyTorch module, with a torchrun training script that reads and writes llmeff checkpoints.")
        {
            modelName, assembly, output, checkpoint, data, tokenizer,
        };
        command.SetAction(result => CommandLine.Guard(() =>
        {
            var declared = ModelCatalog.Find(CommandLine.LoadModels(result.GetValue(assembly)), result.GetValue(modelName)!);
            var export = declared.PyTorch;
            if (!export.IsAvailable)
                throw new ArgumentException($"{declared.Facts.Name} cannot be exported to PyTorch: {export.Refusal}.");
            var codec = Tokenizers.ByName(result.GetValue(tokenizer)!);
            if (declared.Facts.Vocab < codec.VocabSize)
                throw new ArgumentException($"{declared.Facts.Name} has a vocabulary of {declared.Facts.Vocab}, smaller than the {result.GetValue(tokenizer)} tokenizer's {codec.VocabSize}.");
            var folder = result.GetValue(output)!;
            var source = result.GetValue(checkpoint);
            if (source is not null) Verify(declared, source);
            var dataset = TrainCommand.Load(result.GetValue(data), codec, length: 1);

            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, export.FileName!), export.Source);
            foreach (var file in SupportFiles) File.WriteAllText(Path.Combine(folder, file), Embedded(file));
            WriteTokens(Path.Combine(folder, TokensFile), dataset, result.GetValue(tokenizer)!);
            string? copied = null;
            if (source is not null)
            {
                copied = Path.Combine(folder, declared.Facts.Name + ".safetensors");
                if (!string.Equals(Path.GetFullPath(source), Path.GetFullPath(copied), StringComparison.Ordinal)) File.Copy(source, copied, overwrite: true);
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Wrote {export.FileName}, {string.Join(", ", SupportFiles)} and {TokensFile} ({dataset.TrainTokens:N0} training / {dataset.HeldOutTokens:N0} held-out tokens) to {Path.GetFullPath(folder)}."));
            var init = copied is null ? "" : $" --init-from {Path.GetFileName(copied)}";
            Console.WriteLine($"Train there:   python train.py --model {export.FileName} --data {TokensFile}{init} --checkpoint out.safetensors");
            Console.WriteLine($"On 2 processes: torchrun --nproc_per_node 2 train.py --model {export.FileName} --data {TokensFile}{init} --checkpoint out.safetensors");
            Console.WriteLine($"Back in C#:    llmeff generate --model {declared.Facts.Name} --checkpoint out.safetensors");
            return 0;
        }));
        return command;
    }

    /// <summary>Loads <paramref name="path"/> into a fresh model: the name, every tensor name and shape and the checksum are checked.</summary>
    private static void Verify(DeclaredModelType declared, string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--checkpoint: no file at {Path.GetFullPath(path)}.", path);
        using var model = declared.Create();
        Checkpoint.Load(path, model, declared.Facts);
    }

    /// <summary>The training and held-out splits as I64 tensors, as train.py reads them.</summary>
    internal static void WriteTokens(string path, TokenDataset dataset, string tokenizer)
    {
        using var train = tensor(dataset.TrainSplit.ToArray());
        using var heldOut = tensor(dataset.HeldOutSplit.ToArray());
        SafeTensors.Save(path, new List<(string, Tensor)> { ("train", train), ("held_out", heldOut) }, new Dictionary<string, string>
        {
            ["tokenizer"] = tokenizer,
            ["vocab"] = dataset.Vocab.ToString(CultureInfo.InvariantCulture),
        });
    }

    private static string Embedded(string file)
    {
        using var stream = typeof(ExportPyTorchCommand).Assembly.GetManifestResourceStream("LlmEff.Cli.PyTorch." + file)
            ?? throw new InvalidOperationException($"The embedded {file} is missing from this build of llmeff.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
