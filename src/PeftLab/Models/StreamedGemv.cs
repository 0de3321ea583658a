using System.Numerics;
using System.Runtime.Intrinsics;
using PeftLab.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>
/// y = W·x for one row x, written here because libtorch's single-row kernels do not stream weights at the memory's
/// rate: measured on this project's AMD EPYC (2 threads, cold weights of the qwen2.5-0.5b shapes), libtorch's bf16
/// GEMV (<c>mkl_blas_def_xgemv_bf16bf16f32</c>) reads 21–31 GB/s and its float32 GEMV 17–25 GB/s, while this loop —
/// one weight row at a time, four SIMD accumulators, the rows split over a crew of threads — reads 31–58 (bf16) and
/// 40–50 GB/s (float32); docs/performance.md, "Streamed decoding".
/// Batch-1 decoding reads every weight once per token, so that rate is the decode rate. Weights are float32 or
/// bfloat16 [out, in], contiguous, on the CPU; accumulation is float32 (as MKL's bf16 kernel), so results differ from
/// <see cref="nn.functional.linear"/> only by summation order (and, for bf16, that order's rounding to bf16).
/// <see cref="Projection"/> decides per projection, by timing, whether to use it (q/k/v and gate/up take it in one
/// pass each, untimed), inside <see cref="SingleRowDecoding"/> only: there libtorch runs on one thread and this kernel's rows are split over a
/// crew of spinning threads (libtorch's OpenMP workers, spinning after each parallel region, would otherwise take the
/// cores this kernel's threads need, and a thread-pool wake-up costs as much as a small projection).
/// </summary>
public static unsafe class StreamedGemv
{
    private static readonly delegate* unmanaged<nint, nint> DataFn = (delegate* unmanaged<nint, nint>)NativeLoader.BridgeExport("THSTensor_data");

    /// <summary>Whether the kernel can run here: the bridge's data pointer is reachable and SIMD is hardware-accelerated.</summary>
    public static bool Available { get; } = DataFn != null && Vector.IsHardwareAccelerated;

    /// <summary>What batch-1 decoding uses here, for <c>peftlab doctor</c>.</summary>
    public static string Report => !Available
        ? "libtorch's kernels (the streamed GEMV needs TorchSharp's bridge loaded by PeftLab and hardware SIMD)"
        : $"streamed GEMV where timed faster ({(Vector512.IsHardwareAccelerated ? "512" : (Vector<float>.Count * 32).ToString())}-bit vectors for bf16, {Vector<float>.Count * 32}-bit for float32), threads split per step; plain Llama-family models take each step fused (SingleRowStep) when libtorch has 2+ threads";

    [ThreadStatic] private static Crew? decoding;

    /// <summary>Whether this thread is inside <see cref="SingleRowDecoding"/> with more than one thread to stream with.</summary>
    public static bool Decoding => decoding is not null;

    /// <summary>
    /// A scope for batch-1 decoding steps on this thread: libtorch drops to one intra-op thread and this kernel streams
    /// with the threads libtorch had (nothing changes when that is one, or the kernel is unavailable). Disposing
    /// restores libtorch's thread count. Not for prefill or batched steps, whose matrix products want libtorch's threads.
    /// </summary>
    public static IDisposable SingleRowDecoding()
    {
        int threads = torch.get_num_threads();
        if (!Available || threads < 2 || decoding is not null) return NoScope.Instance;
        torch.set_num_threads(1);
        decoding = Crew.Get(threads);
        return new DecodeScope(threads);
    }

    private sealed class NoScope : IDisposable
    {
        public static readonly NoScope Instance = new();
        public void Dispose() { }
    }

    private sealed class DecodeScope(int threads) : IDisposable
    {
        private bool disposed;
        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            decoding = null;
            torch.set_num_threads(threads);
        }
    }

    /// <summary>Whether <paramref name="w"/> [out, in] and <paramref name="x"/> [..., in] (one row) can take this path now.</summary>
    public static bool Accepts(Tensor w, Tensor x) =>
        Available && Decoding && w.device_type == DeviceType.CPU && w.dim() == 2 && w.is_contiguous()
        && (w.dtype == ScalarType.Float32 || w.dtype == ScalarType.BFloat16)
        && x.numel() == w.shape[1] && x.numel() == x.shape[^1] && x.device_type == DeviceType.CPU;

    /// <summary>x [..., in] (one row) → [..., out] in x's dtype: W·x (+ bias), float32 accumulation.</summary>
    public static Tensor Apply(Tensor w, Tensor? bias, Tensor x) => Apply([w], [bias], x)[0];

    /// <summary>
    /// Several projections of the same row (q/k/v, gate/up) in one pass over the threads: weights [out_j, in], all of
    /// one dtype, each → [..., out_j] in x's dtype. A decode step makes one dispatch and one float32 copy of x for them all.
    /// </summary>
    public static Tensor[] Apply(IReadOnlyList<Tensor> ws, IReadOnlyList<Tensor?> biases, Tensor x)
    {
        using var scope = NewDisposeScope();
        int m = ws.Count;
        long k = ws[0].shape[1];
        var offsets = new long[m + 1];
        var ptrs = new nint[m];
        for (int j = 0; j < m; j++)
        {
            offsets[j + 1] = offsets[j] + ws[j].shape[0];
            ptrs[j] = DataFn(ws[j].Handle);
        }
        bool f32 = x.dtype == ScalarType.Float32;
        var xf = f32 && x.is_contiguous() ? x : x.to_type(ScalarType.Float32).contiguous();   // decode steps: few tensor ops
        var y = empty([.. x.shape[..^1], offsets[m]], dtype: ScalarType.Float32);
        Rows(ptrs, offsets, ws[0].dtype == ScalarType.BFloat16, (float*)DataFn(xf.Handle), (float*)DataFn(y.Handle), k);
        var results = new Tensor[m];
        for (int j = 0; j < m; j++)
        {
            var yj = m == 1 ? y : y.narrow(-1, offsets[j], offsets[j + 1] - offsets[j]);
            if (biases[j] is { } bias) yj.add_(bias);
            results[j] = (f32 ? yj : yj.to_type(x.dtype)).MoveToOuterDisposeScope();
        }
        return results;
    }

    /// <summary>The address of a CPU tensor's first element.</summary>
    internal static nint Data(Tensor t) => DataFn(t.Handle);

    /// <summary>
    /// y[offsets[j] + r] = W_j[r]·x for every weight j (float32 or bf16 [out_j, k] at <paramref name="ptrs"/>[j], all of
    /// one dtype), x and y float32; the rows are split over the decoding crew (on the caller alone outside the scope).
    /// </summary>
    internal static void Rows(nint[] ptrs, long[] offsets, bool bf16, float* xp, float* yp, long k)
    {
        int m = ptrs.Length;
        long n = offsets[m];
        int parts = (int)Math.Clamp(Math.Min(decoding?.Size ?? 1, n / 64), 1, 64);
        long chunk = (n + parts - 1) / parts;
        void Part(int p)
        {
            long r0 = p * chunk, r1 = Math.Min(n, r0 + chunk);
            for (int j = 0; j < m; j++)                                        // the part's rows, weight by weight
            {
                long a = Math.Max(r0, offsets[j]) - offsets[j], b = Math.Min(r1, offsets[j + 1]) - offsets[j];
                if (a >= b) continue;
                float* yj = yp + offsets[j];
                if (bf16) RowsBf16((ushort*)ptrs[j], xp, yj, k, a, b);
                else RowsF32((float*)ptrs[j], xp, yj, k, a, b);
            }
        }
        if (parts == 1) Part(0);
        else decoding!.Run(parts, Part);
    }

    /// <summary>Threads <see cref="Parallel"/> splits work over on this thread now (1 outside <see cref="SingleRowDecoding"/>).</summary>
    internal static int Threads => decoding?.Size ?? 1;

    /// <summary>Runs parts 0..n−1 (n ≤ <see cref="Threads"/>) of <paramref name="body"/> on the decoding crew, the caller taking part 0.</summary>
    internal static void Parallel(int n, Action<int> body)
    {
        if (n <= 1 || decoding is null) { for (int p = 0; p < n; p++) body(p); return; }
        decoding.Run(Math.Min(n, decoding.Size), body);
    }

    // One row at a time keeps one stream per thread (what the hardware prefetcher follows best) and x in L1.
    /// <summary>y[r] = w[r]·x for rows r0..r1 of a float32 [rows, k] matrix, on the calling thread.</summary>
    internal static void RowsF32(float* w, float* x, float* y, long k, long r0, long r1)
    {
        int v = Vector<float>.Count;
        for (long r = r0; r < r1; r++)
        {
            float* a = w + r * k;
            Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
            long i = 0;
            for (; i + 4 * v <= k; i += 4 * v)
            {
                s0 = Vector.FusedMultiplyAdd(Vector.Load(a + i), Vector.Load(x + i), s0);
                s1 = Vector.FusedMultiplyAdd(Vector.Load(a + i + v), Vector.Load(x + i + v), s1);
                s2 = Vector.FusedMultiplyAdd(Vector.Load(a + i + 2 * v), Vector.Load(x + i + 2 * v), s2);
                s3 = Vector.FusedMultiplyAdd(Vector.Load(a + i + 3 * v), Vector.Load(x + i + 3 * v), s3);
            }
            for (; i + v <= k; i += v) s0 = Vector.FusedMultiplyAdd(Vector.Load(a + i), Vector.Load(x + i), s0);
            float t = Vector.Sum((s0 + s1) + (s2 + s3));
            for (; i < k; i++) t += a[i] * x[i];
            y[r] = t;
        }
    }

    // bfloat16 is the top half of a float32: widen to 32 bits and shift left by 16. The widening is the loop's cost,
    // so 512-bit vectors, where the hardware has them, stream faster (measured 43–59 vs 30–43 GB/s on the EPYC).
    /// <summary>y[r] = w[r]·x for rows r0..r1 of a bf16 [rows, k] matrix (float32 accumulation), on the calling thread.</summary>
    internal static void RowsBf16(ushort* w, float* x, float* y, long k, long r0, long r1)
    {
        if (Vector512.IsHardwareAccelerated) { RowsBf16x512(w, x, y, k, r0, r1); return; }
        int v = Vector<float>.Count, u = Vector<ushort>.Count; // u = 2v
        for (long r = r0; r < r1; r++)
        {
            ushort* a = w + r * k;
            Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
            long i = 0;
            for (; i + 2 * u <= k; i += 2 * u)
            {
                Vector.Widen(Vector.Load(a + i), out var l0, out var h0);
                Vector.Widen(Vector.Load(a + i + u), out var l1, out var h1);
                s0 = Vector.FusedMultiplyAdd(Vector.AsVectorSingle(l0 << 16), Vector.Load(x + i), s0);
                s1 = Vector.FusedMultiplyAdd(Vector.AsVectorSingle(h0 << 16), Vector.Load(x + i + v), s1);
                s2 = Vector.FusedMultiplyAdd(Vector.AsVectorSingle(l1 << 16), Vector.Load(x + i + 2 * v), s2);
                s3 = Vector.FusedMultiplyAdd(Vector.AsVectorSingle(h1 << 16), Vector.Load(x + i + 3 * v), s3);
            }
            float t = Vector.Sum((s0 + s1) + (s2 + s3));
            for (; i < k; i++) t += Widen(a[i]) * x[i];
            y[r] = t;
        }
    }

    /// <summary>A bf16 value (its bits) as float32: the top half of the float's bits.</summary>
    internal static float Widen(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    private static void RowsBf16x512(ushort* w, float* x, float* y, long k, long r0, long r1)
    {
        for (long r = r0; r < r1; r++)
        {
            ushort* a = w + r * k;
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            long i = 0;
            for (; i + 64 <= k; i += 64)
            {
                var (l0, h0) = Vector512.Widen(Vector512.Load(a + i));
                var (l1, h1) = Vector512.Widen(Vector512.Load(a + i + 32));
                s0 = Vector512.FusedMultiplyAdd(Vector512.AsSingle(l0 << 16), Vector512.Load(x + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.AsSingle(h0 << 16), Vector512.Load(x + i + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.AsSingle(l1 << 16), Vector512.Load(x + i + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.AsSingle(h1 << 16), Vector512.Load(x + i + 48), s3);
            }
            float t = Vector512.Sum((s0 + s1) + (s2 + s3));
            for (; i < k; i++) t += Widen(a[i]) * x[i];
            y[r] = t;
        }
    }

    /// <summary>
    /// Threads that run one job's parts: the caller runs part 0, workers 1..n−1 spin for the next job for a while
    /// (decode steps call this every few microseconds) and then sleep; one crew per size, made on first use.
    /// </summary>
    private sealed class Crew
    {
        private static readonly Dictionary<int, Crew> Crews = [];
        private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 1000;  // 1 ms
        private readonly object gate = new(), runGate = new();
        private Action<int>? job;
        private int parts, epoch, pending;

        public int Size { get; }

        private Crew(int size)
        {
            Size = size;
            for (int i = 1; i < size; i++)
            {
                int part = i;
                new Thread(() => Work(part)) { IsBackground = true, Name = $"peftlab-gemv-{part}" }.Start();
            }
        }

        public static Crew Get(int size)
        {
            lock (Crews)
            {
                if (!Crews.TryGetValue(size, out var crew)) Crews[size] = crew = new Crew(size);
                return crew;
            }
        }

        /// <summary>Runs parts 0..n−1 of <paramref name="body"/>; while another thread's step holds the crew, all on the caller.</summary>
        public void Run(int n, Action<int> body)
        {
            if (!Monitor.TryEnter(runGate))
            {
                for (int p = 0; p < n; p++) body(p);
                return;
            }
            try { RunHeld(n, body); }
            finally { Monitor.Exit(runGate); }
        }

        private void RunHeld(int n, Action<int> body)
        {
            job = body;
            parts = n;
            Volatile.Write(ref pending, Size - 1);
            lock (gate) { epoch++; Monitor.PulseAll(gate); }
            body(0);
            while (Volatile.Read(ref pending) > 0) Thread.SpinWait(8);
            job = null;
        }

        private void Work(int part)
        {
            int seen = 0;
            while (true)
            {
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                while (Volatile.Read(ref epoch) == seen && System.Diagnostics.Stopwatch.GetTimestamp() - start < SpinTicks) Thread.SpinWait(8);
                lock (gate) { while (epoch == seen) Monitor.Wait(gate); seen = epoch; }
                if (part < parts) job!(part);
                Interlocked.Decrement(ref pending);
            }
        }
    }
}
