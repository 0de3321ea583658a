using PeftLab.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Peft;

/// <summary>
/// Saving and loading of methods whose state is a set of named parameters of the wrapped model. Keys follow
/// the Python PEFT library: <c>base_model.model.</c> + the parameter's module path (adapter name removed).
/// </summary>
public static class PeftState
{
    /// <summary>Prefix PEFT puts in front of parameter names in adapter files.</summary>
    public const string Prefix = "base_model.model.";

    /// <summary>All trainable parameters keyed as in an adapter file.</summary>
    public static IReadOnlyDictionary<string, Tensor> TrainableState(nn.Module model) =>
        Injector.Trainable(model).ToDictionary(x => Prefix + x.Name, x => (Tensor)x.Parameter);

    /// <summary>Copies <paramref name="source"/> into <paramref name="expected"/> (same keys, same shapes) — strict.</summary>
    public static void LoadStrict(IReadOnlyDictionary<string, Tensor> expected, ITensorSource source)
    {
        var names = source.Names.ToHashSet();
        var problems = new List<string>();
        foreach (var (key, t) in expected)
        {
            if (!names.Contains(key)) problems.Add($"missing in adapter file: '{key}' (model expects {StrictLoader.Fmt(t.shape)})");
            else if (!source.Shape(key).SequenceEqual(t.shape))
                problems.Add($"shape mismatch for '{key}': adapter file {StrictLoader.Fmt(source.Shape(key))} vs model {StrictLoader.Fmt(t.shape)}");
        }
        foreach (var key in names.Where(n => !expected.ContainsKey(n)).OrderBy(n => n, StringComparer.Ordinal))
            problems.Add($"unexpected in adapter file: '{key}' {StrictLoader.Fmt(source.Shape(key))} (the configured method has no such tensor)");
        if (problems.Count > 0)
            throw new CheckpointMismatchException($"{source.Description} does not match the adapter config ({problems.Count} problems):\n  " + string.Join("\n  ", problems.Take(50)));
        using var noGrad = no_grad();
        foreach (var (key, t) in expected)
        {
            using var scope = NewDisposeScope();
            t.copy_(source.Read(key, t.dtype, t.device));
        }
    }
}
