using System;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using LlmEff.Generator.Benchmarks;

// First the incremental-cache check (it fails loudly if an unrelated edit re-runs parsing or emission), then
// the timings. In-process: the references are this process's own assemblies.
Console.WriteLine(GeneratorCostBenchmarks.CheckUnrelatedEditReusesEverything());
var job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(3).WithIterationCount(15);
var config = DefaultConfig.Instance.AddJob(job).AddColumn(StatisticColumn.Median).WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(GeneratorCostBenchmarks).Assembly).Run(args, config);
return 0;
