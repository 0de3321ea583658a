using System.Security.Cryptography;
using System.Text;
using PeftLab.Synthetic;
using PeftLab.Models;
using PeftLab.Runtime;

namespace PeftLab.Training;

/// <summary>
/// Everything that decides a built-in base's pretrained weights besides its preset, step count and seed: the corpus,
/// the tokenizer's corpus, the row length, the optimiser and the compute threads (matrix kernels split work by thread,
/// so the same recipe on another thread count is not bit-identical).
/// </summary>
public sealed record PretrainRecipe
{
    /// <summary>Documents of the synthetic free-text corpus (<see cref="SyntheticCorpus"/>).</summary>
    public int Documents { get; init; } = 4000;
    /// <summary>Seed of the corpus, kept apart from the model seed.</summary>
    public ulong CorpusSeed { get; init; } = 977;
    /// <summary>Corpus documents the tokenizer learns its BPE merges from (none for a byte-level vocabulary).</summary>
    public int TokenizerDocuments { get; init; } = 2000;
    /// <summary>Packed row length in tokens.</summary>
    public int MaxLength { get; init; } = 256;
    /// <summary>Rows per step.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Peak learning rate of the cosine schedule.</summary>
    public double Lr { get; init; } = 2e-3;
    /// <summary>Warmup as a share of the steps.</summary>
    public double WarmupRatio { get; init; } = 0.05;
    /// <summary>Compute threads while pretraining (null: the process setting, so not reproducible bit for bit across machines).</summary>
    public int? Threads { get; init; }
    /// <summary>
    /// How builds longer than one stage go on (null: every step count is one cosine run from the seed). A build of
    /// S &gt; <see cref="PretrainContinuation.Every"/> steps starts from the build of S − Every steps of the same preset
    /// (the shipped copy when there is one) and trains Every more steps on a fresh corpus with a new cosine cycle, so a
    /// longer base extends a shorter one instead of repeating its steps.
    /// </summary>
    public PretrainContinuation? Continue { get; init; }
}

/// <summary>Later stages of a preset's pretraining: warm restarts of the cosine schedule, each on new documents.</summary>
/// <param name="Every">Steps of each stage; a build of S steps continues the build of S − Every.</param>
/// <param name="CorpusSeed">Seed of the second stage's corpus; stage k (k ≥ 2) uses CorpusSeed + k − 2, so no two stages share documents.</param>
/// <param name="Lr">Peak learning rate of each later stage (below the first's: the weights are trained).</param>
public sealed record PretrainContinuation(int Every, ulong CorpusSeed, double Lr)
{
    /// <summary>The seed of the corpus the stage ending at <paramref name="steps"/> trains on.</summary>
    public ulong CorpusSeedAt(int steps) => CorpusSeed + (ulong)((steps - 1) / Every - 1);
}

/// <summary>
/// Built-in base models: a preset created from a seed and pretrained on the synthetic free-text corpus, cached
/// under the PeftLab cache so every trial of a study (and the next study) reuses it. Concurrent processes
/// wait on a lock file; the folder appears atomically. <c>peftlab base build</c> builds one by its recipe into a
/// folder of the user's and prints its weights' SHA-256, so two builds can be compared bit for bit.
/// </summary>
public static class BaseModels
{
    /// <summary>The recipe of each preset that differs from the default <see cref="PretrainRecipe"/>.</summary>
    public static IReadOnlyDictionary<string, PretrainRecipe> Recipes { get; } = new Dictionary<string, PretrainRecipe>
    {
        // The quickstart's base: a corpus large enough that 3000 steps (6.1M tokens) see each document about once.
        // Past 3000 steps, each 3000 more continue the shorter build on 100k new documents at half the peak rate (docs/training.md, `model.preset`).
        ["mini"] = new() { Documents = 100000, Threads = 2, Continue = new(Every: 3000, CorpusSeed: 978, Lr: 1e-3) },
        // The mini shape on bytes: rows twice as long, as a byte is about a third of a BPE token; 60k documents so that
        // 3000 steps (12.3M bytes) again see each document about once.
        ["mini-bytes"] = new() { Documents = 60000, MaxLength = 512, Threads = 2 },
    };

    /// <summary>
    /// Builds shipped with PeftLab (<c>src/PeftLab/Training/Bases/&lt;folder&gt;</c>, copied beside the assembly under
    /// <c>bases/</c>): a trial that asks for one of these uses the shipped copy instead of pretraining, after checking
    /// that its weights have the SHA-256 recorded here. <c>peftlab base build PRESET --steps N</c> rebuilds one by its recipe
    /// and says whether it matches.
    /// </summary>
    public static IReadOnlyList<ShippedBase> Shipped { get; } =
    [
        new("mini", 3000, "e26ee33eab19951d687c3c78e28d55a390135e0aeda2380eba9f78f9e4dcb2b9"),
    ];

    /// <summary>The shipped build of a preset at a step count (seed 0, the only seed built-in bases use), or null.</summary>
    public static ShippedBase? ShippedBuild(string preset, int steps, long seed) =>
        seed == 0 ? Shipped.FirstOrDefault(s => s.Preset == preset && s.Steps == steps) : null;

    /// <summary>Where the shipped copies lie: <c>bases/</c> beside the PeftLab assembly.</summary>
    public static string ShippedRoot => Path.Combine(AppContext.BaseDirectory, "bases");

    /// <summary>
    /// The shipped copy of a build under <paramref name="root"/>, checked against its recorded SHA-256; null when the
    /// build is not shipped or its folder is absent (then it is built by its recipe).
    /// </summary>
    /// <exception cref="InvalidDataException">The copy's weights do not have the recorded SHA-256.</exception>
    public static string? ShippedCopy(string preset, int steps, long seed, string root)
    {
        if (ShippedBuild(preset, steps, seed) is not { } build) return null;
        var dir = Path.Combine(root, FolderName(preset, steps, seed));
        var weights = new FileInfo(Path.Combine(dir, "model.safetensors"));
        if (!weights.Exists) return null;
        // hashed once per process and file state: the executor, the cost estimate and each trial all ask
        var state = (weights.Length, weights.LastWriteTimeUtc);
        if (VerifiedCopies.TryGetValue(weights.FullName, out var seen) && seen == state) return dir;
        var sha = WeightsSha256(dir);
        if (sha != build.WeightsSha256)
            throw new InvalidDataException(
                $"the shipped base {Path.Combine(dir, "model.safetensors")} has SHA-256 {sha}, but PeftLab records {build.WeightsSha256} for " +
                $"'{preset}' pretrained {steps} steps (BaseModels.Shipped): the copy is damaged or was replaced. Restore it " +
                $"(git checkout -- src/PeftLab/Training/Bases) or rebuild it by its recipe with `peftlab base build {preset} --steps {steps}`");
        VerifiedCopies[weights.FullName] = state;
        return dir;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (long, DateTime)> VerifiedCopies = new(StringComparer.Ordinal);

    /// <summary>The recipe of a preset.</summary>
    public static PretrainRecipe RecipeOf(string preset) => Recipes.TryGetValue(preset, out var r) ? r : new PretrainRecipe();

    /// <summary>Folder name of a pretrained base (the cache's and the shipped copy's).</summary>
    public static string FolderName(string preset, int steps, long seed)
    {
        var config = Presets.Get(preset);
        var recipe = RecipeOf(preset);
        // v2: the corpus gained exercise sheets (SyntheticCorpus); v3: its words and numbers got the suite's statistics
        // (Vocabulary.CorpusVocabulary); v4: copy drills. Bump when the corpus or the pretraining loop changes.
        var identity = $"{preset}|{steps}|{seed}|{Presets.ToHfJson(config).ToJsonString()}|v4";
        if (recipe with { Continue = null } != new PretrainRecipe())
            identity += $"|{recipe.Documents}|{recipe.CorpusSeed}|{recipe.TokenizerDocuments}|{recipe.MaxLength}|{recipe.BatchSize}|{recipe.Lr:R}|{recipe.WarmupRatio:R}|{recipe.Threads}";
        // a continuation names only the builds it makes: the first stage's folder (and hash) stay what they were
        if (LaterStage(recipe, steps) is { } c) identity += $"|continue|{c.Every}|{c.CorpusSeedAt(steps)}|{c.Lr:R}";
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..12].ToLowerInvariant();
        return $"{preset}-pretrained-{steps}-{key}";
    }

    /// <summary>The continuation a build of <paramref name="steps"/> runs as, or null when it is one run from the seed.</summary>
    private static PretrainContinuation? LaterStage(PretrainRecipe recipe, int steps) =>
        recipe.Continue is { } c && steps > c.Every ? c : null;

    /// <summary>The shipped copy of a pretrained preset, else its cached folder, building it by its recipe first if needed.</summary>
    public static string EnsurePretrained(string preset, int steps, long seed, Action<TrainProgress>? progress = null)
    {
        if (ShippedCopy(preset, steps, seed, ShippedRoot) is { } shipped) return shipped;
        var root = Path.Combine(NativeLoader.CacheRoot(), "bases");
        var name = FolderName(preset, steps, seed);
        var dir = Path.Combine(root, name);
        if (File.Exists(Path.Combine(dir, "config.json"))) return dir;
        Directory.CreateDirectory(root);
        using var lockFile = AcquireLock(Path.Combine(root, $"{name}.lock"));
        if (File.Exists(Path.Combine(dir, "config.json"))) return dir;   // built by another process while we waited
        Build(preset, steps, seed, dir, progress);
        return dir;
    }

    /// <summary>SHA-256 (lower-case hex) of a model folder's model.safetensors.</summary>
    public static string WeightsSha256(string dir)
    {
        using var f = File.OpenRead(Path.Combine(dir, "model.safetensors"));
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    /// <summary>The pretraining run's result.json as a built base keeps it (a <see cref="RunResult"/>; its best score is the negated held-out corpus loss).</summary>
    public const string PretrainResultFile = "pretrain_result.json";

    /// <summary>
    /// Pretrains a preset by its recipe into <paramref name="dir"/> (replaced atomically): the model files, the
    /// pretraining result (<see cref="PretrainResultFile"/>) and metrics (held-out corpus loss), and <c>recipe.json</c>.
    /// </summary>
    public static void Build(string preset, int steps, long seed, string dir, Action<TrainProgress>? progress = null)
    {
        var config = Presets.Get(preset);
        var recipe = RecipeOf(preset);
        var parent = Path.GetDirectoryName(Path.GetFullPath(dir))!;
        Directory.CreateDirectory(parent);
        var work = Path.Combine(parent, $".{Path.GetFileName(dir)}.{Environment.ProcessId}.work");
        if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        var corpus = Path.Combine(work, "corpus.txt");
        Directory.CreateDirectory(work);
        var stage = LaterStage(recipe, steps);
        SyntheticCorpus.Write(corpus, new CorpusOptions(stage?.CorpusSeedAt(steps) ?? recipe.CorpusSeed, Documents: recipe.Documents));
        var initial = Path.Combine(work, "init");
        if (stage is null)
            // the tokenizer learns its BPE merges from the same corpus the model is pretrained on
            ModelFolder.Create(initial, config, seed, File.ReadLines(corpus).Take(recipe.TokenizerDocuments));
        else
            // the shorter build's weights and tokenizer, then one more stage on documents it has not seen
            initial = EnsurePretrained(preset, steps - stage.Every, seed, progress);
        TorchRuntime.EnsureInitialised();
        int threadsBefore = TorchSharp.torch.get_num_threads();
        RunResult run;
        try
        {
            run = Trainer.Run(new TrainConfig
        {
            Model = new ModelSection { Path = initial },
            Method = new Peft.Full.FullConfig(),
            Data = new DataSection { Kind = DataKind.Text, Path = corpus, Packing = true, MaxLength = recipe.MaxLength },
            Optim = new OptimSection { Lr = stage?.Lr ?? recipe.Lr, WeightDecay = 0.01 },
            Schedule = new ScheduleSection { Kind = ScheduleKind.Cosine, WarmupRatio = recipe.WarmupRatio },
            Train = new LoopSection { MaxSteps = stage?.Every ?? steps, BatchSize = recipe.BatchSize, Seed = seed, Threads = recipe.Threads },
            Eval = new EvalSection { Generate = false, BestMetric = BestMetric.Loss, Final = false, EvalsPerRun = 4, MaxValidationInstances = 64 },
            Output = Path.Combine(work, "run"),
        }, new TrainOptions { Progress = progress });
        }
        finally { TorchSharp.torch.set_num_threads(threadsBefore); }   // the recipe's threads are for pretraining only
        if (run.Status != RunStatus.Completed)
            throw new InvalidOperationException($"pretraining the built-in base '{preset}' did not complete: {run.ToJson().ToJsonString()}");
        AtomicFile.ReplaceDirectory(dir, target =>
        {
            foreach (var f in Directory.GetFiles(Path.Combine(work, "run", "best"))) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
            File.Copy(new RunFiles(Path.Combine(work, "run")).Result, Path.Combine(target, PretrainResultFile));
            File.Copy(Path.Combine(work, "run", "metrics.jsonl"), Path.Combine(target, "pretrain_metrics.jsonl"));
            File.WriteAllText(Path.Combine(target, "recipe.json"), System.Text.Json.JsonSerializer.Serialize(new { preset, steps, seed, recipe }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
        });
        Directory.Delete(work, recursive: true);
    }

    private static FileStream AcquireLock(string path)
    {
        var deadline = DateTime.UtcNow.AddHours(2);
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(500); }
        }
    }
}

/// <summary>A base build shipped with PeftLab: its preset and pretraining steps (seed 0) and the SHA-256 of its model.safetensors.</summary>
public sealed record ShippedBase(string Preset, int Steps, string WeightsSha256);

