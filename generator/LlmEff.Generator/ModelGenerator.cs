using System.Threading;
using LlmEff.Generator.Emitting;
using LlmEff.Generator.Model;
using LlmEff.Generator.Parsing;
using LlmEff.Generator.Planning;
using LlmEff.Generator.Sizing;
using LlmEff.Generator.Validation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LlmEff.Generator;

/// <summary>
/// Finds classes marked [Model], turns their attributes into an equatable <see cref="ModelToEmit"/>, and emits
/// the module, its PyTorch twin and its GGUF (llama.cpp) description. Invalid declarations emit nothing: <see cref="Analyzers.ModelDeclarationAnalyzer"/> reports why,
/// at the offending argument.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class ModelGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var declarations = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                AttributeNames.Model,
                predicate: static (node, _) => node is ClassDeclarationSyntax,
                transform: static (syntax, token) => Parse(syntax, token))
            .WithTrackingName(TrackingNames.Declarations);

        var models = declarations
            .Where(static model => model is not null)
            .Select(static (model, _) => model!)
            .WithTrackingName(TrackingNames.Models);

        context.RegisterSourceOutput(models, static (output, model) =>
            output.AddSource(ModelEmitter.HintName(model.Target), ModelEmitter.Emit(model)));

        // The PyTorch twin goes in a file of its own: a separate output, so its emitter changes independently.
        context.RegisterSourceOutput(models, static (output, model) =>
            output.AddSource(PyTorchEmitter.HintName(model.Target), PyTorchEmitter.Emit(model)));

        // So is the GGUF description (llama.cpp's metadata and tensor table), one more renderer of the plan.
        context.RegisterSourceOutput(models, static (output, model) =>
            output.AddSource(GgufEmitter.HintName(model.Target), GgufEmitter.Emit(model)));
    }

    private static ModelToEmit? Parse(GeneratorAttributeSyntaxContext syntax, CancellationToken token)
    {
        if (syntax.TargetSymbol is not INamedTypeSymbol type) return null;
        // A partial class with several declarations is visited once per declaration; emit from the first only.
        if (type.DeclaringSyntaxReferences.Length > 1 && type.DeclaringSyntaxReferences[0].GetSyntax(token) != syntax.TargetNode) return null;
        if (TypeShape.Check(type).Problem != TypeShape.Problem.None) return null;
        token.ThrowIfCancellationRequested();
        var result = ModelValidator.Validate(ModelReader.Read(type), type.Name);
        // The validator decided the layout once; every back end renders this plan and sizing added it up.
        if (result.Spec is not { } spec || result.Plan is not { } plan || result.Sizes is not { } sizes) return null;
        return new ModelToEmit(ModelReader.Target(type), spec, plan, sizes);
    }
}
