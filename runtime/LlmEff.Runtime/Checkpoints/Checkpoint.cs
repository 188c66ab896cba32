using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmEff.Checkpoints;

/// <summary>What <see cref="Checkpoint.Load"/> hands back besides the weights it copied into the model.</summary>
/// <param name="TrainerState">The opaque string the trainer saved (its progress, as JSON), or null when there was none.</param>
/// <param name="Metadata">The file's whole metadata map, for diagnostics.</param>
public sealed record LoadedCheckpoint(string? TrainerState, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// Training checkpoints: a model's weights, optionally its optimizer's state and the trainer's progress, in
/// ONE safetensors file. One file is what makes a save all or nothing: the rename that publishes it is atomic,
/// so there is never a new weights file beside an old optimizer file. The weights keep the model's own
/// (Hugging Face) names, so other safetensors readers see an ordinary weights file.
/// </summary>
public static class Checkpoint
{
    /// <summary>Value of the <c>format</c> metadata key; bumped when the layout changes incompatibly.</summary>
    public const string Format = "llmeff-checkpoint/1";

    /// <summary>Name of the U8 tensor holding TorchSharp's serialised optimizer state.</summary>
    public const string OptimizerStateName = ReservedPrefix + "optimizer_state";

    // Names under this prefix belong to the trainer, never to the model.
    private const string ReservedPrefix = "__trainer__.";

    private const string FormatKey = "format";
    private const string ModelKey = "model";
    private const string ParametersKey = "parameters";
    private const string OptimizerKey = "optimizer";
    private const string TrainerKey = "trainer";

    // Enough names to recognise the pattern without burying the message.
    private const int NamesShown = 5;

    /// <summary>Writes a training checkpoint of <paramref name="model"/> to <paramref name="path"/> atomically.</summary>
    /// <param name="path">Destination; replaced only once the new file is complete on disk.</param>
    /// <param name="model">The model; its <c>state_dict()</c> is saved under its own names, from any device and dtype.</param>
    /// <param name="facts">The model's declaration facts; their name identifies the model when loading.</param>
    /// <param name="optimizer">Saved too when given, so training resumes with its moments and step counts.</param>
    /// <param name="trainerState">The trainer's progress as an opaque (JSON) string, or null.</param>
    /// <remarks>The optimizer state passes through memory as one block, so it must stay under 2 GiB.</remarks>
    /// <exception cref="ArgumentException"><paramref name="facts"/> describe another model than <paramref name="model"/>.</exception>
    public static void Save(string path, nn.Module<Tensor, Tensor> model, ModelFacts facts, OptimizerHelper? optimizer, string? trainerState)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(facts);
        RequireFactsOf(model, facts);
        if (Layers.QuantizedLinear.In(model).Any(l => l.Packed is not null))
            throw new ArgumentException($"This {facts.Name} runs from packed weights, which a checkpoint cannot hold; write it with PackedWeights.Save.", nameof(model));
        var tensors = model.state_dict().Select(p => (p.Key, p.Value)).ToList();
        RequireFinite(path, tensors);
        var metadata = new Dictionary<string, string>
        {
            [FormatKey] = Format,
            [ModelKey] = facts.Name,
            [ParametersKey] = facts.ParameterCount.ToString(CultureInfo.InvariantCulture),
        };
        if (trainerState is not null) metadata[TrainerKey] = trainerState;

        using var optimizerState = optimizer is null ? null : SerializeOptimizer(optimizer);
        if (optimizer is not null)
        {
            tensors.Add((OptimizerStateName, optimizerState!));
            metadata[OptimizerKey] = optimizer.GetType().Name;
        }
        SafeTensors.Save(path, tensors, metadata);
    }

    /// <summary>Writes only the weights (no optimizer, no trainer state): an export other safetensors readers can use.</summary>
    /// <param name="path">Destination; replaced only once the new file is complete on disk.</param>
    /// <param name="model">The model; its <c>state_dict()</c> is saved under its own names.</param>
    /// <param name="facts">The model's declaration facts.</param>
    public static void SaveWeights(string path, nn.Module<Tensor, Tensor> model, ModelFacts facts) =>
        Save(path, model, facts, optimizer: null, trainerState: null);

    /// <summary>
    /// Restores a checkpoint into an existing <paramref name="model"/> (in place, keeping its device and dtype)
    /// and, when given, <paramref name="optimizer"/>. Everything is checked before anything is changed: a file of
    /// another format or model, missing, unexpected or misshapen tensors, a damaged file, or missing optimizer
    /// state leave the model untouched.
    /// </summary>
    /// <param name="path">A file written by <see cref="Save"/> or <see cref="SaveWeights"/>.</param>
    /// <param name="model">Receives the weights.</param>
    /// <param name="facts">The model's declaration facts; their name must be the checkpoint's.</param>
    /// <param name="optimizer">Receives the optimizer state, which the file must then hold; null loads the weights alone.</param>
    /// <returns>The trainer state string and the file's metadata.</returns>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file cannot be restored into this model or optimizer; the message says why.
    /// If TorchSharp rejects the optimizer state part-way, the optimizer may be partly restored (the model is not).</exception>
    public static LoadedCheckpoint Load(string path, nn.Module<Tensor, Tensor> model, ModelFacts facts, OptimizerHelper? optimizer = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(facts);
        RequireFactsOf(model, facts);
        var targets = model.state_dict();

        // The header alone refuses a foreign file before gigabytes of data are read.
        CheckFits(SafeTensors.ReadHeader(path), targets, facts, optimizer);
        using var file = SafeTensors.Load(path);
        // Checked again on what was actually loaded: the file may have been replaced in between, and copy_
        // would silently broadcast a misshapen tensor.
        CheckFits(file.Header, targets, facts, optimizer);

        // The optimizer first: it is the only step that can still fail, and it fails before the model changes.
        if (optimizer is not null) RestoreOptimizer(path, optimizer, file.Tensors[OptimizerStateName]);
        using (no_grad())
        {
            foreach (var (name, target) in targets) target.copy_(file.Tensors[name]);
        }
        return new LoadedCheckpoint(file.Metadata.GetValueOrDefault(TrainerKey), file.Metadata);
    }

    private static void RequireFactsOf(nn.Module model, ModelFacts facts)
    {
        // Generated models name their module after the class, which is also the facts' name; a mismatch
        // would write a checkpoint that claims to be another model.
        if (model.GetName() != facts.Name)
            throw new ArgumentException($"The facts describe {facts.Name}, but the model is {model.GetName()}.", nameof(facts));
    }

    private static void CheckFits(SafeTensorsHeader header, Dictionary<string, Tensor> targets, ModelFacts facts, OptimizerHelper? optimizer)
    {
        var path = header.Path;
        var metadata = header.Metadata;
        if (!metadata.TryGetValue(FormatKey, out var format))
            throw Invalid(path, $"is not an LlmEff checkpoint: its metadata has no '{FormatKey}' entry (a plain safetensors weights file?)");
        if (format != Format)
            throw Invalid(path, $"is not a checkpoint this version reads: its format is '{format}', expected '{Format}'");
        var savedModel = metadata.GetValueOrDefault(ModelKey);
        if (savedModel != facts.Name)
            throw Invalid(path, $"is a checkpoint of {(savedModel is null ? "an unnamed model" : $"model '{savedModel}'")}, not of '{facts.Name}'");

        var missing = targets.Keys.Where(name => !header.Tensors.ContainsKey(name)).Order(StringComparer.Ordinal).ToList();
        var unexpected = header.Tensors.Keys.Where(name => !targets.ContainsKey(name) && !name.StartsWith(ReservedPrefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
        var misshapen = targets
            .Where(t => header.Tensors.TryGetValue(t.Key, out var entry) && !entry.Shape.SequenceEqual(t.Value.shape))
            .OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => $"{t.Key} expected {SafeTensors.FormatShape(t.Value.shape)}, found {SafeTensors.FormatShape(header.Tensors[t.Key].Shape)}")
            .ToList();
        if (missing.Count + unexpected.Count + misshapen.Count > 0)
        {
            var problems = new List<string>();
            if (missing.Count > 0) problems.Add($"{Count(missing.Count, "tensor")} missing ({Abridged(missing)})");
            if (unexpected.Count > 0) problems.Add($"{Count(unexpected.Count, "unexpected tensor")} ({Abridged(unexpected)})");
            if (misshapen.Count > 0) problems.Add($"{Count(misshapen.Count, "shape mismatch", "shape mismatches")} ({Abridged(misshapen)})");
            throw Invalid(path, $"does not fit this {facts.Name}: {string.Join("; ", problems)}");
        }

        if (optimizer is null) return;
        if (!header.Tensors.TryGetValue(OptimizerStateName, out var state))
            throw Invalid(path, "holds no optimizer state (it was saved without an optimizer), so the optimizer passed cannot be restored; pass no optimizer to load the weights alone");
        if (state.DType != ScalarType.Byte || state.Shape.Count != 1)
            throw Invalid(path, $"has a malformed '{OptimizerStateName}': {state.DTypeName} {SafeTensors.FormatShape(state.Shape)}, expected U8 of one dimension");
        var optimizerName = optimizer.GetType().Name;
        if (metadata.TryGetValue(OptimizerKey, out var savedOptimizer) && savedOptimizer != optimizerName)
            throw Invalid(path, $"holds {savedOptimizer} optimizer state, which a {optimizerName} cannot take");
    }

    private static Tensor SerializeOptimizer(OptimizerHelper optimizer)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(writer);
        var state = empty(buffer.Length, ScalarType.Byte);
        state.bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        return state;
    }

    private static void RestoreOptimizer(string path, OptimizerHelper optimizer, Tensor state)
    {
        var bytes = state.bytes.ToArray();
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
        try
        {
            optimizer.load_state_dict(reader);
        }
        // TorchSharp signals an optimizer of another type with InvalidDataException, other parameter groups
        // or shapes or dtypes with ArgumentException, and a short stream with EndOfStreamException.
        catch (Exception error) when (error is InvalidDataException or ArgumentException or IOException)
        {
            throw Invalid(path, $"has optimizer state that does not fit this optimizer: {error.Message}", error);
        }
        var left = reader.BaseStream.Length - reader.BaseStream.Position;
        if (left != 0)
            throw Invalid(path, $"has optimizer state with {left} bytes left over after restoring it: it was saved from a differently configured optimizer");
    }

    private static string Count(int count, string singular, string? plural = null) =>
        count == 1 ? $"1 {singular}" : $"{count} {plural ?? singular + "s"}";

    private static string Abridged(IReadOnlyList<string> items) =>
        items.Count <= NamesShown ? string.Join(", ", items) : $"{string.Join(", ", items.Take(NamesShown))} and {items.Count - NamesShown} more";

    private static InvalidDataException Invalid(string path, string problem, Exception? inner = null) => new($"{path} {problem}.", inner);

    /// <summary>A checkpoint of a diverged model would be worse than none: resuming from it can only fail.</summary>
    private static void RequireFinite(string path, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        foreach (var (name, tensor) in tensors)
        {
            if (!tensor.is_floating_point()) continue;
            using var finite = tensor.isfinite().all();
            if (!finite.item<bool>())
                throw new InvalidDataException($"Refusing to write {path}: {name} holds NaN or infinite values (the model has diverged).");
        }
    }
}
