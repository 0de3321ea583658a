using PeftLab.Configuration;

namespace PeftLab.Studies;

/// <summary>
/// A study: a base training config and axes whose cartesian product (knob axes only for their method) gives the
/// trials. Bound from YAML with the configuration system (snake_case keys, unknown keys are errors); see
/// <see cref="Study.Load"/> for loading, overrides and validation.
/// </summary>
public sealed record StudySpec
{
    /// <summary>Study name (letters, digits, '.', '_' and '-'); names the Slurm job and plan.json.</summary>
    public string Name { get; init; } = "";
    /// <summary>Free text shown by <c>study plan</c>.</summary>
    public string? Description { get; init; }
    /// <summary>The study folder (relative paths are relative to the current directory, like <c>train</c>'s output).</summary>
    public string Output { get; init; } = "";
    /// <summary>Base training config: a mapping in <c>TrainConfig</c>'s schema, applied over <see cref="BaseConfig"/> if both are given.</summary>
    public ConfigNode? Base { get; init; }
    /// <summary>Base training config file (relative to the study file).</summary>
    public string? BaseConfig { get; init; }
    /// <summary>Train on the built-in synthetic suite (written once to the PeftLab cache); sets the base <c>data.path</c>.</summary>
    public SyntheticSuiteSpec? SyntheticSuite { get; init; }
    /// <summary>
    /// Score every trial's best weights on the built-in open-instruction stand-ins (multiple choice, arithmetic,
    /// extractive QA, cloze, code with tests, open prompts; written once to the PeftLab cache): sets the base
    /// <c>eval.open_instruction</c> tasks with their capability groups, so the report's open_instruction analysis and
    /// finding (f) have them.
    /// </summary>
    public SyntheticHarnessSpec? SyntheticHarness { get; init; }
    /// <summary>The axes of the experiment matrix.</summary>
    public StudyAxes Axes { get; init; } = new();
    /// <summary>
    /// Per-method axis values: method name → axes (<c>lr</c>, a knob axis of that method, <c>task_count</c>,
    /// <c>seed</c>, <c>model</c>, <c>overrides</c>) that replace the shared axis of the same name for that method's
    /// trials only. The reference study's best learning rates differ by two orders of magnitude between full
    /// finetuning (1e-5) and LoRA or adapters (1e-4 to 1e-3), so one shared <c>lr</c> list cannot serve them all.
    /// </summary>
    public IReadOnlyDictionary<string, StudyAxes> MethodAxes { get; init; } = new Dictionary<string, StudyAxes>();
    /// <summary>
    /// Also evaluate each base model untuned (method <c>untuned</c>: zero training steps, the same prompts, data and
    /// decoding as the tuned trials), so every table and finding can show what tuning adds.
    /// </summary>
    public bool Baseline { get; init; } = true;
    /// <summary>
    /// A second stage: once every first-stage trial of a method (per base model, at the largest task count) has
    /// finished, its best setting by validation score is re-run with these further seeds. Null: one stage.
    /// </summary>
    public ConfirmSpec? Confirm { get; init; }
    /// <summary>Per-method fixed settings: method name → {training key path → value}, applied before the axis values.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, ConfigNode>> MethodOverrides { get; init; } =
        new Dictionary<string, IReadOnlyDictionary<string, ConfigNode>>();
    /// <summary>Analyses <c>study report</c> produces (consumed by the report).</summary>
    public IReadOnlyList<string> Analyses { get; init; } = [];
    /// <summary>Thresholds of the report's findings (opaque here; consumed by the report).</summary>
    public IReadOnlyDictionary<string, double> FindingThresholds { get; init; } = new Dictionary<string, double>();
    /// <summary>Executor defaults.</summary>
    public ExecutorSpec Executor { get; init; } = new();
    /// <summary>
    /// Most trials the axes may expand to (1..1,000,000). The count is computed from the axis lengths before anything
    /// is expanded, so a typo that multiplies the grid is refused at once instead of planning for minutes.
    /// </summary>
    [ConfigRange(1, 1_000_000)]
    public int MaxTrials { get; init; } = 10_000;
}

/// <summary>
/// The axes. A missing axis is not varied (the base config's value holds); a scalar is a one-value axis.
/// Knob axes (<see cref="Knobs"/>: each method's capacity knob, e.g. <c>lora_r</c>) expand only the trials of their method.
/// </summary>
public sealed record StudyAxes
{
    /// <summary>Methods (any name or alias of <see cref="PeftLab.Peft.PeftRegistry.All"/>, e.g. full, lora, prompt_tuning) → <c>method.name</c>.</summary>
    [ConfigAllowSingle] public IReadOnlyList<string>? Method { get; init; }
    /// <summary>Peak learning rates → <c>optim.lr</c>.</summary>
    [ConfigAllowSingle] public IReadOnlyList<double>? Lr { get; init; }
    /// <summary>
    /// Capacity knob axes by axis name, written beside the other axes: each registered method's
    /// <see cref="PeftLab.Peft.CapacityKnob"/> (e.g. <c>lora_r</c> → <c>method.r</c>, <c>prompt_tokens</c> →
    /// <c>method.num_virtual_tokens</c>; see <see cref="StudyAxisNames.KnobAxes"/>); each expands only its method's trials.
    /// A null value (e.g. the override <c>lora_r=null</c>) is the same as no such axis.
    /// </summary>
    [ConfigAllowSingle, ConfigInline(typeof(StudyAxisNames), nameof(StudyAxisNames.KnobAxes))]
    public IReadOnlyDictionary<string, IReadOnlyList<int>?> Knobs { get; init; } = new Dictionary<string, IReadOnlyList<int>?>();
    /// <summary>Base models: a preset name (<c>model.preset</c>) or a model folder (<c>model.path</c>).</summary>
    [ConfigAllowSingle] public IReadOnlyList<string>? Model { get; init; }
    /// <summary>Training task counts → <c>data.task_count</c>; null means all tasks.</summary>
    [ConfigAllowSingle] public IReadOnlyList<int?>? TaskCount { get; init; }
    /// <summary>Seeds → <c>train.seed</c>.</summary>
    [ConfigAllowSingle] public IReadOnlyList<long>? Seed { get; init; }
    /// <summary>Generic axes: training key path → values (e.g. <c>optim.weight_decay: [0, 0.01]</c>).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<ConfigNode>>? Overrides { get; init; }
}

/// <summary>
/// The confirmation stage of a two-stage study: a search over the axes with one seed, then each method's best setting
/// (highest validation score, i.e. chosen without looking at the test split) re-run with more seeds, so the setting a
/// report calls best has a seed spread and a confidence interval while the search stays cheap.
/// </summary>
public sealed record ConfirmSpec
{
    /// <summary>Seeds added to each method's best setting (a seed it already ran with is not run twice).</summary>
    [ConfigAllowSingle] public IReadOnlyList<long> Seeds { get; init; } = [];
    /// <summary>
    /// How many of each method's settings, best first by validation score, get the seeds: 1 confirms the best only; 2
    /// also re-runs the runner-up, which gives the instability finding a seed spread away from the best setting.
    /// </summary>
    [ConfigRange(1, 100)]
    public int Settings { get; init; } = 1;
}

/// <summary>The built-in synthetic instruction suite as a study's data.</summary>
public sealed record SyntheticSuiteSpec
{
    /// <summary>Seed of the generated data.</summary>
    [ConfigRange(0, long.MaxValue)]
    public long Seed { get; init; } = 20240501;
    /// <summary>Instances written per task.</summary>
    [ConfigRange(1, 100_000)]
    public int InstancesPerTask { get; init; } = 200;
    /// <summary>
    /// The task categories the study keeps (empty: all twelve), e.g. <c>[rule_classification, extraction]</c>: a base
    /// too small to learn letter-level rewrites or arithmetic is then measured on the families it can learn, instead of
    /// averaging them with zeros. Test tasks are kept where every primitive they compose occurs in a kept train task.
    /// </summary>
    public IReadOnlyList<Synthetic.SyntheticCategory> Categories { get; init; } = [];

    /// <summary>The generator options this spec asks for.</summary>
    public Synthetic.SyntheticSuiteOptions Options => new((ulong)Seed, InstancesPerTask) { Categories = Categories.Count > 0 ? Categories : null };

    /// <summary>The suite's name in trial ids: seed, size and (when filtered) the kept categories.</summary>
    public string Symbol => $"seed={Seed},instances_per_task={InstancesPerTask}" +
        (Categories.Count > 0 ? ",categories=" + string.Join("+", Categories.Distinct().Order().Select(c => ConfigEnums.Name(c))) : "");
}

/// <summary>The built-in open-instruction stand-ins as a study's open-instruction benchmarks.</summary>
public sealed record SyntheticHarnessSpec
{
    /// <summary>Seed of the generated documents.</summary>
    [ConfigRange(0, long.MaxValue)]
    public long Seed { get; init; } = 20240601;
    /// <summary>Test documents per benchmark (the few-shot pool is a quarter of it, at least 8).</summary>
    [ConfigRange(4, 100_000)]
    public int Documents { get; init; } = 100;
    /// <summary>The judge of the open-prompt benchmark: <c>base</c> (each trial's base model, untuned; weak for a small base) or a model folder.</summary>
    public string Judge { get; init; } = "base";
    /// <summary>
    /// Above 0: also write the stand-ins' own instruction mixture (this many conversations per benchmark, none equal to
    /// a test document) and train every trial on it in chat form (Tulu template), with each benchmark's context put in
    /// the same template - the open-instruction arm in miniature. It replaces <c>synthetic_suite</c> as the training data.
    /// </summary>
    [ConfigRange(0, 1_000_000)]
    public int MixturePerTask { get; init; }
}

/// <summary>How trials are executed by default (command-line options override).</summary>
public sealed record ExecutorSpec
{
    /// <summary>Local worker processes running trials in parallel.</summary>
    [ConfigRange(1, 1024)]
    public int Workers { get; init; } = 1;
    /// <summary>Compute threads per worker (null: the machine's cores divided by the workers).</summary>
    [ConfigRange(1, 4096)]
    public int? ThreadsPerWorker { get; init; }
    /// <summary>Defaults for <c>study submit --executor slurm</c>.</summary>
    public SlurmSpec Slurm { get; init; } = new();
}

/// <summary>Slurm defaults (each also a <c>study submit</c> option).</summary>
public sealed record SlurmSpec
{
    /// <summary>Partition (<c>--partition</c>), or the cluster's default.</summary>
    public string? Partition { get; init; }
    /// <summary>GPUs per array task (<c>--gpus-per-task</c>).</summary>
    [ConfigRange(0, 64)]
    public int? GpusPerTask { get; init; }
    /// <summary>Time limit per array task (<c>--time</c>, e.g. 04:00:00).</summary>
    public string? Time { get; init; }
    /// <summary>CPUs per array task (<c>--cpus-per-task</c>; also the trial's compute threads).</summary>
    [ConfigRange(1, 4096)]
    public int? CpusPerTask { get; init; }
    /// <summary>Further sbatch options written as <c>#SBATCH</c> lines (e.g. <c>--mem=64G</c>).</summary>
    public IReadOnlyList<string> ExtraArgs { get; init; } = [];
    /// <summary>Shell lines run before the trial (e.g. <c>module load cuda</c>).</summary>
    public IReadOnlyList<string> Setup { get; init; } = [];
}
