using System.Diagnostics;
using PeftLab.Runtime;
using PeftLab.Training;

namespace PeftLab.Studies;

/// <summary>How a <see cref="TrialRunner.Run"/> call ended.</summary>
public enum TrialOutcome
{
    /// <summary>Trained to the end (or had finished before).</summary>
    Done,
    /// <summary>Diverged (now or before).</summary>
    Diverged,
    /// <summary>Failed with an error.</summary>
    Failed,
    /// <summary>Stopped cleanly on request; resumable.</summary>
    Interrupted,
    /// <summary>Another live process holds the trial.</summary>
    Busy,
}

/// <summary>Options of one trial run.</summary>
public sealed record TrialRunOptions
{
    /// <summary>Compute threads (null: the config's <c>train.threads</c>).</summary>
    public int? Threads { get; init; }
    /// <summary>Stops the trial cleanly (checkpoint, then state pending).</summary>
    public CancellationToken Cancel { get; init; }
    /// <summary>Receives the trainer's progress.</summary>
    public Action<TrainProgress>? Progress { get; init; }
    /// <summary>Receives one-line messages (started, resumed, finished).</summary>
    public Action<string>? Log { get; init; }
    /// <summary>How long to wait for a trial another process holds before giving up.</summary>
    public TimeSpan LockWait { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Runs one trial in this process: claims it, skips it when result.json exists (a trial never runs twice), resumes from
/// its newest checkpoint, and records running → done / diverged / failed (or pending after a clean stop) in trial.json.
/// </summary>
public static class TrialRunner
{
    /// <summary>Exit code of <c>study run-trial</c> for an outcome.</summary>
    public static int ExitCode(TrialOutcome o) => o switch
    {
        TrialOutcome.Done => 0,
        TrialOutcome.Failed => 1,
        TrialOutcome.Diverged => 3,
        TrialOutcome.Busy => 75,
        _ => 130,
    };

    /// <summary>Runs (or resumes, or skips) trial <paramref name="index"/> of <paramref name="study"/>.</summary>
    public static TrialOutcome Run(Study study, int index, TrialRunOptions? options = null)
    {
        options ??= new TrialRunOptions();
        var trial = study.TrialAt(index);
        var store = study.Store;
        Directory.CreateDirectory(store.Dir);
        if (!File.Exists(store.PlanJson)) store.Initialise(study);
        var log = options.Log ?? (_ => { });

        var sw = Stopwatch.StartNew();
        TrialLock? claim;
        while ((claim = store.TryLock(trial.Id)) is null && sw.Elapsed < options.LockWait) Thread.Sleep(100);
        if (claim is null)
        {
            log($"trial {index} ({trial.Entry.Describe()}) is held by another live process; not started");
            return TrialOutcome.Busy;
        }
        using (claim)
        {
            RemoveLeftovers(new RunFiles(trial.Config.Output));   // we hold the trial: nobody else writes here
            var previous = store.ReadTrial(trial.Id);
            var record = (previous ?? new TrialRecord { Id = trial.Id, Index = trial.Index, Axes = trial.Entry.AxesJson() }) with { Axes = trial.Entry.AxesJson(), Index = trial.Index };
            if (store.ReadResult(trial.Id) is { } existing)
            {
                var state = existing.Status == RunStatus.Diverged ? TrialState.Diverged : TrialState.Done;
                if (record.State != state) store.WriteTrial(record with { State = state, Error = state == TrialState.Diverged ? existing.Reason : null, FinishedAt = record.FinishedAt ?? DateTimeOffset.UtcNow });
                log($"trial {index} ({trial.Entry.Describe()}) already finished ({TrialRecord.StateName(state)}); skipped");
                return state == TrialState.Diverged ? TrialOutcome.Diverged : TrialOutcome.Done;
            }

            var files = new RunFiles(trial.Config.Output);
            bool resume = File.Exists(files.Latest);
            if (!resume) CleanRunFolder(files);   // a run killed before its first checkpoint starts over (e.g. a half-written base model)
            var cfg = options.Threads is int t ? trial.Config with { Train = trial.Config.Train with { Threads = t } } : trial.Config;
            record = record with
            {
                State = TrialState.Running, Error = null, Attempts = record.Attempts + 1, Pid = Environment.ProcessId,
                PidStartMs = StudyStore.CurrentProcessStartMs(), Host = Environment.MachineName, SlurmJob = SlurmJobId(),
                StartedAt = DateTimeOffset.UtcNow, FinishedAt = null, InterruptedAtStep = null, Progress = null,
            };
            store.WriteTrial(record);
            log(resume ? $"trial {index} ({trial.Entry.Describe()}) resuming from {File.ReadAllText(files.Latest).Trim()}" : $"trial {index} ({trial.Entry.Describe()}) started");

            var lastWrite = Stopwatch.StartNew();
            string lastPhase = "";
            var current = record;
            void OnProgress(TrainProgress p)
            {
                options.Progress?.Invoke(p);
                if (lastWrite.Elapsed < TimeSpan.FromSeconds(1) && p.Phase == lastPhase) return;
                lastWrite.Restart();
                lastPhase = p.Phase;
                current = current with { Progress = new TrialProgress(p.Phase, p.Step, p.TotalSteps, p.Loss, p.TokensPerSecond, p.Elapsed.TotalSeconds) };
                try { store.WriteTrial(current); }
                catch (IOException) { }   // progress is best effort; the final state is written below
            }

            RunResult result;
            try
            {
                result = Trainer.Run(cfg, new TrainOptions
                {
                    Resume = resume ? ResumeMode.IfPresent : ResumeMode.None,
                    Warning = w => log($"trial {index}: warning: {w}"),
                    ResolvedConfigText = TrainConfigLoader.ToYaml(cfg),
                    Cancel = options.Cancel,
                    Progress = OnProgress,
                });
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                var message = $"{e.GetType().Name}: {e.Message}";
                store.WriteTrial(current with { State = TrialState.Failed, Error = message, FinishedAt = DateTimeOffset.UtcNow });
                log($"trial {index} ({trial.Entry.Describe()}) failed: {message}");
                return TrialOutcome.Failed;
            }
            switch (result.Status)
            {
                case RunStatus.Completed:
                    store.WriteTrial(current with { State = TrialState.Done, FinishedAt = DateTimeOffset.UtcNow });
                    log($"trial {index} ({trial.Entry.Describe()}) done{Summary(result)}");
                    return TrialOutcome.Done;
                case RunStatus.Diverged:
                    store.WriteTrial(current with { State = TrialState.Diverged, Error = result.Reason, FinishedAt = DateTimeOffset.UtcNow });
                    log($"trial {index} ({trial.Entry.Describe()}) diverged at step {result.DivergedAtStep}: {result.Reason}");
                    return TrialOutcome.Diverged;
                default:
                    int? step = File.Exists(files.Latest) ? CheckpointManifest.StepOf(File.ReadAllText(files.Latest).Trim()) : null;
                    store.WriteTrial(current with { State = TrialState.Pending, InterruptedAtStep = step ?? 0 });
                    log($"trial {index} ({trial.Entry.Describe()}) stopped{(step is int k ? $" at step {k} (checkpointed)" : "")}; it resumes on the next run");
                    return TrialOutcome.Interrupted;
            }
        }
    }

    private static string Summary(RunResult result)
    {
        var parts = new List<string>();
        if (result.Test is { } test) parts.Add($"test rougeL {test.RougeL:F2}");
        if (result.BestScore is double best) parts.Add($"best {result.BestMetric} {best:G4}");
        if (result.FinalLoss is double loss) parts.Add($"final loss {loss:F4}");
        return parts.Count == 0 ? "" : ": " + string.Join(", ", parts);
    }

    /// <summary>Removes what a run that never checkpointed left behind; trial.json, the lock and logs stay.</summary>
    private static void CleanRunFolder(RunFiles files)
    {
        foreach (var d in new[] { files.Checkpoints, files.Best, files.Eval, files.TensorBoard, files.BaseModel })
            if (Directory.Exists(d)) Directory.Delete(d, recursive: true);
        foreach (var f in new[] { files.Metrics, files.Config })
            if (File.Exists(f)) File.Delete(f);
    }

    /// <summary>
    /// Deletes what a kill left mid-write: temp files and folders of atomic writes (the real files are intact), and the
    /// old copy of a replaced folder (put back when the kill fell between its two renames).
    /// </summary>
    private static void RemoveLeftovers(RunFiles files)
    {
        foreach (var dir in new[] { files.Dir, files.Checkpoints })
        {
            if (!Directory.Exists(dir)) continue;
            foreach (var f in Directory.GetFiles(dir, ".*.tmp")) File.Delete(f);
            foreach (var d in Directory.GetDirectories(dir, ".*.tmp")) Directory.Delete(d, recursive: true);
            foreach (var old in Directory.GetDirectories(dir, "*.old*"))
            {
                var name = Path.GetFileName(old);
                var original = Path.Combine(dir, name[..name.LastIndexOf(".old", StringComparison.Ordinal)]);
                if (!Directory.Exists(original)) Directory.Move(old, original);
                else Directory.Delete(old, recursive: true);
            }
        }
    }

    private static string? SlurmJobId()
    {
        var array = Environment.GetEnvironmentVariable("SLURM_ARRAY_JOB_ID");
        var task = Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID");
        if (!string.IsNullOrEmpty(array)) return string.IsNullOrEmpty(task) ? array : $"{array}_{task}";
        var job = Environment.GetEnvironmentVariable("SLURM_JOB_ID");
        return string.IsNullOrEmpty(job) ? null : job;
    }
}
