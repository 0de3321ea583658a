using System.Security.Cryptography;
using System.Text;
using PeftLab.Data.Synthetic;
using PeftLab.Models;
using PeftLab.Runtime;

namespace PeftLab.Training;

/// <summary>
/// Built-in base models: a preset created from a seed and pretrained on the synthetic free-text corpus, cached
/// under the PeftLab cache so every trial of a study (and the next study) reuses it. Concurrent processes
/// wait on a lock file; the folder appears atomically.
/// </summary>
public static class BaseModels
{
    /// <summary>The cached folder of a pretrained preset, building it first if needed.</summary>
    public static string EnsurePretrained(string preset, int steps, long seed, Action<TrainProgress>? progress = null)
    {
        var config = Presets.Get(preset);
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{preset}|{steps}|{seed}|{Presets.ToHfJson(config).ToJsonString()}|v1")))[..12].ToLowerInvariant();
        var root = Path.Combine(NativeLoader.CacheRoot(), "bases");
        var dir = Path.Combine(root, $"{preset}-pretrained-{steps}-{key}");
        if (File.Exists(Path.Combine(dir, "config.json"))) return dir;
        Directory.CreateDirectory(root);
        using var lockFile = AcquireLock(Path.Combine(root, $"{key}.lock"));
        if (File.Exists(Path.Combine(dir, "config.json"))) return dir;   // built by another process while we waited

        var work = Path.Combine(root, $".{key}.{Environment.ProcessId}.work");
        if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        var corpus = Path.Combine(work, "corpus.txt");
        Directory.CreateDirectory(work);
        SyntheticCorpus.Write(corpus, new CorpusOptions((ulong)seed, Documents: 4000));
        // the tokenizer learns its BPE merges from the same corpus the model is pretrained on
        var initial = Path.Combine(work, "init");
        ModelFolder.Create(initial, config, seed, File.ReadLines(corpus).Take(2000));
        var run = Trainer.Run(new TrainConfig
        {
            Model = new ModelSection { Path = initial },
            Method = new Peft.Full.FullConfig(),
            Data = new DataSection { Kind = DataKind.Text, Path = corpus, Packing = true, MaxLength = 256 },
            Optim = new OptimSection { Lr = 2e-3, WeightDecay = 0.01 },
            Schedule = new ScheduleSection { Kind = ScheduleKind.Cosine, WarmupRatio = 0.05 },
            Train = new LoopSection { MaxSteps = steps, BatchSize = 8, Seed = seed },
            Eval = new EvalSection { Generate = false, BestMetric = BestMetric.Loss, Final = false, EvalsPerRun = 4, MaxValidationInstances = 64 },
            Output = Path.Combine(work, "run"),
        }, new TrainOptions { Progress = progress });
        if (run["status"]?.GetValue<string>() != "completed")
            throw new InvalidOperationException($"pretraining the built-in base '{preset}' did not complete: {run.ToJsonString()}");
        AtomicFile.ReplaceDirectory(dir, target =>
        {
            foreach (var f in Directory.GetFiles(Path.Combine(work, "run", "best"))) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
            File.Copy(Path.Combine(work, "run", "result.json"), Path.Combine(target, "pretrain_result.json"));
            File.Copy(Path.Combine(work, "run", "metrics.jsonl"), Path.Combine(target, "pretrain_metrics.jsonl"));
        });
        Directory.Delete(work, recursive: true);
        return dir;
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
