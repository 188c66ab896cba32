"""Runs runtime blocks' Python twins on inputs and weights written by C#, for V4AttentionParityTests to compare.

    block_parity.py JOBS.json

The runtime .py files are executed into one namespace in the order given (as a generated twin concatenates them).
Each job reads a safetensors file (weights under "state.", inputs under "in.") and writes its outputs to another.
"""

import json
import os
import sys

import torch

torch.set_num_threads(1)  # test projects run beside each other


def main(jobs_path):
    with open(jobs_path) as file:
        spec = json.load(file)
    sys.path.insert(0, spec["safetensors_folder"])
    import llmeff_safetensors as safetensors
    blocks = {}
    for path in spec["runtime_files"]:
        with open(os.path.join(spec["runtime_folder"], path)) as source:
            exec(compile(source.read(), path, "exec"), blocks)
    for job in spec["jobs"]:
        tensors, _ = safetensors.load(job["in"])
        inputs = {k[3:]: v for k, v in tensors.items() if k.startswith("in.")}
        state = {k[6:]: v for k, v in tensors.items() if k.startswith("state.")}
        out = {}
        if job["block"] == "quantize":
            x = inputs["x"]
            for precision in ("fp4", "fp8", "bf16", "fp32"):
                out[precision] = blocks["indexer_fake_quantize"](x, precision)
            out["hadamard"] = blocks["hadamard_rotate"](x)
        elif job["block"] == "attention_train":
            # One training forward: the indexer's distillation loss and the gradients it gives.
            layer = blocks["CompressedAttention"](**job["settings"])
            layer.load_state_dict(state, strict=True)
            layer.train()
            out["y"] = layer(inputs["x"]).detach()
            loss = layer.indexer.take_auxiliary_loss()
            loss.backward()
            out["auxiliary_loss"] = loss.detach().reshape(1)
            for name, parameter in layer.named_parameters():
                if parameter.grad is not None:
                    out["grad." + name] = parameter.grad
        else:
            settings = job["settings"]
            layer = blocks["CompressedAttention"](**settings)
            layer.load_state_dict(state, strict=True)
            layer.eval()
            with torch.no_grad():
                x = inputs["x"]
                out["y"] = layer(x)
                if layer.compressor is not None:
                    out["entries"] = layer.compressor(x, layer.rotary)
                if layer.indexer is not None:
                    latent = inputs["query_latent"]
                    indexer = layer.indexer
                    out["index_scores"] = indexer.scores(x, indexer.queries(latent, layer.rotary), indexer.keys(x, layer.rotary))
                    out["keep"] = indexer.select(x, latent, layer.rotary).to(torch.uint8)
        safetensors.save(job["out"], {k: v.contiguous() for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1])
