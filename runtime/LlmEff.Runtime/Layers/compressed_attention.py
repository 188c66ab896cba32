import math

import torch
import torch.nn as nn


def visible_window(time, window, device):
    """[time, time]: query t sees token s when t - window < s <= t."""
    t = torch.arange(time, device=device).unsqueeze(1)
    s = torch.arange(time, device=device).unsqueeze(0)
    return (s <= t) & (s > t - window)


class CompressedAttention(nn.Module):
    """DeepSeek V4's attention, full sequence (twin of LlmEff.Layers.CompressedAttention): q = wq_b(q_norm(wq_a x)),
    weightless per-head RMS norm, rotary on the last rope_dim channels; one key = value head kv_norm(wkv x) with
    rotary; each query sees its last `window` tokens plus compressed entries of complete windows (all of them for
    "heavily_compressed", the indexer's top_k for "compressed_sparse"); a per-head sink logit in each softmax
    denominator; the output's rotary part rotated back; grouped low-rank output wo_a (per group) then wo_b."""

    KINDS = ("sliding_window", "compressed_sparse", "heavily_compressed")

    def __init__(self, dim, heads, head_dim, rope_dim, query_rank, output_groups, output_rank, window, kind, ratio,
                 indexer_heads, indexer_dim, top_k, precision, bf16_scores, context, rope_theta, norm_eps):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"Attention kind {kind!r} is not one of {', '.join(self.KINDS)}.")
        self.heads, self.head_dim, self.rope_dim, self.window, self.ratio = heads, head_dim, rope_dim, window, ratio
        self.output_groups, self.output_rank, self.norm_eps = output_groups, output_rank, norm_eps
        self.wq_a = nn.Linear(dim, query_rank, bias=False)
        self.q_norm = RMSNorm(query_rank, norm_eps)
        self.wq_b = nn.Linear(query_rank, heads * head_dim, bias=False)
        self.wkv = nn.Linear(dim, head_dim, bias=False)
        self.kv_norm = RMSNorm(head_dim, norm_eps)
        self.wo_a = nn.Linear(heads * head_dim // output_groups, output_groups * output_rank, bias=False)
        self.wo_b = nn.Linear(output_groups * output_rank, dim, bias=False)
        self.attn_sink = nn.Parameter(torch.zeros(heads))
        self.compressor = None if kind == "sliding_window" else Compressor(dim, head_dim, ratio, kind == "compressed_sparse", rope_dim, norm_eps)
        self.indexer = None
        if kind == "compressed_sparse":
            self.indexer = CompressedIndexer(dim, query_rank, indexer_heads, indexer_dim, rope_dim, ratio, top_k, precision, bf16_scores, norm_eps)
        self.rotary = RotaryEmbedding(max(rope_dim, 2), context, rope_theta)

    def rotate_tail(self, x, cos, sin):
        if self.rope_dim == 0:
            return x
        split = self.head_dim - self.rope_dim
        return torch.cat([x[..., :split], rotate(x[..., split:], cos.to(x.dtype), sin.to(x.dtype))], -1)

    def forward(self, x):
        batch, time = x.shape[0], x.shape[1]
        cos, sin = self.rotary.cos[:time], self.rotary.sin[:time]
        query_latent = self.q_norm(self.wq_a(x))
        q = self.wq_b(query_latent).view(batch, time, self.heads, self.head_dim)
        q32 = q.float()
        q = (q32 * torch.rsqrt(q32.square().mean(-1, keepdim=True) + self.norm_eps)).to(x.dtype)  # weightless, per head
        q = self.rotate_tail(q, cos.unsqueeze(1), sin.unsqueeze(1))
        kv = self.rotate_tail(self.kv_norm(self.wkv(x)), cos, sin)
        keys = kv
        keep = visible_window(time, self.window, x.device).unsqueeze(0).expand(batch, -1, -1)
        if self.compressor is not None:
            entries = self.compressor(x, self.rotary)
            if self.indexer is None:
                visible = visible_entries(time, entries.shape[1], self.ratio, x.device).unsqueeze(0).expand(batch, -1, -1)
            elif self.training and torch.is_grad_enabled():
                # Training also leaves the indexer its distillation loss against this layer's attention over the entries.
                visible = self.indexer.select_and_supervise(x, query_latent, self.rotary, q, entries)
            else:
                visible = self.indexer.select(x, query_latent, self.rotary)
            keys = torch.cat([kv, entries], 1)
            keep = torch.cat([keep, visible], 2)
        scale = torch.tensor(1 / math.sqrt(self.head_dim), dtype=torch.float32)
        logits = torch.einsum("bthd,bsd->bhts", q.float(), keys.float()) * scale
        logits = logits.masked_fill(~keep.unsqueeze(1), float("-inf"))
        sink = self.attn_sink.view(1, self.heads, 1, 1).expand(batch, -1, time, 1)
        probabilities = torch.cat([logits, sink], -1).softmax(-1)[..., :keys.shape[1]]
        output = torch.einsum("bhts,bsd->bthd", probabilities, keys.float()).to(x.dtype)
        output = self.rotate_tail(output, cos.unsqueeze(1), -sin.unsqueeze(1))  # undo the value's rotation
        grouped = output.reshape(batch, time, self.output_groups, -1)
        low = torch.einsum("btgi,gri->btgr", grouped, self.wo_a.weight.view(self.output_groups, self.output_rank, -1))
        return self.wo_b(low.reshape(batch, time, -1))
