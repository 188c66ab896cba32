using Microsoft.CodeAnalysis;

namespace LlmEff.Generator.Validation;

/// <summary>One problem with a declaration: which diagnostic, and which attribute argument caused it
/// (null argument: the attribute as a whole; null attribute: the class).</summary>
internal sealed class ConfigurationIssue
{
    /// <summary><see cref="Argument"/> value that stands for the attribute's first positional argument.</summary>
    public const string ConstructorArgument = "#0";

    public ConfigurationIssue(DiagnosticDescriptor descriptor, string? attribute, string? argument, params object[] messageArguments)
    {
        Descriptor = descriptor;
        Attribute = attribute;
        Argument = argument;
        MessageArguments = messageArguments;
    }

    public DiagnosticDescriptor Descriptor { get; }
    public string? Attribute { get; }
    public string? Argument { get; }
    public object[] MessageArguments { get; }
}
