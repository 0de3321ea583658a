using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PeftLab.Training;

/// <summary>
/// Trust in a run's resumable checkpoints: each checkpoint folder records the size and SHA-256 of its files
/// (<see cref="FileName"/>, written last), <c>--resume</c> takes the newest folder whose files still match, and the
/// <c>latest</c> pointer may only name a checkpoint folder of the run itself.
/// </summary>
public static partial class CheckpointManifest
{
    /// <summary>The manifest's file name inside a checkpoint folder.</summary>
    public const string FileName = "manifest.json";

    /// <summary>Files every checkpoint folder holds.</summary>
    public static IReadOnlyList<string> RequiredFiles { get; } = ["trainable.safetensors", "optimizer.safetensors", "state.json"];

    /// <summary>Keys state.json must hold.</summary>
    private static readonly string[] StateKeys = ["step", "epoch", "batch_index", "tokens", "wall_s", "optimizer_steps", "losses"];

    [GeneratedRegex(@"^step-\d{8}$")]
    private static partial Regex NamePattern();

    /// <summary>Whether <paramref name="name"/> is a checkpoint folder name (<c>step-00000042</c>).</summary>
    public static bool IsCheckpointName(string name) => NamePattern().IsMatch(name);

    /// <summary>The folder name of the checkpoint after <paramref name="step"/> (<c>step-00000042</c>).</summary>
    public static string FolderName(int step) => $"step-{step:D8}";

    /// <summary>The step a checkpoint folder name stands for, or null when it is not one.</summary>
    public static int? StepOf(string name) => IsCheckpointName(name) ? int.Parse(name.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture) : null;

    /// <summary>Writes the manifest of the files already in <paramref name="dir"/>.</summary>
    public static void Write(string dir)
    {
        var files = new JsonObject();
        foreach (var f in Directory.GetFiles(dir).Select(Path.GetFileName).Where(n => n != FileName).Order(StringComparer.Ordinal))
            files[f!] = new JsonObject { ["bytes"] = new FileInfo(Path.Combine(dir, f!)).Length, ["sha256"] = Sha256(Path.Combine(dir, f!)) };
        File.WriteAllText(Path.Combine(dir, FileName), new JsonObject { ["version"] = 1, ["files"] = files }.ToJsonString());
    }

    /// <summary>Why the checkpoint folder cannot be resumed from, or null when it is intact.</summary>
    public static string? Problem(string dir)
    {
        if (!Directory.Exists(dir)) return "the folder does not exist";
        foreach (var f in RequiredFiles)
            if (!File.Exists(Path.Combine(dir, f))) return $"{f} is missing";
        var manifest = Path.Combine(dir, FileName);
        if (File.Exists(manifest))   // checkpoints of earlier versions have none: only the structural checks below apply
        {
            JsonObject files;
            try { files = JsonNode.Parse(File.ReadAllText(manifest))?["files"] as JsonObject ?? throw new JsonException("no \"files\" object"); }
            catch (JsonException e) { return $"{FileName} is unreadable ({e.Message})"; }
            foreach (var f in RequiredFiles)
                if (!files.ContainsKey(f)) return $"{FileName} does not list {f}";
            foreach (var (name, entry) in files)
            {
                var path = Path.Combine(dir, name);
                if (name.Contains('/') || name.Contains('\\') || !File.Exists(path)) return $"{name} (listed in {FileName}) is missing";
                long expected = entry?["bytes"]?.GetValue<long>() ?? -1;
                long actual = new FileInfo(path).Length;
                if (actual != expected) return $"{name} has {actual:N0} bytes, {expected:N0} when it was saved (truncated or overwritten)";
                if (!string.Equals(Sha256(path), entry?["sha256"]?.GetValue<string>(), StringComparison.OrdinalIgnoreCase))
                    return $"{name} does not match the SHA-256 recorded when it was saved (corrupted)";
            }
        }
        try
        {
            var state = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "state.json"))) as JsonObject ?? throw new JsonException("not a JSON object");
            foreach (var k in StateKeys)
                if (state[k] is null) return $"state.json has no \"{k}\"";
        }
        catch (JsonException e) { return $"state.json is unreadable ({e.Message})"; }
        return null;
    }

    /// <summary>
    /// The newest intact checkpoint folder of a run: the one <c>latest</c> names when that is a checkpoint of this run
    /// and intact, else the newest intact <c>step-*</c> folder. Every folder passed over adds a warning; null when
    /// none is intact.
    /// </summary>
    public static string? NewestIntact(RunFiles files, List<string> warnings)
    {
        var candidates = new List<string>();
        if (File.Exists(files.Latest))
        {
            var named = File.ReadAllText(files.Latest).Trim();
            if (IsCheckpointName(named)) candidates.Add(named);
            else warnings.Add($"{files.Latest} names '{(named.Length > 80 ? named[..80] + "…" : named)}', which is not a checkpoint folder of this run; ignored");
        }
        if (Directory.Exists(files.Checkpoints))
            candidates.AddRange(Directory.GetDirectories(files.Checkpoints).Select(Path.GetFileName).OfType<string>()
                .Where(IsCheckpointName).OrderDescending(StringComparer.Ordinal).Where(n => !candidates.Contains(n)));
        foreach (var name in candidates)
        {
            var dir = Path.Combine(files.Checkpoints, name);
            if (Problem(dir) is not { } problem) return dir;
            warnings.Add($"checkpoint {name} skipped: {problem}");
        }
        return null;
    }

    private static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }
}
