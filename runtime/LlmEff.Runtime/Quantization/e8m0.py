import torch


def power_of_two_table(device):
    """E8M0 scale codes 0..255 as fp32: 2^(code - 127), code 255 is NaN."""
    table = torch.pow(2.0, torch.arange(256, dtype=torch.float64) - 127).float()
    table[255] = float("nan")
    return table.to(device)
