import torch
import torch.nn as nn


class LatentAttention(nn.Module):
    """DeepSeek's multi-head latent attention: keys and values of every head are expanded (kv_b_proj) from one
    normalised latent of kv_rank elements per token; position enters only through a separate rotary part, one
    rope_dim-wide key head shared by all query heads. Scores are scaled by 1 / sqrt(head_dim + rope_dim). The query
    is projected directly (q_rank 0) or through a normalised q_rank-wide compression. With an indexer (a
    LightningIndexer) each query attends only to the keys it selects. Names are Hugging Face DeepseekV3Attention's.
    Like the C# layer it owns its rotary tables (rope_dim wide; non-persistent, so not in the checkpoint)."""

    def __init__(self, dim, heads, head_dim, rope_dim, kv_rank, q_rank, norm_eps, context, rope_theta, causal, indexer=None):
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.rope_dim = rope_dim
        self.kv_rank = kv_rank
        self.causal = causal
        if q_rank > 0:
            self.q_a_proj = nn.Linear(dim, q_rank, bias=False)
            self.q_a_layernorm = RMSNorm(q_rank, norm_eps)
            self.q_b_proj = nn.Linear(q_rank, heads * (head_dim + rope_dim), bias=False)
        else:
            self.q_proj = nn.Linear(dim, heads * (head_dim + rope_dim), bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(dim, kv_rank + rope_dim, bias=False)
        self.kv_a_layernorm = RMSNorm(kv_rank, norm_eps)
        self.kv_b_proj = nn.Linear(kv_rank, heads * 2 * head_dim, bias=False)
        self.o_proj = nn.Linear(heads * head_dim, dim, bias=False)
        self.indexer = indexer
        self.rotary = RotaryEmbedding(rope_dim, context, rope_theta)

    def forward(self, x):
        time = x.shape[1]
        cos, sin = self.rotary.cos[:time], self.rotary.sin[:time]
        if hasattr(self, "q_proj"):
            q = split_heads(self.q_proj(x), self.heads)
        else:
            q = split_heads(self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))), self.heads)
        q_nope, q_rope = q.split([self.head_dim, self.rope_dim], dim=-1)
        q = torch.cat([q_nope, rotate(q_rope, cos, sin)], dim=-1)
        latent, k_rope = self.kv_a_proj_with_mqa(x).split([self.kv_rank, self.rope_dim], dim=-1)
        k_rope = rotate(k_rope.unsqueeze(1), cos, sin)  # [batch, 1, time, rope_dim]: one rotary key for all heads
        # kv_b_proj's rows are laid out per head as [k_nope | v].
        k_nope, v = split_heads(self.kv_b_proj(self.kv_a_layernorm(latent)), self.heads).split([self.head_dim, self.head_dim], dim=-1)
        k = torch.cat([k_nope, k_rope.expand(-1, self.heads, -1, -1)], dim=-1)
        if self.indexer is None:
            mixed = attend(q, k, v, causal=self.causal)
        else:
            index_keys = self.indexer.keys(x.detach())  # the indexer's loss must not reach the layers below
            # In training the indexer also learns which keys attention uses, from the same index scores it ranks by.
            keep = self.indexer.select_and_supervise(q, k, x, index_keys) if self.training else self.indexer.select(x, index_keys)
            mixed = attend_kept(q, k, v, keep)  # each query sees its top-k past tokens
        return self.o_proj(merge_heads(mixed))
