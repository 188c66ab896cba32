using System.Collections.Generic;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.Generator.Emitting;

/// <summary>
/// Qualifies every name the generated C# takes from TorchSharp, the runtime or the BCL with <c>global::</c>, so the
/// generated half compiles in any namespace next to any user type: a user's <c>Tensor</c>, <c>nn</c> or <c>Attention</c>
/// beside the model would otherwise win name lookup over a using directive. The emitter writes the short names (its
/// templates stay readable); one pass over the syntax tree finds them and qualifies them, and the file has no using directive.
/// A name missing here fails to compile in every generated-source test, since nothing else imports it.
/// </summary>
internal static class GlobalNames
{
    private static readonly Dictionary<string, string> Qualified = Build();

    private static Dictionary<string, string> Build()
    {
        var names = new Dictionary<string, string>
        {
            ["System"] = "global::System",
            ["torch"] = "global::TorchSharp.torch",
            ["nn"] = "global::TorchSharp.torch.nn",
            ["Tensor"] = "global::TorchSharp.torch.Tensor",
            ["Device"] = "global::TorchSharp.torch.Device",
            ["ScalarType"] = "global::TorchSharp.torch.ScalarType",
            ["NewDisposeScope"] = "global::TorchSharp.torch.NewDisposeScope",
        };
        void Add(string ns, params string[] types)
        {
            foreach (var type in types) names[type] = $"global::{ns}.{type}";
        }
        Add("TorchSharp.Modules", "Embedding", "ModuleList", "LayerNorm", "GELU", "Parameter");
        Add("LlmEff", "IDeclaredModel", "IAttentionScores", "ModelFacts", "QuantFormat", "QuantTarget", "RouterScoring", "ExpertBalance");
        Add("LlmEff.Generation", "DecodingCache", "LayerState", "IDecoder");
        Add("LlmEff.Layers", "Attention", "RotaryEmbedding", "RmsNorm", "Init", "KeyValueShare", "Linear", "QuantizedLinear", "TransposedLinear",
            "WeightQuantization", "ExpertRouter", "RouterOptions", "ExpertDispatch", "ActivationCheckpoint", "PositionalScoreMixer",
            "LightningIndexer", "LatentAttention", "LatentAttentionOptions", "ShortConv",
            "CompressedAttention", "CompressedAttentionOptions", "CompressedAttentionKind");
        Add("LlmEff.Quantization", "IndexerPrecision");
        Add("LlmEff.Kernels", "SingleTokenStep", "SingleTokenDecoder", "DecoderBlockWeights", "BlockMixer", "AttentionMixer", "ConvolutionMixer", "LatentMixer",
            "BlockFeedForward", "SwiGluWeights", "MixtureWeights");
        Add("LlmEff.Layers", "HyperConnections");
        return names;
    }

    private static readonly CSharpParseOptions Options = new(LanguageVersion.Latest, DocumentationMode.Parse);

    /// <summary>
    /// <paramref name="source"/> with every such name qualified where name lookup starts: not after a dot or <c>::</c>,
    /// not as a named argument, doc comments (crefs) included. The text is only tokenized and spliced: parsing it into a
    /// tree and rewriting that was most of a clean generator run (a profile of 100 models, 2026-11-30). What the
    /// tokens cannot tell (a member declared under one of these names) the generated-source tests would catch: every
    /// layout option compiles, next to user types named like these.
    /// </summary>
    public static string Qualify(string source)
    {
        var text = new StringBuilder(source.Length + source.Length / 4);
        var copied = 0;
        void Splice(IReadOnlyList<SyntaxToken> tokens)
        {
            for (var i = 0; i < tokens.Count; i++)
            {
                var token = tokens[i];
                foreach (var trivia in token.LeadingTrivia)
                    if (trivia.HasStructure) Splice(trivia.GetStructure()!.DescendantTokens(descendIntoTrivia: true).ToList());
                if (!token.IsKind(SyntaxKind.IdentifierToken) || !Qualified.TryGetValue(token.ValueText, out var full)) continue;
                var before = i > 0 ? tokens[i - 1].Kind() : SyntaxKind.None;
                var after = i + 1 < tokens.Count ? tokens[i + 1].Kind() : SyntaxKind.None;
                // Only the leftmost name of a dotted name is looked up in scope; a named argument is no lookup at all.
                if (before is SyntaxKind.DotToken or SyntaxKind.ColonColonToken || after is SyntaxKind.ColonToken) continue;
                text.Append(source, copied, token.SpanStart - copied).Append(full);
                copied = token.Span.End;
            }
        }
        Splice(SyntaxFactory.ParseTokens(source, options: Options).ToList());
        return text.Append(source, copied, source.Length - copied).ToString();
    }
}
