using PeftLab.Configuration;
using System.ComponentModel;
using PeftLab.Peft;
using PeftLab.Benchmarks;
using PeftLab.Training;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab bench</c> (flags named as in ../shared/peer/peer_bench.py).</summary>
public sealed class BenchSettings : GlobalSettings
{
    /// <summary>train, generate, matmul, bandwidth, packing or eval.</summary>
    [CommandOption("--mode <MODE>")]
    [Description("What to time: train (steps), generate (greedy decoding), matmul (GFLOP/s), bandwidth (memory read GB/s), packing (padding strategies) or eval (batched generation)")]
    [Choices("train", "generate", "matmul", "bandwidth", "packing", "eval")]
    public string Mode { get; init; } = "train";
    /// <summary>Shape.</summary>
    [CommandOption("--preset <NAME>")]
    [Description("Model shape (a built-in preset, random weights)")]
    public string Preset { get; init; } = "tiny";
    /// <summary>Method.</summary>
    [CommandOption("--method <NAME>")]
    [Description("Fine-tuning method to time (a method.name, e.g. full, lora, adapter)")]
    public string Method { get; init; } = PeftRegistry.NameOf(PeftMethodKind.Full);
    /// <summary>LoRA rank.</summary>
    [CommandOption("--lora-r <N>")]
    [Description("LoRA rank (--method lora)")]
    [ConfigRange(1, int.MaxValue)]
    public int LoraR { get; init; } = 8;
    /// <summary>LoRA alpha.</summary>
    [CommandOption("--lora-alpha <A>")]
    [Description("LoRA alpha; the update is scaled by alpha / r")]
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double LoraAlpha { get; init; } = 16;
    /// <summary>LoRA targets.</summary>
    [CommandOption("--lora-targets <LIST>")]
    [Description("Comma-separated LoRA target modules, or all-linear")]
    public string LoraTargets { get; init; } = "q,v";
    /// <summary>Adapter size.</summary>
    [CommandOption("--adapter-size <N>")]
    [Description("Bottleneck width of adapters (--method adapter)")]
    [ConfigRange(1, int.MaxValue)]
    public int AdapterSize { get; init; } = 64;
    /// <summary>bf16 weights.</summary>
    [CommandOption("--bf16")]
    [Description("Frozen weights and compute in bfloat16 (trainable weights stay float32)")]
    public bool Bf16 { get; init; }
    /// <summary>Warm-up steps.</summary>
    [CommandOption("--warmup <N>")]
    [Description("Untimed steps before timing")]
    [ConfigRange(0, int.MaxValue)]
    public int Warmup { get; init; } = 2;
    /// <summary>Timed steps.</summary>
    [CommandOption("--steps <N>")]
    [Description("Timed steps (the median is reported)")]
    [ConfigRange(1, int.MaxValue)]
    public int Steps { get; init; } = 10;
    /// <summary>Threads.</summary>
    [CommandOption("--threads <N>")]
    [Description("Intra-op threads for the timing")]
    [ConfigRange(1, int.MaxValue)]
    public int Threads { get; init; } = 2;
    /// <summary>Prompt length.</summary>
    [CommandOption("--prompt-len <N>")]
    [Description("Prompt tokens before generating (generate mode)")]
    [ConfigRange(1, int.MaxValue)]
    public int PromptLen { get; init; } = 64;
    /// <summary>Generated tokens.</summary>
    [CommandOption("--gen-tokens <N>")]
    [Description("Tokens generated per repetition (generate mode)")]
    [ConfigRange(1, int.MaxValue)]
    public int GenTokens { get; init; } = 128;
    /// <summary>Generation reps.</summary>
    [CommandOption("--gen-reps <N>")]
    [Description("Timed generation repetitions (generate mode)")]
    [ConfigRange(1, int.MaxValue)]
    public int GenReps { get; init; } = 3;
    /// <summary>Matmul size.</summary>
    [CommandOption("--mm-n <N>")]
    [Description("Size n of the n×n×n matrix product (matmul mode)")]
    [ConfigRange(1, int.MaxValue)]
    public int MmN { get; init; } = 1024;
    /// <summary>Seed.</summary>
    [CommandOption("--seed <N>")]
    [Description("Seed of the random weights and batches")]
    [ConfigRange(int.MinValue, int.MaxValue)]
    public int Seed { get; init; }
    /// <summary>SuperNI task folder (packing and eval modes).</summary>
    [CommandOption("--data <DIR>")]
    [Description("SuperNI task folder (packing and eval modes)")]
    public string? Data { get; init; }
    /// <summary>Hugging Face model folder for the packing and eval modes (default: the preset, tokenizer trained on the data).</summary>
    [CommandOption("--model <DIR>")]
    [Description("Hugging Face model folder for packing and eval (default: the preset, tokenizer trained on the data)")]
    public string? Model { get; init; }
    /// <summary>Examples per strategy (packing) or test prompts (eval).</summary>
    [CommandOption("--examples <N>")]
    [Description("Examples per strategy (packing) or test prompts (eval)")]
    [ConfigRange(1, int.MaxValue)]
    public int Examples { get; init; } = 64;
    /// <summary>Rows per batch (train: the preset's peer shape when not given; packing and eval: 8).</summary>
    [CommandOption("--batch <N>")]
    [Description("Rows per batch (train: default the peer's for the preset, else 8; packing, eval: 8)")]
    [ConfigRange(1, int.MaxValue)]
    public int? Batch { get; init; }
    /// <summary>Sequence length of a training row.</summary>
    [CommandOption("--seq-len <N>")]
    [Description("Tokens per training row (train; default the peer's for the preset, else 256)")]
    [ConfigRange(2, int.MaxValue)]
    public int? SeqLen { get; init; }
    /// <summary>Layers override.</summary>
    [CommandOption("--n-layers <N>")]
    [Description("Build the preset with this many blocks (same widths and vocabulary)")]
    [ConfigRange(1, int.MaxValue)]
    public int? Layers { get; init; }
    /// <summary>Key/value heads override.</summary>
    [CommandOption("--kv-heads <N>")]
    [Description("Key/value heads; the query-head count gives the peer's (GQA-free) attention, like for like")]
    [ConfigRange(1, int.MaxValue)]
    public int? KvHeads { get; init; }
    /// <summary>Activation checkpointing interval.</summary>
    [CommandOption("--activation-checkpointing <K>")]
    [Description("Recompute every K-th block's activations in backward (train; 0 = off)")]
    [ConfigRange(0, int.MaxValue)]
    public int ActivationCheckpointing { get; init; }
    /// <summary>Chunked LM head and loss.</summary>
    [CommandOption("--chunked-loss <MODE>")]
    [Description("LM head and cross entropy chunk by chunk: auto (when the logits exceed 64 MiB), always or never (train)")]
    [Choices(typeof(ChunkedLoss))]
    public string ChunkedLoss { get; init; } = "auto";
    /// <summary>Longest training row (packing).</summary>
    [CommandOption("--max-length <N>")]
    [Description("Longest training row in tokens (packing)")]
    [ConfigRange(8, int.MaxValue)]
    public int MaxLength { get; init; } = 1024;
    /// <summary>Longest generated answer (eval).</summary>
    [CommandOption("--max-new-tokens <N>")]
    [Description("Longest generated answer in tokens (eval)")]
    [ConfigRange(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 64;
}

/// <summary><c>peftlab bench</c>: one JSON line, the same fields as the PyTorch peer benchmark.</summary>
public sealed class BenchCommand : Command<BenchSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, BenchSettings s, CancellationToken cancellationToken)
    {
        var o = new BenchOptions
        {
            Preset = s.Preset, Method = s.Method, LoraR = s.LoraR, LoraAlpha = s.LoraAlpha, LoraTargets = s.LoraTargets, AdapterSize = s.AdapterSize,
            Bf16 = s.Bf16, Warmup = s.Warmup, Steps = s.Steps, Threads = s.Threads, Seed = s.Seed,
            SeqLen = s.SeqLen, Batch = s.Batch, Layers = s.Layers, KvHeads = s.KvHeads, CheckpointEvery = s.ActivationCheckpointing,
            ChunkedLoss = ConfigEnums.Parse<ChunkedLoss>(s.ChunkedLoss, "--chunked-loss"),
        };
        var result = s.Mode switch
        {
            "train" => Bench.Train(o),
            "generate" => Bench.Generate(o, s.PromptLen, s.GenTokens, s.GenReps),
            "matmul" => Bench.Matmul(s.MmN, 50, s.Threads),
            "bandwidth" => Bench.Bandwidth(threads: s.Threads),
            "packing" => DataBench.Packing(DataOptions(s, o)),
            "eval" => DataBench.Eval(DataOptions(s, o)),
            _ => throw new System.Diagnostics.UnreachableException($"--mode {s.Mode} passed OptionChecks"),
        };
        Console.WriteLine(result.ToJsonString());
        return 0;
    }

    private static DataBenchOptions DataOptions(BenchSettings s, BenchOptions o) => new()
    {
        DataPath = s.Data ?? throw new ArgumentException($"--mode {s.Mode} needs --data DIR (a folder of SuperNI task files)"),
        ModelPath = s.Model, Bench = o, Examples = s.Examples, BatchSize = s.Batch ?? 8, MaxLength = s.MaxLength, MaxNewTokens = s.MaxNewTokens,
    };
}
