using System.CommandLine;
using LlmEff.Cli.Commands;

namespace LlmEff.Cli;

/// <summary>Entry point of the <c>llmeff</c> command-line program.</summary>
public static class Program
{
    /// <summary>Parses <paramref name="args"/> and runs the chosen command; returns its exit code
    /// (0 done, 1 usage error, 2 refused input).</summary>
    public static int Main(string[] args)
    {
        var root = new RootCommand("LlmEff: train, compare and inspect language-model architectures declared as annotated C# classes.")
        {
            AblateCommand.Create(),
            AblateCommand.CreateWorker(),
            TrainCommand.Create(),
            GenerateCommand.Create(),
            InspectCommand.Create(),
            StudyCommand.Create(),
            QatCommand.Create(),
            ExportPyTorchCommand.Create(),
            ExportGgufCommand.Create(),
            IndexerRecallCommand.Create(),
        };
        return root.Parse(args).Invoke();
    }
}
