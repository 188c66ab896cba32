"""Two steps of muon.py's Muon on the tensors a C# test wrote, for comparison with LlmEff.Training.Muon.

    python muon_step.py FOLDER INPUT OUTPUT

FOLDER holds muon.py and llmeff_safetensors.py (an export-pytorch folder). INPUT has, per parameter NAME, NAME and
grad1.NAME, grad2.NAME, and metadata 'groups' (JSON: [{"names": [...], "use_muon": bool, "weight_decay": float}]) and
'rates' (JSON: the learning rate of each step). OUTPUT gets every parameter after the two steps under its name.
"""

import json
import sys

import torch

sys.path.insert(0, sys.argv[1])
import llmeff_safetensors as safetensors  # noqa: E402
from muon import Muon  # noqa: E402

tensors, metadata = safetensors.load(sys.argv[2])
groups = json.loads(metadata["groups"])
rates = json.loads(metadata["rates"])
parameters = {}
for group in groups:
    for name in group["names"]:
        parameters[name] = torch.nn.Parameter(tensors[name].clone())
optimizer = Muon([dict(params=[parameters[n] for n in g["names"]], use_muon=g["use_muon"], weight_decay=g["weight_decay"],
                       momentum=0.95, betas=(0.9, 0.95), eps=1e-8) for g in groups], lr=rates[0])
for step, rate in enumerate(rates, start=1):
    for group in optimizer.param_groups:
        group["lr"] = rate
    for name, parameter in parameters.items():
        parameter.grad = tensors[f"grad{step}.{name}"].clone()
    optimizer.step()
safetensors.save(sys.argv[3], {name: p.detach() for name, p in parameters.items()}, {})
