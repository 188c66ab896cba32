using System;
using System.CommandLine;
using System.Globalization;
using LlmEff.Data;
using LlmEff.Samples;
using LlmEff.Training;
using static TorchSharp.torch;

namespace LlmEff.Cli.Commands;

/// <summary><c>llmeff train</c>: trains one declared model on the embedded corpus and prints the loss.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var modelOption = new Option<string>("--model") { Description = "Declared model to train (see 'llmeff models').", DefaultValueFactory = _ => nameof(TinyDecoder) };
        var stepsOption = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => 200 };
        var batchOption = new Option<int>("--batch") { Description = "Sequences per step.", DefaultValueFactory = _ => 8 };
        var lengthOption = new Option<int>("--seq") { Description = "Tokens per sequence.", DefaultValueFactory = _ => 128 };
        var rateOption = new Option<double>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 3e-3 };
        var seedOption = new Option<int>("--seed") { Description = "Seed of weights and batches.", DefaultValueFactory = _ => 1234 };
        var threadsOption = new Option<int>("--threads") { Description = "CPU threads for torch (0: torch's default).", DefaultValueFactory = _ => 0 };
        var logEveryOption = new Option<int>("--log-every") { Description = "Print every N steps.", DefaultValueFactory = _ => 10 };

        var command = new Command("train", "Train a declared model on the embedded corpus (no download) and print the loss as it falls.")
        {
            modelOption, stepsOption, batchOption, lengthOption, rateOption, seedOption, threadsOption, logEveryOption,
        };
        command.SetAction(result =>
        {
            var options = new TrainingOptions
            {
                Steps = result.GetValue(stepsOption),
                BatchSize = result.GetValue(batchOption),
                SequenceLength = result.GetValue(lengthOption),
                LearningRate = result.GetValue(rateOption),
                Seed = result.GetValue(seedOption),
                WarmupSteps = Math.Min(20, Math.Max(0, result.GetValue(stepsOption) / 10)),
            };
            var logEvery = Math.Max(1, result.GetValue(logEveryOption));
            var threads = result.GetValue(threadsOption);
            try
            {
                options.Validate();
                var declared = ModelCatalog.Find(typeof(TinyDecoder).Assembly, result.GetValue(modelOption)!);
                if (options.SequenceLength > declared.Facts.Context)
                    throw new ArgumentException($"--seq {options.SequenceLength} exceeds the context of {declared.Facts.Name} ({declared.Facts.Context}).");
                if (declared.Facts.Vocab < ByteTokenizer.VocabSize)
                    throw new ArgumentException($"{declared.Facts.Name} has a vocabulary of {declared.Facts.Vocab}; the byte-level corpus needs {ByteTokenizer.VocabSize}.");
                if (threads > 0) set_num_threads(threads);

                Seeding.Seed(options.Seed);
                using var model = declared.Create();
                var data = TokenDataset.EmbeddedDefault();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Training {declared.Facts.Name} ({declared.Facts.ParameterCount:N0} parameters) for {options.Steps} steps of {options.BatchSize}×{options.SequenceLength} tokens on the embedded corpus ({data.TrainTokens:N0} training / {data.HeldOutTokens:N0} held-out bytes)."));
                var trained = Trainer.Train(model, data, options, report =>
                {
                    if (report.Step == 1 || report.Step % logEvery == 0 || report.Step == report.TotalSteps)
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"step {report.Step,5}/{report.TotalSteps}  loss {report.Loss,7:F4}  lr {report.LearningRate:0.00e+0}  |g| {report.GradientNorm,6:F3}  {report.TokensPerSecond,8:N0} tok/s"));
                });
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Loss fell from {trained.Losses[0]:F4} to {trained.FinalTrainLoss:F4} (mean of the last tenth); held-out loss {trained.HeldOutLoss:F4} (perplexity {Math.Exp(trained.HeldOutLoss):F2}) in {trained.Elapsed.TotalSeconds:F1} s."));
                return 0;
            }
            catch (ArgumentException error)
            {
                Console.Error.WriteLine($"error: {error.Message}");
                return 2;
            }
        });
        return command;
    }
}
