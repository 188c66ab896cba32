import math

import torch


def hadamard_rotate(x):
    """Normalised Walsh-Hadamard rotation x H / sqrt(n) of the last dimension (a power of two), bit-exact with
    LlmEff.Quantization.Hadamard: log2(n) butterfly stages of fp32 sums and differences, then one multiplication by
    the fp32 value of 1 / sqrt(n). DeepSeek V4 rotates the indexer's queries and keys with it before FP4."""
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"The Hadamard rotation needs a power-of-two last dimension; got {n}.")
    y = x.float().contiguous()
    leading = list(x.shape[:-1])
    half = 1
    while half < n:
        pairs = y.reshape(leading + [n // (2 * half), 2, half])
        a, b = pairs[..., 0, :], pairs[..., 1, :]
        y = torch.stack([a + b, a - b], dim=-2).reshape(x.shape)
        half *= 2
    return (y * torch.tensor(1.0 / math.sqrt(n), dtype=torch.float32, device=x.device)).to(x.dtype)
