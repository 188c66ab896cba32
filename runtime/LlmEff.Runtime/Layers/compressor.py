import torch
import torch.nn as nn


def visible_entries(time, entries, ratio, device):
    """[time, entries]: query t sees compressed entry w when its window is complete, w < (t + 1) // ratio."""
    complete = (torch.arange(1, time + 1, device=device) // ratio).unsqueeze(1)
    return torch.arange(entries, device=device).unsqueeze(0) < complete


class Compressor(nn.Module):
    """DeepSeek V4's KV compressor (twin of LlmEff.Layers.Compressor): every complete window of `ratio` tokens becomes
    one entry head_dim wide, per channel sum_j softmax_j(wgate x_j + ape_j) * (wkv x_j) over the window, then RMSNorm
    and rotary position on the last rope_dim channels at the window's first position. With overlap (CSA) the
    projections are 2 head_dim wide and entry w pools the first head_dim channels of window w-1 and the last head_dim of
    window w. Projections, bias and pooling in fp32, as DeepSeek's. Only complete windows: time // ratio entries."""

    def __init__(self, dim, head_dim, ratio, overlap, rope_dim, norm_eps):
        super().__init__()
        self.head_dim, self.ratio, self.overlap, self.rope_dim = head_dim, ratio, overlap, rope_dim
        width = (2 if overlap else 1) * head_dim
        self.wkv = nn.Linear(dim, width, bias=False)
        self.wgate = nn.Linear(dim, width, bias=False)
        self.ape = nn.Parameter(torch.zeros(ratio, width))
        self.norm = RMSNorm(head_dim, norm_eps)

    def forward(self, x, rotary):
        batch, windows, ratio, d = x.shape[0], x.shape[1] // self.ratio, self.ratio, self.head_dim
        if windows == 0:
            return x.new_zeros(batch, 0, d)
        x32 = x[:, :windows * ratio].float()
        kv = self.wkv(x32).view(batch, windows, ratio, -1)
        score = self.wgate(x32).view(batch, windows, ratio, -1) + self.ape
        if self.overlap:
            # Slots 0..ratio-1: the previous window's first d channels; slots ratio..2 ratio-1: this window's last d.
            previous_kv = torch.cat([x32.new_zeros(batch, 1, ratio, d), kv[:, :-1, :, :d]], 1)
            previous_score = torch.cat([x32.new_full((batch, 1, ratio, d), float("-inf")), score[:, :-1, :, :d]], 1)
            kv = torch.cat([previous_kv, kv[..., d:]], 2)
            score = torch.cat([previous_score, score[..., d:]], 2)
        entries = self.norm((kv * score.softmax(2)).sum(2))
        if self.rope_dim > 0:
            starts = torch.arange(0, windows * ratio, ratio, device=x.device)  # entry w sits at position w * ratio
            rotated = rotate(entries[..., d - self.rope_dim:], rotary.cos[starts], rotary.sin[starts])
            entries = torch.cat([entries[..., :d - self.rope_dim], rotated], -1)
        return entries.to(x.dtype)
