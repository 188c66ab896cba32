namespace LlmEff.Generator.Planning;

/// <summary>Field names of one parameter-naming scheme. Fields become TorchSharp component names and PyTorch
/// attribute names, so these strings are the checkpoint's tensor names (e.g. model.layers.0.self_attn.q_proj.weight).</summary>
internal sealed record NamingScheme
{
    public static readonly NamingScheme Llama = new()
    {
        Stack = "model", TokenEmbedding = "embed_tokens", PositionEmbedding = "embed_positions", Layers = "layers",
        FinalNorm = "norm", Attention = "self_attn", AttentionNorm = "input_layernorm", Mlp = "mlp",
        MlpNorm = "post_attention_layernorm", OutputProjection = "o_proj", Rotary = "rotary_emb",
        FeedForwardInput = "up_proj", FeedForwardGate = "gate_proj", FeedForwardOutput = "down_proj",
        FusedProjections = false,
    };

    public static readonly NamingScheme Gpt2 = new()
    {
        Stack = "transformer", TokenEmbedding = "wte", PositionEmbedding = "wpe", Layers = "h",
        FinalNorm = "ln_f", Attention = "attn", AttentionNorm = "ln_1", Mlp = "mlp",
        MlpNorm = "ln_2", OutputProjection = "c_proj", Rotary = "rotary_emb",
        FeedForwardInput = "c_fc", FeedForwardGate = "c_fc", FeedForwardOutput = "c_proj",
        FusedProjections = true,
    };

    public string Stack { get; private init; } = "";
    public string TokenEmbedding { get; private init; } = "";
    public string PositionEmbedding { get; private init; } = "";
    public string Layers { get; private init; } = "";
    public string FinalNorm { get; private init; } = "";
    public string Attention { get; private init; } = "";
    public string AttentionNorm { get; private init; } = "";
    public string Mlp { get; private init; } = "";
    public string MlpNorm { get; private init; } = "";
    public string OutputProjection { get; private init; } = "";
    public string Rotary { get; private init; } = "";
    public string FeedForwardInput { get; private init; } = "";
    public string FeedForwardGate { get; private init; } = "";
    public string FeedForwardOutput { get; private init; } = "";

    /// <summary>GPT-2 keeps Q, K, V in one matrix (c_attn) and gate/up in one (c_fc), stored input × output.</summary>
    public bool FusedProjections { get; private init; }
}
