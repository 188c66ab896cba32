using System;
using System.Collections.Generic;
using System.Linq;
using LlmEff.Export;

namespace LlmEff;

/// <summary>
/// A declared model as llama.cpp reads it, as the generator rendered it from the layout plan: the llama.cpp
/// architecture, the metadata its loader expects, and which GGUF tensor each state-dict tensor becomes (with any
/// transform); or, for a declaration with a feature llama.cpp has no kind for yet, the reason, naming the feature.
/// <see cref="GgufExporter"/> writes the file.
/// </summary>
public sealed record GgufExport
{
    private GgufExport(string? architecture, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorMapping> tensors, string? refusal, string? note = null)
    {
        Note = note;
        Architecture = architecture;
        Metadata = metadata;
        Tensors = tensors;
        Refusal = refusal;
    }

    /// <summary>An exportable model: llama.cpp's <paramref name="architecture"/> name, its metadata (without
    /// <c>general.alignment</c> or <c>general.file_type</c>, which the writer and exporter add), its tensor table and
    /// what llama.cpp runs differently from our module, if anything (<see cref="Note"/>).</summary>
    public static GgufExport Model(string architecture, IEnumerable<KeyValuePair<string, GgufValue>> metadata, IEnumerable<GgufTensorMapping> tensors, string? note = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(architecture);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(tensors);
        return new GgufExport(architecture, metadata.ToArray(), tensors.ToArray(), null, note);
    }

    /// <summary>A model llama.cpp cannot run yet; <paramref name="reason"/> names the feature.</summary>
    public static GgufExport Refused(string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        return new GgufExport(null, Array.Empty<KeyValuePair<string, GgufValue>>(), Array.Empty<GgufTensorMapping>(), reason);
    }

    /// <summary>llama.cpp's architecture name (<c>llama</c>); null when refused.</summary>
    public string? Architecture { get; }

    /// <summary>Metadata keys and values in the order they are written; empty when refused.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    /// <summary>Every state-dict tensor and the GGUF tensor it becomes, in file order; empty when refused.</summary>
    public IReadOnlyList<GgufTensorMapping> Tensors { get; }

    /// <summary>Why the model cannot be exported (names the feature); null when it can.</summary>
    public string? Refusal { get; }

    /// <summary>What llama.cpp runs differently from our module, for the user (a projection written more than once
    /// because llama.cpp has no kind for aliased projections, and what that costs its cache); null when nothing.</summary>
    public string? Note { get; }

    /// <summary>Whether the model can be exported to GGUF.</summary>
    public bool IsAvailable => Architecture is not null;
}
