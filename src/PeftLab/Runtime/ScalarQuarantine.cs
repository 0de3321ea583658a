using System.Diagnostics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace PeftLab.Runtime;

/// <summary>
/// PeftLab's guard against a use-after-free in TorchSharp 0.107: a <c>Scalar</c> that TorchSharp creates
/// implicitly (an alpha of 1 in every <c>tensor + tensor</c>, the 0.5 in <c>tensor * 0.5</c>) is unreachable once
/// its handle is read, so a garbage collection started by another thread while libtorch is inside the call lets
/// the finalizer free it before libtorch reads it — the call fails ("Unknown scalar type") or silently uses another
/// value. The native shim <c>libpeftlab_scalar_quarantine.so</c> (source and reasons in
/// <c>Runtime/Native/scalar_quarantine.c</c>) sits between TorchSharp and its bridge and keeps every disposed Scalar
/// allocated for two more seconds. <c>PEFTLAB_SCALAR_QUARANTINE=off</c> turns it off (to measure the race).
/// </summary>
public static unsafe class ScalarQuarantine
{
    /// <summary>The shim's file name, next to the application.</summary>
    public const string FileName = "libpeftlab_scalar_quarantine.so";

    private static delegate* unmanaged<ulong> _total;
    private static delegate* unmanaged<ulong> _parked;

    /// <summary>Opens a shared library without adding it to the global symbol scope.</summary>
    internal delegate bool Opener(string path, out nint handle, out string error);

    /// <summary>What was loaded, or why not, for <c>peftlab doctor</c>.</summary>
    public static string Report { get; private set; } = "not loaded";

    /// <summary>Whether TorchSharp's Scalar frees go through the quarantine in this process.</summary>
    public static bool Active { get; private set; }

    /// <summary>Scalars disposed through the quarantine since the process started (0 when it is not active).</summary>
    public static ulong TotalParked => Active ? _total() : 0;

    /// <summary>Scalars disposed but not yet freed, at most two seconds old (0 when it is not active).</summary>
    public static ulong Parked => Active ? _parked() : 0;

    /// <summary>
    /// Loads the shim over the already-loaded <paramref name="bridge"/> and returns the handle TorchSharp's
    /// P/Invokes should resolve to: the shim when it loaded and found the bridge, else the bridge itself.
    /// </summary>
    internal static nint Load(nint bridge, Opener open)
    {
        if (Environment.GetEnvironmentVariable("PEFTLAB_SCALAR_QUARANTINE") is { } v && v.Equals("off", StringComparison.OrdinalIgnoreCase))
            return Skip(bridge, "off (PEFTLAB_SCALAR_QUARANTINE=off): implicit TorchSharp Scalars can be freed while libtorch reads them");
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return Skip(bridge, $"not available for {RuntimeInformation.ProcessArchitecture} (only a linux-x64 build is shipped)");
        string? path = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(ScalarQuarantine).Assembly.Location) }
            .Where(d => !string.IsNullOrEmpty(d)).Select(d => Path.Combine(d!, FileName)).FirstOrDefault(File.Exists);
        if (path is null)
            return Skip(bridge, $"{FileName} not found next to the application");
        if (!open(path, out nint shim, out string error))
            return Skip(bridge, $"{path} did not load: {error}");
        if (!NativeLibrary.TryGetExport(shim, "peftlab_quarantine_bound", out nint bound)
            || !NativeLibrary.TryGetExport(shim, "peftlab_quarantine_total", out nint total)
            || !NativeLibrary.TryGetExport(shim, "peftlab_quarantine_parked", out nint parked))
            return Skip(bridge, $"{path} lacks the quarantine's exports");
        if (((delegate* unmanaged<int>)bound)() != 1)
            return Skip(bridge, $"{path} loaded but did not find THSTorch_dispose_scalar in libLibTorchSharp.so");
        _total = (delegate* unmanaged<ulong>)total;
        _parked = (delegate* unmanaged<ulong>)parked;
        Active = true;
        Report = $"on ({path}): disposed Scalars stay allocated for 2 s";
        return shim;
    }

    private static nint Skip(nint bridge, string why)
    {
        Report = why;
        return bridge;
    }
}

/// <summary>How many scalar operations a <see cref="ScalarRaceProbe"/> ran and how many libtorch rejected.</summary>
/// <param name="Operations">Tensor operations that each pass one or two implicit Scalars to libtorch.</param>
/// <param name="Failures">Operations that threw (a Scalar freed while libtorch read it).</param>
/// <param name="FirstFailure">The first failure's message, or null.</param>
/// <param name="Seconds">How long it ran.</param>
public sealed record ScalarRaceResult(long Operations, long Failures, string? FirstFailure, double Seconds);

/// <summary>
/// Provokes the race <see cref="ScalarQuarantine"/> guards against: one thread runs scalar tensor operations while
/// another allocates managed memory, so garbage collections start while libtorch is inside the calls. Without the
/// quarantine this machine sees a failure every few tens of thousands of operations; with it, none.
/// </summary>
public static class ScalarRaceProbe
{
    /// <summary>Runs the probe for <paramref name="duration"/> (the calling thread computes, a second one allocates).</summary>
    public static ScalarRaceResult Run(TimeSpan duration)
    {
        TorchRuntime.EnsureInitialised();
        using var stop = new CancellationTokenSource();
        var noise = new Thread(() =>
        {
            var garbage = new List<byte[]>();
            while (!stop.IsCancellationRequested)
            {
                garbage.Add(new byte[2048]); // kept a while, so young collections have survivors to copy and last longer
                if (garbage.Count > 1000) garbage.Clear();
            }
        }) { IsBackground = true, Name = "scalar race probe: allocator" };
        noise.Start();
        long operations = 0, failures = 0;
        string? first = null;
        var clock = Stopwatch.StartNew();
        try
        {
            using var x = randn(64, 64);
            while (clock.Elapsed < duration)
            {
                using var scope = NewDisposeScope();
                for (int i = 0; i < 100; i++, operations += 3)
                {
                    try
                    {
                        var y = x + 1e-5;  // Scalar 1e-5 and an alpha of 1
                        var z = y * 0.5;   // Scalar 0.5
                        _ = z + y;         // an alpha of 1
                    }
                    catch (ExternalException e)
                    {
                        failures++;
                        first ??= e.Message.Split('\n')[0];
                    }
                }
            }
        }
        finally
        {
            stop.Cancel();
            noise.Join();
        }
        return new ScalarRaceResult(operations, failures, first, clock.Elapsed.TotalSeconds);
    }
}
