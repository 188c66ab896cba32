using System;

namespace LlmEff;

/// <summary>
/// A declared model's PyTorch twin, as the generator wrote it: the Python source of a <c>torch.nn.Module</c> with the
/// same architecture and the same parameter names and shapes, or, for a declaration using a feature that has no port
/// yet, the reason it has none. <c>llmeff export-pytorch</c> writes <see cref="Source"/> to <see cref="FileName"/>.
/// </summary>
public sealed record PyTorchExport
{
    private PyTorchExport(string? fileName, string? source, string? refusal)
    {
        FileName = fileName;
        Source = source;
        Refusal = refusal;
    }

    /// <summary>An exportable model: <paramref name="fileName"/> (the class name + ".py") and its Python source.</summary>
    public static PyTorchExport Module(string fileName, string source)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        ArgumentException.ThrowIfNullOrEmpty(source);
        return new PyTorchExport(fileName, source, null);
    }

    /// <summary>A model the generator cannot write as PyTorch; <paramref name="reason"/> names the feature.</summary>
    public static PyTorchExport Refused(string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        return new PyTorchExport(null, null, reason);
    }

    /// <summary>File name for the module (<c>TinyDecoder.py</c>); null when refused.</summary>
    public string? FileName { get; }

    /// <summary>The Python source; null when refused.</summary>
    public string? Source { get; }

    /// <summary>Why there is no PyTorch twin (names the feature); null when there is one.</summary>
    public string? Refusal { get; }

    /// <summary>Whether the model has a PyTorch twin.</summary>
    public bool IsAvailable => Source is not null;
}
