import torch
import torch.nn as nn
import torch.nn.functional as F


class QuantizedLinear(nn.Module):
    """A linear layer trained for a quantization format (fmt, block_size: see fake_quantize): with fake_quantize on,
    forward multiplies by the fake-quantized weight and gradients pass straight through (zeroed where clipped, when
    clipped). Parameters are named and shaped as nn.Linear's (TransposedLinear's when transposed), so checkpoints
    are those of the same model without [Quant]."""

    def __init__(self, in_features, out_features, bias, fmt, block_size, clipped, transposed=False):
        super().__init__()
        shape = (in_features, out_features) if transposed else (out_features, in_features)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.fmt = fmt
        self.block_size = block_size
        self.clipped = clipped
        self.transposed = transposed
        self.fake_quantize = False

    def forward(self, x):
        weight = self.weight.t() if self.transposed else self.weight  # blocks run along the input dimension
        if self.fake_quantize:
            weight = StraightThrough.apply(weight, self.fmt, self.block_size, self.clipped)
        return F.linear(x, weight.to(x.dtype), self.bias)
