using System.Security.Cryptography;
using System.Text;
using PeftLab.Synthetic;
using PeftLab.Runtime;

namespace PeftLab.Studies;

/// <summary>
/// The built-in synthetic suite written once per (seed, instances, task catalogue) under the PeftLab cache, so every
/// trial of every study reads the same folder. The folder appears atomically (written aside, then renamed).
/// </summary>
public static class SyntheticData
{
    private const string CompleteMarker = ".complete";

    /// <summary>The suite's folder (SuperNI layout), generating it first if needed.</summary>
    public static string Ensure(SyntheticSuiteSpec spec)
    {
        var options = new SyntheticSuiteOptions((ulong)spec.Seed, spec.InstancesPerTask);
        // the key covers the task catalogue so a changed catalogue never reuses stale files
        var catalogue = string.Join("\n", SyntheticSuite.Describe(options).Select(t => $"{t.Name}|{t.Split}|{t.Definition}"));
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{spec.Seed}|{spec.InstancesPerTask}|{catalogue}")))[..12];
        var root = Path.Combine(NativeLoader.CacheRoot(), "synthetic");
        var dir = Path.Combine(root, $"suite-{spec.Seed}-{spec.InstancesPerTask}-{key}");
        if (File.Exists(Path.Combine(dir, CompleteMarker))) return dir;
        Directory.CreateDirectory(root);
        var tmp = Path.Combine(root, $".{Path.GetFileName(dir)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            SyntheticSuite.Write(tmp, options);
            File.WriteAllText(Path.Combine(tmp, CompleteMarker), "");
            Directory.Move(tmp, dir);
        }
        catch (IOException) when (File.Exists(Path.Combine(dir, CompleteMarker)))
        {
            // another process finished the same (deterministic) suite first
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
        return dir;
    }
}
