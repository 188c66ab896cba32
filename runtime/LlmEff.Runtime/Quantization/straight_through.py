import torch


class StraightThrough(torch.autograd.Function):
    """Forward: the fake-quantized weight. Backward: with clipped, the gradient where the value was within range and
    zero where it was clipped; without, the gradient unchanged (quantization treated as the identity)."""

    @staticmethod
    def forward(ctx, weight, fmt, block_size, clipped):
        values, in_range = fake_quantize(weight, fmt, block_size)
        ctx.clipped = clipped
        if clipped:
            ctx.save_for_backward(in_range)
        return values

    @staticmethod
    def backward(ctx, grad):
        weight_grad = grad * ctx.saved_tensors[0] if ctx.clipped else grad
        return weight_grad, None, None, None  # the format, block size and flag take no gradient
