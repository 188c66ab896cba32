"""Builds a generated PyTorch twin (its constructor initialises the weights) and prints, per parameter, its name,
shape, largest magnitude and standard deviation as JSON, for a test to check the initial distributions.
Usage: twin_init_stats.py TWIN.py
"""

import json
import sys

import torch

torch.manual_seed(1)
path = sys.argv[1]
namespace = {"__name__": "twin"}
with open(path, encoding="utf-8") as source:
    exec(compile(source.read(), path, "exec"), namespace)
model = namespace["MODEL"]()
print(json.dumps([[name, list(p.shape), p.detach().abs().max().item(), p.detach().double().std().item() if p.numel() > 1 else 0.0]
                  for name, p in model.named_parameters()]))
