import torch


def round_to_e4m3(values):
    """The nearest FP8 E4M3 value (ties to even), saturating at 448; callers handle non-finite inputs."""
    magnitude = torch.where(torch.isfinite(values), values.abs(), torch.zeros_like(values)).clamp_max(480.0)
    # floor(log2 |v|) from frexp; below the smallest normal exponent the step stays 2^-9.
    _, frexp_exponent = torch.frexp(magnitude)
    exponent = torch.where(magnitude > 0, frexp_exponent - 1, torch.full_like(frexp_exponent, -6)).clamp_min(-6)
    steps = (magnitude * torch.pow(2.0, (3 - exponent).double()).float()).round()  # exact: a power of two
    code = (8 * (exponent + 6) + steps.int()).clamp_max(126)  # 8 * exponent field + mantissa; 126 is 448
    field, mantissa = code // 8, code % 8
    decoded = torch.where(field == 0, mantissa * 2.0 ** -9, (8 + mantissa) * torch.pow(2.0, (field - 10).double()).float())
    return torch.where(torch.signbit(values), -decoded, decoded).float()
