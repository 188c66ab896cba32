namespace LlmEff.Generator;

/// <summary>Names of the incremental pipeline's steps, for tests that assert what was cached.</summary>
internal static class TrackingNames
{
    public const string Declarations = nameof(Declarations);
    public const string Models = nameof(Models);
}
