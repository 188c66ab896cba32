import torch
import torch.nn.functional as F

# Fake quantization, bit-exact with LlmEff.Quantization.Quantizer: every step is an exactly specified fp32 operation
# (exponents from frexp, powers of two from tables, true divisions, round-half-to-even), so both sides produce the
# same bits.

QUANT_FORMATS = ("mxfp4", "nvfp4", "fp8_e4m3", "int4")


def fake_quantize(weight, fmt, block_size):
    """dequantize(quantize(weight)) for a weight [out, in] in format fmt (one of QUANT_FORMATS), blocks of block_size
    along the input dimension (fp8_e4m3 has one scale for the whole tensor and ignores it), and the mask of values
    that were not clipped. A block holding NaN or inf comes back NaN (the OCP MX rule)."""
    if fmt not in QUANT_FORMATS:
        raise ValueError(f"Quantization format {fmt!r} is not one of {', '.join(QUANT_FORMATS)}.")
    rows = weight.float().reshape(-1, weight.shape[-1])
    columns = rows.shape[1]
    if fmt == "fp8_e4m3":
        finite = torch.isfinite(rows)
        tensor_scale = torch.where(finite, rows.abs(), torch.zeros_like(rows)).max() / torch.tensor(448.0)
        scaled = torch.where(tensor_scale > 0, rows / tensor_scale, torch.zeros_like(rows).copysign(rows))
        values = torch.where(finite, round_to_e4m3(scaled), torch.full_like(rows, float("nan"))) * tensor_scale
        in_range = finite & (scaled.abs() <= 448.0)
        return values.reshape(weight.shape).to(weight.dtype), in_range.reshape(weight.shape)

    padded = (columns + block_size - 1) // block_size * block_size  # zero padding changes no scale
    blocks = F.pad(rows, (0, padded - columns)).view(rows.shape[0], -1, block_size)
    finite = torch.isfinite(blocks)
    block_finite = finite.all(-1, keepdim=True)
    magnitudes = torch.where(finite, blocks.abs(), torch.zeros_like(blocks))
    block_amax = magnitudes.amax(-1, keepdim=True)
    if fmt == "mxfp4":
        # Shared scale 2^(floor(log2 amax) - 2): frexp's exponent is floor(log2 amax) + 1, so the E8M0 byte is it + 124.
        _, exponent = torch.frexp(block_amax)
        code = torch.where(block_amax > 0, (exponent + 124).clamp_min(0), torch.zeros_like(exponent))
        code = torch.where(block_finite, code, torch.full_like(code, 255)).long()
        scale = power_of_two_table(blocks.device)[code]
        scaled = blocks / scale
        elements = torch.where(block_finite, round_to_e2m1(scaled), torch.zeros_like(blocks))
        values = elements * scale
        in_range = scaled.abs() <= 6.0
    elif fmt == "nvfp4":
        # Per-tensor fp32 scale amax / (448 * 6), per-block E4M3 scale (amax_block / 6) / tensor_scale.
        tensor_scale = magnitudes.max() / torch.tensor(2688.0)
        block_scale = torch.where(tensor_scale > 0, block_amax / torch.tensor(6.0) / tensor_scale, torch.zeros_like(block_amax))
        block_scale = torch.where(block_finite, round_to_e4m3(block_scale), torch.full_like(block_amax, float("nan")))
        scale = block_scale * tensor_scale
        scaled = torch.where(scale > 0, blocks / scale, torch.zeros_like(blocks).copysign(blocks))
        elements = torch.where(block_finite, round_to_e2m1(scaled), torch.zeros_like(blocks))
        values = elements * scale
        in_range = block_finite & (scaled.abs() <= 6.0)
    else:
        # Symmetric Int4: scale amax / 7 in fp32, levels -7..7 (round half to even).
        scale = torch.where(block_finite, block_amax / torch.tensor(7.0), torch.full_like(block_amax, float("nan")))
        scaled = torch.where(scale > 0, blocks / scale, torch.zeros_like(blocks))
        values = scaled.clamp(-7.0, 7.0).round() * scale
        in_range = block_finite & (scaled.abs() <= 7.0)
    values = values.reshape(rows.shape[0], -1)[:, :columns]
    in_range = in_range.reshape(rows.shape[0], -1)[:, :columns]
    return values.reshape(weight.shape).to(weight.dtype), in_range.reshape(weight.shape)
