using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using LlmEff.Cli.Reporting;
using LlmEff.Data;
using LlmEff.Layers;
using LlmEff.Training;

namespace LlmEff.Cli.Commands;

/// <summary><c>llmeff train</c>: one declared model on the embedded corpus or the user's text files, with checkpoints and resume.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var model = CommandLine.ModelName();
        var assembly = CommandLine.Assembly();
        var data = new Option<string[]>("--data") { Description = "Text files or folders (every *.txt and *.md inside) to train on; default: the embedded corpus.", AllowMultipleArgumentsPerToken = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "byte (vocabulary 256) or gpt2 (BPE, 50,257; the model's Vocab must be at least that).", DefaultValueFactory = _ => "byte" };
        var training = new TrainingOptionSet(steps: 200);
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Write a checkpoint (.safetensors) here at the end, and every --checkpoint-every steps." };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Steps between checkpoints (0: only at the end).", DefaultValueFactory = _ => 0 };
        var resume = new Option<string?>("--resume") { Description = "Continue the run saved in this checkpoint (same settings required)." };
        var logMemory = new Option<bool>("--log-memory") { Description = "Print the process's resident memory with each progress line (to watch a long run)." };

        var command = new Command("train", "Train one declared model and print the loss as it falls; optionally checkpoint and resume.")
        {
            model, assembly, data, tokenizer, checkpoint, checkpointEvery, resume, logMemory,
        };
        training.AddTo(command);
        command.SetAction(result => CommandLine.Guard(() =>
        {
            var options = training.Bind(result, evalEvery: Math.Max(1, result.GetValue(training.Steps) / 10));
            training.UseThreads(result);
            var declared = CommandLine.Model(result, model, assembly);
            var text = Load(result.GetValue(data), Tokenizers.ByName(result.GetValue(tokenizer)!), options.SequenceLength);
            Check(declared.Facts, text, options);
            RunView.LogMemory = result.GetValue(logMemory);
            return Run(declared, text, options, result.GetValue(checkpoint), result.GetValue(checkpointEvery), result.GetValue(resume));
        }));
        return command;
    }

    /// <summary>The embedded corpus, or the user's files tokenized; refuses data too short for one window per split.</summary>
    internal static TokenDataset Load(string[]? paths, ITokenizer tokenizer, int length)
    {
        TokenDataset dataset;
        if (paths is null || paths.Length == 0)
        {
            if (tokenizer is not ByteTokenizer) throw new ArgumentException("The embedded corpus is byte-level: use --tokenizer byte, or give --data.");
            dataset = TokenDataset.EmbeddedDefault();
        }
        else
        {
            var files = paths.SelectMany(Expand).ToList();
            if (files.Count == 0) throw new ArgumentException($"--data: no .txt or .md files in {string.Join(", ", paths)}.");
            var tokens = files.SelectMany(f => tokenizer.Encode(File.ReadAllText(f))).ToArray();
            dataset = new TokenDataset(tokens, tokenizer.VocabSize);
        }
        if (dataset.HeldOutTokens < length + 1)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"The data has {dataset.TrainTokens + dataset.HeldOutTokens:N0} tokens; its held-out tenth ({dataset.HeldOutTokens:N0}) must hold one window of --seq {length} + 1. Give more text or a shorter --seq."));
        return dataset;
    }

    private static IEnumerable<string> Expand(string path)
    {
        if (File.Exists(path)) return new[] { path };
        if (Directory.Exists(path))
            return Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                .Where(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".md", StringComparison.OrdinalIgnoreCase))
                .OrderBy(f => f, StringComparer.Ordinal);
        throw new FileNotFoundException($"--data: no file or folder at {Path.GetFullPath(path)}.", path);
    }

    private static void Check(ModelFacts facts, TokenDataset data, TrainingOptions options)
    {
        if (options.SequenceLength > facts.Context)
            throw new ArgumentException($"--seq {options.SequenceLength} exceeds the context of {facts.Name} ({facts.Context}).");
        if (facts.Vocab < data.Vocab)
            throw new ArgumentException($"{facts.Name} has a vocabulary of {facts.Vocab}; the tokenizer produces ids up to {data.Vocab - 1}.");
    }

    private static int Run(DeclaredModelType declared, TokenDataset data, TrainingOptions options, string? checkpoint, int checkpointEvery, string? resume)
    {
        if (checkpointEvery < 0) throw new ArgumentOutOfRangeException("--checkpoint-every", checkpointEvery, "--checkpoint-every must not be negative.");
        Seeding.Seed(options.Seed);
        using var model = declared.Create();
        using var run = resume is null ? new TrainingRun(model, data, options) : TrainingRun.Resume(resume, model, declared.Facts, data, options);
        var resuming = resume is null ? "." : $", resuming after step {run.StepsDone} of {resume}.";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Training {declared.Facts.Name} ({Parameters(declared.Facts)}) for {options.Steps} steps of {options.BatchSize}×{options.SequenceLength} tokens on {data.TrainTokens:N0} training / {data.HeldOutTokens:N0} held-out tokens{resuming}"));
        if (QuantizationPlan(declared.Facts, run) is { } plan) Console.WriteLine(plan);
        var firstLoss = run.Losses.Count > 0 ? run.Losses[0] : double.NaN;
        var firstSteps = run.StepsDone; // done before this session (resume): not part of its throughput
        var peakBefore = MatmulPeak.MeasureBefore(); // and again after: a busy machine shows as two figures that disagree
        var result = RunView.Track(declared.Facts.Name, options.Steps, run.StepsDone, onStep =>
        {
            while (!run.IsComplete)
            {
                var report = run.Step();
                onStep(report);
                if (report.QuantizationStarted) RunView.Note(QuantizationStartedLine(declared.Facts, report));
                if (checkpoint is not null && checkpointEvery > 0 && report.Step % checkpointEvery == 0 && !run.IsComplete)
                    run.SaveCheckpoint(checkpoint, declared.Facts);
            }
            return run.Complete();
        });
        if (checkpoint is not null)
        {
            run.SaveCheckpoint(checkpoint, declared.Facts);
            Console.WriteLine($"Checkpoint: {Path.GetFullPath(checkpoint)}");
        }
        if (run.Routers.Count > 0) Console.Write(ExpertLoadReport(run.Routers));
        var peak = MatmulPeak.Complete(peakBefore);
        var tokensPerSecond = (result.TokensSeen - (long)firstSteps * options.BatchSize * options.SequenceLength) / Math.Max(1e-9, result.Elapsed.TotalSeconds);
        var throughput = ThroughputText.Of(declared.Facts, options.SequenceLength, tokensPerSecond, peak);
        Console.WriteLine(peak.Flops is null ? throughput : $"{throughput}; {ThroughputText.Reference(peak)}"); // unmeasured: Of says why
        if (double.IsNaN(firstLoss)) firstLoss = result.Losses[0];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Loss fell from {firstLoss:F4} to {result.FinalTrainLoss:F4} (mean of the last tenth); held-out loss {result.HeldOutLoss:F4} (perplexity {Math.Exp(result.HeldOutLoss):F2})."));
        return 0;
    }

    /// <summary>When fake quantization will switch on (or has), for a model declared with [Quant]; null otherwise.</summary>
    internal static string? QuantizationPlan(ModelFacts facts, TrainingRun run)
    {
        if (facts.Quant is not { } quant || run.QuantizationStartStep is not { } start) return null;
        var format = Quantization.QuantFormats.DisplayName(quant.Settings.Format);
        var steps = run.Options.Steps;
        if (start >= steps) return $"Fake quantization stays off: all {steps} steps train in full precision.";
        return run.StepsDone > start
            ? string.Create(CultureInfo.InvariantCulture, $"Quantization-aware training: fake {format} quantization has been on since step {start + 1}.")
            : string.Create(CultureInfo.InvariantCulture,
                $"Quantization-aware training: fake {format} quantization of {quant.Parameters:N0} weights ({quant.Target}) switches on at step {start + 1} of {steps} (From = {run.Options.QatFrom ?? quant.Settings.From}).");
    }

    /// <summary>The log line of the step at which fake quantization switched on.</summary>
    internal static string QuantizationStartedLine(ModelFacts facts, StepReport report)
    {
        var format = facts.Quant is { } quant ? Quantization.QuantFormats.DisplayName(quant.Settings.Format) : "weight";
        return string.Create(CultureInfo.InvariantCulture,
            $"step {report.Step}: fake {format} quantization on (straight-through gradients) for the last {report.TotalSteps - report.Step + 1} steps");
    }

    private static string Parameters(ModelFacts facts) => facts.ActiveParameterCount == facts.ParameterCount
        ? string.Create(CultureInfo.InvariantCulture, $"{facts.ParameterCount:N0} parameters")
        : string.Create(CultureInfo.InvariantCulture, $"{facts.ParameterCount:N0} parameters, {facts.ActiveParameterCount:N0} active per token");

    /// <summary>How evenly each mixture layer used its experts over this session's training steps.</summary>
    internal static string ExpertLoadReport(IReadOnlyList<ExpertRouter> routers)
    {
        var text = new System.Text.StringBuilder("Expert load over training (share of routed tokens per expert; imbalance = busiest / mean, 1.00 is even):\n");
        for (var i = 0; i < routers.Count; i++)
        {
            var load = routers[i].Load;
            var fractions = load.Fractions;
            text.Append(string.Create(CultureInfo.InvariantCulture,
                $"  router {i}: imbalance {load.Imbalance:F2}, least used {fractions.Min():P1}, most used {fractions.Max():P1} ({(routers[i].Options.HashRouted ? "hash-routed: the token table sets the load" : routers[i].Options.Balance)})\n"));
        }
        return text.ToString();
    }
}
