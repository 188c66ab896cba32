using System;
using System.CommandLine;
using LlmEff.Cli.Commands;

namespace LlmEff.Cli;

/// <summary>Entry point of the <c>llmeff</c> command-line program.</summary>
public static class Program
{
    /// <summary>Parses <paramref name="args"/> and runs the chosen command; returns its exit code.</summary>
    public static int Main(string[] args)
    {
        var root = new RootCommand("LlmEff: train and inspect language-model architectures declared as annotated C# classes.")
        {
            TrainCommand.Create(),
            ModelsCommand.Create(),
        };
        return root.Parse(args).Invoke();
    }
}
