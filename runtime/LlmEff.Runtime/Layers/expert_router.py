import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class ExpertRouter(nn.Module):
    """Scores every expert for every token (softmax, sigmoid or sqrt(softplus) of x W^T, in fp32), picks the top `active`, and weighs
    them by their unbiased scores, renormalised to sum to 1 when normalize_weights, times routed_scale. Balancing:
    "aux_loss" leaves an auxiliary loss after each training forward; "aux_loss_free" keeps a selection bias, nudged
    toward even load after each optimizer step, that shifts who is chosen; "none" does neither. With any of them,
    sequence_aux_loss_weight > 0 adds DeepSeek-V3's sequence-wise balance loss (forward then needs sequence_length).
    Loads are counted over the whole batch: under torchrun they are summed over the processes, so every process
    sees what a single process training on the global batch would."""

    def __init__(self, dim, experts, active, scoring, balance, aux_loss_weight=0.0, bias_update_rate=0.0,
                 normalize_weights=True, routed_scale=1.0, sequence_aux_loss_weight=0.0):
        super().__init__()
        if scoring not in ("softmax", "sigmoid", "sqrt_softplus"):
            raise ValueError(f"Router scoring {scoring!r} is not softmax, sigmoid or sqrt_softplus.")
        if balance not in ("none", "aux_loss", "aux_loss_free"):
            raise ValueError(f"Balancing {balance!r} is not none, aux_loss or aux_loss_free.")
        self.experts = experts
        self.active = active
        self.scoring = scoring
        self.balance = balance
        self.aux_loss_weight = aux_loss_weight
        self.bias_update_rate = bias_update_rate
        self.normalize_weights = normalize_weights
        self.routed_scale = routed_scale
        self.sequence_aux_loss_weight = sequence_aux_loss_weight
        self.weight = nn.Parameter(torch.empty(experts, dim))
        if balance == "aux_loss_free":
            # DeepSeek-V3's name, so checkpoints line up; fp32 because the steps are tiny.
            self.register_buffer("e_score_correction_bias", torch.zeros(experts, dtype=torch.float32))
            self.register_buffer("load_since_update", torch.zeros(experts, dtype=torch.long), persistent=False)
        self.auxiliary_loss = None  # left by each training forward for the trainer to take

    def take_auxiliary_loss(self):
        """The balancing loss the last training forward left (None when there is none), cleared so it is added once."""
        loss, self.auxiliary_loss = self.auxiliary_loss, None
        return loss

    def forward(self, tokens, sequence_length=None):
        """Chosen experts [tokens, active] and their weights [tokens, active] for tokens [tokens, dim], sequence_length
        consecutive rows making one sequence (needed only for the sequence-wise loss)."""
        sequence_loss = self.training and self.sequence_aux_loss_weight > 0
        if sequence_loss and (not sequence_length or tokens.shape[0] % sequence_length != 0):
            raise ValueError(f"The sequence-wise balance loss needs the {tokens.shape[0]} tokens to be whole sequences of a given length; got {sequence_length}.")
        logits = F.linear(tokens, self.weight).float()
        if self.scoring == "softmax":
            scores = logits.softmax(-1)
        elif self.scoring == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = F.softplus(logits).sqrt()  # DeepSeek V4
        with torch.no_grad():
            if self.balance == "aux_loss_free":
                chosen = (scores + self.e_score_correction_bias).topk(self.active, dim=-1).indices  # the bias decides who, never how much
            else:
                chosen = scores.topk(self.active, dim=-1).indices
        weights = scores.gather(-1, chosen)
        if self.normalize_weights:
            weights = weights / weights.sum(-1, keepdim=True)
        if self.routed_scale != 1.0:
            weights = weights * self.routed_scale
        loss = None  # this forward's balancing losses; each training forward replaces the last one's, as in C#
        balancing = self.balance == "aux_loss_free" or (self.balance == "aux_loss" and self.aux_loss_weight != 0)
        if self.training and balancing:
            counts = torch.bincount(chosen.reshape(-1), minlength=self.experts)
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(counts)
            if self.balance == "aux_loss_free":
                self.load_since_update += counts
            else:
                # weight * experts * sum_e f_e P_e: f_e the share of slots expert e got (a constant), P_e its mean score.
                fractions = (counts.double() / counts.sum()).float()
                loss = (fractions * self._probabilities(scores).mean(0)).sum() * (self.aux_loss_weight * self.experts)
        if sequence_loss:
            # DeepSeek-V3's sequence-wise loss (eqs. 17-20): per sequence alpha * sum_e f_e P_e, f_e = experts / (active T) *
            # tokens of the sequence sent to e (the chosen experts, bias included), P_e the mean renormalised score; averaged.
            sequences = tokens.shape[0] // sequence_length
            probabilities = self._probabilities(scores).view(sequences, sequence_length, self.experts).mean(1)
            with torch.no_grad():
                picked = torch.zeros(tokens.shape[0], self.experts, device=scores.device).scatter_(1, chosen, 1.0)
                fractions = picked.view(sequences, sequence_length, self.experts).sum(1) * (self.experts / (self.active * sequence_length))
            per_sequence = (fractions * probabilities).sum(-1).mean() * self.sequence_aux_loss_weight
            loss = per_sequence if loss is None else loss + per_sequence
        if loss is not None:
            self.auxiliary_loss = loss
        return chosen, weights.to(tokens.dtype)

    def _probabilities(self, scores):
        """Scores as probabilities over the experts: softmax's as they are, sigmoid's and sqrt-softplus's renormalised per token."""
        return scores if self.scoring == "softmax" else scores / scores.sum(-1, keepdim=True)

    def update_selection_bias(self):
        """After each optimizer step (aux_loss_free only): lower the bias of every expert loaded above the mean, raise
        the others'."""
        if self.balance != "aux_loss_free":
            return
        counts = self.load_since_update.double()
        self.load_since_update.zero_()
        mean = counts.sum() / self.experts
        if mean > 0:
            self.e_score_correction_bias += (self.bias_update_rate * torch.sign(mean - counts)).float()
