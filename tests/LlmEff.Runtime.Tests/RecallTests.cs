using System;
using System.Linq;
using System.Text;
using LlmEff.Data;
using LlmEff.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests;

/// <summary>The associative-recall task, its accuracy metric, and the mixed default data.</summary>
public sealed class RecallTests
{
    [Fact]
    public void Sequences_list_distinct_keys_then_ask_for_their_values()
    {
        var task = new AssociativeRecall(length: 64, pairs: 8);

        var text = Encoding.ASCII.GetString(task.Sequence(new Random(1)).Select(b => (byte)b).ToArray());

        Assert.Equal(65, text.Length);
        var (list, queries) = (text[..text.IndexOf('|')], text[(text.IndexOf('|') + 1)..]);
        var pairs = list.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);
        Assert.Equal(8, pairs.Count);
        foreach (var query in queries.Split(';').Where(q => q.Length == 3))
            Assert.Equal(pairs[query[..1]], query[2..]);
    }

    [Fact]
    public void Accuracy_is_one_for_a_model_that_looks_up_and_chance_for_one_that_guesses()
    {
        var task = new AssociativeRecall(length: 64, pairs: 8);

        Assert.Equal(1.0, task.Accuracy(new LookupOracle(), sequences: 20, seed: 3));
        var guess = task.Accuracy(new ConstantGuess((byte)'7'), sequences: 200, seed: 3);
        Assert.InRange(guess, 0.05, 0.15);
    }

    [Fact]
    public void Mixed_batches_hold_text_rows_then_recall_rows()
    {
        var data = new TextWithRecall(TokenDataset.EmbeddedDefault(characters: 20_000), new AssociativeRecall(64, 8), recallShare: 0.5);

        var (inputs, targets) = data.SampleTrain(new Random(2), batch: 4, length: 64);

        Assert.Equal(new long[] { 4, 64 }, inputs.shape);
        Assert.Equal(0, inputs[0].eq(AssociativeRecall.QueryMark).sum().item<long>()); // text has no '?' queries here…
        Assert.True(inputs[3].eq(AssociativeRecall.QueryMark).sum().item<long>() > 0); // …recall rows do
        Assert.Equal((long)'=', inputs[3, 1].item<long>());
        Assert.Equal(AssociativeRecall.Ignored, targets[3, 0].item<long>()); // recall rows train on answers only
        var answers = inputs[3].eq(AssociativeRecall.QueryMark);
        Assert.True(targets[3].masked_select(answers).ge('0').all().item<bool>());
        Assert.True(targets[3].masked_select(answers.logical_not()).eq(AssociativeRecall.Ignored).all().item<bool>());
    }

    [Fact]
    public void A_loss_that_is_not_a_number_stops_the_run_naming_the_step()
    {
        var error = Assert.Throws<TrainingDivergedException>(() =>
            Trainer.Train(new NotANumber(), TokenDataset.EmbeddedDefault(characters: 20_000), new TrainingOptions { Steps = 3, BatchSize = 1, SequenceLength = 8, WarmupSteps = 0 }));

        Assert.Equal(1, error.Step);
        Assert.Contains("step 1", error.Message);
        Assert.Contains("NaN", error.Message);
    }

    /// <summary>Answers every query correctly by reading the pairs from its input.</summary>
    private sealed class LookupOracle : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter unused = new(zeros(1));

        public LookupOracle() : base(nameof(LookupOracle)) => RegisterComponents();

        public override Tensor forward(Tensor tokens)
        {
            var logits = zeros(tokens.shape[0], tokens.shape[1], 256);
            for (var b = 0; b < tokens.shape[0]; b++)
            {
                var row = tokens[b].data<long>().ToArray();
                var separator = Array.IndexOf(row, (long)'|');
                for (var t = separator + 1; t < row.Length; t++)
                {
                    if (row[t] != AssociativeRecall.QueryMark) continue;
                    var listed = Array.FindIndex(row, 0, separator, k => k == row[t - 1]);
                    logits[b, t, row[listed + 2]] = tensor(1f);
                }
            }
            return logits + unused;
        }
    }

    /// <summary>Predicts one byte everywhere.</summary>
    private sealed class ConstantGuess : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter unused = new(zeros(1));
        private readonly byte guess;

        public ConstantGuess(byte guess) : base(nameof(ConstantGuess))
        {
            this.guess = guess;
            RegisterComponents();
        }

        public override Tensor forward(Tensor tokens) =>
            nn.functional.one_hot(full_like(tokens, guess), 256).to(ScalarType.Float32) + unused;
    }

    /// <summary>A model whose every logit is NaN.</summary>
    private sealed class NotANumber : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter weight = new(ones(1));

        public NotANumber() : base(nameof(NotANumber)) => RegisterComponents();

        public override Tensor forward(Tensor tokens) => full(new long[] { tokens.shape[0], tokens.shape[1], 256 }, double.NaN) * weight;
    }
}
