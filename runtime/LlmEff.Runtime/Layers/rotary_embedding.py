import torch
import torch.nn as nn


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotary positions, computed in fp64 and cast, as the C# RotaryEmbedding does. Derived state:
    non-persistent buffers, so they move with the module but are not part of the checkpoint."""

    def __init__(self, head_dim, context, theta):
        super().__init__()
        inverse_frequency = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.outer(torch.arange(context, dtype=torch.float64), inverse_frequency)
        doubled = torch.cat([angles, angles], dim=-1)
        self.register_buffer("cos", doubled.cos().float(), persistent=False)
        self.register_buffer("sin", doubled.sin().float(), persistent=False)


def rotate(x, cos, sin):
    """Rotary embedding in Llama's half-split layout (rotate_half): channel i pairs with channel i + head_dim / 2."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin
