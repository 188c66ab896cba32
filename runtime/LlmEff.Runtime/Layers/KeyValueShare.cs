using System;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// Keys and values handed from the first layer of a group to the layers that reuse them (cross-layer KV
/// sharing, <c>[Attention(ShareKvEvery = n)]</c>). One instance lives for one forward pass; it owns the
/// tensors it holds, outside any dispose scope, so they survive the layer that made them.
/// </summary>
public sealed class KeyValueShare : IDisposable
{
    private Tensor? keys;
    private Tensor? values;

    /// <summary>Stores the group's keys and values, releasing the previous group's.</summary>
    public void Set(Tensor keys, Tensor values)
    {
        Release();
        this.keys = keys.alias().DetachFromDisposeScope();
        this.values = values.alias().DetachFromDisposeScope();
    }

    /// <summary>The current group's keys and values.</summary>
    public (Tensor Keys, Tensor Values) Get() =>
        keys is not null && values is not null
            ? (keys, values)
            : throw new InvalidOperationException("No layer has produced keys and values yet: the first layer of every group must compute them.");

    /// <summary>Releases the tensors held.</summary>
    public void Dispose() => Release();

    private void Release()
    {
        keys?.Dispose();
        values?.Dispose();
        keys = values = null;
    }
}
