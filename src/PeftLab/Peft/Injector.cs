using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft;

/// <summary>A replaceable child found by walking the model: its full dotted name, its owner and the module.</summary>
public sealed record ModuleSlot(string Name, IModuleContainer Owner, string ChildName, nn.Module Module);

/// <summary>
/// The single injector: walks a model's named modules, finds replaceable children and swaps or wraps them.
/// Every module-replacing PEFT method goes through here.
/// </summary>
public static class Injector
{
    /// <summary>Every replaceable child in the model, in module order.</summary>
    public static IReadOnlyList<ModuleSlot> Slots(nn.Module root)
    {
        var result = new List<ModuleSlot>();
        var containers = new List<(string Path, nn.Module Module)> { ("", root) };
        containers.AddRange(root.named_modules().Select(x => (x.name, x.module)));
        foreach (var (path, module) in containers)
        {
            if (module is not IModuleContainer c) continue;
            foreach (var child in c.ReplaceableChildren)
                result.Add(new ModuleSlot(path.Length == 0 ? child : path + "." + child, c, child, c.GetChild(child)));
        }
        return result;
    }

    /// <summary>Is this module a plain linear projection (possibly already wrapped by nothing)?</summary>
    public static bool IsLinear(nn.Module m) => m is Linear;

    /// <summary>
    /// Every normalisation layer (<see cref="RmsNorm"/>: Llama's RMSNorm and T5LayerNorm) with its module name and gain,
    /// in module order: the one place methods that train norm gains (LN tuning, BitFit with include_norms) find them.
    /// </summary>
    public static IReadOnlyList<(string Name, Parameter Gain)> NormGains(nn.Module root) =>
        root.named_modules().Where(m => m.module is RmsNorm).Select(m => (m.name, ((RmsNorm)m.module).Weight)).ToArray();

    /// <summary>
    /// Replaces each slot for which <paramref name="wrap"/> returns a module; returns the names replaced.
    /// Throws when <paramref name="requireAny"/> and nothing matched, naming what was looked for and what exists.
    /// </summary>
    public static IReadOnlyList<string> Replace(nn.Module root, Func<ModuleSlot, nn.Module?> wrap, string lookingFor, bool requireAny = true)
    {
        var replaced = new List<string>();
        var slots = Slots(root);
        foreach (var slot in slots)
        {
            var replacement = wrap(slot);
            if (replacement is null) continue;
            slot.Owner.ReplaceChild(slot.ChildName, replacement);
            replaced.Add(slot.Name);
        }
        if (requireAny && replaced.Count == 0)
        {
            var names = slots.Select(s => s.Name.Split('.').Last()).Distinct().OrderBy(x => x, StringComparer.Ordinal);
            throw new PeftConfigException($"no module matched {lookingFor}; module names in this model: {string.Join(", ", names)}");
        }
        return replaced;
    }

    /// <summary>Marks every parameter frozen.</summary>
    public static void FreezeAll(nn.Module root)
    {
        foreach (var p in root.parameters()) p.requires_grad = false;
    }

    /// <summary>Trainable parameters by name.</summary>
    public static IReadOnlyList<(string Name, Parameter Parameter)> Trainable(nn.Module root) =>
        root.named_parameters().Where(x => x.parameter.requires_grad).Select(x => (x.name, x.parameter)).ToArray();
}
