using System;
using static TorchSharp.torch;

namespace LlmEff.Training;

/// <summary>One seed for everything random in a run: weight initialisation (torch) and batch sampling.</summary>
public static class Seeding
{
    /// <summary>Seeds torch's global generator and returns the sampler's generator.</summary>
    public static Random Seed(int seed)
    {
        manual_seed(seed);
        return new Random(seed);
    }
}
