using System.Text.Json.Nodes;
using PeftLab.Models;
using static TorchSharp.torch;

namespace PeftLab.Peft.Full;

/// <summary>Full finetuning: every parameter trains (the baseline every method is compared with).</summary>
public sealed record FullConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.Full;
}

/// <summary>Full finetuning behind the same interface; its "adapter" is the whole model, saved as a checkpoint.</summary>
public sealed class FullMethod : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.Full;
    /// <inheritdoc/>
    public string Name => "full";
    /// <inheritdoc/>
    public IReadOnlyList<string> Aliases => ["full_finetuning", "fft"];
    /// <inheritdoc/>
    public string? PeftType => "PEFTLAB_FULL";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new FullConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity => null;
    /// <inheritdoc/>
    public bool TrainsWholeModel => true;

    /// <inheritdoc/>
    public bool InReferenceStudy => true;
    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } = [("", new FullConfig())];
    /// <inheritdoc/>
    public bool CanMerge => true;

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson json) => new FullConfig();

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model) => [];

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        foreach (var p in model.Module.parameters()) p.requires_grad = true;
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, Tensor> AdapterState(IPeftHost model, PeftConfig config) =>
        model.Module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <inheritdoc/>
    public void LoadAdapterState(IPeftHost model, PeftConfig config, ITensorSource source) =>
        StrictLoader.Load(model.Module, source);

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) { } // the weights already are the model
}
