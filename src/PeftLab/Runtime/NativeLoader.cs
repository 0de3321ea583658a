using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace PeftLab.Runtime;

/// <summary>
/// Loads TorchSharp's native bridge <c>libLibTorchSharp.so</c>. TorchSharp 0.107 is built against
/// GCC 13 and declares a need for <c>GLIBCXX_3.4.32</c>, which Debian 12 / Ubuntu 22.04 lack. The only
/// symbol bound to that version (<c>std::ios_base_library_init</c>) is never called, so when — and only
/// when — the stock library fails to load for that reason we write a copy with that version need
/// marked weak into a cache folder, load it, and route TorchSharp's P/Invokes to it. Either way the P/Invokes then go
/// through <see cref="ScalarQuarantine"/>'s shim, which lies over the bridge.
/// </summary>
public static partial class NativeLoader
{
    /// <summary>Version needs known to be safe to weaken (no symbol bound to them is ever called).</summary>
    private static readonly HashSet<string> SafeToWeaken = ["GLIBCXX_3.4.32"];
    private const string BridgeFile = "libLibTorchSharp.so";
    private const string BridgeName = "LibTorchSharp";

    private static readonly object Gate = new();
    private static bool _done;
    private static nint _bridge;
    private static nint _target; // what TorchSharp's P/Invokes resolve to: the scalar quarantine, else the bridge

    /// <summary>What the loader did, for diagnostics (<c>peftlab doctor</c>, error messages).</summary>
    public static string Report { get; private set; } = "not initialised";

    /// <summary>
    /// An export of TorchSharp's native bridge by name (e.g. <c>THSTensor_data</c>), or zero when the bridge was not
    /// loaded by this class (not Linux, or TorchSharp's own loader was used) or lacks it.
    /// </summary>
    public static nint BridgeExport(string name)
    {
        EnsureLoaded();
        return _bridge != 0 && NativeLibrary.TryGetExport(_bridge, name, out var f) ? f : 0;
    }

    /// <summary>Makes sure TorchSharp's native libraries are loadable; idempotent and thread-safe.</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_done) return;
            if (OperatingSystem.IsLinux()) LoadLinux();
            else Report = "not Linux: TorchSharp's own loader is used";
            _done = true;
        }
    }

    private static void LoadLinux()
    {
        var trace = new StringBuilder();
        string? original = FindBridge(trace);
        if (original is null)
        {
            Report = "libLibTorchSharp.so not found next to the application; TorchSharp's own loader is used\n" + trace;
            return;
        }
        trace.AppendLine($"found {original}");
        string dir = Path.GetDirectoryName(original)!;

        if (Dl.TryOpen(original, out _bridge, out string error))
        {
            Report = $"loaded {original} unpatched";
            RouteThroughQuarantine();
            return;
        }
        trace.AppendLine($"stock load failed: {error}");

        var missing = MissingVersionRegex().Matches(error).Select(m => m.Groups[1].Value).ToHashSet();
        if (missing.Count == 0 || !missing.IsSubsetOf(SafeToWeaken))
            throw new NativeLoadException(
                "TorchSharp's native library could not be loaded, and the failure is not the known GLIBCXX_3.4.32 " +
                "mismatch that PeftLab can work around.\n" + trace +
                "What you can do: install a newer libstdc++ (GCC 13 or later, e.g. from your distribution's backports), " +
                "or check that the libtorch-cpu package was restored completely.");

        // The patched copy loses $ORIGIN, so load its libtorch dependencies from the original folder first;
        // the dynamic loader then resolves the copy's DT_NEEDED entries by soname to these.
        foreach (var dep in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
        {
            string path = Path.Combine(dir, dep);
            if (File.Exists(path) && !Dl.TryOpen(path, out _, out string depError))
                trace.AppendLine($"preloading {path} failed: {depError}");
        }

        string patched;
        try
        {
            patched = WritePatchedCopy(original, trace);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new NativeLoadException(
                $"This system's libstdc++ lacks {string.Join(", ", missing)}, which TorchSharp's native library asks for. " +
                $"PeftLab tried to write a patched copy and could not: {e.Message}\n{trace}" +
                "What you can do: set PEFTLAB_CACHE to a writable folder, or install libstdc++ from GCC 13 or later.", e);
        }
        if (!Dl.TryOpen(patched, out _bridge, out string patchedError))
            throw new NativeLoadException(
                $"This system's libstdc++ lacks {string.Join(", ", missing)}. PeftLab wrote a copy of {original} with that " +
                $"version need marked weak to {patched}, but it did not load either: {patchedError}\n{trace}" +
                "What you can do: install libstdc++ from GCC 13 or later (e.g. Debian testing/backports, Ubuntu 24.04).");

        Report = $"stock {original} needs {string.Join(", ", missing)} which this libstdc++ lacks; loaded patched copy {patched}";
        RouteThroughQuarantine();
    }

    /// <summary>
    /// Loads the scalar quarantine on top of the bridge just loaded and sends TorchSharp's P/Invokes for
    /// "LibTorchSharp" to it (or to the bridge itself when the quarantine is off or cannot load).
    /// </summary>
    private static void RouteThroughQuarantine()
    {
        _target = ScalarQuarantine.Load(_bridge, (string path, out nint handle, out string error) => Dl.TryOpen(path, out handle, out error, global: false));
        NativeLibrary.SetDllImportResolver(typeof(TorchSharp.torch).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
        => name is BridgeName or BridgeFile ? _target : nint.Zero;

    private static string? FindBridge(StringBuilder trace)
    {
        var candidates = new List<string>
        {
            Path.Combine(AppContext.BaseDirectory, BridgeFile),
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", BridgeFile),
        };
        var torchDir = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchDir))
        {
            candidates.Add(Path.Combine(torchDir, BridgeFile));
            candidates.Add(Path.Combine(torchDir, "runtimes", "linux-x64", "native", BridgeFile));
        }
        foreach (var c in candidates)
        {
            trace.AppendLine($"looking for {c}");
            if (File.Exists(c)) return c;
        }
        return null;
    }

    private static string WritePatchedCopy(string original, StringBuilder trace)
    {
        byte[] bytes = File.ReadAllBytes(original);
        string hash = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        int changed = ElfVersionPatcher.MarkWeak(bytes, SafeToWeaken);
        if (changed == 0) throw new InvalidDataException($"{original} has no {string.Join(", ", SafeToWeaken)} version need to weaken");

        string folder = Path.Combine(CacheRoot(), "native", hash);
        string target = Path.Combine(folder, BridgeFile);
        if (File.Exists(target) && File.ReadAllBytes(target).AsSpan().SequenceEqual(bytes))
        {
            trace.AppendLine($"reusing patched copy {target}");
            return target;
        }
        Directory.CreateDirectory(folder);
        string tmp = target + $".tmp{Environment.ProcessId}";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, target, overwrite: true); // atomic: concurrent processes never see a torn copy
        trace.AppendLine($"wrote patched copy {target}");
        return target;
    }

    /// <summary>PeftLab's cache folder: $PEFTLAB_CACHE, else $XDG_CACHE_HOME/peftlab, else ~/.cache/peftlab.</summary>
    public static string CacheRoot()
    {
        var env = Environment.GetEnvironmentVariable("PEFTLAB_CACHE");
        if (!string.IsNullOrEmpty(env)) return env;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg)) return Path.Combine(xdg, "peftlab");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return string.IsNullOrEmpty(home) ? Path.Combine(Path.GetTempPath(), "peftlab-cache") : Path.Combine(home, ".cache", "peftlab");
    }

    [GeneratedRegex(@"version [`']([A-Za-z0-9_.]+)' not found")]
    private static partial Regex MissingVersionRegex();

    /// <summary>
    /// dlopen/dlerror through function pointers resolved up front: a lazily bound P/Invoke to dlerror
    /// would itself dlopen/dlsym first and clear the very message we want (NativeLibrary does not give it).
    /// </summary>
    private static unsafe class Dl
    {
        private const int RtldNow = 2, RtldGlobal = 0x100;
        private static readonly delegate* unmanaged<byte*, int, nint> Open;
        private static readonly delegate* unmanaged<nint> Error;

        static Dl()
        {
            nint libc = NativeLibrary.Load("libc.so.6");
            if (!NativeLibrary.TryGetExport(libc, "dlopen", out nint open))
                open = NativeLibrary.GetExport(NativeLibrary.Load("libdl.so.2"), "dlopen"); // glibc < 2.34
            if (!NativeLibrary.TryGetExport(libc, "dlerror", out nint error))
                error = NativeLibrary.GetExport(NativeLibrary.Load("libdl.so.2"), "dlerror");
            Open = (delegate* unmanaged<byte*, int, nint>)open;
            Error = (delegate* unmanaged<nint>)error;
        }

        public static bool TryOpen(string path, out nint handle, out string error, bool global = true)
        {
            byte[] name = Encoding.UTF8.GetBytes(path + "\0");
            fixed (byte* p = name)
            {
                Error(); // clear any stale message
                handle = Open(p, global ? RtldNow | RtldGlobal : RtldNow);
                error = handle == 0 ? Marshal.PtrToStringUTF8(Error()) ?? "unknown dlopen error" : "";
            }
            return handle != 0;
        }
    }
}

/// <summary>TorchSharp's native libraries could not be loaded; the message says what was tried and what to do.</summary>
public sealed class NativeLoadException(string message, Exception? inner = null) : Exception(message, inner);
