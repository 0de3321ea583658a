using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>A named collection of tensors on disk (a checkpoint folder, an adapter file, ...).</summary>
public interface ITensorSource
{
    /// <summary>What this source is, for error messages (e.g. the folder path).</summary>
    string Description { get; }
    /// <summary>All tensor names.</summary>
    IReadOnlyCollection<string> Names { get; }
    /// <summary>Shape of a tensor as stored.</summary>
    long[] Shape(string name);
    /// <summary>Reads a tensor converted to <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    Tensor Read(string name, ScalarType dtype, Device device);
}

/// <summary>A checkpoint does not match the model it is loaded into.</summary>
public sealed class CheckpointMismatchException(string message) : Exception(message);

/// <summary>
/// Loads a checkpoint into a module strictly: every model key must be present with the same shape and
/// every checkpoint key must belong to the model; violations are reported together, naming both sides.
/// </summary>
public static class StrictLoader
{
    /// <summary>Checkpoint keys transformers itself ignores (legacy non-persistent buffers).</summary>
    private static bool Ignorable(string key) => key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    /// <summary>
    /// Copies tensors from <paramref name="source"/> into <paramref name="module"/>'s state.
    /// <paramref name="aliases"/> maps optional checkpoint keys (tied copies) to the model key they must equal.
    /// </summary>
    public static void Load(nn.Module module, ITensorSource source, IReadOnlyDictionary<string, string>? aliases = null)
    {
        aliases ??= new Dictionary<string, string>();
        var state = module.state_dict();
        var names = source.Names.ToHashSet();
        var problems = new List<string>();

        foreach (var (key, tensor) in state)
        {
            if (!names.Contains(key))
                problems.Add($"missing in checkpoint: '{key}' (model expects shape {Fmt(tensor.shape)})");
            else if (!source.Shape(key).SequenceEqual(tensor.shape))
                problems.Add($"shape mismatch for '{key}': checkpoint {Fmt(source.Shape(key))} vs model {Fmt(tensor.shape)}");
        }
        foreach (var key in names.OrderBy(k => k, StringComparer.Ordinal))
        {
            if (state.ContainsKey(key) || Ignorable(key)) continue;
            if (aliases.TryGetValue(key, out var target) && state.TryGetValue(target, out var t))
            {
                if (!source.Shape(key).SequenceEqual(t.shape))
                    problems.Add($"shape mismatch for tied '{key}': checkpoint {Fmt(source.Shape(key))} vs model '{target}' {Fmt(t.shape)}");
                continue;
            }
            problems.Add($"unexpected in checkpoint: '{key}' {Fmt(source.Shape(key))} (no such tensor in the model)");
        }
        if (problems.Count > 0)
            throw new CheckpointMismatchException(
                $"{source.Description} does not match the model ({problems.Count} problem{(problems.Count == 1 ? "" : "s")}):\n  " +
                string.Join("\n  ", problems.Take(50)) + (problems.Count > 50 ? $"\n  ... and {problems.Count - 50} more" : ""));

        using (no_grad())
        {
            foreach (var (key, tensor) in state)
            {
                using var scope = NewDisposeScope();
                tensor.copy_(source.Read(key, tensor.dtype, tensor.device));
            }
            // Tied copies present in the checkpoint must equal what they alias (transformers would silently pick one).
            foreach (var (alias, target) in aliases)
            {
                if (!names.Contains(alias) || !state.TryGetValue(target, out var t)) continue;
                using var scope = NewDisposeScope();
                var copy = source.Read(alias, t.dtype, t.device);
                if (!copy.allclose(t, rtol: 0, atol: 0))
                    throw new CheckpointMismatchException(
                        $"{source.Description}: '{alias}' is stored separately but differs from '{target}', which it is tied to in this model");
            }
        }
    }

    internal static string Fmt(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
