import torch
import torch.nn as nn
import torch.nn.functional as F


class TransposedLinear(nn.Module):
    """GPT-2's Conv1D: the weight is stored input x output, so GPT-2 names come with GPT-2's shapes."""

    def __init__(self, in_features, out_features, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight.t(), self.bias)
