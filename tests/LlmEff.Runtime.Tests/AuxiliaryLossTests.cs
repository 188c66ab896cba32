using System.Linq;
using LlmEff.Data;
using LlmEff.Layers;
using LlmEff.Runtime.Tests.Models;
using LlmEff.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>The trainer finds auxiliary losses by <see cref="IAuxiliaryLoss"/>, whatever module leaves them.</summary>
public sealed class AuxiliaryLossTests
{
    [Fact]
    public void A_custom_module_that_leaves_an_auxiliary_loss_is_trained_by_it_and_asked_once_per_step()
    {
        manual_seed(11);
        using var model = new BigramWithPenalty();
        var options = new TrainingOptions { Steps = 3, BatchSize = 2, SequenceLength = 16, WarmupSteps = 0, EvalBatches = 1 };
        using var run = new TrainingRun(model, TokenDataset.EmbeddedDefault(characters: 20_000), options);
        var before = model.Penalty.Strength.item<float>();

        run.Step();

        // The strength feeds only the auxiliary loss, so only that loss can have moved it (toward 0, where it is least).
        Assert.True(model.Penalty.Strength.item<float>() < before, $"{before} → {model.Penalty.Strength.item<float>()}");
        Assert.Equal(1, model.Penalty.Left);
        Assert.Equal(1, model.Penalty.Taken);
        Assert.Null(model.Penalty.TakeAuxiliaryLoss());
    }

    [Fact]
    public void Routers_and_indexers_are_the_auxiliary_losses_of_a_model_that_has_both()
    {
        using var model = new LatentSparseMoe();

        var found = AuxiliaryLosses.In(model);

        Assert.NotEmpty(ExpertRouter.In(model));
        Assert.NotEmpty(LightningIndexer.In(model));
        Assert.Equal(ExpertRouter.In(model).Count + LightningIndexer.In(model).Count, found.Count);
        Assert.All(found, f => Assert.True(f is ExpertRouter or LightningIndexer));
    }

    /// <summary>A module the trainer has never heard of: it leaves <c>Strength²</c> on every training forward.</summary>
    private sealed class Penalty : nn.Module, IAuxiliaryLoss
    {
        private Tensor? pending;

        public Penalty() : base(nameof(Penalty))
        {
            Strength = new Parameter(tensor(new[] { 2.0f }));
            register_parameter(nameof(Strength), Strength);
        }

        public Parameter Strength { get; }
        public int Left { get; private set; }
        public int Taken { get; private set; }

        public void Leave()
        {
            pending?.Dispose();
            pending = Strength.square().sum().DetachFromDisposeScope();
            Left++;
        }

        public Tensor? TakeAuxiliaryLoss()
        {
            var loss = pending;
            pending = null;
            if (loss is not null) Taken++;
            return loss;
        }
    }

    /// <summary>Next-byte logits from the current byte alone, with a <see cref="Penalty"/> one level down.</summary>
    private sealed class BigramWithPenalty : nn.Module<Tensor, Tensor>
    {
        private readonly Embedding embed = nn.Embedding(256, 256);

        public BigramWithPenalty() : base(nameof(BigramWithPenalty))
        {
            Penalty = new Penalty();
            register_module("penalty", Penalty);
            register_module(nameof(embed), embed);
        }

        public Penalty Penalty { get; }

        public override Tensor forward(Tensor tokens)
        {
            if (training) Penalty.Leave();
            return embed.forward(tokens);
        }
    }
}
