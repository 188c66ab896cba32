using System;
using System.CommandLine;
using System.IO;
using LlmEff.Checkpoints;
using LlmEff.Data;
using LlmEff.Generation;
using LlmEff.Layers;

namespace LlmEff.Cli.Commands;

/// <summary><c>llmeff generate</c>: continue a prompt with a trained model from its checkpoint.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommandLine.ModelName();
        var assembly = CommandLine.Assembly();
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint (.safetensors) written by 'llmeff train --checkpoint', or a packed export written by 'llmeff qat'.", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue.", DefaultValueFactory = _ => "One day, " };
        var tokens = new Option<int>("--tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 200 };
        var temperature = new Option<double>("--temperature") { Description = "0: greedy; higher: more random.", DefaultValueFactory = _ => 0.8 };
        var topP = new Option<double>("--top-p") { Description = "Sample among the most likely tokens holding this much probability.", DefaultValueFactory = _ => 0.95 };
        // Not the training set's --seed: here it seeds only the sampling, so it says so.
        var seed = new Option<int>("--seed") { Description = "Seed of the sampling (temperature above 0).", DefaultValueFactory = _ => 1234 };
        var tokenizer = new Option<string>("--tokenizer") { Description = "byte or gpt2: the one the model was trained with.", DefaultValueFactory = _ => "byte" };

        var command = new Command("generate", "Continue a prompt with a trained model (greedy or temperature/top-p sampling).")
        {
            model, assembly, checkpoint, prompt, tokens, temperature, topP, seed, tokenizer,
        };
        command.SetAction(result => CommandLine.Guard(() =>
        {
            var declared = CommandLine.Model(result, model, assembly);
            var codec = Tokenizers.ByName(result.GetValue(tokenizer)!);
            if (declared.Facts.Vocab < codec.VocabSize)
                throw new ArgumentException($"{declared.Facts.Name} has a vocabulary of {declared.Facts.Vocab}, smaller than the {result.GetValue(tokenizer)} tokenizer's {codec.VocabSize}.");
            var path = result.GetValue(checkpoint)!;
            if (!File.Exists(path)) throw new FileNotFoundException($"--checkpoint: no file at {Path.GetFullPath(path)}.", path);
            using var module = declared.Create();
            // A [Quant] model runs as it is deployed: from its packed codes, or with its weights fake-quantized.
            if (PackedWeights.IsPackedExport(path)) PackedWeights.Load(path, module, declared.Facts);
            else
            {
                Checkpoint.Load(path, module, declared.Facts);
                QuantizedLinear.SetFakeQuantization(module, true);
            }
            var sampling = new SamplingOptions(result.GetValue(temperature), result.GetValue(topP), result.GetValue(seed));
            var text = result.GetValue(prompt)!;
            var continuation = TextGenerator.Generate(module, codec.Encode(text), result.GetValue(tokens), declared.Facts.Context, sampling);
            Console.WriteLine(text + codec.Decode(continuation));
            return 0;
        }));
        return command;
    }
}
