using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using LlmEff.Checkpoints;
using LlmEff.Layers;
using LlmEff.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LlmEff.Cli.Tests;

/// <summary>The Python interpreter the PyTorch tests use: Debian's python3-torch (not a pyenv python on PATH).</summary>
internal static class Python
{
    public static string Executable => Environment.GetEnvironmentVariable("LLMEFF_PYTHON") is { Length: > 0 } custom ? custom : "/usr/bin/python3";

    private static readonly Lazy<string?> Missing = new(Probe);

    /// <summary>Why the PyTorch tests cannot run here, or null when <see cref="Executable"/> imports torch.</summary>
    public static string? WhyUnavailable => Missing.Value;

    private static string? Probe()
    {
        try
        {
            var (code, output) = Run(new[] { "-c", "import torch; print(torch.__version__)" }, Directory.GetCurrentDirectory(), 60_000);
            return code == 0 ? null : $"{Executable} cannot import torch (exit {code}: {output.Trim()}); install Debian's python3-torch or set LLMEFF_PYTHON";
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            return $"{Executable} cannot be started ({error.Message}); install Debian's python3-torch or set LLMEFF_PYTHON";
        }
    }

    /// <summary>Runs Python with <paramref name="arguments"/>; returns the exit code and stdout + stderr.</summary>
    public static (int Code, string Output) Run(IEnumerable<string> arguments, string folder, int timeoutMs, string executable = "")
    {
        var start = new ProcessStartInfo(executable.Length > 0 ? executable : Executable)
        {
            WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        // One OpenMP thread per process: test projects and torchrun's workers run side by side on few cores.
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeoutMs))
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"timed out after {timeoutMs} ms\n{output}");
        }
        process.WaitForExit();
        lock (output) return (process.ExitCode, output.ToString());
    }
}

/// <summary>
/// The PyTorch twin of a declared model computes what the TorchSharp module computes: from one checkpoint, the same
/// logits, loss, auxiliary loss, gradients and selection-bias update for one training step; a two-process torchrun job
/// reproduces a single process's losses; and checkpoints move from C# to PyTorch and back.
/// </summary>
public sealed class PyTorchParityTests : IDisposable
{
    private const double LogitTolerance = 1e-4;
    private const int RefusedInput = 2; // the CLI's exit code for refused input
    private const double RelativeGradientTolerance = 1e-4;

    private readonly TempFolder temp = new();
    private readonly ITestOutputHelper log;

    public PyTorchParityTests(ITestOutputHelper log) => this.log = log;

    /// <summary>Models spanning the features: attention variants, naming schemes, norms, positions, experts, formats.</summary>
    private static readonly (string Model, bool FakeQuantize)[] Cases =
    {
        ("TinyDecoder", false),            // Llama naming, Full, RoPE, SwiGLU, RMSNorm, tied
        ("TinyGqa", false),                // GQA
        ("TinyMqa", false),                // MQA
        ("TinyNoKey", false),
        ("TinyShared", false),
        ("TinyShareKv", false),            // cross-layer KV sharing
        ("TinyNoQueryPlus", false),        // symmetric scores + positional term, causal
        ("StudyEncoder", false),           // encoder, learned positions, untied, NoQuery+ bidirectional
        ("StudyEncoderTorchInit", false),  // PyTorch's defaults: biased linears and head, input bias, Shared+ encoder
        ("TinyMoe", false),                // softmax router, auxiliary loss
        ("TinyMoeDeepSeek", false),        // sigmoid, aux-loss-free bias, shared expert, dense first layer, routed scale
        ("TinyDecoderFp4", true),          // MXFP4 fake quantization
        ("TinyMoeFp4", true),              // MXFP4 experts only
        ("ParityGpt2Encoder", false),      // GPT-2 naming, LayerNorm, biases, GELU, learned positions, encoder
        ("ParityGpt2SharedKv", true),      // GPT-2 fused SwiGLU, NoKey + KV sharing, NVFP4 clipped STE
        ("ParitySharedMoeInt4", true),     // Shared + GQA, no positions, sigmoid aux loss, Int4 experts
        ("ParityFp8Checkpointed", true),   // FP8, activation checkpointing, HeadDim ≠ Dim / Heads
        ("ParityHybridMoe", false),        // short convolutions + QkNorm GQA, dense first layer, experts
        ("ParityGpt2Hybrid", false),       // short convolutions under GPT-2 names, biases, learned positions
        ("ParityNoKeyQkNorm", false),      // QkNorm where keys are the values
        ("ParitySharedQkNorm", false),     // QkNorm with one projection for Q, K and V
        ("ParityLatent", false),           // latent attention, compressed query
        ("ParityLatentEncoder", false),    // latent attention, direct query, bidirectional
        ("ParitySparseGqa", false),        // lightning indexer over GQA, its KL loss
        ("ParityLatentSparseMoe", false),  // latent + indexer + experts: both auxiliary losses
        ("ParityClampedMoe", false),       // SwiGLU clamping in dense, routed and shared feed-forwards; √softplus router, aux loss
        ("ParityGpt2Clamped", false),      // SwiGLU clamping on the fused c_fc
        ("ParitySequenceBalancedMoe", false), // √softplus, selection bias and the sequence-wise balance loss
        ("ParityCompressed", false),       // DeepSeek V4's attention: sliding window, CSA with its FP4 indexer, HCA
        ("TinyV4", false),                 // the same at the sample's size (16 tokens: inside its window)
        ("ParityStreams", false),          // residual streams (mHC) around GQA
        ("ParityStreamsHybridMoe", false), // 3 streams, 7 Sinkhorn iterations, short convolutions, QkNorm, experts
        ("ParityStreamsLatentCheckpointed", false), // 2 streams, latent attention, activation checkpointing
        ("ParityV4Whole", false),          // every V4 part together: compressed attention, residual streams, hash and scored routing, clamping
        ("ParityHashRoutedMoe", false),    // a dense layer, hash routing by the checkpoint's token table in two, scored routing in the last
    };

    [SkippableFact]
    public void Exported_modules_give_TorchSharps_logits_loss_gradients_and_bias_updates_from_one_checkpoint()
    {
        Skip.If(Python.WhyUnavailable is not null, Python.WhyUnavailable);
        var models = ModelCatalog.In(typeof(Program).Assembly.GetReferencedAssemblies()
                .Select(System.Reflection.Assembly.Load).First(a => a.GetName().Name == "LlmEff.Samples"))
            .Concat(ModelCatalog.In(typeof(PyTorchParityTests).Assembly)).ToDictionary(m => m.Facts.Name);
        var folder = Export("ParityDistributed"); // the support files; every module compared is written beside them
        var jobs = new List<object>();
        var expected = new Dictionary<string, Results>();
        foreach (var (name, fakeQuantize) in Cases)
        {
            var declared = models[name];
            File.WriteAllText(Path.Combine(folder, declared.PyTorch.FileName!), declared.PyTorch.Source);
            var checkpoint = Path.Combine(folder, name + ".safetensors");
            var tokens = Path.Combine(folder, name + ".tokens.safetensors");
            expected[name] = RunTorchSharp(declared, checkpoint, tokens, fakeQuantize);
            jobs.Add(new { module = Path.Combine(folder, declared.PyTorch.FileName!), checkpoint, tokens, fake_quantize = fakeQuantize, @out = Path.Combine(folder, name + ".torch.safetensors") });
        }
        var jobsFile = Path.Combine(folder, "jobs.json");
        File.WriteAllText(jobsFile, JsonSerializer.Serialize(jobs));

        var (code, output) = Python.Run(new[] { ParityScript, jobsFile }, folder, 120_000);
        Assert.True(code == 0, output);

        var failures = new List<string>();
        foreach (var (name, _) in Cases)
        {
            using var torchResults = SafeTensors.Load(Path.Combine(folder, name + ".torch.safetensors"));
            var cs = expected[name];
            var py = torchResults.Tensors;
            var logits = MaxAbsDifference(cs.Logits, py["logits"]);
            var loss = Math.Abs(cs.Loss - py["loss"].item<float>());
            var aux = cs.Auxiliary is { } a ? Math.Abs(a - py["aux"].item<float>()) : py.ContainsKey("aux") ? double.PositiveInfinity : 0;
            var gradientNames = cs.Gradients.Keys.Union(py.Keys.Where(k => k.StartsWith("grad.", StringComparison.Ordinal)).Select(k => k[5..])).ToList();
            double worstGradient = 0;
            var worstName = "";
            foreach (var gradient in gradientNames)
            {
                if (!cs.Gradients.TryGetValue(gradient, out var mine) || !py.TryGetValue("grad." + gradient, out var theirs))
                {
                    failures.Add($"{name}: {gradient} has a gradient on {(mine is null ? "the PyTorch" : "the TorchSharp")} side only");
                    continue;
                }
                var scale = Math.Max(mine.abs().max().item<float>(), 1e-3);
                var relative = MaxAbsDifference(mine, theirs) / scale;
                if (relative > worstGradient) (worstGradient, worstName) = (relative, gradient);
            }
            var buffers = cs.Buffers.Select(b => MaxAbsDifference(b.Value, py["buffer." + b.Key])).DefaultIfEmpty(0).Max();
            log.WriteLine(FormattableString.Invariant(
                $"{name,-22} logits {logits:E2}  loss {cs.Loss:F6} (diff {loss:E2})  aux diff {aux:E2}  gradients {gradientNames.Count} (worst relative {worstGradient:E2} {worstName})  bias diff {buffers:E2}"));
            if (!(logits <= LogitTolerance)) failures.Add($"{name}: logits differ by {logits:E3}");
            if (!(loss <= 1e-5)) failures.Add($"{name}: losses differ by {loss:E3}");
            if (!(aux <= 1e-6)) failures.Add($"{name}: auxiliary losses differ by {aux:E3}");
            if (!(worstGradient <= RelativeGradientTolerance)) failures.Add($"{name}: gradient of {worstName} differs by {worstGradient:E3} of its largest entry");
            if (!(buffers <= 1e-7)) failures.Add($"{name}: selection biases after the update differ by {buffers:E3}");
            if (gradientNames.Count == 0) failures.Add($"{name}: no gradients compared");
            cs.Dispose();
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>Every rank's stderr log that torchrun kept, so a failure or a hang shows where each process was.</summary>
    private static string RankLogs(string folder) => Directory.Exists(folder)
        ? string.Concat(Directory.EnumerateFiles(folder, "*.log", SearchOption.AllDirectories).Order()
            .Select(file => $"\n--- {Path.GetRelativePath(folder, file)} ---\n{File.ReadAllText(file)}"))
        : "\n(no torchrun logs)";

    [SkippableFact]
    public void A_two_process_torchrun_job_reproduces_the_single_process_losses()
    {
        Skip.If(Python.WhyUnavailable is not null, Python.WhyUnavailable);
        var folder = Export("ParityDistributed");
        var settings = new[] { "--model", "ParityDistributed.py", "--data", "tokens.safetensors", "--steps", "4", "--batch", "4", "--seq", "32", "--eval-batches", "2", "--threads", "1" };

        var single = Python.Run(new[] { "train.py" }.Concat(settings).Concat(new[] { "--log-json", "single.json" }), folder, 120_000);
        Assert.True(single.Code == 0, single.Output);
        var distributed = Python.Run(new[] { "-m", "torch.distributed.run", "--nproc_per_node", "2",
                // Debian's torch 1.13 on Python 3.11 parses the default redirect setting "0" as None and crashes; any
                // other value works. 2 = stderr to a log file and (tee) to the console.
                "--redirects", "2", "--tee", "2", "--log_dir", "torchrun-logs", "--master_port", FreePort().ToString(CultureInfo.InvariantCulture), "train.py" }
            .Concat(settings).Concat(new[] { "--log-json", "two.json", "--checkpoint", "two.safetensors" }), folder, 180_000);
        Assert.True(distributed.Code == 0, distributed.Output + RankLogs(Path.Combine(folder, "torchrun-logs")));

        var one = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "single.json"))).RootElement;
        var two = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "two.json"))).RootElement;
        Assert.Equal(1, one.GetProperty("world_size").GetInt32());
        Assert.Equal(2, two.GetProperty("world_size").GetInt32());
        var oneLosses = one.GetProperty("losses").EnumerateArray().Select(l => l.GetDouble()).ToList();
        var twoLosses = two.GetProperty("losses").EnumerateArray().Select(l => l.GetDouble()).ToList();
        log.WriteLine($"single process: {string.Join(", ", oneLosses.Select(l => l.ToString("F6", CultureInfo.InvariantCulture)))}; held-out {one.GetProperty("held_out").GetDouble():F6}; {one.GetProperty("median_step_ms").GetDouble():F1} ms/step");
        log.WriteLine($"2 processes:    {string.Join(", ", twoLosses.Select(l => l.ToString("F6", CultureInfo.InvariantCulture)))}; held-out {two.GetProperty("held_out").GetDouble():F6}; {two.GetProperty("median_step_ms").GetDouble():F1} ms/step");
        Assert.Equal(4, oneLosses.Count);
        Assert.Equal(oneLosses.Count, twoLosses.Count);
        Assert.True(oneLosses[^1] < oneLosses[0], "the loss fell over the run");
        for (var i = 0; i < oneLosses.Count; i++)
            Assert.True(Math.Abs(oneLosses[i] - twoLosses[i]) <= 1e-4, $"step {i + 1}: single {oneLosses[i]}, two processes {twoLosses[i]}");
        Assert.True(Math.Abs(one.GetProperty("held_out").GetDouble() - two.GetProperty("held_out").GetDouble()) <= 1e-4);

        // The job's checkpoint is an llmeff checkpoint the C# side loads.
        var declared = ModelCatalog.Find(typeof(PyTorchParityTests).Assembly, "ParityDistributed");
        using var model = declared.Create();
        Checkpoint.Load(Path.Combine(folder, "two.safetensors"), model, declared.Facts);
    }

    [SkippableFact]
    public void A_checkpoint_trained_in_CSharp_continues_in_PyTorch_and_comes_back_for_generate_and_an_exact_resume()
    {
        Skip.If(Python.WhyUnavailable is not null, Python.WhyUnavailable);
        var trained = temp.File("csharp.safetensors");
        var train = CliHarness.Run("train", "--model", "TinyGqa", "--steps", "2", "--batch", "2", "--seq", "32", "--checkpoint", trained);
        Assert.True(train.ExitCode == 0, train.Error);
        var folder = temp.File("export");
        var export = CliHarness.Run("export-pytorch", "TinyGqa", "--out", folder, "--checkpoint", trained);
        Assert.True(export.ExitCode == 0, export.Error);
        Assert.True(File.Exists(Path.Combine(folder, "TinyGqa.safetensors")));

        var settings = new[] { "train.py", "--model", "TinyGqa.py", "--data", "tokens.safetensors", "--steps", "4", "--batch", "2", "--seq", "32", "--eval-batches", "1", "--threads", "1" };
        var full = Python.Run(settings.Concat(new[] { "--init-from", "TinyGqa.safetensors", "--checkpoint", "full.safetensors", "--log-json", "full.json" }), folder, 120_000);
        Assert.True(full.Code == 0, full.Output);
        // Stop after 2 of the 4 steps, resume, and land on the uninterrupted run's losses and weights.
        var part = Python.Run(settings.Concat(new[] { "--init-from", "TinyGqa.safetensors", "--stop-after", "2", "--checkpoint", "part.safetensors" }), folder, 120_000);
        Assert.True(part.Code == 0, part.Output);
        var rest = Python.Run(settings.Concat(new[] { "--resume", "part.safetensors", "--checkpoint", "rest.safetensors", "--log-json", "rest.json" }), folder, 120_000);
        Assert.True(rest.Code == 0, rest.Output);
        Assert.Contains("resuming after step 2", rest.Output);
        var fullLosses = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "full.json"))).RootElement.GetProperty("losses").EnumerateArray().Select(l => l.GetDouble()).ToList();
        var restLosses = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "rest.json"))).RootElement.GetProperty("losses").EnumerateArray().Select(l => l.GetDouble()).ToList();
        Assert.Equal(fullLosses, restLosses);
        using (var a = SafeTensors.Load(Path.Combine(folder, "full.safetensors")))
        using (var b = SafeTensors.Load(Path.Combine(folder, "rest.safetensors")))
        {
            foreach (var (name, tensor) in a.Tensors) Assert.True(MaxAbsDifference(tensor, b.Tensors[name]) == 0, $"{name} differs after resuming");
        }

        var generate = CliHarness.Run("generate", "--model", "TinyGqa", "--checkpoint", Path.Combine(folder, "full.safetensors"), "--prompt", "The ", "--tokens", "8", "--temperature", "0");
        Assert.True(generate.ExitCode == 0, generate.Error);
        Assert.StartsWith("The ", generate.Output);
        var resume = CliHarness.Run("train", "--model", "TinyGqa", "--steps", "2", "--batch", "2", "--seq", "32", "--resume", Path.Combine(folder, "full.safetensors"));
        Assert.Equal(RefusedInput, resume.ExitCode);
        Assert.Contains("holds no optimizer state", resume.Error); // the TorchSharp optimizer state stays C#'s own
    }

    [SkippableFact]
    public void Train_py_with_muon_resumes_exactly_and_refuses_to_resume_with_adamw()
    {
        Skip.If(Python.WhyUnavailable is not null, Python.WhyUnavailable);
        var folder = Export("TinyGqa");
        var settings = new[] { "train.py", "--model", "TinyGqa.py", "--data", "tokens.safetensors", "--steps", "4", "--batch", "2", "--seq", "32", "--eval-batches", "1", "--threads", "1", "--optimizer", "muon" };
        var full = Python.Run(settings.Concat(new[] { "--checkpoint", "full.safetensors", "--log-json", "full.json" }), folder, 120_000);
        Assert.True(full.Code == 0, full.Output);
        var part = Python.Run(settings.Concat(new[] { "--stop-after", "2", "--checkpoint", "part.safetensors" }), folder, 120_000);
        Assert.True(part.Code == 0, part.Output);
        var rest = Python.Run(settings.Concat(new[] { "--resume", "part.safetensors", "--checkpoint", "rest.safetensors", "--log-json", "rest.json" }), folder, 120_000);
        Assert.True(rest.Code == 0, rest.Output);

        List<double> Losses(string file) => JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, file))).RootElement.GetProperty("losses").EnumerateArray().Select(l => l.GetDouble()).ToList();
        Assert.Equal(Losses("full.json"), Losses("rest.json"));
        using (var part2 = SafeTensors.Load(Path.Combine(folder, "part.safetensors")))
            Assert.Contains("__trainer__.torch.model.layers.0.self_attn.q_proj.weight.momentum_buffer", part2.Tensors.Keys);
        using (var a = SafeTensors.Load(Path.Combine(folder, "full.safetensors")))
        using (var b = SafeTensors.Load(Path.Combine(folder, "rest.safetensors")))
        {
            foreach (var (name, tensor) in a.Tensors) Assert.True(MaxAbsDifference(tensor, b.Tensors[name]) == 0, $"{name} differs after resuming");
        }
        var adamw = Python.Run(settings.Select(a => a == "muon" ? "adamw" : a).Concat(new[] { "--resume", "part.safetensors" }), folder, 120_000);
        Assert.NotEqual(0, adamw.Code);
        Assert.Contains("optimizer: muon in the checkpoint, adamw now", adamw.Output);
    }

    [SkippableFact]
    public void Two_Muon_steps_in_python_give_the_weights_two_steps_in_TorchSharp_give()
    {
        Skip.If(Python.WhyUnavailable is not null, Python.WhyUnavailable);
        var folder = Export("TinyDecoder"); // muon.py and llmeff_safetensors.py as export-pytorch ships them
        // Wide and tall matrices on Muon (with decay), a table on AdamW with decay, a scale on AdamW without.
        var shapes = new (string Name, long[] Shape, bool Muon, double Decay)[]
        {
            ("wide", new long[] { 24, 40 }, true, 0.1), ("tall", new long[] { 40, 16 }, true, 0.1),
            ("table", new long[] { 30, 8 }, false, 0.1), ("scale", new long[] { 12 }, false, 0.0),
        };
        var rates = new[] { 0.01, 0.02 };
        var generator = new Generator(5);
        var inputs = new List<(string, Tensor)>();
        foreach (var (name, shape, _, _) in shapes)
        {
            inputs.Add((name, randn(shape, generator: generator)));
            inputs.Add(("grad1." + name, randn(shape, generator: generator)));
            inputs.Add(("grad2." + name, randn(shape, generator: generator)));
        }
        var tensors = inputs.ToDictionary(t => t.Item1, t => t.Item2);
        var groups = shapes.GroupBy(s => (s.Muon, s.Decay)).Select(g => (Names: g.Select(s => s.Name).ToList(), g.Key.Muon, g.Key.Decay)).ToList();
        var input = Path.Combine(folder, "muon-in.safetensors");
        SafeTensors.Save(input, inputs, new Dictionary<string, string>
        {
            ["groups"] = JsonSerializer.Serialize(groups.Select(g => new { names = g.Names, use_muon = g.Muon, weight_decay = g.Decay })),
            ["rates"] = JsonSerializer.Serialize(rates),
        });

        var parameters = shapes.ToDictionary(s => s.Name, s => new TorchSharp.Modules.Parameter(tensors[s.Name].clone()));
        using (var optimizer = new Muon(groups.Select(g => new TorchSharp.Modules.ParamGroup<Muon.Options>(g.Names.Select(n => parameters[n]).ToList(),
                   new Muon.Options { UseMuon = g.Muon, WeightDecay = g.Decay, Momentum = 0.95, Beta1 = 0.9, Beta2 = 0.95, Epsilon = 1e-8 })).ToList(), rates[0]))
        {
            for (var step = 1; step <= rates.Length; step++)
            {
                foreach (var group in optimizer.ParamGroups) group.LearningRate = rates[step - 1];
                foreach (var (name, parameter) in parameters) parameter.grad = tensors[$"grad{step}.{name}"].clone();
                optimizer.step();
            }
        }

        var output = Path.Combine(folder, "muon-out.safetensors");
        var (code, log) = Python.Run(new[] { Path.Combine(AppContext.BaseDirectory, "PyTorch", "muon_step.py"), folder, input, output }, folder, 60_000);
        Assert.True(code == 0, log);
        using var python = SafeTensors.Load(output);
        foreach (var (name, parameter) in parameters)
        {
            // Both sides moved: the difference is measured against the distance travelled.
            var travelled = MaxAbsDifference(parameter.detach(), tensors[name]);
            var difference = MaxAbsDifference(parameter.detach(), python.Tensors[name]);
            this.log.WriteLine(FormattableString.Invariant($"{name}: moved {travelled:E2}, C# vs Python {difference:E2}"));
            Assert.True(travelled > 1e-3, $"{name} did not move");
            Assert.True(difference <= 1e-5 * Math.Max(1, travelled), $"{name}: C# and Python differ by {difference:E3} after moving {travelled:E3}");
        }
    }

    [Fact]
    public void Export_writes_the_module_the_script_the_safetensors_module_and_the_tokens()
    {
        var folder = Export("TinyNoKey");

        Assert.Equal(new[] { "TinyNoKey.py", "llmeff_safetensors.py", "muon.py", "tokens.safetensors", "train.py" }, Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var module = File.ReadAllText(Path.Combine(folder, "TinyNoKey.py"));
        Assert.Contains("class TinyNoKey(nn.Module):", module);
        Assert.Contains("k = rotate(v, cos, sin)  # keys are the values", module);
        Assert.DoesNotContain("k_proj", module);
        using var tokens = SafeTensors.Load(Path.Combine(folder, "tokens.safetensors"));
        Assert.Equal(ScalarType.Int64, tokens.Tensors["train"].dtype);
        Assert.Equal("byte", tokens.Metadata["tokenizer"]);
        Assert.Equal(360_000, tokens.Tensors["train"].shape[0]);
    }

    [Fact]
    public void Export_refuses_a_model_with_a_feature_that_has_no_port_naming_the_feature()
    {
        var result = CliHarness.Run("export-pytorch", "ParityUnported", "--assembly", typeof(PyTorchParityTests).Assembly.Location, "--out", temp.File("out"));

        Assert.Equal(RefusedInput, result.ExitCode);
        Assert.Contains("ParityUnported cannot be exported to PyTorch: state-space blocks have no PyTorch port yet", result.Error);
        Assert.False(Directory.Exists(temp.File("out")));
    }

    [Fact]
    public void Export_refuses_an_unknown_model_and_a_checkpoint_of_another_model()
    {
        var unknown = CliHarness.Run("export-pytorch", "NoSuchModel", "--out", temp.File("a"));
        Assert.Equal(RefusedInput, unknown.ExitCode);
        Assert.Contains("No model named 'NoSuchModel'", unknown.Error);

        var checkpoint = temp.File("decoder.safetensors");
        Seeding.Seed(1);
        using (var decoder = new Samples.TinyDecoder()) Checkpoint.SaveWeights(checkpoint, decoder, Samples.TinyDecoder.Facts);
        var mismatch = CliHarness.Run("export-pytorch", "TinyGqa", "--out", temp.File("b"), "--checkpoint", checkpoint);
        Assert.Equal(RefusedInput, mismatch.ExitCode);
        Assert.Contains("is a checkpoint of model 'TinyDecoder', not of 'TinyGqa'", mismatch.Error);
    }

    private string Export(string model)
    {
        var folder = temp.File(model);
        var local = typeof(PyTorchParityTests).Assembly;
        var (code, _, error) = ModelCatalog.In(local).Any(m => m.Facts.Name == model)
            ? CliHarness.Run("export-pytorch", model, "--out", folder, "--assembly", local.Location)
            : CliHarness.Run("export-pytorch", model, "--out", folder);
        Assert.True(code == 0, error);
        return folder;
    }

    private static string ParityScript => Path.Combine(AppContext.BaseDirectory, "PyTorch", "parity.py");

    private sealed record Results(Tensor Logits, float Loss, float? Auxiliary, Dictionary<string, Tensor> Gradients, Dictionary<string, Tensor> Buffers) : IDisposable
    {
        public void Dispose()
        {
            Logits.Dispose();
            foreach (var t in Gradients.Values.Concat(Buffers.Values)) t.Dispose();
        }
    }

    /// <summary>Writes a checkpoint of freshly built, perturbed weights and a batch, then runs one training forward and
    /// backward in TorchSharp as TrainingRun does (next-token loss plus the routers' and indexers' auxiliary losses).</summary>
    private static Results RunTorchSharp(DeclaredModelType declared, string checkpoint, string tokens, bool fakeQuantize)
    {
        Seeding.Seed(7);
        using var model = declared.Create();
        using (no_grad())
        {
            // Norm scales start at one and biases at zero: perturb them so that their code paths count.
            foreach (var (_, parameter) in model.named_parameters())
                if (parameter.dim() < 2) parameter.add_(randn_like(parameter) * 0.1);
            foreach (var (name, buffer) in model.named_buffers())
                if (name.EndsWith("e_score_correction_bias", StringComparison.Ordinal)) buffer.add_(randn_like(buffer) * 0.05);
        }
        Checkpoint.SaveWeights(checkpoint, model, declared.Facts);
        var time = Math.Min(16, declared.Facts.Context);
        using var inputs = randint(declared.Facts.Vocab, new long[] { 2, time }, dtype: ScalarType.Int64);
        using var targets = randint(declared.Facts.Vocab, new long[] { 2, time }, dtype: ScalarType.Int64);
        SafeTensors.Save(tokens, new List<(string, Tensor)> { ("inputs", inputs), ("targets", targets) });

        model.train();
        QuantizedLinear.SetFakeQuantization(model, fakeQuantize);
        var logits = model.forward(inputs);
        var loss = Trainer.NextTokenLoss(logits, targets);
        var total = loss;
        float? auxiliary = null;
        // As TrainingRun adds them: every module that leaves an auxiliary loss, in module order.
        var extras = AuxiliaryLosses.In(model).Select(source => source.TakeAuxiliaryLoss());
        foreach (var extra in extras)
        {
            if (extra is null) continue;
            auxiliary = (auxiliary ?? 0) + extra.item<float>();
            total = total + extra;
        }
        total.backward();
        foreach (var router in ExpertRouter.In(model)) router.UpdateSelectionBias();
        var gradients = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
        var buffers = model.named_buffers().Where(b => b.name.EndsWith("e_score_correction_bias", StringComparison.Ordinal)).ToDictionary(b => b.name, b => b.buffer.clone());
        return new Results(logits.detach(), loss.item<float>(), auxiliary, gradients, buffers);
    }

    private static double MaxAbsDifference(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(a.shape, b.shape);
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }

    private static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public void Dispose() => temp.Dispose();
}
