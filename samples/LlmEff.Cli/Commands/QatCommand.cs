using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using LlmEff.Checkpoints;
using LlmEff.Cli.Reporting;
using LlmEff.Data;
using LlmEff.Layers;
using LlmEff.Quantization;
using LlmEff.Samples;
using LlmEff.Training;
using static TorchSharp.torch;

namespace LlmEff.Cli.Commands;

/// <summary>
/// <c>llmeff qat</c>: one model declared with <c>[Quant]</c>, trained with the same seed, data and budget in full
/// precision and with quantization-aware training from its declared <c>From</c>. The full-precision model is also
/// quantized after training (post-training quantization), and both quantized models are exported packed, loaded back
/// and evaluated from their packed codes: held-out loss and weight memory of all three side by side.
/// </summary>
internal static class QatCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Declared model with [Quant] (TinyDecoderFp4, TinyMoeFp4, or yours with --assembly).", DefaultValueFactory = _ => nameof(TinyDecoderFp4) };
        var assembly = CommandLine.Assembly();
        var training = new TrainingOptionSet(steps: 300);
        var output = new Option<string>("--out") { Description = "Folder for the packed exports (.safetensors).", DefaultValueFactory = _ => "qat" };
        var from = new Option<double?>("--from") { Description = "Fraction of the steps after which the QAT run switches fake quantization on, in [0, 1); default: the model's declared From." };

        var command = new Command("qat", "Train a [Quant] model in full precision and quantization-aware; compare them with post-training quantization (held-out loss, packed weight memory).")
        {
            model, assembly, output, from,
        };
        training.AddTo(command);
        training.AddSeedsTo(command);
        command.SetAction(result => CommandLine.Guard(() =>
        {
            var qatFrom = result.GetValue(from);
            if (qatFrom is { } f && f is not (>= 0 and < 1))
                throw new ArgumentOutOfRangeException("--from", f, "--from must lie in [0, 1): the fraction of the steps after which fake quantization switches on.");
            var options = training.Bind(result) with { QatFrom = qatFrom };
            var seeds = training.SeedList(result, options.Seed);
            training.UseThreads(result);
            var declared = CommandLine.Model(result, model, assembly);
            var data = TokenDataset.EmbeddedDefault();
            Check(declared.Facts, data, options);
            return Run(declared, data, options, seeds, result.GetValue(output)!);
        }));
        return command;
    }

    private static void Check(ModelFacts facts, TokenDataset data, TrainingOptions options)
    {
        if (facts.Quant is null)
            throw new ArgumentException($"--model: {facts.Name} declares no [Quant], so there is nothing to quantize; try {nameof(TinyDecoderFp4)} or {nameof(TinyMoeFp4)}.");
        if (options.SequenceLength > facts.Context)
            throw new ArgumentException($"--seq {options.SequenceLength} exceeds the context of {facts.Name} ({facts.Context}).");
        if (facts.Vocab < data.Vocab)
            throw new ArgumentException($"{facts.Name} has a vocabulary of {facts.Vocab}; the embedded byte-level data needs {data.Vocab}.");
    }

    /// <summary>One row of the comparison.</summary>
    internal sealed record QatRow(string Run, string Training, double HeldOutLoss, WeightMemory Memory, string? PackedFile);

    private static int Run(DeclaredModelType declared, TokenDataset data, TrainingOptions options, IReadOnlyList<int> seeds, string output)
    {
        var facts = declared.Facts;
        var quant = facts.Quant!;
        var format = QuantFormats.DisplayName(quant.Settings.Format);
        Directory.CreateDirectory(output);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{facts.Name}: {quant.Parameters:N0} of {facts.ParameterCount:N0} parameters ({quant.Target}) in {format}, " +
            $"{options.Steps} steps of {options.BatchSize}×{options.SequenceLength} tokens, {AblateCommand.SeedText(seeds)}, embedded corpus."));

        var perSeed = new List<IReadOnlyList<QatRow>>();
        var notes = new List<string>();
        foreach (var seed in seeds)
        {
            if (seeds.Count > 1) Console.WriteLine($"Seed {seed}:");
            var (rows, note) = RunSeed(declared, data, options with { Seed = seed }, output, format);
            perSeed.Add(rows);
            notes.Add(seeds.Count > 1 ? $"Seed {seed}: {note}" : note);
        }

        Console.WriteLine();
        Console.Write(Table(perSeed, seeds, quant));
        Console.WriteLine(string.Join("\n", notes));
        var packed = perSeed[^1].Where(r => r.PackedFile is not null).ToList();
        // Every seed writes the same two files, so the last seed's remain; a later seed replacing an earlier one keeps the folder small.
        Console.WriteLine($"Packed exports{(seeds.Count > 1 ? $" (seed {seeds[^1]})" : "")}: {string.Join(", ", packed.Select(r => $"{Path.GetFullPath(r.PackedFile!)} ({Mb(new FileInfo(r.PackedFile!).Length)})"))}");
        return 0;
    }

    /// <summary>The three rows of one seed (full precision, post-training quantization, QAT) and that seed's note.</summary>
    private static (IReadOnlyList<QatRow> Rows, string Note) RunSeed(DeclaredModelType declared, TokenDataset data, TrainingOptions options, string output, string format)
    {
        var facts = declared.Facts;
        var quant = facts.Quant!;
        // One full-precision run serves twice: as the baseline, and quantized after training (post-training quantization).
        var fullPrecisionOptions = options with { QatFrom = 1 };
        var (fullPrecision, fullPrecisionResult, _) = Train(declared, data, fullPrecisionOptions, "full precision");
        using var fullPrecisionModel = fullPrecision;
        var fullPrecisionRow = new QatRow("full precision", "fp32 throughout", fullPrecisionResult.HeldOutLoss, WeightMemory.Of(fullPrecisionModel), null);

        QuantizedLinear.SetFakeQuantization(fullPrecisionModel, true);
        var postTraining = Packed(declared, fullPrecisionModel, data, options, Path.Combine(output, $"{facts.Name}.ptq.safetensors"),
            $"post-training {format}", "fp32, quantized after training");

        var qatFrom = (options.QatFrom ?? quant.Settings.From).ToString(CultureInfo.InvariantCulture);
        var (qat, qatResult, start) = Train(declared, data, options, $"QAT from {qatFrom}");
        using var qatModel = qat;
        var aware = Packed(declared, qatModel, data, options, Path.Combine(output, $"{facts.Name}.qat.safetensors"),
            $"QAT (From = {qatFrom})", start == 0 ? $"fake {format} throughout" : $"fp32, fake {format} from step {start + 1}");

        return (new[] { fullPrecisionRow, postTraining.Row, aware.Row },
            Notes(quant, start, fullPrecisionResult.Losses, qatResult.Losses, new[] { postTraining.FakeQuantizedGap, aware.FakeQuantizedGap }));
    }

    /// <summary>Trains a fresh model; returns it, its result, and the first fake-quantized step.</summary>
    private static (nn.Module<Tensor, Tensor> Model, TrainingResult Result, int QuantizationStart) Train(DeclaredModelType declared, TokenDataset data, TrainingOptions options, string label)
    {
        var clock = Stopwatch.StartNew();
        Seeding.Seed(options.Seed); // the same initial weights and batches for every run
        var model = declared.Create();
        try
        {
            using var run = new TrainingRun(model, data, options);
            var result = RunView.Track($"{declared.Facts.Name} {label}", options.Steps, 0, onStep => run.Complete(report =>
            {
                onStep(report);
                if (report.QuantizationStarted) RunView.Note($"{label}: {TrainCommand.QuantizationStartedLine(declared.Facts, report)}");
            }));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label}: trained in {clock.Elapsed.TotalSeconds:F1}s, held-out loss {result.HeldOutLoss:F4}"));
            return (model, result, run.QuantizationStartStep!.Value);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Exports <paramref name="trained"/> packed, loads the file into a fresh model and evaluates that one;
    /// also how far its loss is from the fake-quantized source model's (they should agree exactly).</summary>
    private static (QatRow Row, double FakeQuantizedGap) Packed(DeclaredModelType declared, nn.Module<Tensor, Tensor> trained, TokenDataset data, TrainingOptions options, string path, string run, string training)
    {
        var fakeQuantizedLoss = Trainer.Evaluate(trained, data, options);
        PackedWeights.Save(path, trained, declared.Facts);
        using var packed = declared.Create();
        var memory = PackedWeights.Load(path, packed, declared.Facts);
        var loss = Trainer.Evaluate(packed, data, options);
        return (new QatRow(run, training, loss, memory, path), Math.Abs(loss - fakeQuantizedLoss));
    }

    /// <summary>The comparison as aligned plain text, from one row list per seed (rows in the same order for every seed):
    /// held-out loss as mean ± 95% interval over seeds, and its difference from full precision paired by seed with
    /// its resolved / not resolved mark.</summary>
    internal static string Table(IReadOnlyList<IReadOnlyList<QatRow>> perSeed, IReadOnlyList<int> seeds, QuantFacts quant)
    {
        var loss = Statistics.Fixed(4);
        var baseline = seeds.Select((seed, k) => (seed, perSeed[k][0].HeldOutLoss)).ToDictionary(p => p.seed, p => p.HeldOutLoss);
        var header = new[] { "run", "training", "held-out loss", "vs fp32 (paired)", "weight bytes", "quantized weights" };
        var cells = perSeed[0].Select((r, i) =>
        {
            var values = seeds.Select((seed, k) => (seed, perSeed[k][i].HeldOutLoss)).ToDictionary(p => p.seed, p => p.HeldOutLoss);
            return new[]
            {
                r.Run,
                r.Training,
                Statistics.IntervalOf(values.Values.ToList()).Format(loss),
                i == 0 ? "—" : Statistics.Paired(values, baseline).Format(loss),
                r.Memory.TotalBytes.ToString("N0", CultureInfo.InvariantCulture),
                r.Memory.PackedValues == 0
                    ? string.Create(CultureInfo.InvariantCulture, $"{quant.Fp32Bytes:N0} B fp32 (32 bits)")
                    : string.Create(CultureInfo.InvariantCulture, $"{r.Memory.PackedBytes:N0} B ({r.Memory.BitsPerPackedValue:0.###} bits, {r.Memory.PackedRatioToFp32:F2}x smaller)"),
            };
        }).ToList();
        var numeric = new[] { false, false, true, true, true, false };
        var text = new StringBuilder(TextTable.Render(header, cells, j => numeric[j]));
        text.Append(seeds.Count < 2
            ? $"{Statistics.NoInterval}: single runs (use --seeds 2 or more for intervals and resolved/not resolved marks).\n"
            : string.Create(CultureInfo.InvariantCulture, $"{seeds.Count} seeds: mean ± 95% interval (Student t); \"vs fp32\" pairs runs by seed, \"not resolved\" where its interval contains 0.\n"));
        return text.ToString();
    }

    private static string Notes(QuantFacts quant, int start, IReadOnlyList<double> fullPrecision, IReadOnlyList<double> qat, IReadOnlyList<double> packedGaps)
    {
        var firstDifference = Enumerable.Range(0, Math.Min(fullPrecision.Count, qat.Count)).FirstOrDefault(i => fullPrecision[i] != qat[i], -1);
        string sameStart;
        if (start == 0) sameStart = "The QAT run fake-quantizes from its first step.";
        else if (firstDifference == -1 || firstDifference >= start)
            sameStart = $"The two training runs share weights and batches; their losses agree exactly until fake quantization starts at step {start + 1}.";
        else sameStart = $"The two training runs' losses first differ at step {firstDifference + 1}, before fake quantization starts (step {start + 1}).";
        return string.Create(CultureInfo.InvariantCulture,
            $"Held-out loss in nats per byte; the quantized rows are measured on the packed models loaded back from disk\n" +
            $"(largest difference from the fake-quantized models: {packedGaps.Max():0.######}). Weight bytes: every parameter, the packed ones\n" +
            $"as codes and scales (compile-time QuantizedWeightBytes: {quant.Bytes:N0}).\n{sameStart}");
    }

    private static string Mb(long bytes) => (bytes / 1e6).ToString("F2", CultureInfo.InvariantCulture) + " MB";
}
