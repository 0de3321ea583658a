using System.Runtime.InteropServices;

namespace PeftLab.Runtime;

/// <summary>
/// Keeps glibc's malloc from handing large tensor buffers back to the kernel between steps.
/// libtorch's CPU allocator is plain malloc: every buffer over the mmap threshold (at most 32 MiB — logits,
/// MLP activations) gets a fresh mmap and munmap per use, so each training step re-faults and re-zeroes
/// hundreds of MiB (measured: medium bf16 LM head + cross entropy 456 → 301 ms, whole steps 5–10 % faster,
/// page faults halved). With mmap off and a 2 GiB trim threshold, freed buffers stay in the heap for the next
/// step; the cost is that the process keeps its high-water mark. <c>PEFTLAB_MALLOC=default</c> turns this off.
/// </summary>
public static partial class AllocatorTuning
{
    private const int M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4;
    private static bool _applied;

    /// <summary>What <see cref="Apply"/> did, for <c>peftlab doctor</c>.</summary>
    public static string Report { get; private set; } = "not applied";

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int param, int value);

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    /// <summary>
    /// Hands the heap's free memory back to the kernel once, after a model is built: with the tuning above, the
    /// float32 temporaries of building and initialising a model would otherwise stay in the process for good
    /// (measured: a 2-layer qwen2.5-0.5b-shape model in bfloat16, 332 MB of weights, held 786 MB after building and
    /// 321 MB after this). Costs one heap walk; does nothing where <see cref="Apply"/> did not tune glibc.
    /// </summary>
    public static void ReleaseFree()
    {
        if (!Tuned) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { }
    }

    private static bool Tuned { get; set; }

    /// <summary>Sets the malloc options once (Linux/glibc only; elsewhere, or when opted out, does nothing).</summary>
    public static void Apply()
    {
        if (_applied) return;
        _applied = true;
        if (Environment.GetEnvironmentVariable("PEFTLAB_MALLOC") is { } v && v.Equals("default", StringComparison.OrdinalIgnoreCase))
        {
            Report = "glibc defaults (PEFTLAB_MALLOC=default)";
            return;
        }
        if (!OperatingSystem.IsLinux())
        {
            Report = "platform default (tuning is for glibc)";
            return;
        }
        try
        {
            bool ok = MallOpt(M_MMAP_MAX, 0) == 1 & MallOpt(M_TRIM_THRESHOLD, int.MaxValue) == 1;
            Tuned = ok;
            Report = ok ? "glibc malloc keeps freed tensor buffers (mmap off, trim threshold 2 GiB)" : "mallopt refused; glibc defaults";
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            Report = "no glibc mallopt (e.g. musl); platform default";
        }
    }
}
