using System.Collections.Generic;
using System.Linq;
using BenchmarkDotNet.Attributes;
using LlmEff.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Benchmarks;

/// <summary>
/// One mixture-of-experts layer, forward + backward on 4,096 tokens of width 256, dispatched two ways: the
/// runtime's sparse dispatch (each expert runs on its own tokens only) and a dense reference that runs every
/// expert on every token and masks by the routing weights. Sparse cost should follow Active; dense follows Experts.
/// </summary>
public class MixtureLayerBenchmarks
{
    private const int Dim = 256, Hidden = 256, Tokens = 4096;
    private ExpertRouter router = null!;
    private List<SwiGluExpert> experts = null!;
    private Tensor input = null!;

    [Params(8, 32)]
    public int Experts { get; set; }

    [Params(2, 8)]
    public int Active { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        random.manual_seed(1);
        router = new ExpertRouter(new RouterOptions(Dim, Experts, Active, Balance: ExpertBalance.None));
        experts = Enumerable.Range(0, Experts).Select(_ => new SwiGluExpert(Dim, Hidden)).ToList();
        input = randn(Tokens, Dim).requires_grad_();
    }

    [Benchmark(Baseline = true)]
    public float Sparse()
    {
        using var scope = NewDisposeScope();
        var output = ExpertDispatch.Combine(input, router.Route(input), experts);
        output.sum().backward();
        return output[0, 0].item<float>();
    }

    [Benchmark]
    public float DenseMasked()
    {
        using var scope = NewDisposeScope();
        var routing = router.Route(input);
        // [tokens, experts] weights: zero where an expert was not chosen.
        var expertOfSlot = Enumerable.Range(0, Experts).SelectMany(e => Enumerable.Repeat((long)e, (int)routing.TokensPerExpert[e])).ToArray();
        var weights = zeros(Tokens, Experts).index_put_(routing.WeightOfSlot, routing.TokenOfSlot, tensor(expertOfSlot));
        var output = zeros_like(input);
        for (var e = 0; e < Experts; e++) output = output + experts[e].forward(input) * weights[.., e].unsqueeze(1);
        output.sum().backward();
        return output[0, 0].item<float>();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        router.Dispose();
        foreach (var expert in experts) expert.Dispose();
        input.Dispose();
    }

    private sealed class SwiGluExpert : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear gate_proj, up_proj, down_proj;

        public SwiGluExpert(int dim, int hidden) : base(nameof(SwiGluExpert))
        {
            gate_proj = nn.Linear(dim, hidden, hasBias: false);
            up_proj = nn.Linear(dim, hidden, hasBias: false);
            down_proj = nn.Linear(hidden, dim, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x));
    }
}
