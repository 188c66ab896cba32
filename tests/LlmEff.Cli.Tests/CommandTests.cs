using System;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace LlmEff.Cli.Tests;

/// <summary>Every subcommand end to end on the tiny sample models, and the exit codes of bad input.</summary>
public sealed class CommandTests : IDisposable
{
    private readonly TempFolder temp = new();

    [Fact]
    public void Ablate_trains_each_model_and_writes_table_report_json_and_plots()
    {
        var (code, output, error) = CliHarness.Run("ablate", "--seeds", "1", "--steps", "3", "--batch", "2", "--seq", "64", "--models", "TinyDecoder,TinyNoKey", "--out", temp.Path);

        Assert.True(code == 0, error);
        Assert.Contains("TinyNoKey", output);
        Assert.Contains("lowest held-out loss", output);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        var runs = json.RootElement.GetProperty("runs");
        Assert.Equal(new[] { "TinyDecoder", "TinyNoKey" }, runs.EnumerateArray().Select(r => r.GetProperty("model").GetString()));
        Assert.Equal(3, runs[0].GetProperty("trainLosses").GetArrayLength());
        Assert.Equal(4096, runs[0].GetProperty("kvBytesPerToken").GetInt64());
        Assert.Equal(2048, runs[1].GetProperty("kvBytesPerToken").GetInt64());
        Assert.Contains("| TinyNoKey", File.ReadAllText(temp.File("report.md")));
        foreach (var png in new[] { "loss_curves.png", "loss_vs_kv.png" })
            Assert.Equal((1000, 600), PngSize(temp.File(png)));
    }

    [Fact]
    public void Ablate_trains_DeepSeek_V4s_attention_beside_full_and_latent_attention_and_reports_its_cache_at_the_models_context()
    {
        // 64 tokens: past TinyV4's 32-token window, through 16 CSA windows of 4 and 4 HCA windows of 16.
        var (code, output, error) = CliHarness.Run("ablate", "--seeds", "1", "--steps", "2", "--batch", "2", "--seq", "64", "--models", "TinyDecoder,TinyLatent,TinyV4", "--out", temp.Path);

        Assert.True(code == 0, error);
        Assert.Contains("TinyV4", output);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        var runs = json.RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(new[] { "TinyDecoder", "TinyLatent", "TinyV4" }, runs.Select(r => r.GetProperty("model").GetString()));
        // TinyV4 caches 20,480 elements at its context of 256 tokens: 80 per token, 160 bytes in bf16.
        Assert.Equal(new long[] { 4096, 384, 160 }, runs.Select(r => r.GetProperty("kvBytesPerToken").GetInt64()));
        Assert.All(runs[2].GetProperty("trainLosses").EnumerateArray(), loss => Assert.True(double.IsFinite(loss.GetDouble())));
    }

    [Fact]
    public void Ablate_with_two_seeds_runs_each_model_per_seed_and_shows_intervals_and_resolution_marks()
    {
        var (code, output, error) = CliHarness.Run("ablate", "--seeds", "2", "--steps", "2", "--batch", "2", "--seq", "32", "--models", "TinyDecoder,TinyNoKey", "--out", temp.Path);

        Assert.True(code == 0, error);
        Assert.Contains("seeds 1234-1235 (2 runs per model)", output);
        Assert.Contains("TinyNoKey seed 1235: held-out loss", output);
        // The held-out cell may carry the '*' of the lowest loss, so the mean is matched by its last digit.
        Assert.Matches(@"TinyNoKey .*\d ± [\d.]+ +[+-][\d.]+ ± [\d.]+ (not resolved|resolved, higher|resolved, lower)", output);
        Assert.Contains("2 seeds: mean ± 95% interval", output);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        Assert.Equal(new[] { 1234, 1235, 1234, 1235 }, json.RootElement.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("seed").GetInt32()));
        var noKey = json.RootElement.GetProperty("models")[1];
        Assert.Equal(2, noKey.GetProperty("heldOutLoss").GetProperty("count").GetInt32());
        Assert.Contains(noKey.GetProperty("heldOutLossVersusBaseline").GetProperty("mark").GetString(), new[] { "not resolved", "resolved, higher", "resolved, lower" });
        Assert.Contains(noKey.GetProperty("recallVersusBaseline").GetProperty("mark").GetString(), new[] { "not resolved", "resolved, higher", "resolved, lower" });
        Assert.Contains("paired difference", File.ReadAllText(temp.File("report.md")));
    }

    [Fact]
    public void Ablate_with_two_seeds_gives_the_same_numbers_twice()
    {
        double[] Losses(string folder)
        {
            var (code, _, error) = CliHarness.Run("ablate", "--seeds", "2", "--jobs", "1", "--steps", "2", "--batch", "2", "--seq", "32", "--models", "TinyDecoder,TinyMqa", "--out", folder);
            Assert.True(code == 0, error);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "results.json")));
            return json.RootElement.GetProperty("runs").EnumerateArray()
                .SelectMany(r => r.GetProperty("trainLosses").EnumerateArray().Select(l => l.GetDouble())
                    .Append(r.GetProperty("heldOutLoss").GetDouble()).Append(r.GetProperty("recallAccuracy").GetDouble()))
                .ToArray();
        }

        var first = Losses(temp.File("first"));
        var second = Losses(temp.File("second"));

        Assert.Equal(4 * (2 + 2), first.Length);
        Assert.Equal(first, second); // exact: same seeds, settings and thread count (the harness pins one thread)
    }

    [Fact]
    public void Ablate_with_two_jobs_trains_in_worker_processes_and_gives_the_same_numbers_as_one_process()
    {
        string[] Arguments(string folder, params string[] more) =>
            new[] { "ablate", "--seeds", "2", "--steps", "2", "--batch", "2", "--seq", "32", "--models", "TinyDecoder,TinyNoKey", "--threads", "1", "--out", folder }.Concat(more).ToArray();
        string Runs(string folder)
        {
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "results.json")));
            // Everything but the timings, which differ from run to run.
            return string.Join("\n", json.RootElement.GetProperty("runs").EnumerateArray().Select(r =>
                $"{r.GetProperty("model")} {r.GetProperty("seed")} {r.GetProperty("trainLosses")} {r.GetProperty("heldOutCurve")} {r.GetProperty("heldOutLoss")} {r.GetProperty("recallAccuracy")}"));
        }

        var inProcess = CliHarness.Run(Arguments(temp.File("one")));
        var inWorkers = CliHarness.Run(Arguments(temp.File("two"), "--jobs", "2"));

        Assert.True(inProcess.ExitCode == 0, inProcess.Error);
        Assert.True(inWorkers.ExitCode == 0, inWorkers.Error);
        Assert.Contains("4 runs in 2 worker processes at once, 1 torch thread(s) each.", inWorkers.Output);
        Assert.Contains("TinyNoKey seed 1235: held-out loss", inWorkers.Output); // the workers' lines come through
        Assert.Equal(Runs(temp.File("one")), Runs(temp.File("two")));
    }

    [Fact]
    public void Ablate_with_muon_says_so_in_the_report_and_its_worker_processes_train_with_muon_too()
    {
        string[] Arguments(string folder, string optimizer, params string[] more) =>
            new[] { "ablate", "--seeds", "2", "--steps", "3", "--batch", "2", "--seq", "32", "--models", "TinyDecoder", "--threads", "1", "--optimizer", optimizer, "--out", folder }.Concat(more).ToArray();
        string Runs(string folder, string? model = null)
        {
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "results.json")));
            return string.Join("\n", json.RootElement.GetProperty("runs").EnumerateArray()
                .Where(r => model is null || r.GetProperty("model").GetString() == model)
                .Select(r => $"{r.GetProperty("seed")} {r.GetProperty("trainLosses")} {r.GetProperty("heldOutLoss")}"));
        }

        var muon = CliHarness.Run(Arguments(temp.File("muon"), "muon"));
        var muonInWorkers = CliHarness.Run(Arguments(temp.File("workers"), "Muon", "--jobs", "2"));
        var adamw = CliHarness.Run(Arguments(temp.File("adamw"), "adamw"));
        var both = CliHarness.Run(Arguments(temp.File("both"), "adamw, muon", "--jobs", "2"));

        Assert.True(muon.ExitCode == 0, muon.Error);
        Assert.True(muonInWorkers.ExitCode == 0, muonInWorkers.Error);
        Assert.True(adamw.ExitCode == 0, adamw.Error);
        Assert.True(both.ExitCode == 0, both.Error);
        Assert.Contains("Muon for hidden matrices (Nesterov 0.95, Newton-Schulz 8+2 steps, update RMS 0.18)", File.ReadAllText(Path.Combine(temp.File("muon"), "report.md")));
        Assert.Equal(Runs(temp.File("muon")), Runs(temp.File("workers")));
        Assert.NotEqual(Runs(temp.File("muon")), Runs(temp.File("adamw")));
        // Two optimizers make two configurations of one model, each trained exactly as its single-optimizer run, and
        // the second is paired with the first by seed.
        Assert.Contains("Comparing 2 configurations (1 model × 2 optimizers)", both.Output);
        Assert.Equal(Runs(temp.File("adamw")), Runs(temp.File("both"), "TinyDecoder (adamw)"));
        Assert.Equal(Runs(temp.File("muon")), Runs(temp.File("both"), "TinyDecoder (muon)"));
        Assert.Matches(@"TinyDecoder \(muon\) +Full attention \(baseline\), Muon .*(not resolved|resolved, higher|resolved, lower)", both.Output);
        // The workers' own progress lines say which optimizer they train.
        Assert.Matches(@"(?m)^TinyDecoder \(muon\)( seed \d+)?: held-out loss", both.Output);
        Assert.Matches(@"(?m)^TinyDecoder \(adamw\)( seed \d+)?: held-out loss", both.Output);
    }

    [Fact]
    public void Qat_with_two_seeds_shows_intervals_and_the_paired_difference_from_full_precision()
    {
        var (code, output, error) = CliHarness.Run("qat", "--seeds", "2", "--steps", "2", "--batch", "2", "--seq", "32", "--out", temp.Path);

        Assert.True(code == 0, error);
        Assert.Contains("Seed 1235:", output);
        Assert.Matches(@"QAT \(From = [\d.]+\) .* [\d.]+ ± [\d.]+ +[+-][\d.]+ ± [\d.]+ (not resolved|resolved, higher|resolved, lower)", output);
        Assert.Contains("2 seeds: mean ± 95% interval", output);
    }

    [Fact]
    public void Train_writes_a_checkpoint_that_resume_and_generate_read()
    {
        var checkpoint = temp.File("tiny.safetensors");
        var settings = new[] { "--steps", "4", "--batch", "2", "--seq", "32" };

        var trained = CliHarness.Run(new[] { "train", "--checkpoint", checkpoint, "--checkpoint-every", "2" }.Concat(settings).ToArray());
        var resumed = CliHarness.Run(new[] { "train", "--resume", checkpoint }.Concat(settings).ToArray());
        var first = CliHarness.Run("generate", "--checkpoint", checkpoint, "--prompt", "The ", "--tokens", "12", "--temperature", "0");
        var second = CliHarness.Run("generate", "--checkpoint", checkpoint, "--prompt", "The ", "--tokens", "12", "--temperature", "0");

        Assert.True(trained.ExitCode == 0, trained.Error);
        Assert.Contains("Loss fell from", trained.Output);
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Contains("resuming after step 4", resumed.Output);
        Assert.True(first.ExitCode == 0, first.Error);
        Assert.StartsWith("The ", first.Output);
        Assert.True(first.Output.TrimEnd('\n').Length > "The ".Length);
        Assert.Equal(first.Output, second.Output); // greedy decoding is deterministic
    }

    [Fact]
    public void A_thousand_training_steps_grow_resident_memory_by_less_than_five_percent()
    {
        // In a process of its own: the test host's other tests would move its memory too. One torch thread, since test
        // projects run side by side and oversubscribed threads slow small models down tenfold.
        var cli = typeof(Program).Assembly.Location;
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", $"\"{cli}\" train --steps 1300 --batch 2 --seq 32 --threads 1 --log-memory")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();

        Assert.True(process.ExitCode == 0, output + process.StandardError.ReadToEnd());
        var samples = output.Split('\n')
            .Select(line => System.Text.RegularExpressions.Regex.Match(line, @"step\s+(\d+)/1300 .* resident (\d+) MB"))
            .Where(m => m.Success)
            .Select(m => (Step: int.Parse(m.Groups[1].Value), Megabytes: double.Parse(m.Groups[2].Value)))
            .ToList();
        var afterWarmUp = samples.First(s => s.Step >= 300); // allocator pools, optimizer state, JIT settle first
        var end = samples.Last();
        Assert.True(end.Step - afterWarmUp.Step >= 900, string.Join(", ", samples));
        var growth = (end.Megabytes - afterWarmUp.Megabytes) / afterWarmUp.Megabytes;
        Assert.True(growth < 0.05, $"resident memory grew {growth:P1} from step {afterWarmUp.Step} to {end.Step}: {string.Join(", ", samples)}");
    }

    [Fact]
    public void Train_reads_the_users_text_files()
    {
        var folder = Directory.CreateDirectory(temp.File("corpus")).FullName;
        File.WriteAllText(Path.Combine(folder, "a.txt"), string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 200)));

        var (code, output, error) = CliHarness.Run("train", "--data", folder, "--steps", "3", "--batch", "2", "--seq", "32");

        Assert.True(code == 0, error);
        Assert.Contains("8,100 training / 900 held-out tokens", output);
        Assert.Matches(@"[\d,]+ tok/s, [\d.]+ GFLOP/s of model arithmetic, MFU ([\d.]+ %|not measured \(machine busy)", output);
    }

    [Fact]
    public void Under_load_the_reported_utilisation_never_exceeds_100_percent()
    {
        // Two threads spin on both cores while the CLI measures its reference matmul and trains: a busy machine
        // must give "not measured", or a utilisation the reference can vouch for, never a figure above 100%.
        using var stop = new System.Threading.CancellationTokenSource(TimeSpan.FromMinutes(2));
        var load = Enumerable.Range(0, Environment.ProcessorCount).Select(_ => new System.Threading.Thread(() =>
        {
            var x = 0.0;
            while (!stop.IsCancellationRequested) x = Math.Sqrt(x + 1.0);
        }) { IsBackground = true }).ToList();
        load.ForEach(thread => thread.Start());
        try
        {
            var (code, output, error) = CliHarness.Run("train", "--steps", "3", "--batch", "2", "--seq", "32");

            Assert.True(code == 0, error);
            var mfu = System.Text.RegularExpressions.Regex.Match(output, @"MFU (?:(?<percent>[\d.]+) %|not measured \(machine busy)");
            Assert.True(mfu.Success, output);
            if (mfu.Groups["percent"].Success)
                Assert.InRange(double.Parse(mfu.Groups["percent"].Value, System.Globalization.CultureInfo.InvariantCulture), 0, 100);
        }
        finally
        {
            stop.Cancel();
            load.ForEach(thread => thread.Join());
        }
    }

    [Fact]
    public void Training_a_mixture_of_experts_reports_active_parameters_and_expert_load()
    {
        var (code, output, error) = CliHarness.Run("train", "--model", "TinyMoeDeepSeek", "--steps", "3", "--batch", "2", "--seq", "32");

        Assert.True(code == 0, error);
        Assert.Contains("8,562,944 parameters, 2,885,888 active per token", output);
        Assert.Equal(3, output.Split('\n').Count(l => l.TrimStart().StartsWith("router ") && l.Contains("imbalance") && l.Contains("AuxLossFree")));
    }

    [Fact]
    public void Qat_compares_full_precision_post_training_quantization_and_QAT_from_packed_models()
    {
        var (code, output, error) = CliHarness.Run("qat", "--steps", "4", "--batch", "2", "--seq", "32", "--out", temp.Path);

        Assert.True(code == 0, error);
        var rows = output.Split('\n');
        Assert.Contains(rows, l => l.StartsWith("full precision ") && l.Contains("13,116,416") && l.Contains("12,845,056 B fp32 (32 bits)"));
        Assert.Contains(rows, l => l.StartsWith("post-training MXFP4 ") && l.Contains("1,977,344") && l.Contains("1,705,984 B (4.25 bits, 7.53x smaller)"));
        Assert.Contains(rows, l => l.StartsWith("QAT (From = 0.8) ") && l.Contains("fake MXFP4 from step 4") && l.Contains("1,705,984 B (4.25 bits"));
        Assert.Contains("largest difference from the fake-quantized models: 0)", output);
        Assert.Contains("agree exactly until fake quantization starts at step 4", output);
        Assert.True(File.Exists(temp.File("TinyDecoderFp4.ptq.safetensors")));
        var generated = CliHarness.Run("generate", "--model", "TinyDecoderFp4", "--checkpoint", temp.File("TinyDecoderFp4.qat.safetensors"), "--prompt", "The ", "--tokens", "8", "--temperature", "0");
        Assert.True(generated.ExitCode == 0, generated.Error); // runs from the packed codes
        Assert.StartsWith("The ", generated.Output);
    }

    [Fact]
    public void Training_a_quantized_model_announces_and_logs_the_switch_to_fake_quantization()
    {
        var (code, output, error) = CliHarness.Run("train", "--model", "TinyDecoderFp4", "--steps", "5", "--batch", "2", "--seq", "32");

        Assert.True(code == 0, error);
        Assert.Contains("fake MXFP4 quantization of 3,211,264 weights (AllLinear) switches on at step 5 of 5 (From = 0.8)", output);
        Assert.Single(output.Split('\n'), l => l.Contains("step 5: fake MXFP4 quantization on (straight-through gradients) for the last 1 steps"));
    }

    [Fact]
    public void Inspect_prints_the_breakdown_cache_and_training_memory()
    {
        var (code, output, error) = CliHarness.Run("inspect", "--models", "Llama3_8B", "--contexts", "8192", "--dtypes", "bf16");

        Assert.True(code == 0, error);
        Assert.Contains("8,030,261,248", output);
        Assert.Contains("KV cache at 8,192 tokens: bf16 1.00 GiB", output);
        Assert.Contains("training memory, fp32: 119.66 GiB", output);
    }

    [Fact]
    public void Inspect_states_compressed_attentions_cache_at_each_length_not_per_token_times_length()
    {
        var (code, output, error) = CliHarness.Run("inspect", "--models", "DeepSeekV4Flash", "--contexts", "4096,max", "--dtypes", "bf16");

        Assert.True(code == 0, error);
        Assert.Contains("284,332,230,231", output);
        // 2 sliding layers × 128 × 512, 21 CSA × (128 × 512 + 1,024 × 640 + 20,480), 20 HCA × (128 × 512 + 32 × 512 + 131,072) at 4,096 tokens.
        Assert.Contains("KV cache at 4,096 tokens: bf16 38.07 MiB  (4,873.0 elements per token at this length", output);
        Assert.Contains("KV cache at 1,048,576 tokens: bf16 6.73 GiB  (3,445.6 elements per token at this length", output);
    }

    [Fact]
    public void Study_trains_every_variant_and_reports_accuracy_and_the_symmetry_check()
    {
        var (code, output, error) = CliHarness.Run("study", "--recipe", "ours", "--seeds", "1", "--tasks", "SUB", "--train", "64", "--test", "32", "--batch", "32", "--out", temp.Path);

        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        var runs = json.RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(new[] { "Full", "NoQuery", "NoQuery+", "NoKey", "Shared", "Shared+" }, runs.Select(r => r.GetProperty("variant").GetString()));
        double Asymmetry(string variant) => runs.Single(r => r.GetProperty("variant").GetString() == variant).GetProperty("asymmetry").GetDouble();
        Assert.Equal(0, Asymmetry("NoQuery"), 6);
        Assert.Equal(0, Asymmetry("Shared"), 6);
        Assert.True(Asymmetry("NoQuery+") > 1e-4 && Asymmetry("Shared+") > 1e-4 && Asymmetry("Full") > 1e-4);
        Assert.All(runs, r => Assert.InRange(r.GetProperty("accuracy").GetDouble(), 0, 1));
        Assert.Contains("| NoQuery+ |", File.ReadAllText(temp.File("report.md")));
        // The threads it trained with, not the machine's cores (the harness pins one thread).
        Assert.Contains(" 1 torch thread(s) on a ", File.ReadAllText(temp.File("report.md")));
        Assert.Equal((1000, 600), PngSize(temp.File("accuracy.png")));
        Assert.Contains("mean |S−Sᵀ|", output);
    }

    [Fact]
    public void Study_runs_the_authors_recipe_beside_ours_with_their_seeds_batches_and_a_position_ablation_and_checks_the_claims()
    {
        var (code, output, error) = CliHarness.Run("study", "--seeds", "2", "--tasks", "SUB", "--variants", "Full,NoKey", "--pos-std", "0.5",
            "--train", "64", "--test", "32", "--out", temp.Path);

        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        var runs = json.RootElement.GetProperty("runs").EnumerateArray()
            .Select(r => (Recipe: r.GetProperty("recipe").GetString()!, Seed: r.GetProperty("seed").GetInt32())).ToList();
        // The default cell runs both recipes: the authors' seeds 0, 1 and ours 1, 2, each variant of a seed once.
        Assert.Equal(new[] { ("authors, positions N(0, 0.5²)", 0), ("authors, positions N(0, 0.5²)", 1), ("ours, positions N(0, 0.5²)", 1), ("ours, positions N(0, 0.5²)", 2) },
            runs.Distinct().OrderBy(r => r.Recipe).ThenBy(r => r.Seed).ToArray());
        Assert.Equal(8, runs.Count);
        Assert.Equal(8, json.RootElement.GetProperty("claims").GetArrayLength()); // four claims for each recipe
        Assert.Contains("Full ≈ NoKey", output);
        Assert.Contains("E64L2H2N16, authors, positions N(0, 0.5²)", output);
        Assert.Contains("steps", output); // the authors' 64 sequences at batch 128: one short batch an epoch, 2 steps
        Assert.Contains(" 2 steps ", output);
    }

    [Fact]
    public void Inspect_summary_lists_models_by_prefix_one_line_each()
    {
        var (code, output, error) = CliHarness.Run("inspect", "--summary", "--models", "Tiny*,Gpt2Small");

        Assert.True(code == 0, error);
        var lines = output.Split('\n', System.StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1 + 19 + 1 + 2, lines.Length); // header, 19 Tiny* models, Gpt2Small, footnote and TinyV4's compressed-cache note
        Assert.Contains(lines, l => l.StartsWith("TinyV4 ") && l.Contains(" 160 ")); // 20,480 elements at 256 tokens: 80 per token
        Assert.Contains(lines, l => l.StartsWith("TinyHybrid ") && l.Contains("2,048")); // 2 attention layers of 4 cache keys and values
        Assert.Contains(lines, l => l.StartsWith("Gpt2Small") && l.Contains("124,439,808") && l.Contains("36,864"));
        Assert.Contains(lines, l => l.StartsWith("TinyNoKey ") && l.Contains("2,048"));
        Assert.Contains(lines, l => l.StartsWith("TinyMoe ") && l.Contains("9,775,360") && l.Contains("3,287,296")); // total and active
        Assert.Contains(lines, l => l.StartsWith("TinyDecoderStreams ") && l.Contains("3,480,029")); // TinyDecoder + 200,925 in the streams' maps
    }

    [Theory]
    [InlineData(2, "--sweep: 'huge' is neither 'reduced', 'full' nor a cell", "study", "--sweep", "huge")]
    [InlineData(2, "--tasks: unknown 'SPIN'", "study", "--tasks", "SPIN")]
    [InlineData(2, "--recipe: the authors' recipe is declared for the cell E64L2H2N16 only", "study", "--recipe", "authors", "--sweep", "E32L2H2N16")]
    [InlineData(2, "--recipe: 'theirs' is none of ours, authors, both, auto.", "study", "--recipe", "theirs")]
    [InlineData(2, "--pos-std: '-1' is not a positive number (or use 'sweep').", "study", "--pos-std", "0.5,-1")]
    [InlineData(2, "--merge: no results.json in 'no-such-folder'", "study", "--merge", "no-such-folder")]
    [InlineData(2, "No model named 'Nope'", "train", "--model", "Nope")]
    [InlineData(2, "--seq 512 exceeds the context of TinyDecoder (256)", "train", "--seq", "512")]
    [InlineData(2, "--dtypes: unknown type 'fp9'", "inspect", "--dtypes", "fp9")]
    [InlineData(2, "--checkpoint: no file at", "generate", "--checkpoint", "missing.safetensors")]
    [InlineData(2, "--data: no file or folder at", "train", "--data", "no-such-folder")]
    [InlineData(2, "--model: TinyDecoder declares no [Quant], so there is nothing to quantize", "qat", "--model", "TinyDecoder")]
    [InlineData(2, "--from must lie in [0, 1): the fraction of the steps after which fake quantization switches on. (got 1)", "qat", "--from", "1")]
    [InlineData(2, "--steps must be positive. (got 0)", "train", "--steps", "0")]
    [InlineData(2, "--lr must be a positive number. (got -1)", "ablate", "--lr", "-1")]
    [InlineData(2, "--seq must be positive. (got 0)", "qat", "--seq", "0")]
    [InlineData(2, "--seeds must be at least 1 (2 or more for intervals). (got 0)", "ablate", "--seeds", "0")]
    [InlineData(2, "--seeds must be at least 1 (2 or more for intervals). (got -2)", "qat", "--seeds", "-2")]
    [InlineData(2, "--seeds must be at least 1 (2 or more for intervals). (got 0)", "study", "--seeds", "0")]
    [InlineData(1, "Unrecognized command or argument '--seeds'", "train", "--seeds", "2")]
    [InlineData(2, "--jobs must not be negative. (got -1)", "ablate", "--jobs", "-1")]
    [InlineData(1, "Unrecognized command or argument '--bogus'", "train", "--bogus")]
    [InlineData(2, "--optimizer must be adamw or muon, not 'sgd'", "train", "--optimizer", "sgd")]
    [InlineData(2, "--optimizer must be adamw or muon, not 'lion'", "study", "--optimizer", "lion")]
    [InlineData(2, "--optimizer takes one optimizer here, not 'adamw,muon'", "train", "--optimizer", "adamw,muon")]
    [InlineData(2, "--optimizer names muon twice", "ablate", "--optimizer", "muon,adamw,muon")]
    public void Bad_input_exits_non_zero_with_a_message_naming_it(int exitCode, string message, params string[] args)
    {
        var (code, output, error) = CliHarness.Run(args);

        Assert.Equal(exitCode, code);
        Assert.Contains(message, error + output);
    }

    [Theory]
    [InlineData("train")]
    [InlineData("ablate")]
    [InlineData("qat")]
    [InlineData("study")]
    public void Every_training_command_refuses_the_same_bad_batch_and_thread_values_with_the_same_message(string command)
    {
        var zeroBatch = CliHarness.Run(command, "--batch", "0");
        var negativeThreads = CliHarness.Run(command, "--threads", "-1");
        var unparsable = CliHarness.Run(command, "--batch", "many");

        Assert.Equal((2, "error: --batch must be positive. (got 0)"), (zeroBatch.ExitCode, zeroBatch.Error.Trim()));
        Assert.Equal((2, "error: --threads must not be negative. (got -1)"), (negativeThreads.ExitCode, negativeThreads.Error.Trim()));
        Assert.Equal(1, unparsable.ExitCode);
        Assert.Contains("'many'", unparsable.Error + unparsable.Output);
    }

    [Fact]
    public void The_shared_training_options_read_alike_in_every_command_that_has_them()
    {
        // Spaces collapsed: each command pads its help to its own longest option name.
        static string HelpLine(string command, string option) => string.Join(' ',
            CliHarness.Run(command, "--help").Output.Split('\n').Single(l => l.TrimStart().StartsWith(option + " ")).Split(' ', System.StringSplitOptions.RemoveEmptyEntries));

        foreach (var option in new[] { "--seq", "--lr", "--seed", "--threads" })
            Assert.All(new[] { "ablate", "qat" }, command => Assert.Equal(HelpLine("train", option), HelpLine(command, option)));
        Assert.Equal(HelpLine("train", "--threads"), HelpLine("study", "--threads"));
        Assert.All(new[] { "ablate", "qat", "study" }, command => Assert.Equal(HelpLine("train", "--optimizer"), HelpLine(command, "--optimizer")));
        Assert.EndsWith("[default: 1]", HelpLine("qat", "--seeds"));
        Assert.Equal(HelpLine("qat", "--seeds").Replace("[default: 1]", "[default: 3]"), HelpLine("ablate", "--seeds"));
        Assert.Equal(HelpLine("ablate", "--seeds"), HelpLine("study", "--seeds"));
        // Only the defaults differ where the workloads do.
        Assert.EndsWith("[default: 200]", HelpLine("train", "--steps"));
        Assert.Equal(HelpLine("train", "--steps").Replace("[default: 200]", "[default: 300]"), HelpLine("ablate", "--steps"));
        Assert.Equal(HelpLine("train", "--batch").Replace("[default: 8]", "[default: 32]"), HelpLine("study", "--batch"));
    }

    [Fact]
    public void A_truncated_checkpoint_is_refused()
    {
        var checkpoint = temp.File("cut.safetensors");
        Assert.Equal(0, CliHarness.Run("train", "--steps", "1", "--batch", "1", "--seq", "16", "--checkpoint", checkpoint).ExitCode);
        var bytes = File.ReadAllBytes(checkpoint);
        File.WriteAllBytes(checkpoint, bytes[..(bytes.Length / 2)]);

        var (code, _, error) = CliHarness.Run("generate", "--checkpoint", checkpoint);

        Assert.Equal(2, code);
        Assert.Contains("cut.safetensors", error);
    }

    private static (int Width, int Height) PngSize(string path)
    {
        var header = File.ReadAllBytes(path)[16..24];
        return ((header[0] << 24) | (header[1] << 16) | (header[2] << 8) | header[3], (header[4] << 24) | (header[5] << 16) | (header[6] << 8) | header[7]);
    }

    public void Dispose() => temp.Dispose();
}
