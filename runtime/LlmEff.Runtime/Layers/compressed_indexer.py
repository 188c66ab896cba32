import math

import torch
import torch.nn as nn


class CompressedIndexer(nn.Module):
    """DeepSeek V4's CSA indexer (twin of LlmEff.Layers.CompressedIndexer): queries wq_b(query latent) with rotary on
    the last rope_dim channels, keys from its own overlapping Compressor; both Hadamard-rotated and fake-quantized to
    `precision` (fp4 in DeepSeek V4); score of entry s = sum_h w_h relu(q_h . k_s), w = weights_proj(x) /
    sqrt(index_dim * heads), optionally rounded to bf16; each query keeps its top_k visible entries. In training,
    select_and_supervise also leaves a distillation loss for take_auxiliary_loss."""

    def __init__(self, dim, query_rank, heads, index_dim, rope_dim, ratio, top_k, precision, bf16_scores, norm_eps):
        super().__init__()
        self.heads, self.index_dim, self.rope_dim, self.top_k = heads, index_dim, rope_dim, top_k
        self.precision, self.bf16_scores = precision, bf16_scores
        self.wq_b = nn.Linear(query_rank, heads * index_dim, bias=False)
        self.weights_proj = nn.Linear(dim, heads, bias=False)
        self.compressor = Compressor(dim, index_dim, ratio, True, rope_dim, norm_eps)
        self.auxiliary_loss = None

    def keys(self, x, rotary):
        return indexer_fake_quantize(hadamard_rotate(self.compressor(x, rotary)), self.precision)

    def rotary_queries(self, query_latent, rotary):
        batch, time = query_latent.shape[0], query_latent.shape[1]
        q = self.wq_b(query_latent).view(batch, time, self.heads, self.index_dim)
        if self.rope_dim > 0:
            split = self.index_dim - self.rope_dim
            rotated = rotate(q[..., split:], rotary.cos[:time].unsqueeze(1), rotary.sin[:time].unsqueeze(1))
            q = torch.cat([q[..., :split], rotated], -1)
        return q

    def queries(self, query_latent, rotary):
        return indexer_fake_quantize(hadamard_rotate(self.rotary_queries(query_latent, rotary)), self.precision)

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
        return self.keep_top_k(self.scores(x, self.queries(query_latent, rotary), keys), visible)

    def keep_top_k(self, scores, visible):
        count = scores.shape[-1]
        order = scores.masked_fill(~visible, float("-inf")).flip(-1).sort(dim=-1, descending=True, stable=True).indices[..., :self.top_k]
        chosen = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, count - 1 - order, True)
        return chosen & visible

    def straight_through(self, x):
        return x + (indexer_fake_quantize(x, self.precision) - x).detach()

    def select_and_supervise(self, x, query_latent, rotary, attention_queries, entries):
        """Training: select's keep-mask, and KL(p_attention || p_index) per query over the compressed entries it sees
        (averaged over the queries that see any) kept for take_auxiliary_loss. p_attention: the layer's attention of
        attention_queries [batch, time, heads, head_dim] over entries [batch, entries, head_dim], scaled by
        head_dim^-1/2, softmaxed per head, averaged over heads, detached. The indexer reads detached inputs, and
        quantization passes gradients straight through: the loss trains the indexer alone."""
        x = x.detach()
        keys = self.straight_through(hadamard_rotate(self.compressor(x, rotary)))
        queries = self.straight_through(hadamard_rotate(self.rotary_queries(query_latent.detach(), rotary)))
        scores = self.scores(x, queries, keys)
        visible = visible_entries(x.shape[1], keys.shape[1], self.compressor.ratio, x.device)
        hidden, seeing = ~visible, visible.any(-1)
        with torch.no_grad():
            logits = torch.einsum("bthd,bsd->bths", attention_queries.detach().float(), entries.detach().float()) \
                * torch.tensor(1 / math.sqrt(attention_queries.shape[-1]), dtype=torch.float32)
            target = logits.masked_fill(hidden.unsqueeze(1), float("-inf")).softmax(-1).nan_to_num(0).mean(2)
        # Rows that see nothing stay unmasked here (their terms are zeroed below): a row of -inf gives NaN gradients.
        log_index = scores.masked_fill(hidden & seeing.unsqueeze(-1), float("-inf")).log_softmax(-1)
        terms = (target * (target.clamp_min(1e-30).log() - log_index)).masked_fill(hidden, 0)
        rows = seeing.sum().float().clamp_min(1) * scores.shape[0]
        self.auxiliary_loss = terms.sum(-1).masked_fill(~seeing, 0).sum() / rows
        with torch.no_grad():
            if keys.shape[1] <= self.top_k:
                return visible.expand(x.shape[0], -1, -1)
            return self.keep_top_k(scores.detach(), visible)

    def take_auxiliary_loss(self):
        loss, self.auxiliary_loss = self.auxiliary_loss, None
        return loss
