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

    /// <summary>
    /// The module layout (names and nesting of the blocks' modules); fine-tuning methods key their default target
    /// modules by it, as the Python PEFT library does by <c>model_type</c>.
    /// </summary>
    ModelLayout Layout { get; }
}

/// <summary>
/// Module layouts: the models of one layout name and nest their modules alike (every <see cref="DecoderFamily"/> has
/// the Llama layout), so a fine-tuning method's default targets depend only on the layout.
/// </summary>
public enum ModelLayout
{
    /// <summary>
    /// Llama-style decoder-only models (Llama, Mistral, Qwen2): blocks of <c>self_attn</c> (q_proj, k_proj, v_proj,
    /// o_proj) and <c>mlp</c> (gate_proj, up_proj, down_proj).
    /// </summary>
    Llama,
    /// <summary>
    /// T5 encoder-decoder models: blocks of <c>SelfAttention</c> and, in the decoder, <c>EncDecAttention</c> (q, k, v, o)
    /// and <c>DenseReluDense</c> (wi or wi_0/wi_1, wo).
    /// </summary>
    T5,
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
