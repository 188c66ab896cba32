using System;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Layers;

/// <summary>
/// Hash routing's token→experts table (DeepSeek V4 routes the tokens of its first 3 mixture layers by one:
/// inference/model.py, <c>Gate.tid2eid</c>, <c>n_hash_layers</c>). In C# the hash branch lives inside
/// <see cref="ExpertRouter"/> (<see cref="RouterOptions.HashVocab"/>); its Python twin, <c>hash_router.py</c>, is an
/// <c>ExpertRouter</c> subclass in a block of its own, so that twins without hash layers carry none of it.
/// </summary>
public static class HashRouter
{
    /// <summary>
    /// A table [<paramref name="vocab"/>, <paramref name="active"/>] (int64): row t lists the experts token t goes
    /// to, <paramref name="active"/> distinct ones, a uniformly random subset drawn from torch's generator (the top
    /// <paramref name="active"/> of uniform noise), so the seed set before the model is built fixes it. V4's reference
    /// inference code allocates the table empty and loads DeepSeek's from the checkpoint; how they drew it is not
    /// public. On the meta device the table is only shaped.
    /// </summary>
    public static Tensor NewTable(int vocab, int experts, int active, Device? device = null)
    {
        if (vocab <= 0) throw new ArgumentOutOfRangeException(nameof(vocab), vocab, "The vocabulary must be positive.");
        if (active <= 0 || active > experts)
            throw new ArgumentOutOfRangeException(nameof(active), active, $"A token's experts must be 1 to the {experts} experts, distinct.");
        var table = torch.empty(vocab, active, dtype: ScalarType.Int64, device: device);
        if (table.device_type == DeviceType.META) return table;
        using var scope = NewDisposeScope();
        table.copy_(torch.rand(vocab, experts, device: device).topk(active, dim: -1).indexes);
        return table;
    }
}
