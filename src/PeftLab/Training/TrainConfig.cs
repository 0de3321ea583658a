using PeftLab.Configuration;
using PeftLab.Data.Chat;
using PeftLab.Data.SuperNi;
using PeftLab.Peft;
using PeftLab.Peft.Lora;

namespace PeftLab.Training;

/// <summary>Numeric precision of the forward/backward pass.</summary>
public enum ComputeDtype
{
    /// <summary>Everything in float32.</summary>
    Float32,
    /// <summary>bfloat16 weights and activations; trainable parameters keep float32 master copies in the optimiser.</summary>
    Bfloat16,
    /// <summary>
    /// Whichever of the two multiplies faster on this host (<see cref="PeftLab.Runtime.HostPrecision"/>: measured once
    /// per host and cached); the run's <c>result.json</c> records the one used (<c>cost.dtype</c>).
    /// </summary>
    Auto,
}

/// <summary>What a <see cref="ComputeDtype"/> means for tensors.</summary>
public static class ComputeDtypes
{
    /// <summary>The tensor dtype <paramref name="dtype"/> computes in on this host (<see cref="ComputeDtype.Auto"/> measured).</summary>
    public static TorchSharp.torch.ScalarType Resolve(ComputeDtype dtype) => dtype switch
    {
        ComputeDtype.Float32 => TorchSharp.torch.ScalarType.Float32,
        ComputeDtype.Bfloat16 => TorchSharp.torch.ScalarType.BFloat16,
        ComputeDtype.Auto => Choose(PeftLab.Runtime.HostPrecision.Rates),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary><c>auto</c>'s rule: bfloat16 where it multiplies faster than float32, float32 otherwise.</summary>
    public static TorchSharp.torch.ScalarType Choose(PeftLab.Runtime.MatmulRates rates) =>
        rates.Bfloat16IsFaster ? TorchSharp.torch.ScalarType.BFloat16 : TorchSharp.torch.ScalarType.Float32;

    /// <summary>The config spelling of a tensor dtype this trainer computes in.</summary>
    public static ComputeDtype Of(TorchSharp.torch.ScalarType dtype) => dtype switch
    {
        TorchSharp.torch.ScalarType.Float32 => ComputeDtype.Float32,
        TorchSharp.torch.ScalarType.BFloat16 => ComputeDtype.Bfloat16,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "the trainer computes in float32 or bfloat16"),
    };
}

/// <summary>Which base model to train.</summary>
public sealed record ModelSection : IValidatable
{
    /// <inheritdoc/>
    public IEnumerable<(string Key, string Message)> Validate()
    {
        if ((Path is null) == (Preset is null)) yield return ("path", "give exactly one of model.path (a Hugging Face folder) or model.preset");
        else if (Path is not null && !File.Exists(System.IO.Path.Combine(Path, "config.json"))) yield return ("path", $"'{Path}' is not a model folder (no config.json)");
        else if (Preset is not null && !TrainableModels.PresetNames.Contains(Preset))
            yield return ("preset", $"unknown preset '{Preset}'; known: {string.Join(", ", TrainableModels.PresetNames)}");
        else if (Preset is not null && PretrainSteps > 0 && !PeftLab.Models.Presets.Decoder.ContainsKey(Preset))
            yield return ("pretrain_steps", $"built-in pretraining is for decoder-only presets ({string.Join(", ", PeftLab.Models.Presets.Decoder.Keys)}); '{Preset}' starts from random weights");
    }

    /// <summary>A Hugging Face model folder.</summary>
    public string? Path { get; init; }
    /// <summary>Or a built-in preset, created with random weights inside the run folder (tests, smoke runs).</summary>
    public string? Preset { get; init; }
    /// <summary>
    /// Compute precision. float32 by default, so that a study's numbers do not depend on the host it ran on; <c>auto</c>
    /// takes the faster precision of this host (bfloat16 halves weight memory and on some CPUs doubles matmul speed, on
    /// others it is slower — measured, never assumed).
    /// </summary>
    public ComputeDtype Dtype { get; init; } = ComputeDtype.Float32;
    /// <summary>With a preset: pretrain it this many steps on the synthetic corpus first (cached across runs); 0 = random weights.</summary>
    [ConfigRange(0, int.MaxValue)]
    public int PretrainSteps { get; init; }
}

/// <summary>Kinds of training data.</summary>
public enum DataKind
{
    /// <summary>A folder of task files in the SuperNI schema with split lists (SuperNI itself or <c>peftlab data synth</c> output).</summary>
    [ConfigKey("superni")]
    SuperNi,
    /// <summary>Conversations (messages / Alpaca / ShareGPT JSON or JSONL) rendered through a chat template.</summary>
    Chat,
    /// <summary>Plain text or JSONL with a <c>text</c> field, every token trained (pretraining).</summary>
    Text,
}

/// <summary>Training data and how it becomes token sequences.</summary>
public sealed record DataSection : IValidatable
{
    /// <inheritdoc/>
    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (string.IsNullOrWhiteSpace(Path)) yield return ("path", "required: a folder of task files, a chat file or a text corpus");
        else if (Kind == DataKind.SuperNi && !Directory.Exists(Path)) yield return ("path", $"folder '{Path}' does not exist");
        else if (Kind != DataKind.SuperNi && !File.Exists(Path) && !Directory.Exists(Path)) yield return ("path", $"'{Path}' does not exist");
        if (MaxSourceTokens + MaxTargetTokens + 2 > MaxLength && Kind == DataKind.SuperNi)
            yield return ("max_length", $"must be at least max_source_tokens + max_target_tokens + 2 = {MaxSourceTokens + MaxTargetTokens + 2} (got {MaxLength})");
    }

    /// <summary>Kind of data.</summary>
    public DataKind Kind { get; init; } = DataKind.SuperNi;
    /// <summary>Folder or file.</summary>
    public string Path { get; init; } = "";
    /// <summary>SuperNI prompt format (the reference study's default is definition-only).</summary>
    public PromptFormat Format { get; init; } = PromptFormat.DefinitionOnly;
    /// <summary>Tk-Instruct: positive examples per prompt.</summary>
    [ConfigRange(0, int.MaxValue)]
    public int NumPositiveExamples { get; init; } = 2;
    /// <summary>Training instances per train task.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int TrainInstancesPerTask { get; init; } = 100;
    /// <summary>Seen-task held-out instances per train task (memorisation test).</summary>
    [ConfigRange(0, int.MaxValue)]
    public int HeldOutInstancesPerTask { get; init; } = 100;
    /// <summary>Validation tasks drawn from the train split.</summary>
    [ConfigRange(0, int.MaxValue)]
    public int ValidationTasks { get; init; }
    /// <summary>Validation instances per validation task.</summary>
    [ConfigRange(0, int.MaxValue)]
    public int ValidationInstancesPerTask { get; init; } = 100;
    /// <summary>Test instances per test task (the official 100).</summary>
    [ConfigRange(0, int.MaxValue)]
    public int TestInstancesPerTask { get; init; } = 100;
    /// <summary>Use only the first N training tasks of the seeded order (nested subsets), or null for all.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int? TaskCount { get; init; }
    /// <summary>
    /// Seed of the SuperNI split: the validation tasks, the task order behind <see cref="TaskCount"/> and each task's
    /// training and held-out instances; null: <c>train.seed</c>. A study that fixes it varies only initialisation, data
    /// order and dropout across seeds, so every run of a comparison is scored on the same held-out instances and the
    /// paired intervals over seeds can include the seen-task split.
    /// </summary>
    [ConfigRange(long.MinValue, long.MaxValue)]
    public long? SplitSeed { get; init; }

    /// <summary>The SuperNI split this section asks for, given the run's <c>train.seed</c>.</summary>
    public Data.SuperNi.SuperNiSplitConfig SplitConfig(long trainSeed) => new()
    {
        Seed = SplitSeed ?? trainSeed,
        ValidationTaskCount = ValidationTasks,
        TrainInstancesPerTask = TrainInstancesPerTask,
        HeldOutInstancesPerTask = HeldOutInstancesPerTask,
        ValidationInstancesPerTask = ValidationInstancesPerTask,
        TestInstancesPerTask = TestInstancesPerTask,
        TaskCount = TaskCount,
    };
    /// <summary>Longest source in tokens.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int MaxSourceTokens { get; init; } = 1024;
    /// <summary>Longest target in tokens.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int MaxTargetTokens { get; init; } = 128;
    /// <summary>Longest training sequence (packed rows have this length): BOS + source + target + EOS.</summary>
    [ConfigRange(8, int.MaxValue)]
    public int MaxLength { get; init; } = 1154;
    /// <summary>Pack several examples per row (no attention across them).</summary>
    public bool Packing { get; init; }
    /// <summary>Group similar lengths into batches to reduce padding.</summary>
    public bool GroupByLength { get; init; } = true;
    /// <summary>Chat template for chat data (null: the tokenizer's own).</summary>
    public ChatTemplateKind? ChatTemplate { get; init; }
}

/// <summary>AdamW settings.</summary>
public sealed record OptimSection
{
    /// <summary>Peak learning rate.</summary>
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double Lr { get; init; } = 1e-4;
    /// <summary>β₁.</summary>
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double Beta1 { get; init; } = 0.9;
    /// <summary>β₂.</summary>
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double Beta2 { get; init; } = 0.999;
    /// <summary>ε.</summary>
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double Eps { get; init; } = 1e-8;
    /// <summary>Decoupled weight decay λ.</summary>
    [ConfigRange(0, double.MaxValue)]
    public double WeightDecay { get; init; }
    /// <summary>Also decay vectors (biases, norm gains, scales) and embedding tables; by default only matrices decay (<see cref="WeightDecayRule"/>).</summary>
    public bool DecayAll { get; init; }
    /// <summary>Clip the global gradient norm to this (0 = off).</summary>
    [ConfigRange(0, double.MaxValue)]
    public double ClipNorm { get; init; } = 1.0;
    /// <summary>
    /// LoRA+ (Hayou et al. 2024): LoRA's B matrices and every vector parameter train with lr × this ratio (the paper
    /// suggests 16 as a start), as PEFT's <c>create_loraplus_optimizer</c>; null: one learning rate for all.
    /// </summary>
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double? LoraplusLrRatio { get; init; }
}

/// <summary>Learning-rate schedule.</summary>
public sealed record ScheduleSection
{
    /// <summary>Shape.</summary>
    public ScheduleKind Kind { get; init; } = ScheduleKind.Linear;
    /// <summary>Warmup steps (0: use the ratio).</summary>
    [ConfigRange(0, int.MaxValue)]
    public int WarmupSteps { get; init; }
    /// <summary>Warmup as a fraction of all steps (the reference study used 3%).</summary>
    [ConfigRange(0, 1)]
    public double WarmupRatio { get; init; } = 0.03;
}

/// <summary>Loop length, batching and seeds.</summary>
public sealed record LoopSection
{
    /// <summary>Passes over the training data.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int Epochs { get; init; } = 1;
    /// <summary>
    /// Stop after this many optimiser steps (overrides epochs when set). 0 trains nothing: the model as loaded is
    /// evaluated once (validation, then the final test and held-out evaluation), which is how a study scores its
    /// untuned baseline with the same prompts and decoding as the tuned trials.
    /// </summary>
    [ConfigRange(0, int.MaxValue)]
    public int? MaxSteps { get; init; }
    /// <summary>Sequences (rows) per micro-batch.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches per optimiser step; the loss is normalised over all their target tokens.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int GradAccum { get; init; } = 1;
    /// <summary>Seed for initialisation, data order and dropout.</summary>
    [ConfigRange(long.MinValue, long.MaxValue)]
    public long Seed { get; init; } = 42;
    /// <summary>Compute threads (null: all cores).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int? Threads { get; init; }
    /// <summary>
    /// Recompute transformer blocks' activations in backward instead of keeping them: <c>false</c> (off),
    /// <c>true</c> (every block) or k (every k-th block). Costs about one extra forward of the checkpointed blocks
    /// per step; gradients are unchanged.
    /// </summary>
    public ActivationCheckpointing ActivationCheckpointing { get; init; } = ActivationCheckpointing.Off;
    /// <summary>
    /// Compute the LM head and its cross entropy chunk by chunk (<see cref="ChunkedCrossEntropy"/>) so no
    /// [tokens, vocab] float32 tensor is whole; <c>auto</c> does so when a micro-batch's logits would exceed one chunk.
    /// </summary>
    public ChunkedLoss ChunkedLoss { get; init; } = ChunkedLoss.Auto;
}

/// <summary>Which transformer blocks recompute their activations in backward (<c>train.activation_checkpointing</c>).</summary>
/// <param name="Every">0 = none, k = blocks 0, k, 2k, ... (1 = every block).</param>
public sealed record ActivationCheckpointing(int Every)
{
    /// <summary>No checkpointing.</summary>
    public static ActivationCheckpointing Off { get; } = new(0);

    /// <summary>Reads <c>false</c>, <c>true</c> or a block interval (0 = off).</summary>
    public static (ActivationCheckpointing? Value, string? Error) Read(ConfigNode node) => node switch
    {
        ConfigScalar { IsNull: false, Quoted: false, Value: "false" } => (Off, null),
        ConfigScalar { IsNull: false, Quoted: false, Value: "true" } => (new ActivationCheckpointing(1), null),
        ConfigScalar { IsNull: false, Quoted: false } s when int.TryParse(s.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k)
            => (k == 0 ? Off : new ActivationCheckpointing(k), null),
        _ => (null, $"expected false, true (every block) or a block interval k (every k-th block; 0 = off), got {node.Describe()}"),
    };

    /// <summary>Writes it back the way <see cref="Read"/> takes it.</summary>
    public ConfigNode Write() => ConfigWriter.ToNode(Every switch { 0 => (object)false, 1 => true, var k => k });
}

/// <summary>When the LM head and its loss run chunk by chunk (<c>train.chunked_loss</c>).</summary>
public enum ChunkedLoss
{
    /// <summary>Chunked when a micro-batch's float32 logits exceed <see cref="ChunkedCrossEntropy.ChunkBytes"/> and the head is a plain matrix.</summary>
    Auto,
    /// <summary>Always chunked where the head is a plain matrix (an adapter on the head uses the whole-logits path).</summary>
    Always,
    /// <summary>Never: whole logits, as before.</summary>
    Never,
}

/// <summary>Metric used to keep the best checkpoint.</summary>
public enum BestMetric
{
    /// <summary>Validation ROUGE-L (higher is better).</summary>
    [ConfigKey("rougeL")]
    RougeL,
    /// <summary>Validation exact match (higher is better).</summary>
    ExactMatch,
    /// <summary>Validation loss (lower is better).</summary>
    Loss,
}

/// <summary>What an open-instruction benchmark measures (the reference study's grouping of the Tulu suite).</summary>
public enum CapabilityGroup
{
    /// <summary>Multi-step reasoning: GSM8K chain of thought, BBH.</summary>
    Reasoning,
    /// <summary>Writing code that passes tests: HumanEval, MBPP.</summary>
    Coding,
    /// <summary>Knowledge and reading: MMLU, ARC, TyDiQA.</summary>
    Knowledge,
    /// <summary>Long-form and open generation: AlpacaEval, LAMBADA-style continuation.</summary>
    LongForm,
}

/// <summary>One open-instruction benchmark of the final evaluation: a harness task file and what it measures.</summary>
public sealed record OpenBenchmark : IValidatable
{
    /// <summary>The lm-evaluation-harness task file (see <c>evals/</c>), relative to the working folder.</summary>
    public string Task { get; init; } = "";
    /// <summary>The capability group it reports under (finding (f) compares methods on reasoning, coding and long-form).</summary>
    public CapabilityGroup Group { get; init; } = CapabilityGroup.Knowledge;
    /// <summary>A local copy of its dataset, replacing the file's <c>dataset_path</c>.</summary>
    public string? DatasetPath { get; init; }
    /// <summary>Few-shot examples, replacing the file's <c>num_fewshot</c>.</summary>
    [ConfigRange(0, 10_000)]
    public int? NumFewshot { get; init; }

    /// <inheritdoc/>
    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (Task.Length == 0) yield return ("task", "is required (a harness task file)");
        else if (!File.Exists(Task)) yield return ("task", $"'{Task}' does not exist");
    }
}

/// <summary>
/// The open-instruction arm of the final evaluation: the best weights are also scored on these harness benchmarks
/// (written to <c>eval/open_instruction/&lt;task&gt;/</c>); a study reports them per benchmark and capability group.
/// </summary>
public sealed record OpenInstructionSection
{
    /// <summary>The benchmarks.</summary>
    public List<OpenBenchmark> Tasks { get; init; } = [];
    /// <summary>At most this many documents per benchmark (null: all).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int? Limit { get; init; }
    /// <summary>The judge of win_rate benchmarks: a model folder, or <c>base</c> for the run's own base model untuned (a weak judge for small bases; say so when reporting).</summary>
    public string? Judge { get; init; }
    /// <summary>Run generated code even where no sandbox works (unsandboxed, as this user).</summary>
    public bool UnsafeExecute { get; init; }
    /// <summary>
    /// Put each benchmark context in the chat template the run trains with (<c>data.chat_template</c>, else the
    /// tokenizer's) as one user turn, as lm-evaluation-harness's <c>--apply_chat_template</c>: for models tuned on chat data.
    /// </summary>
    public bool ApplyChatTemplate { get; init; }
}

/// <summary>Evaluation during and after training.</summary>
public sealed record EvalSection
{
    /// <summary>Evaluate every K optimiser steps (0: use <see cref="EvalsPerRun"/>).</summary>
    [ConfigRange(0, int.MaxValue)]
    public int EverySteps { get; init; }
    /// <summary>Evaluations spread evenly over the run (the reference study used 8).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int EvalsPerRun { get; init; } = 8;
    /// <summary>Generate and score on the validation split at each evaluation (slower; loss is always computed).</summary>
    public bool Generate { get; init; } = true;
    /// <summary>At most this many validation instances per evaluation.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int MaxValidationInstances { get; init; } = 200;
    /// <summary>Generation length.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 128;
    /// <summary>Sequences per evaluation batch.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int BatchSize { get; init; } = 16;
    /// <summary>Which metric picks the best checkpoint.</summary>
    public BestMetric BestMetric { get; init; } = BestMetric.RougeL;
    /// <summary>
    /// The metric that really picks the best checkpoint (and labels result.json's best_score): without generation there
    /// is no ROUGE-L or exact match, so it is the validation loss (best_score = −loss).
    /// </summary>
    public BestMetric EffectiveBestMetric => Generate ? BestMetric : BestMetric.Loss;
    /// <summary>Evaluate the best checkpoint on the test and seen-task held-out splits at the end.</summary>
    public bool Final { get; init; } = true;
    /// <summary>At most this many instances per split in the final evaluation (null: all).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int? MaxFinalInstances { get; init; }
    /// <summary>Open-instruction benchmarks the final evaluation also scores (none by default).</summary>
    public OpenInstructionSection? OpenInstruction { get; init; }
}

/// <summary>Divergence and loss-spike detection.</summary>
public sealed record StabilitySection
{
    /// <summary>Diverged when the mean loss of the last 10 steps stays above this multiple of the lowest such mean so far ...</summary>
    [ConfigRange(1, double.MaxValue)]
    public double DivergenceFactor { get; init; } = 4.0;
    /// <summary>... for this many consecutive steps (NaN/Inf stops at once).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int DivergencePatience { get; init; } = 20;
    /// <summary>A spike starts at a step whose loss, and the mean loss of the <see cref="LearningSignals.SpikeWindow"/> steps from it on, exceed this multiple of the loss EMA before it (one outlier batch alone is not a spike).</summary>
    [ConfigRange(1, double.MaxValue)]
    public double SpikeFactor { get; init; } = 1.5;
}

/// <summary>Periodic checkpoints for resuming.</summary>
public sealed record CheckpointSection
{
    /// <summary>Write a resumable checkpoint every K steps (0: at each evaluation).</summary>
    [ConfigRange(0, int.MaxValue)]
    public int EverySteps { get; init; }
    /// <summary>Resumable checkpoints kept (the best one is kept in addition).</summary>
    [ConfigRange(0, int.MaxValue)]
    public int Keep { get; init; } = 1;
}

/// <summary>One training run: everything <c>peftlab train</c> reads from its YAML file.</summary>
public sealed record TrainConfig
{
    /// <summary>Base model.</summary>
    public ModelSection Model { get; init; } = new();
    /// <summary>Fine-tuning method and its knobs (<c>method.name</c> chooses the method).</summary>
    public PeftConfig Method { get; init; } = new LoraConfig();
    /// <summary>Data.</summary>
    public DataSection Data { get; init; } = new();
    /// <summary>Optimiser.</summary>
    public OptimSection Optim { get; init; } = new();
    /// <summary>Schedule.</summary>
    public ScheduleSection Schedule { get; init; } = new();
    /// <summary>Loop.</summary>
    public LoopSection Train { get; init; } = new();
    /// <summary>Evaluation.</summary>
    public EvalSection Eval { get; init; } = new();
    /// <summary>Stability detection.</summary>
    public StabilitySection Stability { get; init; } = new();
    /// <summary>Checkpoints.</summary>
    public CheckpointSection Checkpoint { get; init; } = new();
    /// <summary>Run folder.</summary>
    public string Output { get; init; } = "runs/run";
}
