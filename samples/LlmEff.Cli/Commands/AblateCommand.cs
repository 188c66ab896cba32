using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using LlmEff.Cli.Reporting;
using LlmEff.Data;
using LlmEff.Training;
using Spectre.Console;

namespace LlmEff.Cli.Commands;

/// <summary>
/// <c>llmeff ablate</c>, the main job: trains declared variants of one small model with the same seeds, data and
/// budget on the embedded default data (text plus associative recall), then prints and writes the comparison.
/// </summary>
internal static class AblateCommand
{
    /// <summary>The default comparison, the headline: full attention against the two ways to halve its cache, NoKey (the
    /// QKV study: keys are the values) and GQA (two KV heads), which cache the same 2,048 bytes per token. MQA and the
    /// other variants are one <c>--models</c> away; three models × three seeds fit the main job's ten minutes on two cores.</summary>
    public static readonly string[] DefaultModels = { "TinyDecoder", "TinyNoKey", "TinyGqa" };

    private static readonly Dictionary<string, string> Descriptions = new()
    {
        ["TinyDecoder"] = "Full attention (baseline)",
        ["TinyNoKey"] = "NoKey: K := V",
        ["TinyNoQuery"] = "NoQuery: Q := K",
        ["TinyNoQueryPlus"] = "NoQuery + positional term",
        ["TinyShared"] = "Shared: Q = K = V",
        ["TinySharedPlus"] = "Shared + positional term",
        ["TinyGqa"] = "GQA: 2 KV heads",
        ["TinyMqa"] = "MQA: 1 KV head",
        ["TinyShareKv"] = "KV shared by layer pairs",
        ["TinyMoe"] = "MoE: 2 of 8 experts",
        ["TinyMoeDeepSeek"] = "MoE: 2 of 16 + 1 shared",
        ["TinyMoeHash"] = "MoE: √softplus, layer 0 hashed",
        ["TinyHybrid"] = "Hybrid: 2 attention + 2 short-conv",
        ["TinyLatent"] = "Latent attention (MLA)",
        ["TinySparse"] = "Sparse attention: top-32",
        ["TinyV4"] = "DeepSeek V4: window 32, CSA + HCA",
        ["TinyDecoderStreams"] = "Residual streams: 4 (mHC)",
    };

    /// <summary>Name of the hidden subcommand a <c>--jobs</c> run starts once per (model, seed).</summary>
    internal const string WorkerName = "ablate-run";

    public static Command Create() => Define("ablate", worker: false);

    /// <summary>The hidden worker: <c>ablate</c>'s options plus --result-file; trains the given models and seeds in this
    /// process and writes their results as JSON instead of a report. <c>ablate --jobs</c> starts it.</summary>
    public static Command CreateWorker() => Define(WorkerName, worker: true);

    private static Command Define(string name, bool worker)
    {
        var models = new Option<string>("--models") { Description = "Comma-separated models to compare, or 'all' for every Tiny* variant.", DefaultValueFactory = _ => string.Join(",", DefaultModels) };
        var training = new TrainingOptionSet(steps: 300, seeds: 3);
        var assembly = CommandLine.Assembly();
        var output = new Option<string>("--out") { Description = "Folder for report.md, results.json and the plots.", DefaultValueFactory = _ => "ablation" };
        var recallShare = new Option<double>("--recall-share") { Description = "Share of each training batch given to associative-recall sequences.", DefaultValueFactory = _ => 0.5 };
        var recallPairs = new Option<int>("--recall-pairs") { Description = "Key-value pairs per recall sequence (1-26).", DefaultValueFactory = _ => 4 };
        var jobs = new Option<int>("--jobs") { Description = "Training processes at once, one (model, seed) each, with cores/jobs torch threads unless --threads says otherwise; 0: one per core (at most one per run); 1 (default) trains everything in this process on every core.", DefaultValueFactory = _ => 1 };
        var resultFile = new Option<string>("--result-file") { Description = "Where the worker writes its runs as JSON.", Required = true };

        var command = new Command(name, "Train declared variants of one small model side by side on the embedded data and compare them (the main job).")
        {
            models, output, recallShare, recallPairs, assembly,
        };
        training.AddTo(command);
        training.AddSeedsTo(command);
        if (worker)
        {
            command.Hidden = true;
            command.Options.Add(resultFile);
        }
        else
        {
            command.Options.Add(jobs);
        }
        command.SetAction(result => CommandLine.Guard(() =>
        {
            var optimizers = training.OptimizerKinds(result);
            var options = training.Bind(result, evalEvery: Math.Max(1, result.GetValue(training.Steps) / 10), optimizers[0]);
            var seeds = training.SeedList(result, options.Seed);
            training.UseThreads(result);
            var assemblyPath = result.GetValue(assembly);
            var chosen = Configuration.All(Resolve(CommandLine.LoadModels(assemblyPath), result.GetValue(models)!), optimizers);
            var data = new TextWithRecall(TokenDataset.EmbeddedDefault(), new AssociativeRecall(options.SequenceLength, result.GetValue(recallPairs)), result.GetValue(recallShare));
            if (worker)
            {
                var runs = chosen.SelectMany(run => seeds.Select(seed => TrainOne(run, data, options with { Seed = seed }, labelSeed: true).Run)).ToList();
                LlmEff.IO.AtomicFile.WriteAllText(result.GetValue(resultFile)!, System.Text.Json.JsonSerializer.Serialize(runs, ReportJson.Options));
                return 0;
            }
            var jobCount = result.GetValue(jobs);
            if (jobCount < 0) throw new ArgumentOutOfRangeException(jobs.Name, jobCount, $"{jobs.Name} must not be negative.");
            // Measured on 2 cores (2026-11-30): TinyDecoder trains at 2,478 tokens/s on one thread, so two one-thread
            // workers move 4,956 together, less than one process on both cores (5,500-7,000): in-process is the default.
            if (jobCount == 0) jobCount = Math.Min(Environment.ProcessorCount, chosen.Count * seeds.Count);
            // Workers get every option the user gave except those each run sets itself, so an option added to the
            // command reaches the workers without being copied here by hand.
            var perRun = new HashSet<Option> { models, training.Optimizer, training.Seed, training.Seeds, training.Threads, jobs, output };
            var workers = jobCount <= 1 ? null : new WorkerSettings(jobCount, result.GetValue(training.Threads), GivenOptions(result, command, perRun));
            return Run(chosen, data, options, seeds, result.GetValue(output)!, workers);
        }));
        return command;
    }

    /// <summary>One configuration of a comparison: a model trained with an optimizer, under the label its rows carry.</summary>
    /// <param name="Label">The model's name; with more than one optimizer, the name and the optimizer ("TinyDecoder (muon)").</param>
    private sealed record Configuration(DeclaredModelType Model, OptimizerKind Optimizer, string Label, string Description)
    {
        /// <summary>Every model with every optimizer, model-major, so each model's optimizers sit together and the first
        /// configuration (the baseline every other is paired with) is the first model with the first optimizer.</summary>
        public static List<Configuration> All(IReadOnlyList<DeclaredModelType> models, IReadOnlyList<OptimizerKind> optimizers) =>
            models.SelectMany(model => optimizers.Select(optimizer =>
            {
                var name = model.Facts.Name;
                var description = Descriptions.GetValueOrDefault(name, name);
                return optimizers.Count == 1
                    ? new Configuration(model, optimizer, name, description)
                    : new Configuration(model, optimizer, $"{name} ({TrainingOptionSet.OptimizerName(optimizer)})", $"{description}, {(optimizer == OptimizerKind.Muon ? "Muon" : "AdamW")}");
            })).ToList();
    }

    /// <summary>What a --jobs run hands its workers: how many at once, their threads, and the user's other options as
    /// given on the command line.</summary>
    private sealed record WorkerSettings(int Jobs, int Threads, IReadOnlyList<string> GivenArguments);

    /// <summary>The options of <paramref name="command"/> given explicitly (not defaulted), as command-line tokens, except
    /// <paramref name="excluded"/>. Workers run in this process's folder, so relative paths keep their meaning.</summary>
    private static List<string> GivenOptions(ParseResult result, Command command, IReadOnlySet<Option> excluded) =>
        command.Options
            .Where(option => !excluded.Contains(option))
            .Select(result.GetResult)
            .OfType<System.CommandLine.Parsing.OptionResult>()
            .Where(given => !given.Implicit)
            .SelectMany(given => given.Tokens.Select(token => token.Value).Prepend(given.Option.Name))
            .ToList();

    private static List<DeclaredModelType> Resolve(System.Reflection.Assembly assembly, string names)
    {
        var all = ModelCatalog.In(assembly);
        if (names.Trim().Equals("all", StringComparison.OrdinalIgnoreCase))
            return all.Where(m => Descriptions.ContainsKey(m.Facts.Name)).OrderBy(m => m.Facts.Name == "TinyDecoder" ? 0 : 1).ToList();
        var chosen = names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(name => ModelCatalog.Find(all, name, assembly.GetName().Name)).ToList();
        if (chosen.Count == 0) throw new ArgumentException("--models names no model.");
        return chosen;
    }

    private static int Run(List<Configuration> configurations, TextWithRecall data, TrainingOptions options, IReadOnlyList<int> seeds, string output, WorkerSettings? workers)
    {
        foreach (var model in configurations.Select(c => c.Model).Distinct())
        {
            if (options.SequenceLength > model.Facts.Context)
                throw new ArgumentException($"--seq {options.SequenceLength} exceeds the context of {model.Facts.Name} ({model.Facts.Context}).");
            if (model.Facts.Vocab < data.Vocab)
                throw new ArgumentException($"{model.Facts.Name} has a vocabulary of {model.Facts.Vocab}; the embedded byte-level data needs {data.Vocab}.");
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Comparing {Count(configurations)}: {options.Steps} steps of {options.BatchSize}×{options.SequenceLength} tokens each, {SeedText(seeds)}, " +
            $"{data.RecallShare:P0} of each batch associative recall ({data.Recall.Pairs} pairs)."));
        // The reference matmul runs before and after the models; MFU is printed once both agree (see MatmulPeak).
        var peakBefore = MatmulPeak.MeasureBefore();
        var runs = new List<RunResult>();
        var speeds = new List<(ModelFacts Facts, double TokensPerSecond)>();
        if (workers is not null)
        {
            runs.AddRange(RunInWorkers(configurations, seeds, workers));
            speeds.AddRange(runs.Select(r => (configurations.First(c => c.Label == r.Model).Model.Facts, r.TokensPerSecond)));
        }
        else
        {
            // Model-major: all seeds of a configuration together, so the report's rows and the progress lines read in the same order.
            foreach (var configuration in configurations)
            {
                foreach (var seed in seeds)
                {
                    var (run, tokensPerSecond) = TrainOne(configuration, data, options with { Seed = seed }, seeds.Count > 1);
                    runs.Add(run);
                    speeds.Add((configuration.Model.Facts, tokensPerSecond));
                }
            }
        }
        var peak = MatmulPeak.Complete(peakBefore);
        Console.WriteLine(ThroughputText.Reference(peak));
        foreach (var group in runs.Zip(speeds).GroupBy(s => s.First.Model))
            Console.WriteLine($"{group.Key}: {ThroughputText.Of(group.First().Second.Facts, options.SequenceLength, group.Average(s => s.Second.TokensPerSecond), peak)}");

        var report = new ComparisonReport(
            $"Attention ablation: {string.Join(", ", configurations.Select(c => c.Label))}",
            Settings(options, configurations, data, seeds, workers),
            runs,
            DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        Console.WriteLine();
        if (RunView.Live && Console.WindowWidth >= 120) AnsiConsole.Write(ResultsTable.Build(runs));
        else Console.Write(ResultsTable.ToPlainText(runs));
        if (ResultsTable.Verdict(ModelSummary.Of(runs)) is { } verdict) Console.WriteLine(verdict);
        var written = ReportWriter.Write(output, report);
        Console.WriteLine();
        Console.WriteLine($"Wrote {string.Join(", ", written.Select(Path.GetFileName))} to {Path.GetFullPath(output)}");
        return 0;
    }

    /// <summary>
    /// Trains every (model, seed) in a worker process of its own, <see cref="WorkerSettings.Jobs"/> at a time, and
    /// returns the results in model-major order. Each worker's output is printed when it finishes, in one piece.
    /// </summary>
    /// <remarks>
    /// Processes rather than threads: torch's thread pool and its global random generator belong to the process, so
    /// runs in threads of one process would neither get their own cores nor their own seeds. A worker gets
    /// cores / jobs threads (at least 1) unless --threads was given.
    /// </remarks>
    private static List<RunResult> RunInWorkers(List<Configuration> configurations, IReadOnlyList<int> seeds, WorkerSettings workers)
    {
        var threads = workers.Threads > 0 ? workers.Threads : Math.Max(1, Environment.ProcessorCount / workers.Jobs);
        var work = configurations.SelectMany(configuration => seeds.Select(seed => (Configuration: configuration, Seed: seed))).ToList();
        Console.WriteLine($"{work.Count} runs in {Math.Min(workers.Jobs, work.Count)} worker processes at once, {threads} torch thread(s) each.");
        var folder = Directory.CreateTempSubdirectory("llmeff-jobs-").FullName;
        var print = new object();
        try
        {
            var results = new List<RunResult>[work.Count];
            Parallel.For(0, work.Count, new ParallelOptions { MaxDegreeOfParallelism = workers.Jobs }, i =>
            {
                var (configuration, seed) = work[i];
                var model = configuration.Model.Facts.Name;
                var resultFile = Path.Combine(folder, $"{i}.json");
                var arguments = new List<string>
                {
                    WorkerName, "--models", model, "--optimizer", TrainingOptionSet.OptimizerName(configuration.Optimizer), "--seed", seed.ToString(CultureInfo.InvariantCulture), "--seeds", "1",
                    "--threads", threads.ToString(CultureInfo.InvariantCulture), "--result-file", resultFile,
                };
                arguments.AddRange(workers.GivenArguments);
                using var process = Process.Start(Self(arguments)) ?? throw new InvalidOperationException("Could not start a worker process.");
                var error = process.StandardError.ReadToEndAsync();
                var printed = process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                lock (print) Console.Write(Relabel(printed, model, configuration.Label));
                if (process.ExitCode != 0)
                    throw new InvalidOperationException($"The worker training {configuration.Label} with seed {seed} failed (exit code {process.ExitCode}): {error.Result.Trim()}");
                // A worker trains one optimizer, so it labels its runs with the model's name alone.
                results[i] = System.Text.Json.JsonSerializer.Deserialize<List<RunResult>>(File.ReadAllText(resultFile), ReportJson.Options)!
                    .Select(run => run with { Model = configuration.Label, Description = configuration.Description }).ToList();
            });
            return results.SelectMany(r => r).ToList();
        }
        catch (AggregateException failed) when (failed.InnerExceptions.Count > 0)
        {
            throw failed.InnerExceptions[0];
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>A worker's printed lines with its model's name, which starts each of them, replaced by the configuration's
    /// label: a worker trains one optimizer and names its runs by the model alone, so with --optimizer adamw,muon its
    /// progress would not say which optimizer it trains.</summary>
    internal static string Relabel(string printed, string model, string label) => model == label ? printed
        : System.Text.RegularExpressions.Regex.Replace(printed, $@"(^|\r){System.Text.RegularExpressions.Regex.Escape(model)}(?=[ :])", m => m.Groups[1].Value + label,
            System.Text.RegularExpressions.RegexOptions.Multiline);

    /// <summary>This program again: the llmeff executable when it runs as one, else the dotnet host with this assembly
    /// (under <c>dotnet llmeff.dll</c> and in tests).</summary>
    private static ProcessStartInfo Self(IEnumerable<string> arguments)
    {
        var current = Environment.ProcessPath;
        var name = current is null ? "" : Path.GetFileNameWithoutExtension(current);
        ProcessStartInfo start;
        if (name == "llmeff")
        {
            start = new ProcessStartInfo(current!);
        }
        else
        {
            var host = name == "dotnet" ? current! : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            start = new ProcessStartInfo(host);
            start.ArgumentList.Add(typeof(AblateCommand).Assembly.Location);
        }
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        return start;
    }

    private static (RunResult Run, double TokensPerSecond) TrainOne(Configuration configuration, TextWithRecall data, TrainingOptions options, bool labelSeed)
    {
        var declared = configuration.Model;
        options = options with { Optimizer = configuration.Optimizer };
        var label = labelSeed ? $"{configuration.Label} seed {options.Seed}" : configuration.Label;
        var clock = Stopwatch.StartNew();
        Seeding.Seed(options.Seed);
        using var model = declared.Create();
        using var run = new TrainingRun(model, data, options);
        var result = RunView.Track(label, options.Steps, 0, onStep => run.Complete(onStep));
        var recall = data.Recall.Accuracy(model, sequences: 256, seed: options.Seed + 1);
        clock.Stop();
        var tokensPerSecond = result.TokensSeen / Math.Max(1e-9, result.Elapsed.TotalSeconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label}: held-out loss {result.HeldOutLoss:F4}, recall {recall:P1}, {clock.Elapsed.TotalSeconds:F1}s, {tokensPerSecond:N0} tok/s"));
        return (new RunResult(
            configuration.Label,
            configuration.Description,
            declared.Facts.ParameterCount,
            declared.Facts.Breakdown.Attention,
            declared.Facts.KvCacheBytesPerToken(),
            result.Losses,
            result.HeldOutCurve,
            result.FinalTrainLoss,
            result.HeldOutLoss,
            recall,
            tokensPerSecond,
            clock.Elapsed.TotalSeconds) { Seed = options.Seed }, tokensPerSecond);
    }

    /// <summary>"seed 1234" or "seeds 1234-1236 (3 runs per model)".</summary>
    internal static string SeedText(IReadOnlyList<int> seeds) => seeds.Count == 1
        ? $"seed {seeds[0].ToString(CultureInfo.InvariantCulture)}"
        : string.Create(CultureInfo.InvariantCulture, $"seeds {seeds[0]}-{seeds[^1]} ({seeds.Count} runs per model)");

    /// <summary>"3 models" or, comparing optimizers, "4 configurations (2 models × 2 optimizers)".</summary>
    private static string Count(List<Configuration> configurations)
    {
        var models = configurations.Select(c => c.Model).Distinct().Count();
        var optimizers = configurations.Select(c => c.Optimizer).Distinct().Count();
        var modelText = models == 1 ? "1 model" : $"{models} models";
        return optimizers == 1 ? modelText : $"{configurations.Count} configurations ({modelText} × {optimizers} optimizers)";
    }

    private static List<KeyValuePair<string, string>> Settings(TrainingOptions options, List<Configuration> configurations, TextWithRecall data, IReadOnlyList<int> seeds, WorkerSettings? workers) => new()
    {
        new("processes", workers is null
            ? "one: every run in turn in this process"
            : string.Create(CultureInfo.InvariantCulture, $"{workers.Jobs} worker processes at once (--jobs); tokens/s and MFU are per worker while they shared the machine")),
        new("steps", options.Steps.ToString(CultureInfo.InvariantCulture)),
        new("batch", $"{options.BatchSize} sequences × {options.SequenceLength} tokens"),
        new("learning rate", string.Create(CultureInfo.InvariantCulture, $"{options.LearningRate} peak, {options.WarmupSteps} warm-up steps, cosine to {options.FinalLearningRateFraction:P0}")),
        new("optimizer", string.Join("; ", configurations.Select(c => c.Optimizer).Distinct().Select(optimizer => optimizer == OptimizerKind.Muon
            ? string.Create(CultureInfo.InvariantCulture, $"Muon for hidden matrices (Nesterov {Muon.DefaultMomentum}, Newton-Schulz {Muon.FastSteps}+{Muon.SettleSteps} steps, update RMS {Muon.UpdateRms}), AdamW β=({options.Beta1}, {options.Beta2}) for embeddings, head, norms and biases; weight decay {options.WeightDecay} on matrices, clip {options.GradientClip}")
            : string.Create(CultureInfo.InvariantCulture, $"AdamW β=({options.Beta1}, {options.Beta2}), weight decay {options.WeightDecay} on matrices, clip {options.GradientClip}")))),
        new("seeds", SeedText(seeds) + (seeds.Count > 1 ? "; runs of different configurations with the same seed share initial weights and batches and are compared pairwise" : "")),
        new("data", string.Create(CultureInfo.InvariantCulture,
            $"embedded synthetic corpus ({data.Text.TrainTokens:N0} training / {data.Text.HeldOutTokens:N0} held-out bytes) with {data.RecallShare:P0} of each batch associative recall ({data.Recall.Pairs} pairs)")),
        new("held-out", $"{options.EvalBatches} batches of held-out text, every {options.EvalEvery} steps; recall accuracy on 256 fresh sequences"),
        new("machine", $"{Environment.ProcessorCount} CPU threads, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}"),
    };
}
