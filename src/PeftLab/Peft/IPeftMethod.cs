using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Peft;

/// <summary>
/// One fine-tuning method: how it attaches to a model, which tensors it saves and how it merges.
/// Implementations live in one folder each and are registered in <see cref="PeftRegistry"/>.
/// Input-side methods (prompt, prefix) attach an <see cref="IInputAdapter"/> instead of swapping modules.
/// </summary>
public interface IPeftMethod
{
    /// <summary>Which method this is.</summary>
    PeftMethodKind Kind { get; }

    /// <summary><c>peft_type</c> in adapter_config.json (PEFT's own names where PEFT has the method), or null when no adapter file exists.</summary>
    string? PeftType { get; }

    /// <summary>The config with every knob at its default.</summary>
    PeftConfig DefaultConfig { get; }

    /// <summary>Reads the method's adapter_config.json fields (peft_type and task_type are checked by the caller).</summary>
    PeftConfig ReadAdapterConfig(AdapterJson json);

    /// <summary>Writes the method's adapter_config.json fields (without peft_type/task_type).</summary>
    JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model);

    /// <summary>
    /// Injects the method into <paramref name="model"/> (all parameters are already frozen) and makes its own
    /// parameters trainable. New parameters are initialised from the context's generator.
    /// </summary>
    void Attach(IPeftHost model, PeftConfig config, AttachContext context);

    /// <summary>Tensors to save, keyed as in the adapter file (default: the trainable parameters).</summary>
    IReadOnlyDictionary<string, Tensor> AdapterState(IPeftHost model, PeftConfig config) => PeftState.TrainableState(model.Module);

    /// <summary>Loads adapter tensors into an attached model; every key must match (errors name both sides). Default: into the trainable parameters.</summary>
    void LoadAdapterState(IPeftHost model, PeftConfig config, ITensorSource source) =>
        PeftState.LoadStrict(PeftState.TrainableState(model.Module), source);

    /// <summary>Whether <see cref="Merge"/> can fold the method into the base weights.</summary>
    bool CanMerge { get; }

    /// <summary>Folds the method into the base weights and removes its modules.</summary>
    void Merge(IPeftHost model, PeftConfig config);
}

/// <summary>What a method may need while attaching besides its config.</summary>
/// <param name="Generator">Seeded generator for new parameters.</param>
/// <param name="Tokenize">Tokenizer for text-initialised methods (prompt tuning from text), if available.</param>
public sealed record AttachContext(Generator Generator, Func<string, int[]>? Tokenize = null);

/// <summary>The one place methods are registered.</summary>
public static class PeftRegistry
{
    private static readonly IPeftMethod[] Methods =
    [
        new Full.FullMethod(),
        new Lora.LoraMethod(),
        new Adapter.AdapterMethod(),
        new PrefixTuning.PrefixTuningMethod(),
        new PromptTuning.PromptTuningMethod(),
        new IA3.IA3Method(),
        new BitFit.BitFitMethod(),
    ];

    /// <summary>All registered methods.</summary>
    public static IReadOnlyList<IPeftMethod> All => Methods;

    /// <summary>The name a method has in configs (<c>method.name</c>), e.g. lora, prompt_tuning.</summary>
    public static string NameOf(PeftMethodKind kind) => kind switch
    {
        PeftMethodKind.PrefixTuning => "prefix_tuning",
        PeftMethodKind.PromptTuning => "prompt_tuning",
        _ => kind.ToString().ToLowerInvariant(),
    };

    /// <summary>Config record type per method name, for config binding.</summary>
    public static IReadOnlyDictionary<string, Type> ConfigTypes { get; } =
        Methods.ToDictionary(m => NameOf(m.Kind), m => m.DefaultConfig.GetType());

    /// <summary>The method of a kind.</summary>
    public static IPeftMethod Get(PeftMethodKind kind) => Methods.First(m => m.Kind == kind);

    /// <summary>The method whose adapter files carry <paramref name="peftType"/>.</summary>
    public static IPeftMethod ForPeftType(string peftType, string source) =>
        Methods.FirstOrDefault(m => m.PeftType == peftType)
        ?? throw new PeftConfigException($"{source}: peft_type '{peftType}' is not supported; supported: {string.Join(", ", Methods.Where(m => m.PeftType is not null).Select(m => m.PeftType))}");

    /// <summary>Parses a method name as used in configs and on the command line (e.g. lora, prompt_tuning, ia3).</summary>
    public static PeftMethodKind ParseKind(string name)
    {
        var key = name.Trim().ToLowerInvariant().Replace("-", "").Replace("_", "");
        return key switch
        {
            "full" or "fullfinetuning" or "fft" => PeftMethodKind.Full,
            "lora" => PeftMethodKind.Lora,
            "adapter" or "adapters" or "bottleneck" => PeftMethodKind.Adapter,
            "prefix" or "prefixtuning" => PeftMethodKind.PrefixTuning,
            "prompt" or "prompttuning" => PeftMethodKind.PromptTuning,
            "ia3" => PeftMethodKind.IA3,
            "bitfit" => PeftMethodKind.BitFit,
            _ => throw new ArgumentException($"unknown method '{name}'; known methods: full, lora, adapter, prefix_tuning, prompt_tuning, ia3, bitfit"),
        };
    }
}
