import torch

# DeepSeek's never-clipping power-of-two block scale for the indexer's activations, bit-exact with
# LlmEff.Quantization.IndexerQuantizer (needs round_to_e2m1 from e2m1.py and round_to_e4m3 from e4m3.py).
INDEXER_PRECISIONS = ("fp4", "fp8", "bf16", "fp32")


def indexer_fake_quantize(x, precision):
    """x fake-quantized for the indexer, in x's dtype: fp4 = E2M1 with scale 2^ceil(log2(amax / 6)) per 32 values
    (DeepSeek V4's fp4_act_quant), fp8 = E4M3 with scale 2^ceil(log2(amax / 448)) per 128 values (V3.2's act_quant
    with ue8m0 scales), bf16 = rounded to bf16, fp32 = unchanged. amax is floored at 6 * 2^-126 (fp4) or 1e-4 (fp8)
    as DeepSeek's kernels floor it; a block holding NaN or inf comes back NaN."""
    if precision not in INDEXER_PRECISIONS:
        raise ValueError(f"Indexer precision {precision!r} is not one of {', '.join(INDEXER_PRECISIONS)}.")
    if precision == "bf16":
        return x.to(torch.bfloat16).to(x.dtype)
    if precision == "fp32":
        return x.float().to(x.dtype)
    fp4 = precision == "fp4"
    block_size, maximum = (32, 6.0) if fp4 else (128, 448.0)
    amax_floor = 6.0 * 2.0 ** -126 if fp4 else 1e-4
    columns = x.shape[-1]
    if columns % block_size:
        raise ValueError(f"The last dimension ({columns}) must be a multiple of the block size {block_size}.")
    blocks = x.float().reshape(-1, columns // block_size, block_size)
    finite = torch.isfinite(blocks)
    block_finite = finite.all(-1, keepdim=True)
    amax = torch.where(finite, blocks.abs(), torch.zeros_like(blocks)).amax(-1, keepdim=True)
    amax = amax.clamp_min(torch.tensor(amax_floor, dtype=torch.float32).item())
    # ceil(log2(amax / max)) exactly: amax = f 2^E and max = g 2^G, then amax <= max 2^(E - G) exactly when f <= g.
    fraction, exponent = torch.frexp(amax)
    max_fraction, max_exponent = torch.frexp(torch.tensor(maximum, dtype=torch.float32))
    exponent = exponent - max_exponent + (fraction > max_fraction).int()
    scale = torch.pow(2.0, exponent.double()).float()
    scaled = blocks / scale
    grid = round_to_e2m1(scaled) if fp4 else round_to_e4m3(scaled)
    values = torch.where(block_finite, grid * scale, torch.full_like(blocks, float("nan")))
    return values.reshape(x.shape).to(x.dtype)
