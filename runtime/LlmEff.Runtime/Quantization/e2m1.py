import torch

E2M1_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


def round_to_e2m1(scaled):
    """The nearest E2M1 value (0, 0.5, 1, 1.5, 2, 3, 4, 6 and negatives), ties to the even code, saturating at 6.
    The code counts the midpoints at or below |x|; a tie belongs to the even neighbour."""
    magnitude = scaled.abs()
    code = ((magnitude > 0.25).long() + (magnitude >= 0.75).long() + (magnitude > 1.25).long() + (magnitude >= 1.75).long()
            + (magnitude > 2.5).long() + (magnitude >= 3.5).long() + (magnitude > 5.0).long())
    values = torch.tensor(E2M1_VALUES, device=scaled.device)[code]
    return torch.where(torch.signbit(scaled), -values, values)
