using System;
using static TorchSharp.torch;

namespace LlmEff.Data;

/// <summary>Where training and evaluation batches come from: inputs and next-token targets, each [batch, length].</summary>
public interface ITrainingData
{
    /// <summary>Vocabulary every token lies in.</summary>
    int Vocab { get; }

    /// <summary>A batch from the training split.</summary>
    (Tensor Inputs, Tensor Targets) SampleTrain(Random random, int batch, int length);

    /// <summary>A batch from the held-out split.</summary>
    (Tensor Inputs, Tensor Targets) SampleHeldOut(Random random, int batch, int length);
}
