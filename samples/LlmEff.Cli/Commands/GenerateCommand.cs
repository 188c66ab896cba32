using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using LlmEff.Checkpoints;
using LlmEff.Cli.LlamaCpp;
using LlmEff.Data;
using LlmEff.Generation;
using LlmEff.Layers;

namespace LlmEff.Cli.Commands;

/// <summary><c>llmeff generate</c>: continue a prompt with a trained model from its checkpoint, or with a GGUF export
/// run by llama.cpp.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommandLine.ModelName();
        var assembly = CommandLine.Assembly();
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Checkpoint (.safetensors) written by 'llmeff train --checkpoint', or a packed export written by 'llmeff qat'." };
        var gguf = new Option<string?>("--gguf") { Description = "A GGUF file (from 'llmeff export-gguf') to run in llama.cpp instead of a checkpoint; --model is then not used." };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue.", DefaultValueFactory = _ => "One day, " };
        var tokens = new Option<int>("--tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 200 };
        var temperature = new Option<double>("--temperature") { Description = "0: greedy; higher: more random.", DefaultValueFactory = _ => 0.8 };
        var topP = new Option<double>("--top-p") { Description = "Sample among the most likely tokens holding this much probability.", DefaultValueFactory = _ => 0.95 };
        // Not the training set's --seed: here it seeds only the sampling, so it says so.
        var seed = new Option<int>("--seed") { Description = "Seed of the sampling (temperature above 0).", DefaultValueFactory = _ => 1234 };
        var tokenizer = new Option<string>("--tokenizer") { Description = "byte or gpt2: the one the model was trained with.", DefaultValueFactory = _ => "byte" };

        var command = new Command("generate", "Continue a prompt with a trained model (greedy or temperature/top-p sampling).")
        {
            model, assembly, checkpoint, gguf, prompt, tokens, temperature, topP, seed, tokenizer,
        };
        command.SetAction(result => CommandLine.Guard(() =>
        {
            var sampling = new SamplingOptions(result.GetValue(temperature), result.GetValue(topP), result.GetValue(seed));
            var count = result.GetValue(tokens);
            if (count < 0) throw new ArgumentOutOfRangeException(tokens.Name, count, $"{tokens.Name} must not be negative.");
            var ggufPath = result.GetValue(gguf);
            if (ggufPath is not null && result.GetValue(checkpoint) is not null)
                throw new ArgumentException("Give --checkpoint (our module) or --gguf (llama.cpp), not both.");
            if (ggufPath is not null)
            {
                Console.WriteLine(GenerateInLlamaCpp(ggufPath, result.GetValue(prompt)!, count, sampling, result.GetValue(tokenizer)!));
                return 0;
            }
            var declared = CommandLine.Model(result, model, assembly);
            var codec = Tokenizers.ByName(result.GetValue(tokenizer)!);
            if (declared.Facts.Vocab < codec.VocabSize)
                throw new ArgumentException($"{declared.Facts.Name} has a vocabulary of {declared.Facts.Vocab}, smaller than the {result.GetValue(tokenizer)} tokenizer's {codec.VocabSize}.");
            var path = result.GetValue(checkpoint) ?? throw new ArgumentException("Give --checkpoint (a trained model) or --gguf (a GGUF export).");
            if (!File.Exists(path)) throw new FileNotFoundException($"--checkpoint: no file at {Path.GetFullPath(path)}.", path);
            using var module = declared.Create();
            // A [Quant] model runs as it is deployed: from its packed codes, or with its weights fake-quantized.
            if (PackedWeights.IsPackedExport(path)) PackedWeights.Load(path, module, declared.Facts);
            else
            {
                Checkpoint.Load(path, module, declared.Facts);
                QuantizedLinear.SetFakeQuantization(module, true);
            }
            var text = result.GetValue(prompt)!;
            var continuation = TextGenerator.Generate(module, codec.Encode(text), count, declared.Facts.Context, sampling);
            Console.WriteLine(text + codec.Decode(continuation));
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// Continues <paramref name="text"/> in llama.cpp: tokenized by the file's own vocabulary when it has one (else by
    /// <paramref name="tokenizerName"/>, the one the model was trained with), sampled from llama.cpp's logits by the same
    /// sampler as our modules, so a given seed picks the same tokens from the same logits.
    /// </summary>
    internal static string GenerateInLlamaCpp(string path, string text, int count, SamplingOptions sampling, string tokenizerName)
    {
        sampling.Validate();
        if (!File.Exists(path)) throw new FileNotFoundException($"--gguf: no file at {Path.GetFullPath(path)}.", path);
        var codec = Tokenizers.ByName(tokenizerName);
        // The file is loaded once; the context is sized when the prompt's length is known (the trained context bounds it).
        int[] prompt = [];
        using var engine = new LlamaCppEngine(path, weights =>
        {
            prompt = weights.HasTokenizer ? weights.Tokenize(text) : codec.Encode(text).Select(id => checked((int)id)).ToArray();
            return Math.Max(prompt.Length, 1) + Math.Max(count, 1);
        }, threads: Math.Max(1, Environment.ProcessorCount));
        if (prompt.Length == 0) throw new ArgumentException("--prompt: the prompt is empty: give at least one token.");
        if (prompt.Length + count > engine.TrainedContext)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"--tokens {count}: the prompt's {prompt.Length} tokens plus {count} exceed the model's context of {engine.TrainedContext}; llama.cpp does not slide a window here."));
        var outside = prompt.FirstOrDefault(id => id >= engine.Vocab, -1);
        if (outside >= 0) throw new ArgumentException($"--tokenizer {tokenizerName}: token {outside} of the prompt is outside the model's vocabulary of {engine.Vocab}.");

        var generator = new TorchSharp.torch.Generator((ulong)sampling.Seed);
        var chosen = new long[count];
        if (count > 0)
        {
            var logits = engine.Start(prompt);
            for (var i = 0; i < count; i++)
            {
                using (var values = TorchSharp.torch.tensor(logits))
                    chosen[i] = TextGenerator.Choose(values, sampling, generator);
                if (i + 1 < count) logits = engine.Next((int)chosen[i]);
            }
        }
        var continuation = engine.HasTokenizer ? engine.Detokenize(chosen.Select(id => (int)id)) : codec.Decode(chosen);
        return text + continuation;
    }
}
