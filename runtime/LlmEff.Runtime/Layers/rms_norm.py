import torch
import torch.nn as nn


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale (no bias, no mean removal). The mean square is taken in fp32
    even for bf16 activations: the sum over a wide row loses precision fast otherwise."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        normalized = x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + self.eps)
        return normalized.to(x.dtype) * self.weight
