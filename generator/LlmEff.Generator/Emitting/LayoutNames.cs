namespace LlmEff.Generator.Emitting;

/// <summary>Field names of one parameter-naming scheme. Fields become TorchSharp component names, so these
/// strings are the checkpoint's tensor names (e.g. model.layers.0.self_attn.q_proj.weight).</summary>
internal sealed class LayoutNames
{
    public static readonly LayoutNames Llama = new()
    {
        Stack = "model", TokenEmbedding = "embed_tokens", PositionEmbedding = "embed_positions", Layers = "layers",
        FinalNorm = "norm", Attention = "self_attn", AttentionNorm = "input_layernorm", Mlp = "mlp",
        MlpNorm = "post_attention_layernorm", OutputProjection = "o_proj", Rotary = "rotary_emb",
        FusedProjections = false,
    };

    public static readonly LayoutNames Gpt2 = new()
    {
        Stack = "transformer", TokenEmbedding = "wte", PositionEmbedding = "wpe", Layers = "h",
        FinalNorm = "ln_f", Attention = "attn", AttentionNorm = "ln_1", Mlp = "mlp",
        MlpNorm = "ln_2", OutputProjection = "c_proj", Rotary = "rotary_emb",
        FusedProjections = true,
    };

    public string Stack { get; private set; } = "";
    public string TokenEmbedding { get; private set; } = "";
    public string PositionEmbedding { get; private set; } = "";
    public string Layers { get; private set; } = "";
    public string FinalNorm { get; private set; } = "";
    public string Attention { get; private set; } = "";
    public string AttentionNorm { get; private set; } = "";
    public string Mlp { get; private set; } = "";
    public string MlpNorm { get; private set; } = "";
    public string OutputProjection { get; private set; } = "";
    public string Rotary { get; private set; } = "";

    /// <summary>GPT-2 keeps Q, K, V in one matrix (c_attn) and gate/up in one (c_fc), stored input × output.</summary>
    public bool FusedProjections { get; private set; }
}
