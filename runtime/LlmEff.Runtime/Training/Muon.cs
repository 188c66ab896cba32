using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Training;

/// <summary>Which optimizer a run trains with.</summary>
public enum OptimizerKind
{
    /// <summary>AdamW for every parameter (decay on matrices only).</summary>
    AdamW,
    /// <summary><see cref="Muon"/> for hidden weight matrices, AdamW for embeddings, the head, norms and biases.</summary>
    Muon,
}

/// <summary>Who optimizes a parameter under <see cref="OptimizerKind.Muon"/>.</summary>
public enum MuonRole
{
    /// <summary>A hidden 2-D weight matrix: Muon.</summary>
    Muon,
    /// <summary>An embedding table or the output head: AdamW with weight decay (they are matrices).</summary>
    AdamWDecayed,
    /// <summary>Norm scales, biases, other tensors of fewer or more than 2 dimensions: AdamW without decay.</summary>
    AdamWPlain,
}

/// <summary>
/// Muon (MomentUm Orthogonalized by Newton–Schulz) with an AdamW side for the parameters Muon is not for, as DeepSeek V4
/// trains (../shared/REFERENCES.md §3, "Optimizer"). For a hidden weight matrix W (m × n) with gradient G:
/// <code>
/// B ← μ·B + G;  U = G + μ·B               (Nesterov, μ = 0.95; Moonlight's and torch.optim.Muon's form)
/// X = U / (‖U‖_F + 1e-7), transposed so that it is wide
/// 8 × X ← a·X + (b·A + c·A²)·X, A = X·Xᵀ, (a, b, c) = (3.4445, −4.7750, 2.0315)   (Keller Jordan's quintic)
/// 2 × the same with (a, b, c) = (2, −1.5, 0.5)                                    (V4's settling steps)
/// W ← W·(1 − lr·λ) − lr·0.18·√max(m, n)·X
/// </code>
/// X has singular values near 1, so its RMS is about 1/√max(m, n), and the factor 0.18·√max(m, n) rescales the update
/// to an RMS of 0.18 (Moonlight's "match AdamW's update RMS" rule, adjust_lr_for_muon in MoonshotAI/Moonlight
/// examples/toy_train.py, with V4's 0.18 in place of Moonlight's 0.2). That is why one learning rate and one weight
/// decay serve both sides. The quintic (3.4445, −4.7750, 2.0315) drives small singular values up fast but settles
/// in a band around 1 rather than at 1 (KellerJordan/Muon muon.py); p(x) = 2x − 1.5x³ + 0.5x⁵ has p(1) = 1 and
/// p′(1) = 0, so two steps of it pull that band tight onto 1. The iteration runs in fp32 (no bf16 here).
/// The AdamW side is PyTorch's (and TorchSharp's) AdamW step exactly. Twin: muon.py beside this file.
/// </summary>
public sealed class Muon : OptimizerHelper
{
    /// <summary>Keller Jordan's quintic Newton–Schulz coefficients (a, b, c), used for the first <see cref="FastSteps"/> steps.</summary>
    public static readonly (double A, double B, double C) FastCoefficients = (3.4445, -4.7750, 2.0315);

    /// <summary>The settling coefficients (p(1) = 1, p′(1) = 0), used for the last <see cref="SettleSteps"/> steps.</summary>
    public static readonly (double A, double B, double C) SettleCoefficients = (2.0, -1.5, 0.5);

    /// <summary>Steps with <see cref="FastCoefficients"/> (DeepSeek V4: 8).</summary>
    public const int FastSteps = 8;

    /// <summary>Steps with <see cref="SettleCoefficients"/> (DeepSeek V4: 2).</summary>
    public const int SettleSteps = 2;

    /// <summary>RMS the orthogonalized update is rescaled to (DeepSeek V4: 0.18).</summary>
    public const double UpdateRms = 0.18;

    /// <summary>Nesterov momentum of the Muon side (DeepSeek V4: 0.95).</summary>
    public const double DefaultMomentum = 0.95;

    /// <summary>Added to the Frobenius norm before dividing by it (Keller Jordan's 1e-7).</summary>
    public const double NormEpsilon = 1e-7;

    /// <summary>Settings of one parameter group: which side it is on and its hyper-parameters.</summary>
    public sealed class Options : OptimizerOptions
    {
        /// <summary>True: Muon; false: AdamW.</summary>
        public bool UseMuon { get; set; }
        /// <summary>Nesterov momentum (Muon side).</summary>
        public double Momentum { get; set; } = DefaultMomentum;
        /// <summary>Decoupled weight decay λ: each step multiplies the weights by 1 − lr·λ.</summary>
        public double WeightDecay { get; set; }
        /// <summary>AdamW β₁.</summary>
        public double Beta1 { get; set; } = 0.9;
        /// <summary>AdamW β₂.</summary>
        public double Beta2 { get; set; } = 0.95;
        /// <summary>AdamW ε.</summary>
        public double Epsilon { get; set; } = 1e-8;

        /// <inheritdoc />
        public override void SaveStateDict(BinaryWriter writer)
        {
            base.SaveStateDict(writer);
            writer.Write(UseMuon);
            writer.Write(Momentum);
            writer.Write(WeightDecay);
            writer.Write(Beta1);
            writer.Write(Beta2);
            writer.Write(Epsilon);
        }

        /// <inheritdoc />
        public override void LoadStateDict(BinaryReader reader)
        {
            base.LoadStateDict(reader);
            var useMuon = reader.ReadBoolean();
            // The groups are made by one rule; a group of the other side means the parameters were assigned otherwise.
            if (useMuon != UseMuon)
                throw new InvalidDataException($"a parameter group saved as {(useMuon ? "Muon" : "AdamW")} is {(UseMuon ? "Muon" : "AdamW")} here");
            Momentum = reader.ReadDouble();
            WeightDecay = reader.ReadDouble();
            Beta1 = reader.ReadDouble();
            Beta2 = reader.ReadDouble();
            Epsilon = reader.ReadDouble();
        }

        /// <inheritdoc />
        public override void LoadStateDict(OptimizerOptions source)
        {
            base.LoadStateDict(source);
            var other = (Options)source;
            (UseMuon, Momentum, WeightDecay, Beta1, Beta2, Epsilon) = (other.UseMuon, other.Momentum, other.WeightDecay, other.Beta1, other.Beta2, other.Epsilon);
        }
    }

    /// <summary>Per-parameter state: the step count, and either Muon's momentum buffer or AdamW's two moments.</summary>
    public sealed class State(Parameter parameter) : OptimizerState(parameter), IDisposable
    {
        /// <summary>Steps taken.</summary>
        public long Step;
        /// <summary>Muon: the momentum buffer B. AdamW: the first moment.</summary>
        public Tensor First = null!;
        /// <summary>AdamW: the second moment; null on the Muon side.</summary>
        public Tensor? Second;

        /// <summary>Nothing to do: <see cref="add_param_group"/> allocates the tensors, zeroed, with the parameter's shape.</summary>
        public override void Initialize(OptimizerOptions options) { }

        /// <inheritdoc />
        public void Dispose()
        {
            First?.Dispose();
            Second?.Dispose();
        }

        /// <inheritdoc />
        public override void to(Device device)
        {
            First = First.to(device);
            Second = Second?.to(device);
        }

        /// <inheritdoc />
        public override void SaveStateDict(BinaryWriter writer)
        {
            writer.Write(Step);
            First.Save(writer);
            writer.Write(Second is not null);
            Second?.Save(writer);
        }

        /// <inheritdoc />
        public override void LoadStateDict(BinaryReader reader)
        {
            Step = reader.ReadInt64();
            First.Load(reader);
            var hasSecond = reader.ReadBoolean();
            if (hasSecond != Second is not null)
                throw new InvalidDataException($"a parameter's state {(hasSecond ? "has" : "lacks")} AdamW's second moment, which this side {(hasSecond ? "lacks" : "has")}");
            Second?.Load(reader);
        }

        /// <inheritdoc />
        public override void LoadStateDict(OptimizerState source)
        {
            var other = (State)source;
            Step = other.Step;
            using (no_grad()) First.copy_(other.First);
            if (Second is not null && other.Second is not null) using (no_grad()) Second.copy_(other.Second);
        }
    }

    /// <summary>An optimizer over <paramref name="groups"/>; a group whose options say <see cref="Options.UseMuon"/> must
    /// hold 2-D parameters only.</summary>
    public Muon(IEnumerable<ParamGroup<Options>> groups, double learningRate)
    {
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "The learning rate must be positive.");
        _defaults = new Options { LearningRate = learningRate, InitialLearningRate = learningRate };
        _parameter_groups = new List<TorchSharp.Modules.ParamGroup>();
        foreach (var group in groups) add_param_group(group);
    }

    /// <summary>The optimizer DeepSeek V4 trains with for <paramref name="model"/>: Muon for every parameter whose
    /// <see cref="Roles"/> say is <see cref="MuonRole.Muon"/>, AdamW for the rest (with decay on embeddings and the head).</summary>
    public static Muon For(nn.Module model, double learningRate, double weightDecay, double beta1, double beta2, double momentum = DefaultMomentum)
    {
        var roles = Roles(model);
        ParamGroup<Options> Group(MuonRole role, bool useMuon, double decay) => new(
            roles.Where(r => r.Role == role).Select(r => r.Parameter).ToList(),
            new Options { UseMuon = useMuon, Momentum = momentum, WeightDecay = decay, Beta1 = beta1, Beta2 = beta2, LearningRate = learningRate, InitialLearningRate = learningRate });
        var groups = new[] { Group(MuonRole.Muon, true, weightDecay), Group(MuonRole.AdamWDecayed, false, weightDecay), Group(MuonRole.AdamWPlain, false, 0.0) };
        return new Muon(groups.Where(g => g.Parameters.Any()), learningRate);
    }

    /// <summary>
    /// Every parameter of <paramref name="model"/> with its name and role: parameters of embedding modules (token and
    /// learned positions) and the output head <c>lm_head.weight</c> go to AdamW with decay (Muon's authors and V4 keep
    /// them on AdamW: their rows are looked up or read one token at a time, not a linear map whose spectrum matters),
    /// any other 2-D parameter to Muon, everything else (norm scales, biases, convolution kernels) to AdamW without decay.
    /// A tied head is the embedding's parameter, so it is listed once, as an embedding.
    /// </summary>
    public static IReadOnlyList<(string Name, Parameter Parameter, MuonRole Role)> Roles(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var embedded = model.named_modules()
            .Where(m => m.module is Embedding)
            .SelectMany(m => m.module.parameters())
            .Select(p => p.Handle)
            .ToHashSet();
        return model.named_parameters().Select(p =>
        {
            var role = embedded.Contains(p.parameter.Handle) || p.name == OutputHeadName ? MuonRole.AdamWDecayed
                : IsResidualStreamBiasOrGate(p.name) ? MuonRole.AdamWPlain
                : p.parameter.dim() == 2 ? MuonRole.Muon
                : MuonRole.AdamWPlain;
            return (p.name, p.parameter, role);
        }).ToList();
    }

    /// <summary>
    /// The biases and gates of DeepSeek V4's residual streams (<c>hc_attn_base</c>, <c>hc_ffn_scale</c>, <c>hc_head_base</c>, …):
    /// the V4 report trains "the mHC biases and gates" with AdamW, so they are named here rather than left to the
    /// dimension rule, which a 2-D gate would slip past. The maps themselves (<c>hc_*_fn</c>, [(2 + n)·n, n·Dim]) stay
    /// with Muon: the report lists no other mHC tensor on the AdamW side, and a map is a hidden matrix multiplying
    /// every token's flattened streams like any projection, which is what Muon orthogonalises.
    /// </summary>
    public static bool IsResidualStreamBiasOrGate(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var last = name.Substring(name.LastIndexOf('.') + 1);
        return last.StartsWith("hc_", StringComparison.Ordinal) && (last.EndsWith("_base", StringComparison.Ordinal) || last.EndsWith("_scale", StringComparison.Ordinal));
    }

    /// <summary>The output head's parameter name in every naming scheme the generator knows.</summary>
    public const string OutputHeadName = "lm_head.weight";

    /// <summary>Orthogonalizes a matrix: <see cref="FastSteps"/> quintic Newton–Schulz steps with
    /// <see cref="FastCoefficients"/>, then <see cref="SettleSteps"/> with <see cref="SettleCoefficients"/>, on the
    /// Frobenius-normalised, wide (rows ≤ columns) matrix, in fp32; returns it in the input's shape and dtype.</summary>
    public static Tensor Orthogonalize(Tensor matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.dim() != 2) throw new ArgumentException($"Muon orthogonalizes matrices; this tensor has shape [{string.Join(", ", matrix.shape)}].", nameof(matrix));
        using var scope = NewDisposeScope();
        var x = matrix.to(ScalarType.Float32);
        var tall = x.shape[0] > x.shape[1];
        if (tall) x = x.t();
        x = x / (x.norm() + NormEpsilon);
        for (var i = 0; i < FastSteps + SettleSteps; i++)
        {
            var (a, b, c) = i < FastSteps ? FastCoefficients : SettleCoefficients;
            var gram = x.matmul(x.t());
            // (b·A + (c·A)·A)·X + a·X, in the order muon.py writes it.
            var polynomial = gram * b + (gram * c).matmul(gram);
            x = x * a + polynomial.matmul(x);
        }
        if (tall) x = x.t();
        return x.to(matrix.dtype).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>The factor a Muon update of a <paramref name="rows"/> × <paramref name="columns"/> matrix is multiplied by
    /// (besides the learning rate): 0.18·√max(rows, columns), which gives an orthogonal update an RMS of 0.18.</summary>
    public static double UpdateScale(long rows, long columns) => UpdateRms * Math.Sqrt(Math.Max(rows, columns));

    /// <inheritdoc />
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        var options = param_group.Options as Options ?? throw new ArgumentException("Muon's parameter groups carry Muon.Options.", nameof(param_group));
        options.LearningRate ??= _defaults.LearningRate;
        var parameters = param_group.Parameters.ToList();
        param_group.Parameters = parameters;
        foreach (var parameter in parameters)
        {
            if (options.UseMuon && parameter.dim() != 2)
                throw new ArgumentException($"Muon takes 2-D weight matrices; a parameter of shape [{string.Join(", ", parameter.shape)}] was put in a Muon group.", nameof(param_group));
            var state = new State(parameter) { First = zeros_like(parameter).DetachFromDisposeScope() };
            if (!options.UseMuon) state.Second = zeros_like(parameter).DetachFromDisposeScope();
            _state[parameter.Handle] = state;
        }
        _parameter_groups.Add(param_group);
    }

    /// <summary>One step of every parameter with a gradient.</summary>
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup<Options>>(group =>
    {
        var options = group.Options;
        var rate = options.LearningRate!.Value;
        foreach (var parameter in group.Parameters)
        {
            var gradient = parameter.grad;
            if (gradient is null) continue;
            var state = (State)_state[parameter.Handle];
            state.Step++;
            if (options.UseMuon) MuonStep(parameter, gradient, state, options, rate);
            else AdamWStep(parameter, gradient, state, options, rate);
        }
    }, closure);

    private static void MuonStep(Parameter parameter, Tensor gradient, State state, Options options, double rate)
    {
        var momentum = state.First;
        momentum.mul_(options.Momentum).add_(gradient);
        var nesterov = gradient.add(momentum, alpha: options.Momentum);
        var update = Orthogonalize(nesterov);
        parameter.mul_(1 - rate * options.WeightDecay);
        parameter.add_(update, alpha: -rate * UpdateScale(parameter.shape[0], parameter.shape[1]));
    }

    // PyTorch's AdamW (torch.optim.AdamW, single-tensor path), as TorchSharp's AdamW computes it.
    private static void AdamWStep(Parameter parameter, Tensor gradient, State state, Options options, double rate)
    {
        parameter.mul_(1 - rate * options.WeightDecay);
        var correction1 = 1 - Math.Pow(options.Beta1, state.Step);
        var correction2 = 1 - Math.Pow(options.Beta2, state.Step);
        state.First.mul_(options.Beta1).add_(gradient, alpha: 1 - options.Beta1);
        state.Second!.mul_(options.Beta2).addcmul_(gradient, gradient, value: 1 - options.Beta2);
        var denominator = (state.Second.sqrt() / Math.Sqrt(correction2)).add_(options.Epsilon);
        parameter.addcdiv_(state.First, denominator, value: -rate / correction1);
    }

    /// <summary>Releases the state tensors.</summary>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        foreach (var (_, state) in _state) ((State)state).Dispose();
    }
}
