using System.Security.Cryptography;
using System.Text;
using PeftLab.Synthetic;
using PeftLab.Runtime;

namespace PeftLab.Studies;

/// <summary>
/// The built-in synthetic suite (and the open-instruction stand-ins) written once per (seed, size, content) under the
/// PeftLab cache, so every trial of every study reads the same folder. The folder appears atomically (written aside, then renamed).
/// </summary>
public static class SyntheticData
{
    private const string CompleteMarker = ".complete";

    /// <summary>The suite's folder (SuperNI layout), generating it first if needed.</summary>
    public static string Ensure(SyntheticSuiteSpec spec)
    {
        var options = spec.Options;
        // the key covers the task catalogue (as filtered) so a changed catalogue never reuses stale files
        var catalogue = string.Join("\n", SyntheticSuite.Describe(options).Select(t => $"{t.Name}|{t.Split}|{t.Definition}"));
        return Materialise($"suite-{spec.Seed}-{spec.InstancesPerTask}", $"{spec.Seed}|{spec.InstancesPerTask}|{catalogue}", dir => SyntheticSuite.Write(dir, options));
    }

    /// <summary>
    /// The open-instruction stand-ins' folder (harness task files over JSONL) and what it holds, generating it first if
    /// needed. The key covers a sample of the generated documents, so a changed generator never reuses stale files.
    /// </summary>
    public static (string Dir, IReadOnlyList<HarnessTaskInfo> Tasks) EnsureHarness(SyntheticHarnessSpec spec)
    {
        var probe = Path.Combine(Path.GetTempPath(), $"peftlab-harness-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        IReadOnlyList<HarnessTaskInfo> tasks;
        string fingerprint;
        try
        {
            tasks = HarnessSuite.Write(probe, (ulong)spec.Seed, 4, mixturePerTask: 2);
            fingerprint = string.Join("\n", Directory.GetFiles(probe, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
                .Select(f => Path.GetRelativePath(probe, f) + "\n" + File.ReadAllText(f)));
        }
        finally { if (Directory.Exists(probe)) Directory.Delete(probe, recursive: true); }
        var dir = Materialise($"harness-{spec.Seed}-{spec.Documents}" + (spec.MixturePerTask > 0 ? $"-mix{spec.MixturePerTask}" : ""),
            $"{spec.Seed}|{spec.Documents}|{spec.MixturePerTask}|{fingerprint}", d => HarnessSuite.Write(d, (ulong)spec.Seed, spec.Documents, spec.MixturePerTask));
        return (dir, tasks);
    }

    /// <summary>
    /// A stand-in task file's path inside the cache, named without the cache's location
    /// (<c>synthetic_harness:harness-SEED-N-HASH/synth_mc.yaml</c>) for trial ids; null for any other path.
    /// </summary>
    public static string? SymbolicHarnessPath(string path)
    {
        if (string.IsNullOrEmpty(path)) return null;
        var root = Path.Combine(NativeLoader.CacheRoot(), "synthetic") + Path.DirectorySeparatorChar;
        var full = Path.GetFullPath(path);
        return full.StartsWith(root, StringComparison.Ordinal) && Path.GetFileName(Path.GetDirectoryName(full))!.StartsWith("harness-", StringComparison.Ordinal)
            ? "synthetic_harness:" + Path.GetRelativePath(root, full).Replace('\\', '/') : null;
    }

    /// <summary>A generated folder under the cache's <c>synthetic/</c>, named <paramref name="name"/> and a hash of <paramref name="key"/>, written once, atomically.</summary>
    private static string Materialise(string name, string key, Action<string> write)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..12];
        var root = Path.Combine(NativeLoader.CacheRoot(), "synthetic");
        var dir = Path.Combine(root, $"{name}-{hash}");
        if (File.Exists(Path.Combine(dir, CompleteMarker))) return dir;
        Directory.CreateDirectory(root);
        var tmp = Path.Combine(root, $".{Path.GetFileName(dir)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            write(tmp);
            File.WriteAllText(Path.Combine(tmp, CompleteMarker), "");
            Directory.Move(tmp, dir);
        }
        catch (IOException) when (File.Exists(Path.Combine(dir, CompleteMarker)))
        {
            // another process finished the same (deterministic) folder first
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
        return dir;
    }
}
