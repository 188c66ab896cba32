using System;
using System.Diagnostics;
using System.Threading;

namespace LlmEff.Kernels;

/// <summary>
/// Helper threads for the kernels: a part of the work is handed to each, the caller does part 0 and waits. A decoding
/// step of a small model runs dozens of products of tens of microseconds each, and handing one to a sleeping
/// thread-pool thread (Parallel.For) cost about as much as the product: a profile of DecodeFull's step put 29% of it
/// in Parallel.For's task machinery. So a worker spins for <see cref="SpinTime"/> after its last part, catching
/// the step's next product within a microsecond, and only then sleeps. One caller at a time: a second thread that
/// asks while the workers are busy gets false from <see cref="TryRun"/> and runs its product on its own.
/// </summary>
internal static unsafe class KernelWorkers
{
    /// <summary>How long a worker spins for the next part before it sleeps: longer than the gap between two products
    /// of a decoding step (a few libtorch operations), far shorter than the gap between steps a person would notice.</summary>
    public static readonly TimeSpan SpinTime = TimeSpan.FromMilliseconds(0.2);

    private static readonly object Gate = new();
    private static Worker[] workers = Array.Empty<Worker>();

    /// <summary>Runs <paramref name="body"/>(state, part, parts) for every part, part 0 on the calling thread, the rest
    /// on workers; returns when all are done. Returns false, running nothing, when another thread holds the workers.</summary>
    public static bool TryRun(delegate*<nint, int, int, void> body, nint state, int parts)
    {
        if (!Monitor.TryEnter(Gate)) return false;
        try
        {
            if (workers.Length < parts - 1) Grow(parts - 1);
            for (var i = 1; i < parts; i++) workers[i - 1].Post(body, state, i, parts);
            try
            {
                body(state, 0, parts);
            }
            finally
            {
                // Even if part 0 threw: the workers read `state` on the caller's stack until they are done.
                for (var i = 1; i < parts; i++) workers[i - 1].WaitDone();
            }
            return true;
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    private static void Grow(int count)
    {
        var grown = new Worker[count];
        Array.Copy(workers, grown, workers.Length);
        for (var i = workers.Length; i < count; i++) grown[i] = new Worker(i + 1);
        workers = grown;
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim wake = new(0);
        private long posted, finished;
        private int sleeping;
        private delegate*<nint, int, int, void> body;
        private nint state;
        private int part, parts;

        public Worker(int number)
        {
            new Thread(Loop) { IsBackground = true, Name = $"LlmEff kernel worker {number}" }.Start();
        }

        public void Post(delegate*<nint, int, int, void> work, nint workState, int workPart, int workParts)
        {
            body = work;
            state = workState;
            part = workPart;
            parts = workParts;
            Interlocked.Increment(ref posted); // a full fence: the fields above are visible before the new count
            if (Volatile.Read(ref sleeping) == 1) wake.Release();
        }

        public void WaitDone()
        {
            var target = Volatile.Read(ref posted);
            var spinner = new SpinWait();
            while (Volatile.Read(ref finished) != target) spinner.SpinOnce(sleep1Threshold: -1);
        }

        private void Loop()
        {
            long seen = 0;
            while (true)
            {
                var since = Stopwatch.GetTimestamp();
                while (Volatile.Read(ref posted) == seen)
                {
                    if (Stopwatch.GetElapsedTime(since) < SpinTime)
                    {
                        Thread.SpinWait(20);
                        continue;
                    }
                    // Announce the sleep, then look once more: a Post between the two sees `sleeping` and releases.
                    Interlocked.Exchange(ref sleeping, 1);
                    if (Volatile.Read(ref posted) == seen) wake.Wait();
                    Interlocked.Exchange(ref sleeping, 0);
                    since = Stopwatch.GetTimestamp();
                }
                seen = Volatile.Read(ref posted);
                body(state, part, parts);
                Volatile.Write(ref finished, seen);
            }
        }
    }
}
