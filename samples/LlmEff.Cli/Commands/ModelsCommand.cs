using System;
using System.CommandLine;
using System.Globalization;
using LlmEff.Samples;

namespace LlmEff.Cli.Commands;

/// <summary><c>llmeff models</c>: the declared models and their compile-time size facts.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var command = new Command("models", "List the declared models with their parameters, KV cache and FLOPs per token.");
        command.SetAction(_ =>
        {
            Console.WriteLine($"{"model",-14} {"parameters",16} {"KV B/token",12} {"MFLOP/token",14} {"context",8}");
            foreach (var model in ModelCatalog.In(typeof(TinyDecoder).Assembly))
            {
                var f = model.Facts;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{f.Name,-14} {f.ParameterCount,16:N0} {f.KvCacheBytesPerToken(),12:N0} {f.FlopsPerToken / 1e6,14:N1} {f.Context,8}"));
            }
            Console.WriteLine("KV cache in bf16 (2 bytes per element); FLOPs of one forward token at full context.");
            return 0;
        });
        return command;
    }
}
