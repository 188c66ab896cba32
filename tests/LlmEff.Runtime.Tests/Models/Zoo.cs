using System.Collections.Generic;
using LlmEff.Samples;
using static TorchSharp.torch;

namespace LlmEff.Runtime.Tests.Models;

/// <summary>Every small declared model the tests build for real, with its compile-time facts.</summary>
public static class Zoo
{
    public static IEnumerable<DeclaredModelType> SmallModels()
    {
        foreach (var model in ModelCatalog.In(typeof(Zoo).Assembly)) yield return model;
        yield return ModelCatalog.Find(typeof(TinyDecoder).Assembly, nameof(TinyDecoder));
        yield return ModelCatalog.Find(typeof(TinyMoe).Assembly, nameof(TinyMoe));
        yield return ModelCatalog.Find(typeof(TinyMoeDeepSeek).Assembly, nameof(TinyMoeDeepSeek));
        yield return ModelCatalog.Find(typeof(TinyHybrid).Assembly, nameof(TinyHybrid));
        yield return ModelCatalog.Find(typeof(TinyLatent).Assembly, nameof(TinyLatent));
        yield return ModelCatalog.Find(typeof(TinySparse).Assembly, nameof(TinySparse));
    }

    public static TheoryDataFor Names() => NamesWhere(_ => true);

    public static TheoryDataFor NamesWhere(System.Func<ModelFacts, bool> keep)
    {
        var data = new TheoryDataFor();
        foreach (var model in SmallModels())
            if (keep(model.Facts)) data.Add(model.Facts.Name);
        return data;
    }

    public static DeclaredModelType ByName(string name)
    {
        foreach (var model in SmallModels())
            if (model.Facts.Name == name) return model;
        throw new KeyNotFoundException(name);
    }

    public static long CountElements(nn.Module module)
    {
        long total = 0;
        foreach (var parameter in module.parameters()) total += parameter.numel();
        return total;
    }
}

/// <summary>Model names as xunit theory data.</summary>
public sealed class TheoryDataFor : TheoryData<string>;
