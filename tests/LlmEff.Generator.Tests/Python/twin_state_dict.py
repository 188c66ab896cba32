"""Prints the state dict of a generated PyTorch twin as JSON: [name, shape, trainable] per tensor, in order.

The twin is built on the meta device, so even a declaration of hundreds of billions of parameters costs no memory.
PyTorch 1.13 (Debian's) has no default-device switch, so the tensor factories that the twin and torch.nn call are
wrapped to default to meta. Usage: twin_state_dict.py TWIN.py
"""

import json
import sys

import torch


def on_meta(factory):
    def build(*args, **kwargs):
        if kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return factory(*args, **kwargs)

    return build


for name in ("empty", "zeros", "ones", "full", "randn", "rand", "arange", "tensor", "eye"):
    setattr(torch, name, on_meta(getattr(torch, name)))

path = sys.argv[1]
namespace = {"__name__": "twin"}
with open(path, encoding="utf-8") as source:
    exec(compile(source.read(), path, "exec"), namespace)
model = namespace["MODEL"]()
parameters = {name for name, _ in model.named_parameters()}
print(json.dumps([[name, list(tensor.shape), name in parameters] for name, tensor in model.state_dict().items()]))
