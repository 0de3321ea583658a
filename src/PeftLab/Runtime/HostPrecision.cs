using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Runtime;

/// <summary>
/// Matrix-multiply throughput of this host in float32 and bfloat16, as a linear layer computes it
/// (<c>x [n, n] · Wᵀ [n, n]</c>), measured with <see cref="Threads"/> threads.
/// </summary>
/// <param name="Float32Gflops">Median float32 rate, GFLOP/s.</param>
/// <param name="Bfloat16Gflops">Median bfloat16 rate, GFLOP/s.</param>
/// <param name="Threads">Intra-op threads during the measurement.</param>
/// <param name="Size">n of the square operands.</param>
/// <param name="MeasuredUtc">When it was measured (a cached value keeps its original time).</param>
public sealed record MatmulRates(double Float32Gflops, double Bfloat16Gflops, int Threads, int Size, DateTime MeasuredUtc)
{
    /// <summary>bfloat16 rate over float32 rate: above 1 bfloat16 is the faster on this host.</summary>
    public double Bfloat16Ratio => Bfloat16Gflops / Float32Gflops;

    /// <summary>Whether bfloat16 multiplies faster than float32 here (the rule behind <c>model.dtype: auto</c>).</summary>
    public bool Bfloat16IsFaster => Bfloat16Gflops > Float32Gflops;

    /// <summary>One line for logs and <c>peftlab doctor</c>.</summary>
    public override string ToString() =>
        $"bf16 {Bfloat16Gflops:F0} vs fp32 {Float32Gflops:F0} GFLOP/s ({Bfloat16Ratio:F2}x; {Size}x{Size} linear, {Threads} threads, measured {MeasuredUtc:yyyy-MM-dd HH:mm} UTC)";
}

/// <summary>
/// Which precision multiplies faster on this host. The machines this project runs on differ by more than a factor of
/// ten: bf16 ran 2.2x fp32 on one AMD EPYC, 0.6x on an Intel Xeon with AVX-512 BF16, and on a host whose libtorch has
/// no fast bf16 kernel a bf16 LM head takes minutes where float32 takes seconds. So it is measured, once per host
/// (CPU model and flags, thread count, libtorch version) and cached under the PeftLab cache, like the native bridge.
/// </summary>
public static class HostPrecision
{
    private static readonly object Gate = new();
    private static MatmulRates? rates;

    /// <summary>n of the probe's square operands: a 1024-wide linear layer, the order of the real presets' projections.</summary>
    public const int ProbeSize = 1024;

    /// <summary>This host's rates at the current thread count: from the cache when it holds them, measured (about a second) otherwise.</summary>
    public static MatmulRates Rates
    {
        get
        {
            lock (Gate)
            {
                int threads = get_num_threads();
                if (rates is { } r && r.Threads == threads) return r;
                rates = ReadCache(CacheFile(threads)) ?? WriteCache(CacheFile(threads), Measure(ProbeSize, threads));
                return rates;
            }
        }
    }

    /// <summary>The cache file for this host at <paramref name="threads"/> threads.</summary>
    public static string CacheFile(int threads) => Path.Combine(NativeLoader.CacheRoot(), "precision", $"{HostKey(threads)}.json");

    /// <summary>
    /// Measures both precisions, paired: one untimed call each, then alternating timed calls (float32, bfloat16, …)
    /// until <paramref name="seconds"/> have passed, at least three each, so that both see the same load from other
    /// processes; the median of each.
    /// </summary>
    public static MatmulRates Measure(int n, int threads, double seconds = 0.8)
    {
        TorchRuntime.EnsureInitialised();
        int before = get_num_threads();
        set_num_threads(threads);
        try
        {
            using var scope = NewDisposeScope();
            using var gen = new Generator(0);
            ScalarType[] dtypes = [ScalarType.Float32, ScalarType.BFloat16];
            var operands = dtypes.Select(dt => (X: randn([n, n], generator: gen).to_type(dt), W: randn([n, n], generator: gen).to_type(dt))).ToArray();
            foreach (var (x, w) in operands) using (NewDisposeScope()) nn.functional.linear(x, w);
            var times = dtypes.Select(_ => new List<double>()).ToArray();
            var total = Stopwatch.StartNew();
            while (times[0].Count < 3 || total.Elapsed.TotalSeconds < seconds)
                for (int i = 0; i < dtypes.Length; i++)
                {
                    using var s = NewDisposeScope();
                    var sw = Stopwatch.StartNew();
                    nn.functional.linear(operands[i].X, operands[i].W);
                    times[i].Add(sw.Elapsed.TotalSeconds);
                }
            double Rate(List<double> t) => Math.Round(2.0 * n * n * n / t.Order().ElementAt(t.Count / 2) / 1e9, 1);
            return new MatmulRates(Rate(times[0]), Rate(times[1]), threads, n, DateTime.UtcNow);
        }
        finally { set_num_threads(before); }
    }

    /// <summary>What the process would choose, for <c>peftlab doctor</c>.</summary>
    public static string Report => $"model.dtype auto picks {(Rates.Bfloat16IsFaster ? "bfloat16" : "float32")}: {Rates}";

    private static string HostKey(int threads)
    {
        string cpu = CpuInfo("model name") ?? "unknown";
        string flags = CpuInfo("flags") ?? "";                                   // avx512_bf16, amx_bf16 decide the kernels
        string key = $"{cpu}|{flags}|{threads}|{__version__}|{RuntimeInformationArch()}";
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16].ToLowerInvariant();
    }

    private static string RuntimeInformationArch() => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();

    /// <summary>The first <c>/proc/cpuinfo</c> value of <paramref name="field"/>, or null where there is none.</summary>
    public static string? CpuInfo(string field)
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal) && l[field.Length..].TrimStart().StartsWith(':'));
            return line?[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    private const string Fp32Key = "fp32_gflops", Bf16Key = "bf16_gflops", ThreadsKey = "threads", SizeKey = "size", MeasuredKey = "measured_utc";

    /// <summary>The cached rates in <paramref name="path"/>, or null when it is absent or unreadable (then they are measured again).</summary>
    public static MatmulRates? ReadCache(string path)
    {
        try
        {
            if (!File.Exists(path)) return null;
            var o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
            if (o is null) return null;
            double fp32 = (double)o[Fp32Key]!, bf16 = (double)o[Bf16Key]!;
            if (!(fp32 > 0) || !(bf16 > 0)) return null;
            return new MatmulRates(fp32, bf16, (int)o[ThreadsKey]!, (int)o[SizeKey]!, DateTime.Parse((string)o[MeasuredKey]!).ToUniversalTime());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidOperationException
                                        or FormatException or NullReferenceException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Writes <paramref name="r"/> to <paramref name="path"/> (atomically; a read-only cache is left alone) and returns it.</summary>
    public static MatmulRates WriteCache(string path, MatmulRates r)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            AtomicFile.WriteAllText(path, new JsonObject
            {
                [Fp32Key] = r.Float32Gflops, [Bf16Key] = r.Bfloat16Gflops, [ThreadsKey] = r.Threads, [SizeKey] = r.Size,
                [MeasuredKey] = r.MeasuredUtc.ToString("O"), ["cpu"] = CpuInfo("model name"), ["torch"] = __version__,
            }.ToJsonString());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }   // a read-only cache: measure again next time
        return r;
    }
}
