using System;
using System.Linq;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using LlmEff.Generator.Benchmarks;

// `--repeat N`: only N clean generator runs, for a profiler to sample (dotnet-trace collect -- dotnet <dll> --repeat 30).
if (args is ["--repeat", var count])
{
    var benchmarks = new GeneratorCostBenchmarks();
    benchmarks.Setup();
    var clock = System.Diagnostics.Stopwatch.StartNew();
    for (var i = 0; i < int.Parse(count, System.Globalization.CultureInfo.InvariantCulture); i++)
    {
        // A generator that throws is fast too: every run must produce all three files of every model.
        var run = benchmarks.GenerateAll();
        if (run.GeneratedTrees.Length != GeneratorCostBenchmarks.Models * GeneratorCostBenchmarks.PartsPerModel || run.Results.Any(r => r.Exception is not null))
            throw new InvalidOperationException($"The generator produced {run.GeneratedTrees.Length} files: {run.Results.Select(r => r.Exception?.Message).FirstOrDefault(m => m is not null)}");
    }
    Console.WriteLine($"{count} clean runs of {GeneratorCostBenchmarks.Models} models: {clock.Elapsed.TotalMilliseconds:F0} ms");
    return 0;
}

// First the incremental-cache check (it fails loudly if an unrelated edit re-runs parsing or emission), then
// the timings. In-process: the references are this process's own assemblies.
Console.WriteLine(GeneratorCostBenchmarks.CheckUnrelatedEditReusesEverything());
var job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(3).WithIterationCount(15);
var config = DefaultConfig.Instance.AddJob(job).AddColumn(StatisticColumn.Median).WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(GeneratorCostBenchmarks).Assembly).Run(args, config);
return 0;
