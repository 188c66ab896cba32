using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Training;

/// <summary>
/// A module whose training forward leaves a loss of its own (a router's balancing term, an indexer's distillation
/// loss) for the trainer to add, as it stands, to the next-token loss. <see cref="TrainingRun"/> finds every such module inside the
/// model by this interface, so a new kind of layer takes part without the trainer knowing its class. The Python
/// export names the same hook <c>take_auxiliary_loss</c>.
/// </summary>
public interface IAuxiliaryLoss
{
    /// <summary>The loss the last training forward left, or null when it left none; clears it, so
    /// each loss is taken once. The caller disposes the tensor.</summary>
    Tensor? TakeAuxiliaryLoss();
}

/// <summary>Finding the auxiliary losses of a model.</summary>
public static class AuxiliaryLosses
{
    /// <summary>Every module inside <paramref name="model"/> (itself included) that leaves auxiliary losses, in module order.</summary>
    public static IReadOnlyList<IAuxiliaryLoss> In(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var found = model.modules().OfType<IAuxiliaryLoss>().ToList();
        // The walk may or may not yield the model itself; count it once either way.
        if (model is IAuxiliaryLoss self && !found.Contains(self)) found.Insert(0, self);
        return found;
    }
}
