import math

import torch

# Twin of Muon.cs (read its summary for the sources): Muon for hidden 2-D weight matrices, PyTorch's AdamW step for
# embeddings, the head, norms and biases, as DeepSeek V4 trains. Same maths in the same order, in fp32.

FAST_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # Keller Jordan's quintic, KellerJordan/Muon muon.py
SETTLE_COEFFICIENTS = (2.0, -1.5, 0.5)         # p(1) = 1, p'(1) = 0: pulls the singular values onto 1
FAST_STEPS, SETTLE_STEPS = 8, 2                # DeepSeek V4
UPDATE_RMS = 0.18                              # DeepSeek V4 (Moonlight: 0.2)
DEFAULT_MOMENTUM = 0.95
NORM_EPSILON = 1e-7
OUTPUT_HEAD_NAME = "lm_head.weight"


def orthogonalize(matrix):
    """FAST_STEPS quintic Newton-Schulz steps, then SETTLE_STEPS settling ones, on the Frobenius-normalised wide matrix."""
    if matrix.dim() != 2:
        raise ValueError(f"Muon orthogonalizes matrices; this tensor has shape {list(matrix.shape)}")
    x = matrix.float()
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.t()
    x = x / (x.norm() + NORM_EPSILON)
    for i in range(FAST_STEPS + SETTLE_STEPS):
        a, b, c = FAST_COEFFICIENTS if i < FAST_STEPS else SETTLE_COEFFICIENTS
        gram = x @ x.t()
        polynomial = gram * b + (gram * c) @ gram
        x = x * a + polynomial @ x
    if tall:
        x = x.t()
    return x.to(matrix.dtype).contiguous()


def update_scale(rows, columns):
    """0.18 * sqrt(max(rows, columns)): gives an orthogonal update an RMS of 0.18."""
    return UPDATE_RMS * math.sqrt(max(rows, columns))


def is_residual_stream_bias_or_gate(name):
    """DeepSeek V4's residual-stream biases and gates (hc_attn_base, hc_ffn_scale, hc_head_base, ...), which the V4 report
    trains with AdamW; the maps hc_*_fn stay with Muon (see Muon.IsResidualStreamBiasOrGate for why)."""
    last = name.rsplit(".", 1)[-1]
    return last.startswith("hc_") and (last.endswith("_base") or last.endswith("_scale"))


def muon_roles(model):
    """(name, parameter, role) for every parameter; role is 'muon', 'adamw_decayed' (embeddings, the head) or
    'adamw_plain' (norm scales, biases, tensors of other than 2 dimensions)."""
    embedded = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    roles = []
    for name, parameter in model.named_parameters():
        if id(parameter) in embedded or name == OUTPUT_HEAD_NAME:
            role = "adamw_decayed"
        elif is_residual_stream_bias_or_gate(name):
            role = "adamw_plain"
        elif parameter.dim() == 2:
            role = "muon"
        else:
            role = "adamw_plain"
        roles.append((name, parameter, role))
    return roles


class Muon(torch.optim.Optimizer):
    """Groups carry use_muon, momentum, weight_decay, betas, eps. State per parameter: step, and either
    momentum_buffer (Muon) or exp_avg and exp_avg_sq (AdamW)."""

    def __init__(self, groups, lr):
        defaults = dict(lr=lr, use_muon=False, momentum=DEFAULT_MOMENTUM, weight_decay=0.0, betas=(0.9, 0.95), eps=1e-8)
        super().__init__(groups, defaults)
        for group in self.param_groups:
            if group["use_muon"]:
                for parameter in group["params"]:
                    if parameter.dim() != 2:
                        raise ValueError(f"Muon takes 2-D weight matrices; a parameter of shape {list(parameter.shape)} was put in a Muon group")

    @classmethod
    def for_model(cls, model, lr, weight_decay, beta1, beta2, momentum=DEFAULT_MOMENTUM):
        roles = muon_roles(model)
        groups = []
        for role, use_muon, decay in (("muon", True, weight_decay), ("adamw_decayed", False, weight_decay), ("adamw_plain", False, 0.0)):
            params = [p for _, p, r in roles if r == role]
            if params:
                groups.append(dict(params=params, use_muon=use_muon, momentum=momentum, weight_decay=decay, betas=(beta1, beta2)))
        return cls(groups, lr)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            for parameter in group["params"]:
                gradient = parameter.grad
                if gradient is None:
                    continue
                state = self.state[parameter]
                if not state:
                    state["step"] = 0
                    if group["use_muon"]:
                        state["momentum_buffer"] = torch.zeros_like(parameter)
                    else:
                        state["exp_avg"] = torch.zeros_like(parameter)
                        state["exp_avg_sq"] = torch.zeros_like(parameter)
                state["step"] += 1
                if group["use_muon"]:
                    momentum = group["momentum"]
                    buffer = state["momentum_buffer"]
                    buffer.mul_(momentum).add_(gradient)
                    update = orthogonalize(gradient.add(buffer, alpha=momentum))
                    parameter.mul_(1 - lr * group["weight_decay"])
                    parameter.add_(update, alpha=-lr * update_scale(parameter.shape[0], parameter.shape[1]))
                else:
                    beta1, beta2 = group["betas"]
                    parameter.mul_(1 - lr * group["weight_decay"])
                    correction1 = 1 - beta1 ** state["step"]
                    correction2 = 1 - beta2 ** state["step"]
                    state["exp_avg"].mul_(beta1).add_(gradient, alpha=1 - beta1)
                    state["exp_avg_sq"].mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
                    denominator = (state["exp_avg_sq"].sqrt() / math.sqrt(correction2)).add_(group["eps"])
                    parameter.addcdiv_(state["exp_avg"], denominator, value=-lr / correction1)
        return loss
