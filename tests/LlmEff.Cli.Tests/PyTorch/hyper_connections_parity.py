"""Runs the Python twin of the residual streams (Layers/hyper_connections.py) on streams and maps written by C#, for
HyperConnectionsParityTests to compare with HyperConnections.cs.

    hyper_connections_parity.py RUNTIME_FOLDER SAFETENSORS_FOLDER IN.safetensors OUT.safetensors ITERATIONS NORM_EPS
"""

import os
import sys

import torch

torch.set_num_threads(1)  # test projects run beside each other


def main(runtime_folder, safetensors_folder, in_path, out_path, iterations, norm_eps):
    sys.path.insert(0, safetensors_folder)
    import llmeff_safetensors as safetensors
    block = {}
    path = os.path.join(runtime_folder, "Layers", "hyper_connections.py")
    with open(path) as source:
        exec(compile(source.read(), path, "exec"), block)
    t, _ = safetensors.load(in_path)
    eps = 1e-6
    out = {"comb_only": block["hc_sinkhorn"](t["logits"], iterations, eps)}
    x, post, comb = block["hc_pre"](t["streams"], t["fn"], t["scale"], t["base"], iterations, norm_eps, eps)
    out["input"], out["post"], out["comb"] = x, post, comb
    out["next"] = block["hc_post"](t["output"], t["streams"], post, comb)
    out["head"] = block["hc_head"](t["streams"], t["head_fn"], t["head_scale"], t["head_base"], norm_eps, eps)
    out["expanded"] = block["hc_expand"](t["hidden"], t["streams"].shape[2])
    safetensors.save(out_path, {k: v.contiguous() for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
