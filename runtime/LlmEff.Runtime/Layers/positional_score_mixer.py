import torch
import torch.nn as nn


class PositionalScoreMixer(nn.Module):
    """The QKV study's symmetry-breaking term for symmetric scores (queries are the keys): a fixed 2-D sinusoidal
    tensor P[i, j] = [PE(i); PE(j)] of 10 channels is mixed with the scores by a learned 1x1 convolution,
    S'[i, j] = S[i, j] * sum(w) + row(i) + column(j) + b. P splits into a query and a key part, so the sum is
    computed from two vectors, never an n x n x 10 tensor. The column term makes S' asymmetric."""

    CHANNELS = 10

    def __init__(self, weight_std=None):
        super().__init__()
        if weight_std is not None:
            # The QKV study's code: N(0, weight_std^2), so sum(w) starts near 0.
            self.weight = nn.Parameter(weight_std * torch.randn(1, self.CHANNELS, 1, 1))
        else:
            # Near 1 / CHANNELS with a little noise: equal weights on both halves would keep the term symmetric.
            self.weight = nn.Parameter(torch.full((1, self.CHANNELS, 1, 1), 1.0 / self.CHANNELS)
                                       + 0.1 / self.CHANNELS * torch.randn(1, self.CHANNELS, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1))

    @staticmethod
    def encoding(positions, dtype, device):
        """Sinusoidal encoding [positions, 5]: channel 2k is sin(t w_k), 2k + 1 is cos(t w_k), w_k = 10000^(-2k / 5)."""
        half = PositionalScoreMixer.CHANNELS // 2
        t = torch.arange(positions, dtype=torch.float64, device=device).unsqueeze(1)
        k = torch.arange(half, dtype=torch.float64, device=device)
        angle = t * torch.pow(10000.0, -2.0 * torch.floor(k / 2) / half)
        return torch.where((k % 2 == 1).unsqueeze(0), angle.cos(), angle.sin()).to(dtype)

    def forward(self, q, k, v, causal):
        """Attention over symmetric scores plus the learned positional term (attend() from attention.py)."""
        w = self.weight.view(self.CHANNELS).to(q.dtype)
        half = self.CHANNELS // 2
        rows = self.encoding(q.shape[2], q.dtype, q.device) @ w[:half]
        columns = self.encoding(k.shape[2], q.dtype, q.device) @ w[half:]
        bias = rows.unsqueeze(1) + columns.unsqueeze(0) + self.bias.to(q.dtype)
        if causal:
            future = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).triu(k.shape[2] - q.shape[2] + 1)
            bias = bias.masked_fill(future, float("-inf"))
        return attend(q * w.sum(), k, v, causal, score_bias=bias)
