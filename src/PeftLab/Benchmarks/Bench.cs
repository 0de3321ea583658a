using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Adapter;
using PeftLab.Peft.Lora;
using PeftLab.Runtime;
using PeftLab.Training;
using TorchSharp;
using TorchSharp.Modules;
using AdamW = PeftLab.Training.AdamW;
using static TorchSharp.torch;

namespace PeftLab.Benchmarks;

/// <summary>What <c>peftlab bench</c> measures: the workload of the PyTorch peer benchmark (../shared/peer), field for field.</summary>
public sealed record BenchOptions
{
    /// <summary>tiny, small or medium (the peer's shapes).</summary>
    public string Preset { get; init; } = "tiny";
    /// <summary>A PeftLab method name or alias (full, lora, adapter, ...); LoRA and adapters take the options below.</summary>
    public string Method { get; init; } = PeftRegistry.NameOf(PeftMethodKind.Full);
    /// <summary>LoRA rank.</summary>
    public int LoraR { get; init; } = 8;
    /// <summary>LoRA α.</summary>
    public double LoraAlpha { get; init; } = 16;
    /// <summary>Comma list of q,k,v,o,gate,up,down or "all".</summary>
    public string LoraTargets { get; init; } = "q,v";
    /// <summary>Adapter bottleneck.</summary>
    public int AdapterSize { get; init; } = 64;
    /// <summary>bfloat16 weights (frozen ones stay bf16; trainable ones get float32 masters in the optimiser).</summary>
    public bool Bf16 { get; init; }
    /// <summary>Untimed steps.</summary>
    public int Warmup { get; init; } = 2;
    /// <summary>Timed steps.</summary>
    public int Steps { get; init; } = 10;
    /// <summary>Threads.</summary>
    public int Threads { get; init; } = 2;
    /// <summary>Seed.</summary>
    public int Seed { get; init; }
    /// <summary>Sequence length override.</summary>
    public int? SeqLen { get; init; }
    /// <summary>Batch override.</summary>
    public int? Batch { get; init; }
    /// <summary>Layers override (a real shape's widths and vocabulary with fewer blocks).</summary>
    public int? Layers { get; init; }
    /// <summary>Key/value heads override; = query heads gives the peer's attention (it has no grouped-query attention).</summary>
    public int? KvHeads { get; init; }
    /// <summary>Activation checkpointing: 0 = off, k = every k-th block recomputes in backward.</summary>
    public int CheckpointEvery { get; init; }
    /// <summary>When the LM head and loss run chunk by chunk.</summary>
    public ChunkedLoss ChunkedLoss { get; init; } = ChunkedLoss.Auto;
}

/// <summary>Throughput benchmarks with the peer's definitions (tokens/s, model GFLOP/s, peak RSS).</summary>
public static class Bench
{
    /// <summary>The peer's shapes: (preset, seq_len, batch).</summary>
    public static readonly IReadOnlyDictionary<string, (int SeqLen, int Batch)> PeerShapes = new Dictionary<string, (int, int)>
    {
        ["tiny"] = (128, 8), ["small"] = (256, 8), ["medium"] = (256, 4),
    };

    private static readonly Dictionary<string, string> ShortNames = new()
    {
        ["q"] = "q_proj", ["k"] = "k_proj", ["v"] = "v_proj", ["o"] = "o_proj", ["gate"] = "gate_proj", ["up"] = "up_proj", ["down"] = "down_proj",
    };

    /// <summary>The method config a bench option names: its defaults, with the peer's LoRA and adapter options applied.</summary>
    public static PeftConfig MethodConfig(BenchOptions o) => PeftRegistry.Get(PeftRegistry.ParseKind(o.Method)).DefaultConfig switch
    {
        LoraConfig lora => lora with
        {
            R = o.LoraR, Alpha = o.LoraAlpha,
            Targets = o.LoraTargets == "all" ? new TargetSelector { AllLinear = true }
                : new TargetSelector { Names = o.LoraTargets.Split(',').Select(t => ShortNames.TryGetValue(t.Trim(), out var n) ? n : t.Trim()).ToArray() },
        },
        AdapterConfig adapter => adapter with { Size = o.AdapterSize, Activation = AdapterActivation.Gelu },
        var defaults => defaults,
    };

    /// <summary>The peer's <c>method_args</c> of a bench run: the LoRA or adapter options it used, else none.</summary>
    private static JsonObject MethodArgs(BenchOptions o) => MethodConfig(o) switch
    {
        LoraConfig => new JsonObject { ["r"] = o.LoraR, ["alpha"] = o.LoraAlpha, ["targets"] = o.LoraTargets },
        AdapterConfig => new JsonObject { ["size"] = o.AdapterSize, ["act"] = "gelu" },
        _ => new JsonObject(),
    };

    private static double RssMib() => Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024);

    private static double CurrentRssMib()
    {
        using var p = Process.GetCurrentProcess();
        return p.WorkingSet64 / (1024.0 * 1024);
    }

    /// <summary>
    /// Resets the process's peak RSS to its current RSS (Linux: writing 5 to /proc/self/clear_refs resets VmHWM), so a
    /// later <see cref="RssMib"/> is the peak of what follows (the training steps, not building the model). False
    /// where the kernel does not allow it; the peak then includes everything before.
    /// </summary>
    private static bool ResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>(trainable, frozen) weights used in a matmul per token: every Linear weight, plus a tied head; not the embedding gather.</summary>
    public static (long Trainable, long Frozen) MatmulParams(CausalLM model)
    {
        long tr = 0, fr = 0;
        foreach (var (_, m) in model.named_modules())
            if (m is Linear lin)
            {
                if (lin.weight!.requires_grad) tr += lin.weight.numel(); else fr += lin.weight.numel();
            }
        if (model.Config.TieWordEmbeddings)
        {
            if (model.EmbeddingWeight.requires_grad) tr += model.EmbeddingWeight.numel(); else fr += model.EmbeddingWeight.numel();
        }
        return (tr, fr);
    }

    private static CausalLM Build(BenchOptions o, out PeftModel peft, out DecoderConfig config)
    {
        TorchRuntime.EnsureInitialised();
        torch.set_num_threads(o.Threads);
        config = Presets.Get(o.Preset);
        config = config with { NumLayers = o.Layers ?? config.NumLayers, NumKeyValueHeads = o.KvHeads ?? config.NumKeyValueHeads };
        var model = new CausalLM(config, TorchRuntime.Device, o.Bf16 ? ScalarType.BFloat16 : ScalarType.Float32);
        Presets.InitializeWeights(model, o.Seed);
        peft = PeftModel.Apply(model, MethodConfig(o), o.Seed);
        AllocatorTuning.ReleaseFree();
        return model;
    }

    /// <summary>Training throughput: W warm-up + S timed steps on random tokens (forward, loss, backward, AdamW, loss.item()).</summary>
    public static JsonObject Train(BenchOptions o)
    {
        var start = Stopwatch.StartNew();
        TorchRuntime.EnsureInitialised();
        double baseline = RssMib();
        var (seqLen, batch) = PeerShapes.TryGetValue(o.Preset, out var s) ? s : (256, 8);
        int t = o.SeqLen ?? seqLen, b = o.Batch ?? batch;
        using var scope0 = NewDisposeScope();
        var model = Build(o, out var peft, out var cfg);
        model.train();
        model.CheckpointEvery = o.CheckpointEvery;
        bool chunked = DecoderOnlyModel.Chunks(model, o.ChunkedLoss, (long)b * t);
        var (mmTr, mmFr) = MatmulParams(model);
        long fpt = 6 * mmTr + 4 * mmFr + 12L * cfg.NumLayers * cfg.HiddenSize * t;
        using var opt = new AdamW(Injector.Trainable(model), _ => false, 0.9, 0.999, 1e-8, 0.0);
        var gen = new Generator((ulong)(o.Seed + 1), CPU);
        int n = o.Warmup + o.Steps;
        var data = randint(0, cfg.VocabSize, [n, b, t + 1], generator: gen, dtype: ScalarType.Int64).to(TorchRuntime.Device);
        double beforeSteps = CurrentRssMib();
        bool peakReset = ResetPeakRss();
        var stepSeconds = new List<double>();
        var phases = new List<(double Forward, double Backward, double Optimizer)>();
        var losses = new List<double>();
        for (int step = 0; step < n; step++)
        {
            var sw = Stopwatch.StartNew();
            double loss;
            using (var scope = NewDisposeScope())
            {
                var x = data[step].narrow(1, 0, t);
                var y = data[step].narrow(1, 1, t);
                // the peer's loss: mean cross entropy over all B·T positions
                var l = DecoderOnlyModel.LossSum(model, model.Hidden(x).reshape(-1, cfg.HiddenSize), y.reshape(-1), o.ChunkedLoss).div((double)b * t);
                double tForward = sw.Elapsed.TotalSeconds;   // CPU ops are synchronous, so wall-clock splits are exact
                l.backward();
                double tBackward = sw.Elapsed.TotalSeconds;
                opt.Step(1e-4);
                opt.ZeroGrad();
                loss = l.item<float>();
                if (step >= o.Warmup) phases.Add((tForward, tBackward - tForward, sw.Elapsed.TotalSeconds - tBackward));
            }
            if (step >= o.Warmup) stepSeconds.Add(sw.Elapsed.TotalSeconds);
            losses.Add(loss);
        }
        double tps = (double)b * t * stepSeconds.Count / stepSeconds.Sum();
        var sorted = stepSeconds.Order().ToArray();
        double median = Median(stepSeconds);
        return new JsonObject
        {
            ["mode"] = "train", ["impl"] = "peftlab", ["preset"] = o.Preset, ["method"] = o.Method,
            ["method_args"] = MethodArgs(o),
            ["dtype"] = o.Bf16 ? "bf16-weights" : "fp32",
            ["config"] = ShapeJson(cfg, t, b),
            ["activation_checkpointing"] = o.CheckpointEvery, ["chunked_loss"] = chunked,
            ["warmup_steps"] = o.Warmup, ["timed_steps"] = o.Steps, ["tokens_per_step"] = b * t,
            ["trainable_params"] = peft.TrainableParameters, ["total_params"] = peft.TotalParameters,
            ["matmul_params_trainable"] = mmTr, ["matmul_params_frozen"] = mmFr, ["flops_per_token"] = fpt,
            ["tokens_per_s"] = Math.Round(tps, 2),
            ["tokens_per_s_at_median_step"] = Math.Round(b * t / median, 2),
            ["ms_per_step_median"] = Math.Round(1000 * median, 2),
            ["ms_per_step_min"] = Math.Round(1000 * sorted[0], 2),
            ["ms_per_step_max"] = Math.Round(1000 * sorted[^1], 2),
            ["gflops"] = Math.Round(fpt * tps / 1e9, 2),
            ["phase_ms_median"] = new JsonObject
            {
                ["forward_and_loss"] = Math.Round(1000 * Median(phases.Select(p => p.Forward)), 2),
                ["backward"] = Math.Round(1000 * Median(phases.Select(p => p.Backward)), 2),
                ["optimizer"] = Math.Round(1000 * Median(phases.Select(p => p.Optimizer)), 2),
            },
            ["optimizer_state_bytes"] = opt.StateBytes,
            ["peak_rss_mib"] = Math.Round(RssMib(), 1), ["baseline_rss_mib"] = Math.Round(baseline, 1),
            // with the peak reset before the first step, peak_rss_mib is the training peak and its excess over
            // rss_before_steps_mib is what the steps added: optimiser state, gradients and activations
            ["peak_rss_is_steps_only"] = peakReset, ["rss_before_steps_mib"] = Math.Round(beforeSteps, 1),
            ["step_ms"] = new JsonArray(stepSeconds.Select(x => (JsonNode)Math.Round(1000 * x, 1)).ToArray()),
            ["loss_first"] = Math.Round(losses[0], 4), ["loss_last"] = Math.Round(losses[^1], 4),
            ["wall_s"] = Math.Round(start.Elapsed.TotalSeconds, 2),
        }.WithEnvironment();
    }

    private static JsonObject ShapeJson(DecoderConfig cfg, int? seqLen = null, int? batch = null)
    {
        var json = new JsonObject
        {
            ["vocab"] = cfg.VocabSize, ["d_model"] = cfg.HiddenSize, ["n_layers"] = cfg.NumLayers, ["n_heads"] = cfg.NumHeads,
            ["d_ff"] = cfg.IntermediateSize, ["tie_embeddings"] = cfg.TieWordEmbeddings, ["n_kv_heads"] = cfg.NumKeyValueHeads,
        };
        if (seqLen is not null) json["seq_len"] = seqLen;
        if (batch is not null) json["batch"] = batch;
        return json;
    }

    /// <summary>Adds what the process saw, as the peer does: threads, CPU model, cores, libtorch and .NET versions.</summary>
    public static JsonObject WithEnvironment(this JsonObject result)
    {
        result["threads"] = torch.get_num_threads();
        result["interop_threads"] = torch.get_num_interop_threads();
        result["nproc"] = Environment.ProcessorCount;
        result["cpu"] = HostPrecision.CpuInfo("model name") ?? "unknown";
        result["torch"] = torch.__version__;
        result["dotnet"] = Environment.Version.ToString();
        return result;
    }

    private static double Median(IEnumerable<double> xs)
    {
        var sorted = xs.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    /// <summary>Greedy generation with the KV cache, batch 1: prefill P tokens (LM head on the last only), then G−1 decode steps; median of reps.</summary>
    public static JsonObject Generate(BenchOptions o, int promptLen = 64, int genTokens = 128, int reps = 3)
    {
        var start = Stopwatch.StartNew();
        TorchRuntime.EnsureInitialised();
        double baseline = RssMib();
        using var scope0 = NewDisposeScope();
        var full = PeftRegistry.NameOf(PeftMethodKind.Full);
        var model = Build(o with { Method = full }, out var peft, out var cfg);
        model.eval();
        var gen = new Generator((ulong)(o.Seed + 2), CPU);
        var prompt = randint(0, cfg.VocabSize, [1, promptLen], generator: gen, dtype: ScalarType.Int64).to(TorchRuntime.Device);
        (double Prefill, double Decode) Once(int g)
        {
            using var noGrad = no_grad();
            using var cache = new KvCache(cfg.NumLayers, 1, cfg.NumKeyValueHeads, promptLen + g, cfg.HeadDim, model.EmbeddingWeight.dtype, TorchRuntime.Device);
            var sw = Stopwatch.StartNew();
            long next;
            using (var scope = NewDisposeScope()) next = model.Forward(prompt, cache: cache, mode: LogitsMode.Last).argmax(-1).item<long>();
            double prefill = sw.Elapsed.TotalSeconds;
            sw.Restart();
            using var decoding = StreamedGemv.SingleRowDecoding();   // as Generation does after the prefill
            for (int i = 1; i < g; i++)
            {
                using var scope = NewDisposeScope();
                next = model.Forward(tensor(new[] { next }, [1, 1], device: TorchRuntime.Device), cache: cache, mode: LogitsMode.Last).argmax(-1).item<long>();
            }
            return (prefill, sw.Elapsed.TotalSeconds);
        }
        var (mmTrainable, mmFrozen) = MatmulParams(model);
        long weightBytes = (mmTrainable + mmFrozen) * model.EmbeddingWeight.element_size();
        Once(Math.Min(genTokens, 16));
        var runs = Enumerable.Range(0, reps).Select(_ => Once(genTokens)).OrderBy(r => r.Prefill + r.Decode).ToArray();
        var (pre, dec) = runs[(runs.Length - 1) / 2];
        return new JsonObject
        {
            ["mode"] = "generate", ["impl"] = "peftlab", ["preset"] = o.Preset, ["dtype"] = o.Bf16 ? "bf16-weights" : "fp32",
            ["method"] = full, ["method_args"] = new JsonObject(), ["config"] = ShapeJson(cfg),
            ["batch"] = 1, ["prompt_len"] = promptLen, ["new_tokens"] = genTokens, ["total_params"] = peft.TotalParameters,
            // what one decode step reads: every matmul weight (the tied head included), in the weights' dtype
            ["weight_bytes_per_token"] = weightBytes,
            ["tokens_per_s"] = Math.Round(genTokens / (pre + dec), 2),
            ["decode_tokens_per_s"] = Math.Round((genTokens - 1) / dec, 2),
            ["ms_per_token_decode"] = Math.Round(1000 * dec / (genTokens - 1), 3),
            ["prefill_ms"] = Math.Round(1000 * pre, 2), ["prefill_tokens_per_s"] = Math.Round(promptLen / pre, 2),
            ["gen_reps"] = reps, ["rep_total_ms"] = new JsonArray(runs.Select(r => (JsonNode)Math.Round(1000 * (r.Prefill + r.Decode), 1)).ToArray()),
            ["peak_rss_mib"] = Math.Round(RssMib(), 1), ["baseline_rss_mib"] = Math.Round(baseline, 1),
            ["wall_s"] = Math.Round(start.Elapsed.TotalSeconds, 2),
        }.WithEnvironment();
    }

    /// <summary>
    /// Multi-threaded memory read bandwidth: the median time of summing a float32 tensor far larger than the caches
    /// (<paramref name="mib"/> MiB), as bytes per second. Batch-1 decoding reads every weight once per token, so
    /// this ÷ weight bytes per token is the decode rate's memory-bandwidth limit.
    /// </summary>
    public static JsonObject Bandwidth(int mib = 1024, int reps = 10, int threads = 2)
    {
        TorchRuntime.EnsureInitialised();
        torch.set_num_threads(threads);
        using var scope = NewDisposeScope();
        var x = ones((long)mib << 18, dtype: ScalarType.Float32);               // mib MiB of float32
        var times = new List<double>();
        for (int i = 0; i < reps + 2; i++)
        {
            using var s = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            x.sum().item<float>();
            if (i >= 2) times.Add(sw.Elapsed.TotalSeconds);                     // two untimed passes fault the pages in
        }
        double bytes = (double)mib * (1 << 20);
        return new JsonObject
        {
            ["mode"] = "bandwidth", ["impl"] = "peftlab", ["mib"] = mib, ["reps"] = reps,
            ["read_gb_s_median"] = Math.Round(bytes / Median(times) / 1e9, 2),
            ["read_gb_s_best"] = Math.Round(bytes / times.Min() / 1e9, 2),
        }.WithEnvironment();
    }

    /// <summary>n×n×n matmul GFLOP/s in float32 and bfloat16 (median of reps after 1 s of warm-up).</summary>
    public static JsonObject Matmul(int n = 1024, int reps = 50, int threads = 2)
    {
        TorchRuntime.EnsureInitialised();
        torch.set_num_threads(threads);
        var result = new JsonObject { ["mode"] = "matmul", ["impl"] = "peftlab", ["n"] = n, ["reps"] = reps }.WithEnvironment();
        foreach (var (name, dt) in new[] { ("fp32", ScalarType.Float32), ("bf16", ScalarType.BFloat16) })
        {
            using var scope = NewDisposeScope();
            var a = randn(n, n).to_type(dt);
            var b = randn(n, n).to_type(dt);
            var warm = Stopwatch.StartNew();
            while (warm.Elapsed.TotalSeconds < 1) using (NewDisposeScope()) a.matmul(b);
            var times = new List<double>();
            for (int i = 0; i < reps; i++)
            {
                using var s = NewDisposeScope();
                var sw = Stopwatch.StartNew();
                a.matmul(b);
                times.Add(sw.Elapsed.TotalSeconds);
            }
            times.Sort();
            result[$"{name}_gflops_median"] = Math.Round(2.0 * n * n * n / times[times.Count / 2] / 1e9, 1);
            result[$"{name}_gflops_best"] = Math.Round(2.0 * n * n * n / times[0] / 1e9, 1);
        }
        return result;
    }
}
