import math

import torch
import torch.nn as nn


class CompressedIndexer(nn.Module):
    """DeepSeek V4's CSA indexer (twin of LlmEff.Layers.CompressedIndexer): queries wq_b(query latent) with rotary on
    the last rope_dim channels, keys from its own overlapping Compressor; both Hadamard-rotated and fake-quantized to
    `precision` (fp4 in DeepSeek V4); score of entry s = sum_h w_h relu(q_h . k_s), w = weights_proj(x) /
    sqrt(index_dim * heads), optionally rounded to bf16; each query keeps its top_k visible entries."""

    def __init__(self, dim, query_rank, heads, index_dim, rope_dim, ratio, top_k, precision, bf16_scores, norm_eps):
        super().__init__()
        self.heads, self.index_dim, self.rope_dim, self.top_k = heads, index_dim, rope_dim, top_k
        self.precision, self.bf16_scores = precision, bf16_scores
        self.wq_b = nn.Linear(query_rank, heads * index_dim, bias=False)
        self.weights_proj = nn.Linear(dim, heads, bias=False)
        self.compressor = Compressor(dim, index_dim, ratio, True, rope_dim, norm_eps)

    def keys(self, x, rotary):
        return indexer_fake_quantize(hadamard_rotate(self.compressor(x, rotary)), self.precision)

    def queries(self, query_latent, rotary):
        batch, time = query_latent.shape[0], query_latent.shape[1]
        q = self.wq_b(query_latent).view(batch, time, self.heads, self.index_dim)
        if self.rope_dim > 0:
            split = self.index_dim - self.rope_dim
            rotated = rotate(q[..., split:], rotary.cos[:time].unsqueeze(1), rotary.sin[:time].unsqueeze(1))
            q = torch.cat([q[..., :split], rotated], -1)
        return indexer_fake_quantize(hadamard_rotate(q), self.precision)

    def scores(self, x, queries, keys):
        dots = torch.einsum("bthd,bsd->bths", queries.float(), keys.float()).relu()
        weights = self.weights_proj(x).float() * torch.tensor(1 / math.sqrt(self.index_dim * self.heads), dtype=torch.float32)
        scores = (dots * weights.unsqueeze(-1)).sum(2)
        return scores.to(torch.bfloat16).float() if self.bf16_scores else scores

    @torch.no_grad()
    def select(self, x, query_latent, rotary):
        """Keep-mask [batch, time, entries]: visible entries (complete windows) among the top_k scores; ties go to
        the later entry."""
        keys = self.keys(x, rotary)
        count = keys.shape[1]
        visible = visible_entries(x.shape[1], count, self.compressor.ratio, x.device)
        if count <= self.top_k:
            return visible.expand(x.shape[0], -1, -1)
        scores = self.scores(x, self.queries(query_latent, rotary), keys).masked_fill(~visible, float("-inf"))
        order = scores.flip(-1).sort(dim=-1, descending=True, stable=True).indices[..., :self.top_k]
        chosen = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, count - 1 - order, True)
        return chosen & visible
