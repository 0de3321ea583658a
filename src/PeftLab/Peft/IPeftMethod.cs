using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Peft;

/// <summary>
/// One fine-tuning method: its descriptor (everything the rest of PeftLab knows about it: config name and aliases,
/// config record, study capacity knob, whether it works on the input side or trains the whole model) and its
/// behaviour (how it attaches to a model, which tensors it saves and how it merges). Implementations live in one
/// folder each, with their config record and their default target modules per <see cref="ModelLayout"/>, and are
/// registered with one line in <see cref="PeftRegistry"/>; nothing outside <c>Peft/</c> names a method.
/// Input-side methods (prompt, prefix) attach an <see cref="IInputAdapter"/> instead of swapping modules.
/// </summary>
public interface IPeftMethod
{
    /// <summary>Which method this is.</summary>
    PeftMethodKind Kind { get; }

    /// <summary>
    /// The method's name in configs (<c>method.name</c>), on study method axes, in study folders and in reports, e.g.
    /// lora, prompt_tuning: lower-case snake_case, unique among the registered methods.
    /// </summary>
    string Name { get; }

    /// <summary>
    /// Other spellings <see cref="PeftRegistry.ParseKind"/> accepts (command line, study method axes), e.g. prefix for
    /// prefix_tuning. Names and aliases match ignoring case, '-' and '_'; none may match another method's.
    /// Default: none.
    /// </summary>
    IReadOnlyList<string> Aliases => [];

    /// <summary><c>peft_type</c> in adapter_config.json (PEFT's own names where PEFT has the method), or null when no adapter file exists.</summary>
    string? PeftType { get; }

    /// <summary>The config with every knob at its default.</summary>
    PeftConfig DefaultConfig { get; }

    /// <summary>
    /// The knob that sizes the method in studies (LoRA rank, bottleneck width, virtual tokens): its study axis and the
    /// config key it sets. Null for methods without one (full finetuning, (IA)3, BitFit).
    /// </summary>
    CapacityKnob? Capacity { get; }

    /// <summary>
    /// Input-side: the method attaches an <see cref="IInputAdapter"/> that puts learned virtual tokens or key/value
    /// prefixes in front of every sequence (prompt and prefix tuning), so sequences cannot be packed together.
    /// Default: false (the method changes modules).
    /// </summary>
    bool IsInputSide => false;

    /// <summary>
    /// Every weight of the base model trains (full finetuning): runs save the whole model as a checkpoint instead of an
    /// adapter, and a training step costs about 6 rather than 4 FLOPs per parameter and token (weight gradients for all).
    /// Default: false.
    /// </summary>
    bool TrainsWholeModel => false;

    /// <summary>
    /// The reference study (He, 2024) compared this method: the built-in quickstart runs exactly these, so its findings
    /// speak to the paper's; methods added since are run by studies that name them (e.g. <c>studies/peft-zoo.yaml</c>).
    /// Default: false; the reference study's seven methods say true.
    /// </summary>
    bool InReferenceStudy => false;

    /// <summary>
    /// Configurations spanning the settings the reference study sweeps, each with a short description of its knobs
    /// (<c>peftlab describe --sweep</c> counts their parameters).
    /// </summary>
    IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; }

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

    /// <summary>
    /// What the method does during training beyond its forward pass (AdaLoRA: an orthogonality regulariser and a rank
    /// allocator), for a run of <paramref name="totalSteps"/> optimiser steps; null (the default) for methods without.
    /// </summary>
    ITrainingHook? TrainingHook(IPeftHost model, PeftConfig config, int totalSteps) => null;

    /// <summary>Whether <see cref="Merge"/> can fold the method into the base weights.</summary>
    bool CanMerge { get; }

    /// <summary>Folds the method into the base weights and removes its modules.</summary>
    void Merge(IPeftHost model, PeftConfig config);
}

/// <summary>
/// A method's part in the shared training loop. Per optimiser step the trainer adds <see cref="ExtraLoss"/> once
/// (after the micro-batches' backward passes, so gradient accumulation does not multiply it), takes the optimiser
/// step, then calls <see cref="AfterStep"/> while the gradients are still there. <see cref="State"/> goes into the
/// resumable checkpoints so a resumed run continues identically.
/// </summary>
public interface ITrainingHook : IDisposable
{
    /// <summary>A loss term for this step (already weighted), or null; its gradient is added to the data loss's.</summary>
    Tensor? ExtraLoss();

    /// <summary>After the optimiser step with index <paramref name="step"/> (0-based), before gradients are cleared.</summary>
    void AfterStep(int step);

    /// <summary>Tensors to checkpoint, by key.</summary>
    IEnumerable<(string Key, Tensor Value)> State();

    /// <summary>Restores <see cref="State"/> (<paramref name="read"/> returns null for a key the checkpoint lacks).</summary>
    void Load(Func<string, Tensor?> read);
}

/// <summary>What a method may need while attaching besides its config.</summary>
/// <param name="Generator">Seeded generator for new parameters.</param>
/// <param name="Tokenize">Tokenizer for text-initialised methods (prompt tuning from text), if available.</param>
public sealed record AttachContext(Generator Generator, Func<string, int[]>? Tokenize = null);

/// <summary>
/// The knob that sizes a method in studies: a study axis of its own (e.g. <c>lora_r</c>) whose values set one key of
/// the method's config (e.g. <c>r</c>, written <c>method.r</c> in a training config), in that method's trials only.
/// </summary>
/// <param name="Axis">Study axis name, unique among the registered methods' knobs, e.g. lora_r.</param>
/// <param name="Key">Integer key of the method's config record that the axis sets, e.g. r.</param>
/// <param name="Label">What reports call the knob, e.g. "LoRA rank".</param>
public sealed record CapacityKnob(string Axis, string Key, string Label)
{
    /// <summary>The training-config key path the axis sets, e.g. method.r.</summary>
    public string ConfigKey => "method." + Key;
}

/// <summary>
/// The one place methods are registered: one line per method. Everything else that needs to know the methods (config
/// binding, method names and aliases, study knob axes, report order) derives from this list.
/// </summary>
public static class PeftRegistry
{
    // The canonical order: error messages, study axes and reports list methods in this order.
    private static readonly IPeftMethod[] Methods = Checked(
    [
        new Full.FullMethod(),
        new Lora.LoraMethod(),
        new Adapter.AdapterMethod(),
        new PrefixTuning.PrefixTuningMethod(),
        new PromptTuning.PromptTuningMethod(),
        new IA3.IA3Method(),
        new BitFit.BitFitMethod(),
        new LnTuning.LnTuningMethod(),
        new LoHa.LoHaMethod(),
        new LoKr.LoKrMethod(),
        new AdaLora.AdaLoraMethod(),
        new Vera.VeraMethod(),
        new Oft.OftMethod(),
    ]);

    /// <summary>All registered methods, in canonical order (the order of tables, colours and lists of names).</summary>
    public static IReadOnlyList<IPeftMethod> All => Methods;

    /// <summary>The methods the reference study compared, in canonical order.</summary>
    public static IReadOnlyList<IPeftMethod> ReferenceStudyMethods { get; } = Methods.Where(m => m.InReferenceStudy).ToArray();

    /// <summary>The name a method has in configs (<c>method.name</c>), e.g. lora, prompt_tuning.</summary>
    public static string NameOf(PeftMethodKind kind) => Get(kind).Name;

    /// <summary>Config record type per method name, for config binding.</summary>
    public static IReadOnlyDictionary<string, Type> ConfigTypes { get; } =
        Methods.ToDictionary(m => m.Name, m => m.DefaultConfig.GetType());

    /// <summary>The study capacity knobs of the methods that have one, in canonical order.</summary>
    public static IReadOnlyList<(IPeftMethod Method, CapacityKnob Knob)> CapacityKnobs { get; } =
        Methods.Where(m => m.Capacity is not null).Select(m => (m, m.Capacity!)).ToArray();

    /// <summary>The method of a kind.</summary>
    public static IPeftMethod Get(PeftMethodKind kind) => Methods.First(m => m.Kind == kind);

    /// <summary>The method whose adapter files carry <paramref name="peftType"/>.</summary>
    public static IPeftMethod ForPeftType(string peftType, string source) =>
        Methods.FirstOrDefault(m => m.PeftType == peftType)
        ?? throw new PeftConfigException($"{source}: peft_type '{peftType}' is not supported; supported: {string.Join(", ", Methods.Where(m => m.PeftType is not null).Select(m => m.PeftType))}");

    /// <summary>The method called <paramref name="name"/> or one of its aliases (ignoring case, '-' and '_'), or null.</summary>
    public static IPeftMethod? Find(string name)
    {
        var key = Normalize(name);
        return Methods.FirstOrDefault(m => Normalize(m.Name) == key || m.Aliases.Any(a => Normalize(a) == key));
    }

    /// <summary>Parses a method name as used in configs and on the command line (e.g. lora, prompt_tuning, ia3, or an alias).</summary>
    /// <exception cref="ArgumentException">No method has that name or alias; the message lists the known methods.</exception>
    public static PeftMethodKind ParseKind(string name) =>
        (Find(name) ?? throw new ArgumentException($"unknown method '{name}'; known methods: {string.Join(", ", Methods.Select(m => m.Name))}")).Kind;

    private static string Normalize(string name) => name.Trim().ToLowerInvariant().Replace("-", "").Replace("_", "");

    /// <summary>The registry's rules: one method per kind; names, aliases and knob axes unique.</summary>
    private static IPeftMethod[] Checked(IPeftMethod[] methods)
    {
        string? Duplicate(IEnumerable<string> names) => names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1)?.Key;
        if (Duplicate(methods.Select(m => m.Kind.ToString())) is { } kind)
            throw new InvalidOperationException($"PeftRegistry: method kind {kind} is registered twice");
        if (Duplicate(methods.SelectMany(m => m.Aliases.Prepend(m.Name)).Select(Normalize)) is { } name)
            throw new InvalidOperationException($"PeftRegistry: method name or alias '{name}' (ignoring case, '-' and '_') belongs to two methods or is listed twice");
        if (Duplicate(methods.Where(m => m.Capacity is not null).Select(m => m.Capacity!.Axis)) is { } axis)
            throw new InvalidOperationException($"PeftRegistry: capacity knob axis '{axis}' belongs to two methods");
        return methods;
    }
}
