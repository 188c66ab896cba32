using System;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// No arguments: the headline comparison (generated vs hand-written vs PyTorch, every variant).
if (args.Length == 0 || args[0] is "compare" or "checkpointing" or "decode" or "decode-llama" or "rotation" or "matvec")
{
    try
    {
        return args.Length == 0 || args[0] == "compare" ? LlmEff.Benchmarks.StepComparison.Run(args.Length == 0 ? args : args[1..])
            : args[0] == "decode" ? LlmEff.Benchmarks.DecodeComparison.Run(args[1..])
            : args[0] == "decode-llama" ? LlmEff.Benchmarks.LlamaCppDecodeComparison.Run(args[1..])
            : args[0] == "rotation" ? LlmEff.Benchmarks.RotationComparison.Run(args[1..])
            : args[0] == "matvec" ? LlmEff.Benchmarks.MatrixVectorComparison.Run(args[1..])
            : LlmEff.Benchmarks.CheckpointingComparison.Run(args[1..]);
    }
    catch (ArgumentException error)
    {
        Console.Error.WriteLine(error.Message);
        return 2;
    }
}

// In-process: TorchSharp's native libraries (and the Debian 12 fix applied to them at build time) are
// already next to this assembly, and no child project has to be built. Few iterations: one operation
// is a whole training step, tens to hundreds of milliseconds, so noise is dominated by the machine.
var job = Job.Default
    .WithToolchain(InProcessEmitToolchain.Instance)
    .WithWarmupCount(2)
    .WithIterationCount(7)
    .WithInvocationCount(1)
    .WithUnrollFactor(1);
var config = DefaultConfig.Instance.AddJob(job).AddColumn(StatisticColumn.Median).WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
return 0;
