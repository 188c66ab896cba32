// Weight initialisation draws from torch's one global generator, so tests that seed it and build a model
// must not interleave with others drawing from it at the same time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace LlmEff.Runtime.Tests
{
    internal static class TestThreads
    {
        /// <summary>One torch thread: the models here are tiny, and `dotnet test` runs the test projects side by side,
        /// where two processes spinning two OpenMP threads each on two cores slow small-op models (mixtures of
        /// experts) down tenfold.</summary>
        [System.Runtime.CompilerServices.ModuleInitializer]
        internal static void UseOneThread() => TorchSharp.torch.set_num_threads(1);
    }
}
