using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.Generator.Emitting;

/// <summary>
/// Qualifies every name the generated C# takes from TorchSharp, the runtime or the BCL with <c>global::</c>, so the
/// generated half compiles in any namespace next to any user type: a user's <c>Tensor</c>, <c>nn</c> or <c>Attention</c>
/// beside the model would otherwise win name lookup over a using directive. The emitter writes the short names (its
/// templates stay readable); this one pass over the syntax tree qualifies them, and the file has no using directive.
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
        Add("TorchSharp.Modules", "Linear", "Embedding", "ModuleList", "LayerNorm", "GELU", "Parameter");
        Add("LlmEff", "IDeclaredModel", "IAttentionScores", "ModelFacts", "QuantFormat", "QuantTarget", "RouterScoring", "ExpertBalance");
        Add("LlmEff.Generation", "DecodingCache", "LayerState", "IDecoder");
        Add("LlmEff.Layers", "Attention", "RotaryEmbedding", "RmsNorm", "Init", "KeyValueShare", "QuantizedLinear", "TransposedLinear",
            "WeightQuantization", "ExpertRouter", "RouterOptions", "ExpertDispatch", "ActivationCheckpoint", "PositionalScoreMixer",
            "LightningIndexer", "LatentAttention", "LatentAttentionOptions", "ShortConv");
        Add("LlmEff.Layers", "HyperConnections");
        return names;
    }

    public static string Qualify(string source)
    {
        var root = CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest)).GetRoot();
        return new Qualifier().Visit(root).ToFullString();
    }

    private sealed class Qualifier : CSharpSyntaxRewriter
    {
        // Into doc comments too: a cref such as forward(Tensor) must resolve to TorchSharp's Tensor as well.
        public Qualifier() : base(visitIntoStructuredTrivia: true) { }

        public override SyntaxNode? VisitIdentifierName(IdentifierNameSyntax node) =>
            LookedUp(node) && Qualified.TryGetValue(node.Identifier.ValueText, out var full)
                ? SyntaxFactory.ParseName(full).WithTriviaFrom(node)
                : node;

        public override SyntaxNode? VisitGenericName(GenericNameSyntax node)
        {
            var visited = (GenericNameSyntax)base.VisitGenericName(node)!;
            if (!LookedUp(node) || !Qualified.TryGetValue(node.Identifier.ValueText, out var full)) return visited;
            var container = SyntaxFactory.ParseName(full.Substring(0, full.LastIndexOf('.')));
            return SyntaxFactory.QualifiedName(container, visited.WithoutTrivia()).WithTriviaFrom(node);
        }

        /// <summary>Only the leftmost name of a dotted name is looked up in scope; a named argument is no lookup at all.</summary>
        private static bool LookedUp(SimpleNameSyntax node) => node.Parent switch
        {
            MemberAccessExpressionSyntax access => access.Expression == node,
            QualifiedNameSyntax qualified => qualified.Left == node,
            AliasQualifiedNameSyntax => false,
            NameColonSyntax or NameEqualsSyntax => false,
            _ => true,
        };
    }
}
