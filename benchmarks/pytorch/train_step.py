"""One training step (forward, backward, AdamW) of the benchmark's Llama-style model in PyTorch eager.

Called by benchmarks/LlmEff.Benchmarks (`dotnet run -c Release -- compare`) with the same sizes and thread
count as the TorchSharp runs, so the ratio is measured on the same machine in the same run. Runs on PyTorch
1.13 (Debian's python3-torch) and 2.x: attention uses scaled_dot_product_attention where it exists, else the
same computation written out. Prints one JSON line: {"median_ms": ..., "steps_ms": [...], "torch": "..."}.

With --serve it runs no steps of its own: it prints {"torch": ..., "threads": ...} once set up, then runs one step
for each line "step" on standard input and answers {"ms": ...}, until standard input closes. `compare` uses this to
interleave PyTorch's steps with the TorchSharp models' (round i runs step i of each), so the ratios pair by round.
It answers only --settle-ms (default 250) after the step: OpenBLAS's worker threads keep spinning for about 2^28
cycles (~0.1 s) after their last call before they sleep, and without the pause that spinning would run into, and
slow, whichever TorchSharp step comes next. The pause is not part of the time it reports.
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RmsNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def causal_attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    time_steps = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    mask = torch.ones(time_steps, time_steps, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(mask, float("-inf")).softmax(-1) @ v


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.heads = heads
        self.input_layernorm = RmsNorm(dim)
        self.post_attention_layernorm = RmsNorm(dim)
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x, cos, sin):
        h = self.input_layernorm(x)
        batch, time_steps, dim = h.shape

        def split(t):
            return t.view(batch, time_steps, self.heads, dim // self.heads).transpose(1, 2)

        q = rotate(split(self.q_proj(h)), cos, sin)
        k = rotate(split(self.k_proj(h)), cos, sin)
        v = split(self.v_proj(h))
        x = x + self.o_proj(causal_attention(q, k, v).transpose(1, 2).reshape(batch, time_steps, dim))
        m = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))


class Llama(nn.Module):
    def __init__(self, vocab, dim, layers, heads, hidden, context):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([Block(dim, heads, hidden) for _ in range(layers)])
        self.norm = RmsNorm(dim)
        head_dim = dim // heads
        inverse = 10000.0 ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.outer(torch.arange(context, dtype=torch.float64), inverse)
        doubled = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", doubled.cos().float(), persistent=False)
        self.register_buffer("sin", doubled.sin().float(), persistent=False)
        for parameter in self.parameters():
            if parameter.dim() == 2:
                nn.init.normal_(parameter, 0.0, 0.02)

    def forward(self, tokens):
        time_steps = tokens.shape[1]
        cos, sin = self.cos[:time_steps], self.sin[:time_steps]
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return F.linear(self.norm(x), self.embed_tokens.weight)


def main():
    parser = argparse.ArgumentParser()
    for name, default in [("vocab", 256), ("dim", 512), ("layers", 8), ("heads", 8), ("hidden", 1408),
                          ("seq", 256), ("batch", 8), ("steps", 10), ("warmup", 2), ("threads", 0)]:
        parser.add_argument("--" + name, type=int, default=default)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--settle-ms", type=int, default=250)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = Llama(args.vocab, args.dim, args.layers, args.heads, args.hidden, args.seq)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    plain = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0.0}],
                                  lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    tokens = torch.randint(0, args.vocab, (args.batch, args.seq))
    targets = torch.randint(0, args.vocab, (args.batch, args.seq))

    def step():
        start = time.perf_counter()
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, args.vocab), targets.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return (time.perf_counter() - start) * 1000

    if args.serve:
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
        for line in sys.stdin:
            if line.strip() != "step":
                raise SystemExit(f"train_step.py --serve understands only 'step' lines, not {line.strip()!r}")
            elapsed = step()
            time.sleep(args.settle_ms / 1000)
            print(json.dumps({"ms": elapsed}), flush=True)
        return

    timings = []
    for index in range(args.warmup + args.steps):
        elapsed = step()
        if index >= args.warmup:
            timings.append(elapsed)
    ordered = sorted(timings)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    print(json.dumps({"median_ms": median, "steps_ms": timings, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
