using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>
/// What fine-tuning methods need to know about a model, for decoder-only and encoder-decoder models alike:
/// its root module (walked by the injector), its shapes, and the slot for input-side adapters.
/// </summary>
public interface IPeftHost
{
    /// <summary>The root module.</summary>
    nn.Module Module { get; }
    /// <summary>The input embedding matrix [V, d] (device and dtype of new parameters, text-initialised prompts).</summary>
    Tensor EmbeddingWeight { get; }
    /// <summary>Model width d.</summary>
    int HiddenSize { get; }
    /// <summary>Number of blocks (per stack for encoder-decoder models).</summary>
    int NumLayers { get; }
    /// <summary>Query heads.</summary>
    int NumHeads { get; }
    /// <summary>Key/value heads.</summary>
    int NumKeyValueHeads { get; }
    /// <summary>Per-head width.</summary>
    int HeadDim { get; }
    /// <summary>PEFT task type: CAUSAL_LM or SEQ_2_SEQ_LM.</summary>
    string TaskType { get; }
    /// <summary>The attached input-side adapter, if any.</summary>
    IInputAdapter? InputAdapter { get; }
    /// <summary>Attaches an input-side adapter as the child <c>prompt_encoder</c>.</summary>
    void SetInputAdapter<T>(T adapter) where T : nn.Module, IInputAdapter;

    /// <summary>Encoder-decoder models: blocks of the decoder stack (<see cref="NumLayers"/> counts the encoder's); null for decoder-only models.</summary>
    int? NumDecoderLayers => null;

    /// <summary>Module names methods use when their config names none (PEFT's per-architecture defaults); Llama-family names unless the model says otherwise.</summary>
    PeftTargetDefaults TargetDefaults => PeftTargetDefaults.LlamaFamily;
}

/// <summary>PEFT task types (the <c>task_type</c> of adapter_config.json).</summary>
public static class PeftTaskTypes
{
    /// <summary>Decoder-only language models.</summary>
    public const string CausalLM = "CAUSAL_LM";
    /// <summary>Encoder-decoder language models.</summary>
    public const string Seq2SeqLM = "SEQ_2_SEQ_LM";
}

/// <summary>Which stack of an encoder-decoder model.</summary>
public enum ModelStack
{
    /// <summary>The encoder (reads the input).</summary>
    Encoder,
    /// <summary>The decoder (writes the output).</summary>
    Decoder,
}

/// <summary>
/// An architecture's module names for fine-tuning methods whose configs leave targets to the model, following the
/// Python PEFT library's per-<c>model_type</c> mappings where it has them. Entries are names or dotted name suffixes
/// matched against full module names (<c>x</c> matches <c>a.b.x</c>).
/// </summary>
public sealed record PeftTargetDefaults
{
    /// <summary>LoRA targets (PEFT: q_proj, v_proj for Llama; q, v for T5).</summary>
    public required IReadOnlyList<string> Lora { get; init; }
    /// <summary>(IA)3 targets (PEFT: k_proj, v_proj, down_proj for Llama; k, v, wo for T5).</summary>
    public required IReadOnlyList<string> IA3 { get; init; }
    /// <summary>(IA)3 targets whose input rather than output is scaled (PEFT: down_proj; wo).</summary>
    public required IReadOnlyList<string> IA3FeedForward { get; init; }
    /// <summary>BitFit: linear layers whose (possibly added) bias trains: every projection in the blocks.</summary>
    public required IReadOnlyList<string> BitFit { get; init; }
    /// <summary>Serial bottleneck adapters: the last projection of each self-attention sublayer.</summary>
    public required IReadOnlyList<string> AttentionOutputs { get; init; }
    /// <summary>Serial bottleneck adapters: the last projection of each cross-attention sublayer (none for decoder-only models).</summary>
    public IReadOnlyList<string> CrossAttentionOutputs { get; init; } = [];
    /// <summary>Serial bottleneck adapters: the last projection of each feed-forward sublayer.</summary>
    public required IReadOnlyList<string> MlpOutputs { get; init; }
    /// <summary>Parallel bottleneck adapters: the self-attention modules.</summary>
    public required IReadOnlyList<string> AttentionSublayers { get; init; }
    /// <summary>Parallel bottleneck adapters: the cross-attention modules (none for decoder-only models).</summary>
    public IReadOnlyList<string> CrossAttentionSublayers { get; init; } = [];
    /// <summary>Parallel bottleneck adapters: the feed-forward modules.</summary>
    public required IReadOnlyList<string> MlpSublayers { get; init; }

    /// <summary>Llama, Mistral, Qwen2.</summary>
    public static PeftTargetDefaults LlamaFamily { get; } = new()
    {
        Lora = ["q_proj", "v_proj"],
        IA3 = ["k_proj", "v_proj", "down_proj"],
        IA3FeedForward = ["down_proj"],
        BitFit = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        AttentionOutputs = ["self_attn.o_proj"],
        MlpOutputs = ["mlp.down_proj"],
        AttentionSublayers = ["self_attn"],
        MlpSublayers = ["mlp"],
    };

    /// <summary>T5 (encoder and decoder stacks).</summary>
    public static PeftTargetDefaults T5 { get; } = new()
    {
        Lora = ["q", "v"],
        IA3 = ["k", "v", "wo"],
        IA3FeedForward = ["wo"],
        BitFit = ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"],
        AttentionOutputs = ["SelfAttention.o"],
        CrossAttentionOutputs = ["EncDecAttention.o"],
        MlpOutputs = ["DenseReluDense.wo"],
        AttentionSublayers = ["SelfAttention"],
        CrossAttentionSublayers = ["EncDecAttention"],
        MlpSublayers = ["DenseReluDense"],
    };

    /// <summary>Does the full module name match one of <paramref name="names"/> (equal, or ending with "." + entry)?</summary>
    public static bool Matches(string moduleName, IReadOnlyList<string> names) =>
        names.Any(n => moduleName == n || moduleName.EndsWith("." + n, StringComparison.Ordinal));
}
