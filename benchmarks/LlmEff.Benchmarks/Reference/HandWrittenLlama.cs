using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks.Reference;

/// <summary>
/// The benchmark architecture written by hand the way a TorchSharp user would: Llama blocks (RMSNorm, rotary
/// positions, SDPA, SwiGLU), separate q/k/v projections, tied head. Nothing from LlmEff.Runtime is used, so the
/// comparison measures the generated code against plain TorchSharp. The two switches (both off for the reference)
/// apply one of the generated code's specialisations each, so `compare --ablate` can measure each on its own:
/// <c>oneMatmul</c> multiplies q/k/v and gate/up by their weights concatenated per step; <c>rollRotate</c> rotates
/// with roll and a signed sine table instead of rotate_half's neg and cat.
/// </summary>
public sealed class HandWrittenLlama : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embed_tokens;
    private readonly ModuleList<Block> layers = new();
    private readonly Norm norm;
    private readonly Tensor cos, sin;

    public HandWrittenLlama(int vocab, int dim, int layerCount, int heads, int hidden, int context, bool oneMatmul = false, bool rollRotate = false)
        : base(nameof(HandWrittenLlama))
    {
        embed_tokens = nn.Embedding(vocab, dim);
        for (var i = 0; i < layerCount; i++) layers.Add(new Block(dim, heads, hidden, oneMatmul, rollRotate));
        norm = new Norm(dim);
        var headDim = dim / heads;
        var inverse = pow(10000.0, -arange(0, headDim, 2, dtype: ScalarType.Float64) / headDim);
        var angles = outer(arange(context, dtype: ScalarType.Float64), inverse);
        var doubled = cat(new[] { angles, angles }, -1);
        cos = doubled.cos().to(ScalarType.Float32);
        sin = doubled.sin().to(ScalarType.Float32);
        RegisterComponents();
        foreach (var (name, parameter) in named_parameters())
            if (parameter.dim() == 2) using (no_grad()) nn.init.normal_(parameter, 0, 0.02);
    }

    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var time = tokens.shape[1];
        var (c, s) = (cos.narrow(0, 0, time), sin.narrow(0, 0, time));
        var x = embed_tokens.forward(tokens);
        foreach (var layer in layers) x = layer.forward(x, c, s);
        return nn.functional.linear(norm.forward(x), embed_tokens.weight!).MoveToOuterDisposeScope();
    }

    private sealed class Norm : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter weight;

        public Norm(int dim) : base(nameof(Norm))
        {
            weight = new Parameter(ones(dim));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x * rsqrt(x.pow(2).mean(new long[] { -1 }, keepdim: true) + 1e-5) * weight;
    }

    private sealed class Block : nn.Module<Tensor, Tensor, Tensor, Tensor>
    {
        private readonly Norm input_layernorm, post_attention_layernorm;
        private readonly Linear q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
        private readonly int heads;
        private readonly bool oneMatmul, rollRotate;

        public Block(int dim, int heads, int hidden, bool oneMatmul, bool rollRotate) : base(nameof(Block))
        {
            this.heads = heads;
            this.oneMatmul = oneMatmul;
            this.rollRotate = rollRotate;
            input_layernorm = new Norm(dim);
            post_attention_layernorm = new Norm(dim);
            q_proj = nn.Linear(dim, dim, hasBias: false);
            k_proj = nn.Linear(dim, dim, hasBias: false);
            v_proj = nn.Linear(dim, dim, hasBias: false);
            o_proj = nn.Linear(dim, dim, hasBias: false);
            gate_proj = nn.Linear(dim, hidden, hasBias: false);
            up_proj = nn.Linear(dim, hidden, hasBias: false);
            down_proj = nn.Linear(hidden, dim, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x, Tensor cos, Tensor sin)
        {
            using var scope = NewDisposeScope();
            var h = input_layernorm.forward(x);
            var (batch, time, dim) = (h.shape[0], h.shape[1], h.shape[2]);
            Tensor Heads(Tensor t) => t.view(batch, time, heads, dim / heads).transpose(1, 2);
            var qkv = oneMatmul
                ? nn.functional.linear(h, cat(new[] { q_proj.weight!, k_proj.weight!, v_proj.weight! }, 0)).chunk(3, -1)
                : new[] { q_proj.forward(h), k_proj.forward(h), v_proj.forward(h) };
            var q = Rotate(Heads(qkv[0]), cos, sin);
            var k = Rotate(Heads(qkv[1]), cos, sin);
            var v = Heads(qkv[2]);
            var attended = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
            x = x + o_proj.forward(attended.transpose(1, 2).reshape(batch, time, dim));
            var m = post_attention_layernorm.forward(x);
            var gateAndUp = oneMatmul
                ? nn.functional.linear(m, cat(new[] { gate_proj.weight!, up_proj.weight! }, 0)).chunk(2, -1)
                : new[] { gate_proj.forward(m), up_proj.forward(m) };
            return (x + down_proj.forward(nn.functional.silu(gateAndUp[0]) * gateAndUp[1])).MoveToOuterDisposeScope();
        }

        private Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
        {
            var half = x.shape[^1] / 2;
            if (!rollRotate) return x * cos + cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1) * sin;
            var signedSin = cat(new[] { -sin.narrow(-1, 0, half), sin.narrow(-1, half, half) }, -1);
            return (x * cos).addcmul_(x.roll(half, -1), signedSin, 1);
        }
    }
}
