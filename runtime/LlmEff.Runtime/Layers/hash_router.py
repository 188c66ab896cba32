import torch
import torch.nn.functional as F


class HashRouter(ExpertRouter):
    """ExpertRouter of a hash-routed layer (DeepSeek V4's first layers; inference/model.py Gate with tid2eid): a fixed
    table tid2eid [vocab, active] chooses each token's experts by its id; the scores (softmax, sigmoid or sqrt(softplus)
    of x W^T, in fp32) only weigh the chosen, renormalised when normalize_weights, times routed_scale. Like V4's hash
    gate it keeps its weight, has no selection bias and leaves no balancing loss (balance "none"): the table decides who
    is chosen, so neither could move the load. The C# ExpertRouter does the same when RouterOptions.HashVocab > 0; this
    block is separate so that twins without hash layers carry none of it; a twin includes it after expert_router.py."""

    def __init__(self, vocab, dim, experts, active, scoring, normalize_weights=True, routed_scale=1.0):
        super().__init__(dim, experts, active, scoring, "none", normalize_weights=normalize_weights, routed_scale=routed_scale)
        self.register_buffer("tid2eid", HashRouter.new_table(vocab, experts, active))

    @staticmethod
    def new_table(vocab, experts, active):
        """[vocab, active] int64: row t holds `active` distinct experts, a uniformly random subset drawn from torch's
        generator (the top `active` of uniform noise). Only shaped on the meta device."""
        table = torch.empty(vocab, active, dtype=torch.long)
        if table.device.type != "meta":
            table.copy_(torch.rand(vocab, experts).topk(active, dim=-1).indices)
        return table

    def forward(self, tokens, token_ids):
        """Chosen experts [tokens, active] (the table's rows for token_ids, one id per row of tokens) and their weights."""
        if token_ids.numel() != tokens.shape[0]:
            raise ValueError(f"A hash-routed layer needs one token id per row: {token_ids.numel()} ids for {tokens.shape[0]} rows.")
        logits = F.linear(tokens, self.weight).float()
        if self.scoring == "softmax":
            scores = logits.softmax(-1)
        elif self.scoring == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = F.softplus(logits).sqrt()
        chosen = self.tid2eid[token_ids.reshape(-1)]
        weights = scores.gather(-1, chosen)
        if self.normalize_weights:
            weights = weights / weights.sum(-1, keepdim=True)
        if self.routed_scale != 1.0:
            weights = weights * self.routed_scale
        return chosen, weights.to(tokens.dtype)
