import torch
import torch.nn as nn
import torch.nn.functional as F


# DeepSeek V4's residual streams (mHC, manifold-constrained hyper-connections), the twin of HyperConnections.cs: the
# residual is n streams [batch, time, n, dim]; the parameters are the caller's (hc_attn_fn, hc_attn_base,
# hc_attn_scale, ... on each layer, hc_head_* on the stack), as in DeepSeek's reference inference code, whose
# Block.hc_pre, Block.hc_post, ParallelHead.hc_head and kernel.hc_split_sinkhorn these functions follow term by term.


def hc_sinkhorn(logits, iterations, eps):
    """Doubly stochastic n x n matrices from logits [..., n, n]: a row softmax plus eps, a column normalisation, then
    iterations - 1 rounds of row and column normalisation, each dividing by (sum + eps)."""
    comb = logits.softmax(-1) + eps
    comb = comb / (comb.sum(-2, keepdim=True) + eps)
    for _ in range(iterations - 1):
        comb = comb / (comb.sum(-1, keepdim=True) + eps)
        comb = comb / (comb.sum(-2, keepdim=True) + eps)
    return comb


def hc_split_sinkhorn(mixes, scale, base, streams, iterations, eps):
    """mixes [..., (2 + n) * n] -> pre [..., n], post [..., n], comb [..., n, n]."""
    n = streams
    pre = torch.sigmoid(mixes[..., :n] * scale[0] + base[:n]) + eps
    post = 2 * torch.sigmoid(mixes[..., n:2 * n] * scale[1] + base[n:2 * n])
    logits = (mixes[..., 2 * n:] * scale[2] + base[2 * n:]).unflatten(-1, (n, n))
    return pre, post, hc_sinkhorn(logits, iterations, eps)


def hc_mixes(streams, fn, norm_eps):
    """linear(flat, fn) * rsqrt(mean(flat^2) + norm_eps) over the streams flattened to n * dim, in fp32."""
    flat = streams.flatten(2).float()
    rsqrt = torch.rsqrt(flat.square().mean(-1, keepdim=True) + norm_eps)
    return F.linear(flat, fn.float()) * rsqrt


def hc_pre(streams, fn, scale, base, iterations, norm_eps, eps):
    """The block input sum_i pre_i * stream_i [batch, time, dim], with the post weights and mixing matrices for hc_post."""
    pre, post, comb = hc_split_sinkhorn(hc_mixes(streams, fn, norm_eps), scale.float(), base.float(), streams.shape[2], iterations, eps)
    return (pre.unsqueeze(-1) * streams.float()).sum(2).to(streams.dtype), post, comb


def hc_post(output, streams, post, comb):
    """New stream j = post_j * output + sum_i comb[i, j] * stream_i."""
    mixed = torch.matmul(comb.transpose(-1, -2).to(streams.dtype), streams)
    return (post.to(output.dtype).unsqueeze(-1) * output.unsqueeze(-2) + mixed).to(output.dtype)


def hc_head(streams, fn, scale, base, norm_eps, eps):
    """The final collapse before the last norm: sum_i pre_i * stream_i with pre = sigmoid(mixes * scale + base) + eps."""
    pre = torch.sigmoid(hc_mixes(streams, fn, norm_eps) * scale.float() + base.float()) + eps
    return (pre.unsqueeze(-1) * streams.float()).sum(2).to(streams.dtype)


def hc_expand(hidden, streams):
    """The embedding [batch, time, dim] copied into every stream: [batch, time, n, dim]."""
    return hidden.unsqueeze(2).expand(-1, -1, streams, -1).contiguous()


def hc_parameters(rows, width, gates):
    """One map's parameters as the Hugging Face deepseek_v4 port starts them: fn [rows, width] normal with the port's
    initializer_range (0.02 here, as every other weight), base 0 [rows], scale 1 [gates] (3 around a sub-block: pre,
    post and comb; 1 for the head)."""
    fn = nn.Parameter(torch.empty(rows, width))
    nn.init.normal_(fn, 0.0, 0.02)
    return fn, nn.Parameter(torch.zeros(rows)), nn.Parameter(torch.ones(gates))
