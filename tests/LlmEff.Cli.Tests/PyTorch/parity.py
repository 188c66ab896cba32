"""One training forward and backward of exported models, for PyTorchParityTests to compare with TorchSharp.

    parity.py JOBS.json

Each job names an exported module, a checkpoint to load, a token file (inputs, targets) and whether fake quantization
is on; the results (logits, loss, auxiliary loss, every gradient, and the buffers after the selection-bias update) go
to the job's output safetensors file.
"""

import importlib.util
import json
import os
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)  # test projects run beside each other: oversubscribed OpenMP threads crawl


def main(jobs_path):
    with open(jobs_path) as file:
        jobs = json.load(file)
    for number, job in enumerate(jobs):
        folder = os.path.dirname(os.path.abspath(job["module"]))
        if folder not in sys.path:
            sys.path.insert(0, folder)
        import llmeff_safetensors as safetensors
        spec = importlib.util.spec_from_file_location(f"exported_{number}", job["module"])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

        model = module.MODEL()
        tensors, metadata = safetensors.load(job["checkpoint"])
        assert metadata["model"] == module.MODEL_NAME, (metadata["model"], module.MODEL_NAME)
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("__trainer__.")}, strict=True)
        batch, _ = safetensors.load(job["tokens"])

        model.train()
        model.set_fake_quantization(job["fake_quantize"])
        logits = model(batch["inputs"])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))
        auxiliary = model.auxiliary_loss()
        (loss if auxiliary is None else loss + auxiliary).backward()
        model.update_selection_bias()

        out = {"logits": logits.detach(), "loss": loss.detach()}
        if auxiliary is not None:
            out["aux"] = auxiliary.detach()
        for name, parameter in model.named_parameters():
            if parameter.grad is not None:
                out["grad." + name] = parameter.grad
        for name, buffer in model.state_dict().items():
            if name.endswith("e_score_correction_bias"):
                out["buffer." + name] = buffer
        safetensors.save(job["out"], out, {"model": module.MODEL_NAME})


if __name__ == "__main__":
    main(sys.argv[1])
