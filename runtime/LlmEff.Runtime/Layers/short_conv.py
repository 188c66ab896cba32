import torch.nn as nn


class ShortConv(nn.Module):
    """LFM2's gated short convolution, the token mixer of the layers without attention: b, c, h = in_proj(x) in three
    (Hugging Face's B, C, x), then out_proj(c * conv(b * h)) with a causal depthwise convolution over `kernel` tokens.
    Names are Hugging Face Lfm2ShortConv's."""

    def __init__(self, dim, kernel, bias):
        super().__init__()
        self.in_proj = nn.Linear(dim, 3 * dim, bias=bias)
        # Padded on both sides, as Hugging Face's is: forward keeps the first `time` outputs, the causal ones.
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel - 1, groups=dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x):
        b, c, h = self.in_proj(x).chunk(3, dim=-1)
        convolved = self.conv((b * h).transpose(1, 2))[..., :x.shape[1]]  # channels first for the convolution
        return self.out_proj(c * convolved.transpose(1, 2))
