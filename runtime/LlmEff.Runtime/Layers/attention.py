import math

import torch
import torch.nn.functional as F

_sdpa = getattr(F, "scaled_dot_product_attention", None)  # PyTorch 2.x; 1.13 has none


def attend(q, k, v, causal, score_bias=None):
    """softmax(q k^T / sqrt(d) + score_bias [+ causal mask]) v for q [batch, heads, time, d] and k, v with the same or
    fewer heads: each key/value head serves heads / kv_heads consecutive query heads (Hugging Face's repeat_kv).
    A score_bias already holds the causal mask."""
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    if _sdpa is not None:
        return _sdpa(q, k, v, is_causal=causal) if score_bias is None else _sdpa(q, k, v, attn_mask=score_bias)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if score_bias is not None:
        scores = scores + score_bias
    elif causal:
        future = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return scores.softmax(-1) @ v


def split_heads(x, heads):
    """[batch, time, heads * d] -> [batch, heads, time, d]."""
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def merge_heads(x):
    """[batch, heads, time, d] -> [batch, time, heads * d]."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


def attend_kept(q, k, v, keep):
    """attend() over the keys a boolean mask keep [batch, 1, time, keys] keeps (true = attend; every row keeps one at least)."""
    score_bias = torch.zeros(keep.shape, dtype=q.dtype, device=q.device).masked_fill(~keep, float("-inf"))
    return attend(q, k, v, causal=False, score_bias=score_bias)
