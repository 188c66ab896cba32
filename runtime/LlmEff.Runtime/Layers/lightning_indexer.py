import math

import torch
import torch.nn as nn


def visible_keys(time, keys, device):
    """[time, keys]: query t sees key s when s <= t."""
    return torch.ones(time, keys, dtype=torch.bool, device=device).tril()


class LightningIndexer(nn.Module):
    """DeepSeek-V3.2's lightning indexer: picks the top_k past tokens each query attends to. Index score
    I(t, s) = scale * sum_j w_j(t) * relu(q_j(t) . k(s)) over `heads` heads, with one key per token shared by the
    heads, scale = 1 / sqrt(heads * head_dim). Selection passes no gradient; the indexer learns from a KL loss toward
    the attention it stands in for (supervise), on a detached input, so that the loss trains the indexer alone."""

    def __init__(self, dim, heads, head_dim, top_k):
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.top_k = top_k
        self.scale = 1.0 / math.sqrt(heads * head_dim)
        self.wq = nn.Linear(dim, heads * head_dim, bias=False)
        self.wk = nn.Linear(dim, head_dim, bias=False)
        self.weights_proj = nn.Linear(dim, heads, bias=False)
        self.auxiliary_loss = None  # left by each training forward for the trainer to take

    def take_auxiliary_loss(self):
        """The KL loss the last training forward left (None when there is none), cleared so it is added once."""
        loss, self.auxiliary_loss = self.auxiliary_loss, None
        return loss

    def keys(self, x):
        """Index keys [batch, time, head_dim] of x [batch, time, dim]."""
        return self.wk(x)

    def scores(self, x, keys):
        """Index scores [batch, time, keys] of queries x over index keys, unmasked."""
        batch, time = x.shape[0], x.shape[1]
        queries = self.wq(x).view(batch, time * self.heads, self.head_dim)
        dots = (queries @ keys.transpose(1, 2)).view(batch, time, self.heads, keys.shape[1]).relu()
        return (dots * self.weights_proj(x).unsqueeze(-1)).sum(2) * self.scale

    @torch.no_grad()
    def select(self, x, keys):
        """Keep-mask [batch, 1, time, keys]: key s is kept for query t when s <= t and s is among t's top_k highest index
        scores, ranked at bf16 precision so that scores differing only in their last bits tie. Ties go to the more
        recent key. Rows with at most top_k visible keys keep them all."""
        visible = visible_keys(x.shape[1], keys.shape[1], x.device)
        return self._keep(None if keys.shape[1] <= self.top_k else self.scores(x, keys), visible, x.shape[0])

    def select_and_supervise(self, q, k, x, index_keys):
        """Training: select's keep-mask and supervise's loss from one computation of the index scores."""
        visible = visible_keys(x.shape[1], index_keys.shape[1], x.device)
        scores = self.scores(x.detach(), index_keys)
        self._supervise_from(scores, q, k, visible)
        with torch.no_grad():
            return self._keep(scores.detach(), visible, x.shape[0])

    def _keep(self, scores, visible, batch):
        count = visible.shape[1]
        if scores is None or count <= self.top_k:
            return visible.expand(batch, -1, -1).unsqueeze(1)
        scores = scores.to(torch.bfloat16).float()
        # Keys in reverse order and a stable descending sort: among equal scores the later key comes first.
        reversed_scores = scores.masked_fill(~visible, float("-inf")).flip(-1)
        order = reversed_scores.sort(dim=-1, descending=True, stable=True).indices[..., :self.top_k]
        chosen = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, count - 1 - order, True)
        return (chosen & visible).unsqueeze(1)  # rows seeing fewer than top_k keys picked hidden ones too

    def supervise(self, q, k, x, index_keys):
        """Training: leaves KL(p_attention || p_index) per query, averaged over queries, as self.auxiliary_loss.
        p_attention is the causal softmax of q k^T / sqrt(d) averaged over heads (the target, detached); p_index the
        softmax of the index scores of x.detach(). With index keys from x.detach() too, it trains the indexer alone.
        With selection as well, select_and_supervise."""
        visible = visible_keys(x.shape[1], index_keys.shape[1], x.device)
        self._supervise_from(self.scores(x.detach(), index_keys), q, k, visible)

    def _supervise_from(self, index_scores, q, k, visible):
        hidden = ~visible
        with torch.no_grad():
            keys = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            scores = (q @ keys.transpose(-2, -1) / math.sqrt(q.shape[-1])).float()
            target = scores.masked_fill(hidden, float("-inf")).softmax(-1).mean(1)
        log_index = index_scores.float().masked_fill(hidden, float("-inf")).log_softmax(-1)
        # Hidden keys have p = 0 on both sides: zero their terms instead of computing 0 * (-inf).
        terms = (target * (target.clamp_min(1e-30).log() - log_index)).masked_fill(hidden, 0.0)
        self.auxiliary_loss = terms.sum(-1).mean()
