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
}
