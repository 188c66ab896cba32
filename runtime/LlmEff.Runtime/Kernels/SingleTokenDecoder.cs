using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlmEff.Generation;
using LlmEff.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmEff.Kernels;

/// <summary>
/// A whole decoding step of one token in one sequence in one call, fp32 on the CPU: embedding lookup, every pre-norm
/// block (RMSNorm, a token mixer, RMSNorm, SwiGLU), the final norm and the output head, writing the new cache entries
/// and states in place. The mixers are those of <see cref="BlockMixer"/>: standard attention (rotary or no positions,
/// any number of key/value heads, QK norm or none, keys of their own or the values as keys), LFM2's short convolution, and latent attention with absorbed matrices. A step of a
/// small model through libtorch is dozens of operations per layer of a few microseconds each, where the arithmetic is a
/// few microseconds in all: DecodeFull's step (TinyDecoder's shape, 13 MB of weights, which this machine's 32 MB L3
/// holds) took about 1.5 ms through libtorch against llama.cpp's 0.5 ms. Here the products are
/// <see cref="MatrixVector"/>'s (the inputs sharing x as one job; gate, up and SiLU(gate)·up as one job; the output
/// projections added onto the residual in the same pass) and the attention is <see cref="SingleQueryAttention"/>'s, on
/// the threads <see cref="SingleTokenStep.Threads"/> gives. The generator calls it only for models whose plan says
/// every block is of these kinds (<c>LayoutPlan.DecodesInOneKernel</c>); the values equal the operation-by-operation
/// path's to float rounding (another summation order), which the tests check model by model.
/// </summary>
public static class SingleTokenDecoder
{
    [ThreadStatic] private static int disabled;
    [ThreadStatic] private static long stepsRun;
    [ThreadStatic] private static float[]? scratch;

    /// <summary>Steps this thread has run in the kernel: how tests and benchmarks tell that the fused path ran.</summary>
    public static long StepsOnThisThread => stepsRun;

    /// <summary>Until disposed, this thread's steps go through libtorch operation by operation, as they would without
    /// the kernel: to compare the two (the decode benchmarks) and to test one against the other. Dispose it on the
    /// thread that called this (not after an <c>await</c> that may resume elsewhere): the switch is per thread.</summary>
    public static IDisposable Disable()
    {
        disabled++;
        return new Enabling(Environment.CurrentManagedThreadId);
    }

    private sealed class Enabling(int thread) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            // Another thread's count is out of reach: decrementing this one would leave that thread off for good.
            if (Environment.CurrentManagedThreadId != thread)
                throw new InvalidOperationException($"SingleTokenDecoder.Disable() was called on thread {thread} and must be disposed there, not on thread {Environment.CurrentManagedThreadId}.");
            disposed = true;
            disabled--;
        }
    }

    /// <summary>
    /// Logits [1, 1, vocab] for the one token in <paramref name="tokens"/> [1, 1] at position <c>cache.Position</c>, with
    /// the cache advanced by it; or null, changing nothing, where the kernel does not apply and the caller runs its
    /// operation-by-operation path (which also reports any error): turned off on this thread (<see cref="Disable"/>),
    /// autograd on, no AVX2, more than one token or sequence, a weight that is not a contiguous fp32 CPU tensor of the
    /// shape the blocks imply, a latent attention with an indexer, a token outside the vocabulary, or a cache that was
    /// not filled for this model's shape (another batch size or dtype) or is full.
    /// </summary>
    /// <param name="tokens">The token id, int64 [1, 1].</param>
    /// <param name="cache">The model's decoding cache: the new entries are written into it, and it advances by one.</param>
    /// <param name="context">The model's context: the step refuses a cache made for more tokens.</param>
    /// <param name="embedding">The token embedding [vocab, dim].</param>
    /// <param name="rotary">The stack's rotary tables for standard attention, or null when it has no positional encoding.</param>
    /// <param name="blocks">Every layer's weights, in order.</param>
    /// <param name="finalNorm">The norm before the output head.</param>
    /// <param name="headWeight">The output head [vocab, dim] (the embedding when tied).</param>
    /// <param name="headBias">The output head's bias, or null.</param>
    public static unsafe Tensor? TryStep(Tensor tokens, DecodingCache cache, long context, Tensor embedding, RotaryEmbedding? rotary,
        IReadOnlyList<DecoderBlockWeights> blocks, RmsNorm finalNorm, Tensor headWeight, Tensor? headBias)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(blocks);
        if (disabled > 0 || !SingleTokenStep.IsSupported || is_grad_enabled()) return null;
        if (blocks.Count == 0 || cache.Layers != blocks.Count) return null;
        var position = cache.Position;
        if (cache.Capacity > context || position + 1 > cache.Capacity) return null;
        if (tokens.dtype != ScalarType.Int64 || tokens.device_type != DeviceType.CPU || tokens.NumberOfElements != 1 || tokens.dim() != 2) return null;

        // Every address is taken, and every check made, before anything is written: a step that returns null has changed nothing.
        var model = Resolved(embedding, rotary, blocks, finalNorm, headWeight, headBias);
        if (model is null) return null;
        for (var i = 0; i < model.Blocks.Length; i++)
            if (!model.Blocks[i].Mixer.Accepts(cache[i], position) || !model.Blocks[i].FeedForward.Accepts()) return null;
        var token = tokens.item<long>();

        int vocab = model.Vocab, dim = model.Dim;
        if (token < 0 || token >= vocab) return null;

        // Room in every layer's cache first (buffers created or grown, entries not yet counted): what can fail, allocation,
        // fails before anything is written, and the entries count only once every layer has written them.
        for (var i = 0; i < model.Blocks.Length; i++) model.Blocks[i].Mixer.Reserve(cache[i]);
        var logits = empty(new long[] { 1, 1, vocab }, ScalarType.Float32);
        var buffers = Scratch(2 * dim + model.BlockScratch);
        fixed (float* memory = buffers)
        {
            float* x = memory, normed = x + dim, work = normed + dim;
            var threads = SingleTokenStep.Threads;
            new ReadOnlySpan<float>(model.Embedding + token * dim, dim).CopyTo(new Span<float>(x, dim));
            for (var i = 0; i < model.Blocks.Length; i++)
            {
                var step = model.Blocks[i];
                VectorMath.RmsNormalize(x, normed, step.InputNorm, dim, step.InputEps);
                step.Mixer.AddTo(x, normed, work, cache[i], position, threads);
                VectorMath.RmsNormalize(x, normed, step.FeedForwardNorm, dim, step.FeedForwardEps);
                step.FeedForward.AddTo(x, normed, work, threads);
            }
            VectorMath.RmsNormalize(x, normed, model.FinalNorm, dim, model.FinalEps);
            var head = new MatrixVector.Product(model.Head.Matrix, normed, SingleTokenStep.Address(logits), model.Head.Bias, vocab, dim, accumulate: false);
            MatrixVector.Multiply(&head, threads);
        }
        for (var i = 0; i < model.Blocks.Length; i++) model.Blocks[i].Mixer.Count(cache[i]);
        cache.Advance(1);
        stepsRun++;
        return logits;
    }

    /// <summary>A model resolved to addresses, kept between steps: resolving reads shapes, types and addresses of every
    /// weight through a native call each, about 50 µs for DecodeFull, a tenth of its step.</summary>
    private sealed unsafe class ResolvedModel
    {
        /// <summary>Every tensor resolved, in <see cref="Gather"/>'s order: the model is reused while each is still the
        /// same object and not disposed. Module.to() and loading that replaces a parameter make new tensor objects;
        /// loading into a parameter in place keeps its memory, and with it the addresses. Not seen: an in-place change
        /// of a tensor's storage itself (<c>set_</c>, a growing <c>resize_</c>), which nothing in this project does to
        /// weights. Held until the model's next step re-resolves, or the model is collected.</summary>
        public Tensor?[] Sources = Array.Empty<Tensor?>();
        public int Vocab, Dim, BlockScratch;
        public float* Embedding, FinalNorm;
        public float FinalEps;
        public Weight Head;
        public BlockStep[] Blocks = Array.Empty<BlockStep>();
    }

    // One resolved model per model (keyed by its final norm, which only it holds), dropped with the model.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<RmsNorm, ResolvedModel> ResolvedModels = new();
    [ThreadStatic] private static List<Tensor?>? gathered;

    private static ResolvedModel? Resolved(Tensor embedding, RotaryEmbedding? rotary, IReadOnlyList<DecoderBlockWeights> blocks, RmsNorm finalNorm,
        Tensor headWeight, Tensor? headBias)
    {
        var sources = gathered ??= new List<Tensor?>();
        sources.Clear();
        Gather(sources, embedding, rotary, blocks, finalNorm, headWeight, headBias);
        if (ResolvedModels.TryGetValue(finalNorm, out var known) && Same(known.Sources, sources)) return known;
        var resolved = Resolve(embedding, rotary, blocks, finalNorm, headWeight, headBias);
        if (resolved is null)
        {
            ResolvedModels.Remove(finalNorm);
            return null;
        }
        resolved.Sources = sources.ToArray();
        ResolvedModels.AddOrUpdate(finalNorm, resolved);
        return resolved;
    }

    private static bool Same(Tensor?[] known, List<Tensor?> current)
    {
        if (known.Length != current.Count) return false;
        for (var i = 0; i < known.Length; i++)
            if (!ReferenceEquals(known[i], current[i]) || known[i] is { IsInvalid: true }) return false;
        return true;
    }

    // Every tensor a step reads, in a fixed order (null where one is absent, so positions stay aligned).
    private static void Gather(List<Tensor?> into, Tensor embedding, RotaryEmbedding? rotary, IReadOnlyList<DecoderBlockWeights> blocks, RmsNorm finalNorm,
        Tensor headWeight, Tensor? headBias)
    {
        into.Add(embedding);
        into.Add(headWeight);
        into.Add(headBias);
        into.Add(finalNorm.Weight);
        into.Add(rotary?.Tables.Cos);
        into.Add(rotary?.Tables.Sin);
        foreach (var block in blocks)
        {
            into.Add(block.InputNorm.Weight);
            into.Add(block.FeedForwardNorm.Weight);
            switch (block.FeedForward)
            {
                case SwiGluWeights dense:
                    AddSwiGlu(dense);
                    break;
                case MixtureWeights mixture:
                    into.Add(mixture.Router.weight);
                    into.Add(mixture.Router.e_score_correction_bias);
                    foreach (var expert in mixture.Experts) AddSwiGlu(expert);
                    AddSwiGlu(mixture.Shared);
                    break;
                default:
                    into.Add(null);
                    break;
            }
            switch (block.Mixer)
            {
                case AttentionMixer attention:
                    Add(attention.Query);
                    Add(attention.Key);   // null for NoKey: two nulls keep the positions aligned
                    Add(attention.Value);
                    Add(attention.Output);
                    into.Add(attention.QueryNorm?.Weight);
                    into.Add(attention.KeyNorm?.Weight);
                    break;
                case ConvolutionMixer convolution:
                    var (input, filter, filterBias, output) = convolution.Block.Weights;
                    Add(input);
                    into.Add(filter);
                    into.Add(filterBias);
                    Add(output);
                    break;
                case LatentMixer latent:
                    var w = latent.Block.Weights;
                    if (w.QueryDown is not null) Add(w.QueryDown);
                    into.Add(w.QueryNorm?.Weight);
                    Add(w.QueryUp);
                    Add(w.LatentDown);
                    into.Add(w.LatentNorm.Weight);
                    Add(w.LatentUp);
                    Add(w.Output);
                    into.Add(w.Rotary.Tables.Cos);
                    into.Add(w.Rotary.Tables.Sin);
                    break;
                default:
                    into.Add(null);
                    break;
            }
        }

        void Add(Linear? linear)
        {
            into.Add(linear?.weight);
            into.Add(linear?.bias);
        }

        void AddSwiGlu(SwiGluWeights? feedForward)
        {
            Add(feedForward?.Gate);
            Add(feedForward?.Up);
            Add(feedForward?.Down);
        }
    }

    private static unsafe ResolvedModel? Resolve(Tensor embedding, RotaryEmbedding? rotary, IReadOnlyList<DecoderBlockWeights> blocks, RmsNorm finalNorm,
        Tensor headWeight, Tensor? headBias)
    {
        var embeddingShape = embedding.shape;
        if (embeddingShape.Length != 2 || embeddingShape[0] > int.MaxValue || embeddingShape[1] > int.MaxValue) return null;
        int vocab = (int)embeddingShape[0], dim = (int)embeddingShape[1];
        if (!Matrix(embedding, vocab, dim) || !Matrix(headWeight, vocab, dim) || !Vector(headBias, vocab) || !Vector(finalNorm.Weight, dim)) return null;
        var model = new ResolvedModel
        {
            Vocab = vocab, Dim = dim,
            Embedding = SingleTokenStep.Address(embedding),
            FinalNorm = SingleTokenStep.Address(finalNorm.Weight), FinalEps = (float)finalNorm.Eps,
            Head = new Weight(SingleTokenStep.Address(headWeight), headBias is null ? null : SingleTokenStep.Address(headBias)),
            Blocks = new BlockStep[blocks.Count],
        };
        for (var i = 0; i < blocks.Count; i++)
        {
            var step = BlockStep.Resolve(blocks[i], dim, rotary);
            if (step is null) return null;
            model.Blocks[i] = step;
            model.BlockScratch = Math.Max(model.BlockScratch, Math.Max(step.Mixer.ScratchFloats, step.FeedForward.ScratchFloats));
        }
        return model;
    }

    // Pinned, kept per thread: a step allocates no scratch once the thread has stepped a model of this size.
    private static float[] Scratch(int floats)
    {
        if (scratch is null || scratch.Length < floats) scratch = GC.AllocateUninitializedArray<float>(floats, pinned: true);
        return scratch;
    }

    /// <summary>A linear layer's weight [rows, columns] and bias (null without one), by address.</summary>
    private readonly unsafe struct Weight(float* matrix, float* bias)
    {
        public readonly float* Matrix = matrix, Bias = bias;
    }

    /// <summary>One block, resolved to addresses for this step: the norms, the mixer, the feed-forward.</summary>
    private sealed unsafe class BlockStep
    {
        public float* InputNorm, FeedForwardNorm;
        public float InputEps, FeedForwardEps;
        public MixerStep Mixer = null!;
        public FeedForwardStep FeedForward = null!;

        public static BlockStep? Resolve(DecoderBlockWeights block, int dim, RotaryEmbedding? rotary)
        {
            if (!Vector(block.InputNorm.Weight, dim) || !Vector(block.FeedForwardNorm.Weight, dim)) return null;
            FeedForwardStep? feedForward = block.FeedForward switch
            {
                SwiGluWeights dense => SwiGluStep.Resolve(dense, dim),
                MixtureWeights mixture => MixtureStep.Resolve(mixture, dim),
                _ => null,
            };
            if (feedForward is null) return null;
            MixerStep? mixer = block.Mixer switch
            {
                AttentionMixer attention => AttentionStep.Resolve(attention, dim, rotary),
                ConvolutionMixer convolution => ConvolutionStep.Resolve(convolution.Block, dim),
                LatentMixer latent => LatentStep.Resolve(latent.Block, dim),
                _ => null,
            };
            if (mixer is null) return null;
            return new BlockStep
            {
                InputNorm = SingleTokenStep.Address(block.InputNorm.Weight), InputEps = (float)block.InputNorm.Eps,
                FeedForwardNorm = SingleTokenStep.Address(block.FeedForwardNorm.Weight), FeedForwardEps = (float)block.FeedForwardNorm.Eps,
                Mixer = mixer, FeedForward = feedForward,
            };
        }
    }

    /// <summary>A feed-forward resolved for one step: x += feedForward(normed).</summary>
    private abstract unsafe class FeedForwardStep
    {
        /// <summary>Floats of scratch <see cref="AddTo"/> needs.</summary>
        public abstract int ScratchFloats { get; }

        /// <summary>Whether it can run now (a router in training mode keeps its own statistics: left to its module).</summary>
        public virtual bool Accepts() => true;

        public abstract void AddTo(float* x, float* normed, float* scratch, int threads);
    }

    /// <summary>SwiGLU: gate and up as one job with silu(gate)·up, then x += down(·) in the same pass; <see cref="AddScaled"/>
    /// weighs the result (an expert's routing weight: it scales the hidden row, and the bias separately).</summary>
    private sealed unsafe class SwiGluStep : FeedForwardStep
    {
        private Weight gate, up, down;
        private int dim, hidden;

        public static SwiGluStep? Resolve(SwiGluWeights weights, int dim)
        {
            var hidden = weights.Gate.weight.shape[0];
            if (hidden > int.MaxValue) return null;
            var step = new SwiGluStep { dim = dim, hidden = (int)hidden };
            return Linear(weights.Gate, step.hidden, dim, out step.gate) && Linear(weights.Up, step.hidden, dim, out step.up)
                && Linear(weights.Down, dim, step.hidden, out step.down) ? step : null;
        }

        // gate, up
        public override int ScratchFloats => 2 * hidden;

        public override void AddTo(float* x, float* normed, float* scratch, int threads) => AddScaled(x, normed, scratch, threads, 1f);

        public void AddScaled(float* x, float* normed, float* scratch, int threads, float scale)
        {
            float* gated = scratch, upRow = scratch + hidden;
            var job = new Gated(Product(gate, normed, gated, hidden, dim), Product(up, normed, upRow, hidden, dim));
            Run(&GatedPart, &job, hidden, 2 * job.Gate.Weights, threads);
            if (scale != 1f)
            {
                for (var i = 0; i < hidden; i++) gated[i] *= scale;
                if (down.Bias != null) VectorMath.AddScaled(x, down.Bias, scale, dim);
            }
            var product = new MatrixVector.Product(down.Matrix, gated, x, scale != 1f ? null : down.Bias, dim, hidden, accumulate: true);
            MatrixVector.Multiply(&product, threads);
        }
    }

    /// <summary>
    /// A mixture as <c>ExpertRouter.Route</c> and <c>ExpertDispatch.Combine</c> compute it for one token: router logits,
    /// scores (softmax, sigmoid or √softplus), the top Active by score plus the selection bias (which decides who is chosen,
    /// never how much they count), their scores as weights (normalised, scaled), and x += Σ weight · expert(x) + shared(x).
    /// Exactly equal selection scores at the cut go to the lower expert index; libtorch's topk promises no order there.
    /// </summary>
    private sealed unsafe class MixtureStep : FeedForwardStep
    {
        private ExpertRouter router = null!;
        private float* routerWeight, selectionBias;
        private SwiGluStep[] experts = Array.Empty<SwiGluStep>();
        private SwiGluStep? shared;
        private int dim, active;
        private RouterScoring scoring;
        private bool normalize;
        private float routedScale;

        public static MixtureStep? Resolve(MixtureWeights weights, int dim)
        {
            var router = weights.Router;
            var o = router.Options;
            if (o.HashRouted || router.tid2eid is not null || o.Dim != dim || weights.Experts.Count != o.Experts) return null;
            if (!Matrix(router.weight, o.Experts, dim) || !Vector(router.e_score_correction_bias, o.Experts)) return null;
            var experts = new SwiGluStep[o.Experts];
            for (var e = 0; e < experts.Length; e++)
                if ((experts[e] = SwiGluStep.Resolve(weights.Experts[e], dim)!) is null) return null;
            SwiGluStep? shared = null;
            if (weights.Shared is not null && (shared = SwiGluStep.Resolve(weights.Shared, dim)) is null) return null;
            return new MixtureStep
            {
                router = router, dim = dim, active = o.Active, scoring = o.Scoring, normalize = o.NormalizeWeights, routedScale = (float)o.RoutedScale,
                routerWeight = SingleTokenStep.Address(router.weight),
                selectionBias = router.e_score_correction_bias is { } bias ? SingleTokenStep.Address(bias) : null,
                experts = experts, shared = shared,
            };
        }

        private int Experts => experts.Length;

        // logits, scores, chosen experts and their weights, then the experts' own scratch.
        public override int ScratchFloats => 4 * Experts + Math.Max(experts.Max(e => e.ScratchFloats), shared?.ScratchFloats ?? 0);

        public override bool Accepts() => !router.training;

        public override void AddTo(float* x, float* normed, float* scratch, int threads)
        {
            float* logits = scratch, scores = logits + Experts, selection = scores + Experts, weights = selection + Experts, work = weights + Experts;
            var product = new MatrixVector.Product(routerWeight, normed, logits, null, Experts, dim, accumulate: false);
            MatrixVector.Multiply(&product, threads);
            Score(logits, scores);
            for (var e = 0; e < Experts; e++) selection[e] = selectionBias is null ? scores[e] : scores[e] + selectionBias[e];
            Span<int> chosen = stackalloc int[active];
            var total = 0f;
            for (var j = 0; j < active; j++)
            {
                var best = -1;
                for (var e = 0; e < Experts; e++)
                    if (chosen[..j].IndexOf(e) < 0 && (best < 0 || selection[e] > selection[best])) best = e;
                chosen[j] = best;
                weights[j] = scores[best];
                total += weights[j];
            }
            for (var j = 0; j < active; j++)
            {
                var weight = normalize ? weights[j] / total : weights[j];
                experts[chosen[j]].AddScaled(x, normed, work, threads, weight * routedScale);
            }
            shared?.AddTo(x, normed, work, threads);
        }

        private void Score(float* logits, float* scores)
        {
            switch (scoring)
            {
                case RouterScoring.Softmax:
                    var max = float.NegativeInfinity;
                    for (var e = 0; e < Experts; e++) max = MathF.Max(max, logits[e]);
                    var sum = 0f;
                    for (var e = 0; e < Experts; e++) sum += scores[e] = MathF.Exp(logits[e] - max);
                    for (var e = 0; e < Experts; e++) scores[e] /= sum;
                    break;
                case RouterScoring.Sigmoid:
                    // In double: a float eˣ overflows below x ≈ −88, where PyTorch's sigmoid is still e^x.
                    for (var e = 0; e < Experts; e++) scores[e] = (float)(1 / (1 + Math.Exp(-logits[e])));
                    break;
                default:
                    // √softplus, softplus as PyTorch's log1p(eˣ), and x itself above 20 (its threshold). In double, and eˣ
                    // itself far below zero, where 1 + eˣ rounds to 1 (log1p(y) = y to within y²/2 there).
                    for (var e = 0; e < Experts; e++)
                    {
                        double x = logits[e];
                        scores[e] = (float)Math.Sqrt(x > 20 ? x : x < -17 ? Math.Exp(x) : Math.Log(1 + Math.Exp(x)));
                    }
                    break;
            }
        }
    }

    /// <summary>A token mixer resolved for one step: x += mixer(normed), its cache entries or state updated in place.</summary>
    private abstract unsafe class MixerStep
    {
        /// <summary>Floats of scratch <see cref="AddTo"/> needs.</summary>
        public abstract int ScratchFloats { get; }

        /// <summary>Whether this layer's cache holds what the mixer expects after <paramref name="position"/> tokens and has room for one more.</summary>
        public abstract bool Accepts(LayerState state, long position);

        /// <summary>Makes room for this step's entries (and the state it updates) without counting them.</summary>
        public abstract void Reserve(LayerState state);

        /// <summary>Counts the entries <see cref="AddTo"/> wrote.</summary>
        public virtual void Count(LayerState state)
        {
        }

        public abstract void AddTo(float* x, float* normed, float* scratch, LayerState state, long position, int threads);
    }

    /// <summary>Standard attention: q, k, v as one job, rotation, the new key and value written into the cache, one query's attention, x += o(·).</summary>
    private sealed unsafe class AttentionStep : MixerStep
    {
        private Weight query, key, value, output;
        private int heads, kvHeads, headDim, dim;
        private RotaryTables rotation;
        private float* queryNorm, keyNorm;
        private float queryEps, keyEps;
        private bool keysAreValues;

        public static AttentionStep? Resolve(AttentionMixer mixer, int dim, RotaryEmbedding? rotary)
        {
            if (mixer.Heads < 1 || mixer.KvHeads < 1 || mixer.Heads % mixer.KvHeads != 0) return null;
            var queryRows = mixer.Query.weight.shape[0];
            if (queryRows % mixer.Heads != 0 || queryRows > int.MaxValue) return null;
            var step = new AttentionStep
            {
                heads = mixer.Heads, kvHeads = mixer.KvHeads, headDim = (int)(queryRows / mixer.Heads), dim = dim, keysAreValues = mixer.Key is null,
            };
            if (!Linear(mixer.Query, step.heads * step.headDim, dim, out step.query)
                || mixer.Key is not null && !Linear(mixer.Key, step.kvHeads * step.headDim, dim, out step.key)
                || !Linear(mixer.Value, step.kvHeads * step.headDim, dim, out step.value) || !Linear(mixer.Output, dim, step.heads * step.headDim, out step.output)) return null;
            // Rotating halves needs an even head width (the rotary tables are built so; checked, not assumed).
            if (rotary is not null && step.headDim % 2 != 0) return null;
            if (rotary is not null && !Tables(rotary, step.headDim, out step.rotation)) return null;
            if ((mixer.QueryNorm is null) != (mixer.KeyNorm is null)) return null;
            if (mixer.QueryNorm is not null && mixer.KeyNorm is not null)
            {
                if (!Vector(mixer.QueryNorm.Weight, step.headDim) || !Vector(mixer.KeyNorm.Weight, step.headDim)) return null;
                step.queryNorm = SingleTokenStep.Address(mixer.QueryNorm.Weight);
                step.keyNorm = SingleTokenStep.Address(mixer.KeyNorm.Weight);
                step.queryEps = (float)mixer.QueryNorm.Eps;
                step.keyEps = (float)mixer.KeyNorm.Eps;
            }
            step.cacheShape = new long[] { 1, step.kvHeads, -1, step.headDim };
            return step;
        }

        private int QueryWidth => heads * headDim;

        private int KvWidth => kvHeads * headDim;

        // q, k, v, attention output.
        public override int ScratchFloats => 2 * QueryWidth + 2 * KvWidth;

        // The cache streams' shape, [1, kvHeads, time, headDim] (made once: these run every step).
        private long[] cacheShape = Array.Empty<long>();

        // With keys that are the values only the values are cached, in the keys' stream (as the module caches them).
        public override bool Accepts(LayerState state, long position) => (!rotation.Present || position < rotation.Positions)
            && state.TakesEntry(LayerState.Keys, cacheShape, position) && (keysAreValues || state.TakesEntry(LayerState.Values, cacheShape, position));

        public override void Reserve(LayerState state)
        {
            state.ReserveEntry(LayerState.Keys, cacheShape, out _);
            if (!keysAreValues) state.ReserveEntry(LayerState.Values, cacheShape, out _);
        }

        public override void Count(LayerState state)
        {
            state.CountEntry(LayerState.Keys);
            if (!keysAreValues) state.CountEntry(LayerState.Values);
        }

        public override void AddTo(float* x, float* normed, float* scratch, LayerState state, long position, int threads)
        {
            float* q = scratch, k = q + QueryWidth, v = k + KvWidth, attended = v + KvWidth;
            var keyRows = keysAreValues ? 0 : KvWidth;
            var projections = new Projections(Product(query, normed, q, QueryWidth, dim), Product(key, normed, k, keyRows, dim), Product(value, normed, v, KvWidth, dim));
            Run(&ProjectionPart, &projections, projections.Rows, projections.Weights, threads);
            if (queryNorm is not null)
            {
                for (var h = 0; h < heads; h++) VectorMath.RmsNormalize(q + h * headDim, q + h * headDim, queryNorm, headDim, queryEps);
                if (!keysAreValues)
                    for (var h = 0; h < kvHeads; h++) VectorMath.RmsNormalize(k + h * headDim, k + h * headDim, keyNorm, headDim, keyEps);
            }
            if (rotation.Present)
            {
                float* cos = rotation.Cos(position), sin = rotation.Sin(position);
                for (var h = 0; h < heads; h++) VectorMath.RotateHalves(q + h * headDim, cos, sin, headDim);
                if (!keysAreValues)
                    for (var h = 0; h < kvHeads; h++) VectorMath.RotateHalves(k + h * headDim, cos, sin, headDim);
            }
            var shape = cacheShape;
            var bytes = (long)headDim * sizeof(float);
            float* keys, values;
            long keySlots, valueSlots;
            if (keysAreValues)
            {
                values = keys = state.ReserveEntry(LayerState.Keys, shape, out keySlots);
                valueSlots = keySlots;
                for (var h = 0; h < kvHeads; h++) Buffer.MemoryCopy(v + h * headDim, values + (h * valueSlots + position) * headDim, bytes, bytes);
            }
            else
            {
                keys = state.ReserveEntry(LayerState.Keys, shape, out keySlots);
                values = state.ReserveEntry(LayerState.Values, shape, out valueSlots);
                for (var h = 0; h < kvHeads; h++)
                {
                    Buffer.MemoryCopy(k + h * headDim, keys + (h * keySlots + position) * headDim, bytes, bytes);
                    Buffer.MemoryCopy(v + h * headDim, values + (h * valueSlots + position) * headDim, bytes, bytes);
                }
            }
            var attention = new SingleQueryAttention.Job(q, keys, values, attended, heads, heads / kvHeads, checked((int)(position + 1)),
                headDim, headDim, keySlots * headDim, valueSlots * headDim, 1 / MathF.Sqrt(headDim))
            {
                // NoKey: every cached value scores as its key, normalised (QK norm) and rotated for its own position.
                KeyCos = keysAreValues && rotation.Present ? rotation.Cos(0) : null,
                KeySin = keysAreValues && rotation.Present ? rotation.Sin(0) : null,
                KeyNorm = keysAreValues ? keyNorm : null,
                KeyNormEps = keyEps,
            };
            SingleQueryAttention.Run(&attention, threads);
            var projected = Product(output, attended, x, dim, QueryWidth, accumulate: true);
            MatrixVector.Multiply(&projected, threads);
        }
    }

    /// <summary>LFM2's short convolution: B, C, h = in_proj(x); the window of B ⊙ h shifted by one in place; x += out_proj(C ⊙ conv(window)).</summary>
    private sealed unsafe class ConvolutionStep : MixerStep
    {
        private Weight input, output;
        private float* filter, filterBias;
        private int dim, kernel;

        public static ConvolutionStep? Resolve(ShortConv block, int dim)
        {
            if (block.Dim != dim) return null;
            var (inProjection, filterWeight, filterBias, outProjection) = block.Weights;
            var step = new ConvolutionStep { dim = dim, kernel = block.Kernel, stateShape = new long[] { 1, dim, block.Kernel - 1 } };
            if (!Linear(inProjection, 3 * dim, dim, out step.input) || !Linear(outProjection, dim, dim, out step.output)) return null;
            if (!SingleTokenStep.Fits(filterWeight, stackalloc long[] { dim, 1, step.kernel }) || !Vector(filterBias, dim)) return null;
            step.filter = SingleTokenStep.Address(filterWeight);
            step.filterBias = filterBias is null ? null : SingleTokenStep.Address(filterBias);
            return step;
        }

        private int History => kernel - 1;

        // in_proj's output (B, C, h), then C ⊙ conv.
        public override int ScratchFloats => 4 * dim;

        // The window's shape, [1, dim, kernel − 1].
        private long[] stateShape = Array.Empty<long>();

        // A one-tap filter keeps no window (ShortConv sets none).
        public override bool Accepts(LayerState state, long position) => History == 0 || state.HoldsState(LayerState.ConvolutionWindow, stateShape);

        public override void Reserve(LayerState state)
        {
            if (History > 0) state.StateInPlace(LayerState.ConvolutionWindow, stateShape);
        }

        public override void AddTo(float* x, float* normed, float* scratch, LayerState state, long position, int threads)
        {
            float* projected = scratch, mixed = projected + 3 * dim;
            var inProduct = Product(input, normed, projected, 3 * dim, dim);
            MatrixVector.Multiply(&inProduct, threads);
            float* b = projected, c = projected + dim, h = projected + 2 * dim;
            var window = History == 0 ? null : state.StateInPlace(LayerState.ConvolutionWindow, stateShape);
            for (var channel = 0; channel < dim; channel++)
            {
                var newest = b[channel] * h[channel];
                var taps = filter + (long)channel * kernel;
                var sum = filterBias is null ? 0f : filterBias[channel];
                if (window is not null)
                {
                    var past = window + (long)channel * History;
                    for (var j = 0; j < History; j++) sum += taps[j] * past[j];
                    // The oldest input leaves the window, the newest enters it.
                    for (var j = 0; j + 1 < History; j++) past[j] = past[j + 1];
                    past[History - 1] = newest;
                }
                sum += taps[History] * newest;
                mixed[channel] = c[channel] * sum;
            }
            var outProduct = Product(output, mixed, x, dim, dim, accumulate: true);
            MatrixVector.Multiply(&outProduct, threads);
        }
    }

    /// <summary>
    /// Latent attention as <c>LatentAttention</c> decodes it, absorbed: per head, the query's position-free part is taken
    /// into the latent space by the head's key-up rows of kv_b_proj, scores are over the cached latents and rotary keys
    /// as they are, and the attended latent goes back out through the head's value-up rows; x += o_proj(·).
    /// </summary>
    private sealed unsafe class LatentStep : MixerStep
    {
        private Weight queryDown, queryUp, latentDown, output;
        private float* queryNorm, latentNorm, latentUp;
        private RotaryTables rotation;
        private float queryEps, latentEps;
        private int dim, heads, headDim, kvRank, ropeDim, queryRank;

        public static LatentStep? Resolve(LatentAttention block, int dim)
        {
            var o = block.Options;
            if (block.Indexer is not null || !o.Causal || o.Dim != dim) return null;
            var w = block.Weights;
            var step = new LatentStep { dim = dim, heads = o.Heads, headDim = o.HeadDim, kvRank = o.KvRank, ropeDim = o.RopeDim, queryRank = o.QRank };
            var queryInputs = o.QRank > 0 ? o.QRank : dim;
            if (o.QRank > 0)
            {
                if (w.QueryDown is null || w.QueryNorm is null || !Linear(w.QueryDown, o.QRank, dim, out step.queryDown) || !Vector(w.QueryNorm.Weight, o.QRank)) return null;
                step.queryNorm = SingleTokenStep.Address(w.QueryNorm.Weight);
                step.queryEps = (float)w.QueryNorm.Eps;
            }
            if (!Linear(w.QueryUp, o.Heads * (o.HeadDim + o.RopeDim), queryInputs, out step.queryUp)
                || !Linear(w.LatentDown, o.KvRank + o.RopeDim, dim, out step.latentDown) || !Vector(w.LatentNorm.Weight, o.KvRank)
                || !Linear(w.LatentUp, o.Heads * 2 * o.HeadDim, o.KvRank, out var latentUp) || latentUp.Bias is not null
                || !Linear(w.Output, dim, o.Heads * o.HeadDim, out step.output)) return null;
            step.latentNorm = SingleTokenStep.Address(w.LatentNorm.Weight);
            step.latentEps = (float)w.LatentNorm.Eps;
            step.latentUp = latentUp.Matrix;
            if (!Tables(w.Rotary, o.RopeDim, out step.rotation)) return null;
            step.latentShape = new long[] { 1, -1, o.KvRank };
            step.ropeKeyShape = new long[] { 1, -1, o.RopeDim };
            return step;
        }

        private int QueryWidth => heads * (headDim + ropeDim);

        // The query latent (twice: projected and normalised), queries, the new latent and rotary key, per head the absorbed
        // query and the attended latent, the heads' values.
        public override int ScratchFloats => 2 * queryRank + QueryWidth + kvRank + ropeDim + heads * kvRank * 2 + heads * headDim;

        // The streams' shapes, [1, time, KvRank] and [1, time, RopeDim].
        private long[] latentShape = Array.Empty<long>();

        private long[] ropeKeyShape = Array.Empty<long>();

        public override bool Accepts(LayerState state, long position) => position < rotation.Positions
            && state.TakesEntry(LayerState.Latents, latentShape, position) && state.TakesEntry(LayerState.RopeKeys, ropeKeyShape, position);

        public override void Reserve(LayerState state)
        {
            state.ReserveEntry(LayerState.Latents, latentShape, out _);
            state.ReserveEntry(LayerState.RopeKeys, ropeKeyShape, out _);
        }

        public override void Count(LayerState state)
        {
            state.CountEntry(LayerState.Latents);
            state.CountEntry(LayerState.RopeKeys);
        }

        public override void AddTo(float* x, float* normed, float* scratch, LayerState state, long position, int threads)
        {
            float* queryLatent = scratch, queryLatentNormed = queryLatent + queryRank, queries = queryLatentNormed + queryRank;
            float* compressed = queries + QueryWidth, absorbed = compressed + kvRank + ropeDim, attended = absorbed + heads * kvRank, values = attended + heads * kvRank;
            var queryInput = normed;
            if (queryRank > 0)
            {
                var down = Product(queryDown, normed, queryLatent, queryRank, dim);
                MatrixVector.Multiply(&down, threads);
                VectorMath.RmsNormalize(queryLatent, queryLatentNormed, queryNorm, queryRank, queryEps);
                queryInput = queryLatentNormed;
            }
            var up = Product(queryUp, queryInput, queries, QueryWidth, queryRank > 0 ? queryRank : dim);
            MatrixVector.Multiply(&up, threads);
            var latentProduct = Product(latentDown, normed, compressed, kvRank + ropeDim, dim);
            MatrixVector.Multiply(&latentProduct, threads);

            // Cached: the normalised latent and the rotated shared rotary key.
            var latents = state.ReserveEntry(LayerState.Latents, latentShape, out _);
            var ropeKeys = state.ReserveEntry(LayerState.RopeKeys, ropeKeyShape, out _);
            VectorMath.RmsNormalize(compressed, latents + position * kvRank, latentNorm, kvRank, latentEps);
            float* cos = rotation.Cos(position), sin = rotation.Sin(position);
            var ropeKey = ropeKeys + position * ropeDim;
            new ReadOnlySpan<float>(compressed + kvRank, ropeDim).CopyTo(new Span<float>(ropeKey, ropeDim));
            VectorMath.RotateHalves(ropeKey, cos, sin, ropeDim);
            for (var h = 0; h < heads; h++) VectorMath.RotateHalves(queries + h * (headDim + ropeDim) + headDim, cos, sin, ropeDim);

            var job = new LatentHeads(queries, latents, ropeKeys, latentUp, absorbed, attended, values, heads, headDim, kvRank, ropeDim,
                checked((int)(position + 1)), 1 / MathF.Sqrt(headDim + ropeDim));
            var parts = Math.Min(threads, heads);
            if (parts <= 1 || !KernelWorkers.TryRun(&LatentHeadsPart, (nint)(&job), parts)) LatentHeadsPart((nint)(&job), 0, 1);
            var projected = Product(output, values, x, dim, heads * headDim, accumulate: true);
            MatrixVector.Multiply(&projected, threads);
        }
    }

    /// <summary>The per-head part of a latent step, shared between threads head by head.</summary>
    private readonly unsafe struct LatentHeads(float* queries, float* latents, float* ropeKeys, float* latentUp, float* absorbed, float* attended,
        float* values, int heads, int headDim, int kvRank, int ropeDim, int time, float scale)
    {
        public readonly float* Queries = queries, Latents = latents, RopeKeys = ropeKeys, LatentUp = latentUp, Absorbed = absorbed, Attended = attended, Values = values;
        public readonly int Heads = heads, HeadDim = headDim, KvRank = kvRank, RopeDim = ropeDim, Time = time;
        public readonly float Scale = scale;
    }

    private static unsafe void LatentHeadsPart(nint state, int part, int parts)
    {
        var job = (LatentHeads*)state;
        VectorMath.ForHeads(state, job->Heads, job->Time, part, parts, &LatentHead);
    }

    private static unsafe void LatentHead(nint state, int head, float* scores)
    {
        var job = (LatentHeads*)state;
        int headDim = job->HeadDim, kvRank = job->KvRank, ropeDim = job->RopeDim, time = job->Time;
        var query = job->Queries + (long)head * (headDim + ropeDim);
        var queryRope = query + headDim;
        // kv_b_proj's rows per head: headDim key-up rows, then headDim value-up rows, each kvRank wide.
        var keyUp = job->LatentUp + (long)head * 2 * headDim * kvRank;
        var valueUp = keyUp + (long)headDim * kvRank;
        var absorbed = job->Absorbed + (long)head * kvRank;
        var attended = job->Attended + (long)head * kvRank;

        // The query in latent space: W_ukᵀ · q_nope, row by row of W_uk.
        new Span<float>(absorbed, kvRank).Clear();
        for (var d = 0; d < headDim; d++) VectorMath.AddScaled(absorbed, keyUp + (long)d * kvRank, query[d], kvRank);

        var max = float.NegativeInfinity;
        for (var t = 0; t < time; t++)
        {
            var score = (VectorMath.Dot(absorbed, job->Latents + (long)t * kvRank, kvRank) + VectorMath.Dot(queryRope, job->RopeKeys + (long)t * ropeDim, ropeDim)) * job->Scale;
            scores[t] = score;
            if (score > max) max = score;
        }
        var total = VectorMath.ExponentiateAndSum(scores, time, max);
        new Span<float>(attended, kvRank).Clear();
        for (var t = 0; t < time; t++) VectorMath.AddScaled(attended, job->Latents + (long)t * kvRank, scores[t] / total, kvRank);
        // The head's value: W_uv · attended latent.
        var value = job->Values + (long)head * headDim;
        for (var d = 0; d < headDim; d++) value[d] = VectorMath.Dot(valueUp + (long)d * kvRank, attended, kvRank);
    }

    private static unsafe bool Linear(Linear linear, int outputs, int inputs, out Weight weight)
    {
        weight = default;
        var bias = linear.bias;
        if (!Matrix(linear.weight, outputs, inputs) || !Vector(bias, outputs)) return false;
        weight = new Weight(SingleTokenStep.Address(linear.weight), bias is null ? null : SingleTokenStep.Address(bias));
        return true;
    }

    /// <summary>A rotary embedding's cos and sin tables [positions, width] by address (absent: the model has no positions).</summary>
    private readonly unsafe struct RotaryTables(float* cos, float* sin, long positions, int width)
    {
        private readonly float* cos = cos, sin = sin;

        public readonly long Positions = positions;

        public bool Present => cos != null;

        public float* Cos(long position) => cos + position * width;

        public float* Sin(long position) => sin + position * width;
    }

    private static unsafe bool Tables(RotaryEmbedding rotary, int width, out RotaryTables tables)
    {
        tables = default;
        var (cosTable, sinTable) = rotary.Tables;
        if (!Matrix(cosTable, -1, width) || !Matrix(sinTable, -1, width)) return false;
        var positions = Math.Min(cosTable.shape[0], sinTable.shape[0]);
        tables = new RotaryTables(SingleTokenStep.Address(cosTable), SingleTokenStep.Address(sinTable), positions, width);
        return true;
    }

    // A contiguous fp32 CPU matrix [rows, columns] (rows −1: any).
    private static bool Matrix(Tensor tensor, long rows, long columns) => SingleTokenStep.Fits(tensor, stackalloc long[] { rows, columns });

    // Absent, or a contiguous fp32 CPU vector of `length`.
    private static bool Vector(Tensor? tensor, long length) => tensor is null || SingleTokenStep.Fits(tensor, stackalloc long[] { length });

    private static unsafe MatrixVector.Product Product(in Weight weight, float* input, float* output, int rows, int columns, bool accumulate = false) =>
        new(weight.Matrix, input, output, weight.Bias, rows, columns, accumulate);

    // A job over `rows` rows shared between threads (in multiples of four) when it has enough weights to be worth it.
    private static unsafe void Run<T>(delegate*<nint, int, int, void> part, T* job, int rows, long weights, int threads) where T : unmanaged
    {
        var parts = Math.Min(threads, rows / 4);
        if (parts > 1 && weights >= MatrixVector.ParallelThreshold && KernelWorkers.TryRun(part, (nint)job, parts)) return;
        part((nint)job, 0, 1);
    }

    /// <summary>q, k and v from one input, as one job over their rows stacked: one hand-off to the workers instead of three.</summary>
    private readonly struct Projections(MatrixVector.Product query, MatrixVector.Product key, MatrixVector.Product value)
    {
        public readonly MatrixVector.Product Query = query, Key = key, Value = value;

        public int Rows => Query.Rows + Key.Rows + Value.Rows;

        public long Weights => Query.Weights + Key.Weights + Value.Weights;
    }

    private static unsafe void ProjectionPart(nint state, int part, int parts)
    {
        var job = (Projections*)state;
        var (start, end) = MatrixVector.Share(job->Rows, part, parts);
        RunShare(job->Query, start, end, 0);
        RunShare(job->Key, start, end, job->Query.Rows);
        RunShare(job->Value, start, end, job->Query.Rows + job->Key.Rows);
    }

    // The rows of [start, end) of the stacked rows that fall in `product`, which starts at stacked row `offset`.
    private static void RunShare(in MatrixVector.Product product, int start, int end, int offset)
    {
        int from = Math.Max(start - offset, 0), to = Math.Min(end - offset, product.Rows);
        if (from < to) product.Run(from, to);
    }

    /// <summary>SwiGLU's gate and up products and silu(gate)·up, per share of the hidden rows, into the gate buffer.</summary>
    private readonly struct Gated(MatrixVector.Product gate, MatrixVector.Product up)
    {
        public readonly MatrixVector.Product Gate = gate, Up = up;
    }

    private static unsafe void GatedPart(nint state, int part, int parts)
    {
        var job = (Gated*)state;
        var (start, end) = MatrixVector.Share(job->Gate.Rows, part, parts);
        job->Gate.Run(start, end);
        job->Up.Run(start, end);
        float* gate = job->Gate.Output, up = job->Up.Output;
        for (var i = start; i < end; i++) gate[i] = gate[i] / (1 + MathF.Exp(-gate[i])) * up[i];
    }
}
