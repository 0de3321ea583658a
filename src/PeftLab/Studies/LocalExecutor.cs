using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using PeftLab.Training;

namespace PeftLab.Studies;

/// <summary>How to start <c>peftlab</c> again as a worker: the executable and the arguments before the command.</summary>
/// <param name="FileName">dotnet (or the apphost).</param>
/// <param name="PrefixArgs">The CLI dll when <paramref name="FileName"/> is dotnet, else nothing.</param>
public sealed record WorkerLauncher(string FileName, IReadOnlyList<string> PrefixArgs)
{
    /// <summary>This process's own command line: <c>Environment.ProcessPath</c> plus the entry assembly when run through dotnet.</summary>
    public static WorkerLauncher ForCurrentProcess()
    {
        var exe = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which executable runs this process (Environment.ProcessPath is null)");
        bool viaDotnet = Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase);
        if (!viaDotnet) return new WorkerLauncher(exe, []);
        var dll = Assembly.GetEntryAssembly()?.Location;
        if (string.IsNullOrEmpty(dll)) throw new InvalidOperationException("cannot tell which assembly runs this process (no entry assembly location)");
        return new WorkerLauncher(exe, [dll]);
    }

    /// <summary>The full argument list for a peftlab command.</summary>
    public IReadOnlyList<string> Args(IEnumerable<string> command) => [.. PrefixArgs, .. command];
}

/// <summary>Options of <see cref="LocalExecutor.Run"/>.</summary>
public sealed record LocalRunOptions
{
    /// <summary>Worker processes.</summary>
    public int Workers { get; init; } = 1;
    /// <summary>Threads per worker (null: cores / workers).</summary>
    public int? ThreadsPerWorker { get; init; }
    /// <summary>Run failed trials again.</summary>
    public bool RetryFailed { get; init; }
    /// <summary>How to start workers.</summary>
    public required WorkerLauncher Launcher { get; init; }
    /// <summary>Extra arguments for every worker (e.g. <c>--device cuda</c>).</summary>
    public IReadOnlyList<string> WorkerArgs { get; init; } = [];
    /// <summary>First cancellation: stop launching, SIGINT the workers (they checkpoint), wait for them.</summary>
    public CancellationToken Cancel { get; init; }
    /// <summary>Second cancellation: SIGKILL the workers.</summary>
    public CancellationToken Kill { get; init; }
    /// <summary>Receives the progress table about every <see cref="RefreshInterval"/>.</summary>
    public Action<StudySnapshot>? OnSnapshot { get; init; }
    /// <summary>Receives one line per event (trial started, finished, failed).</summary>
    public Action<string>? OnEvent { get; init; }
    /// <summary>Snapshot interval.</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>One row of the live table.</summary>
/// <param name="Entry">The trial.</param>
/// <param name="View">Its state.</param>
/// <param name="Phase">train, validate, eval test... (null before the first progress report).</param>
/// <param name="Step">Last step in metrics.jsonl.</param>
/// <param name="TotalSteps">Steps of the run.</param>
/// <param name="Loss">Last step loss.</param>
/// <param name="Eta">Estimated time left for this trial.</param>
/// <param name="Note">Free text (held elsewhere, error).</param>
public sealed record TrialLine(PlanEntry Entry, TrialView View, string? Phase, int? Step, int? TotalSteps, double? Loss, TimeSpan? Eta, string? Note);

/// <summary>The live state of a local study run.</summary>
/// <param name="Study">Study name.</param>
/// <param name="Total">Trials in the plan.</param>
/// <param name="Counts">Trials per state.</param>
/// <param name="Active">Running trials (and trials held by other processes).</param>
/// <param name="Elapsed">Since the run started.</param>
/// <param name="Eta">Estimated time to finish every queued trial.</param>
/// <param name="Stopping">Ctrl-C was pressed; waiting for workers to checkpoint.</param>
public sealed record StudySnapshot(string Study, int Total, IReadOnlyDictionary<TrialView, int> Counts, IReadOnlyList<TrialLine> Active, TimeSpan Elapsed, TimeSpan? Eta, bool Stopping);

/// <summary>How a local run ended.</summary>
/// <param name="Counts">Trials per state at the end.</param>
/// <param name="Cancelled">Stopped by Ctrl-C (or SIGTERM) before every trial finished.</param>
/// <param name="SkippedFailed">Failed trials not retried.</param>
public sealed record LocalRunSummary(IReadOnlyDictionary<TrialView, int> Counts, bool Cancelled, int SkippedFailed);

/// <summary>
/// Runs a study's unfinished trials with N worker processes (<c>peftlab study run-trial</c>), each trial in its own
/// process so a crash or kill loses one trial's progress since its last checkpoint and nothing else.
/// </summary>
public static class LocalExecutor
{
    /// <summary>Environment variable carrying the executor's pid to its workers (they stop when it dies).</summary>
    public const string ParentPidVariable = "PEFTLAB_STUDY_PARENT_PID";

    /// <summary>
    /// In a worker started by <c>study run</c> (<see cref="ParentPidVariable"/> set): calls <paramref name="stop"/> when
    /// the executor dies, even by SIGKILL, so the trial stops at a checkpoint instead of running on orphaned. Returns
    /// false when the executor is already gone (the worker should not start). Outside such a worker: does nothing.
    /// </summary>
    public static bool WatchExecutor(Action stop)
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable(ParentPidVariable), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var parent))
            return true;
        if (Posix.ParentPid() != parent) return false;
        Posix.WatchParent(parent, stop);
        return true;
    }

    private sealed class Worker
    {
        public required Trial Trial { get; init; }
        public required Process Process { get; init; }
        public required StreamWriter Log { get; init; }
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public (double Seconds, int Step)? FirstSeen { get; set; }
    }

    /// <summary>Runs until every queued trial finished or the run was cancelled.</summary>
    public static LocalRunSummary Run(Study study, LocalRunOptions options)
    {
        // A two-stage study plans its confirmation trials once the first stage has finished: run, reload, run again.
        while (true)
        {
            var summary = RunPlan(study, options);
            if (summary.Cancelled || study.Spec.Confirm is null) return summary;
            var next = study.Reload();
            if (next.Trials.Count == study.Trials.Count) return summary;
            options.OnEvent?.Invoke($"confirmation stage: {next.Trials.Count - study.Trials.Count} trial(s) re-run each method's best setting (by validation score) with seeds {string.Join(", ", study.Spec.Confirm.Seeds)}");
            study = next;
        }
    }

    private static LocalRunSummary RunPlan(Study study, LocalRunOptions options)
    {
        if (options.Workers < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Workers, "--workers must be at least 1");
        var store = study.Store;
        store.Initialise(study);
        int threads = options.ThreadsPerWorker ?? Math.Max(1, Environment.ProcessorCount / options.Workers);
        var emit = options.OnEvent ?? (_ => { });
        var views = new Dictionary<int, TrialView>();
        var queue = new List<Trial>();
        int skippedFailed = 0;
        foreach (var s in store.ObserveAll(study.Plan))
        {
            // finished, but killed before trial.json said so: settle it (the runner skips it, fixes trial.json, tidies up)
            if (s.View is TrialView.Done or TrialView.Diverged && s.Record?.State is not (TrialState.Done or TrialState.Diverged))
                TrialRunner.Run(study, s.Entry.Index, new TrialRunOptions { LockWait = TimeSpan.Zero });
            views[s.Entry.Index] = s.View;
            if (s.View is TrialView.Pending or TrialView.Interrupted or TrialView.Running || (s.View == TrialView.Failed && options.RetryFailed))
                queue.Add(study.Trials[s.Entry.Index]);
            else if (s.View == TrialView.Failed) skippedFailed++;
        }
        int finishedBefore = views.Values.Count(v => v is TrialView.Done or TrialView.Diverged);
        emit($"study {study.Spec.Name}: {study.Trials.Count} trials, {finishedBefore} finished before, {queue.Count} to run with {options.Workers} worker(s) × {threads} thread(s)"
            + (skippedFailed > 0 ? $"; {skippedFailed} failed trial(s) skipped (--retry-failed runs them again)" : ""));

        // Built-in base models are pretrained once, here, with every core, before the workers (which would
        // otherwise wait on one single-threaded worker doing it).
        foreach (var (preset, steps) in queue.Select(t => t.Config.Model).Where(m => m.Path is null && m.Preset is not null && m.PretrainSteps > 0)
                     .Select(m => (m.Preset!, m.PretrainSteps)).Distinct())
        {
            emit(Training.BaseModels.ShippedCopy(preset, steps, seed: 0, Training.BaseModels.ShippedRoot) is not null
                ? $"built-in base '{preset}' pretrained {steps} steps: the shipped copy (its SHA-256 is checked)"
                : $"pretraining built-in base '{preset}' for {steps} steps (cached after the first time)");
            Training.BaseModels.EnsurePretrained(preset, steps, seed: 0);
        }

        var workers = new List<Worker>();
        var durations = new List<double>();
        var clock = Stopwatch.StartNew();
        TimeSpan? lastSnapshot = null;
        bool signalled = false, killed = false;
        var heldElsewhere = new HashSet<int>();
        try
        {
            while (true)
            {
                foreach (var w in workers.Where(w => w.Process.HasExited).ToArray())
                {
                    w.Process.WaitForExit();
                    w.Log.Dispose();
                    workers.Remove(w);
                    var s = store.Observe(w.Trial.Entry);
                    views[w.Trial.Index] = s.View;
                    int code = w.Process.ExitCode;
                    w.Process.Dispose();
                    if (code == TrialRunner.ExitCode(TrialOutcome.Busy) && s.View is not (TrialView.Done or TrialView.Diverged))
                    {
                        queue.Add(w.Trial);   // claimed by someone else meanwhile: look again later
                        continue;
                    }
                    if (s.View is TrialView.Done or TrialView.Diverged) durations.Add(w.Clock.Elapsed.TotalSeconds);
                    emit(s.View switch
                    {
                        TrialView.Done => $"trial {w.Trial.Index} done in {Format(w.Clock.Elapsed)}: {w.Trial.Entry.Describe()}{ResultNote(s.Result)}",
                        TrialView.Diverged => $"trial {w.Trial.Index} diverged: {w.Trial.Entry.Describe()} ({s.Result?.Reason})",
                        TrialView.Failed => $"trial {w.Trial.Index} FAILED: {w.Trial.Entry.Describe()}: {s.Record?.Error ?? $"worker exited with code {code}"} (log: {store.WorkerLog(w.Trial.Id)})",
                        _ => code is 0 or 130 || signalled
                            ? $"trial {w.Trial.Index} stopped at step {s.Record?.InterruptedAtStep?.ToString() ?? "?"}: {w.Trial.Entry.Describe()}"
                            : $"trial {w.Trial.Index} worker exited with code {code} without finishing: {w.Trial.Entry.Describe()} (log: {store.WorkerLog(w.Trial.Id)})",
                    });
                }

                if (options.Cancel.IsCancellationRequested && !signalled)
                {
                    signalled = true;
                    emit($"stopping: {workers.Count} worker(s) checkpoint and exit (Ctrl-C again to kill them)");
                    // SIGTERM, which workers handle as Ctrl-C: a study started in the background of a non-interactive
                    // shell hands SIGINT to its workers ignored, and they would never see it
                    foreach (var w in workers) Posix.Signal(w.Process.Id, Posix.SigTerm);
                }
                if (options.Kill.IsCancellationRequested && !killed)
                {
                    killed = true;
                    foreach (var w in workers) Posix.Signal(w.Process.Id, Posix.SigKill);
                }

                if (!signalled)
                {
                    for (int qi = 0; qi < queue.Count && workers.Count < options.Workers;)
                    {
                        var t = queue[qi];
                        var s = store.Observe(t.Entry);
                        views[t.Index] = s.View;
                        if (s.View is TrialView.Done or TrialView.Diverged || (s.View == TrialView.Failed && !options.RetryFailed))
                        {
                            queue.RemoveAt(qi);   // finished (or failed) in another process meanwhile
                            heldElsewhere.Remove(t.Index);
                            continue;
                        }
                        if (s.View == TrialView.Running)
                        {
                            if (heldElsewhere.Add(t.Index)) emit($"trial {t.Index} is running in another process; waiting for it");
                            qi++;
                            continue;
                        }
                        heldElsewhere.Remove(t.Index);
                        queue.RemoveAt(qi);
                        workers.Add(Start(study, t, threads, options));
                        views[t.Index] = TrialView.Running;
                        emit($"trial {t.Index} started{(s.HasCheckpoint ? " (resuming)" : "")}: {t.Entry.Describe()}");
                    }
                }

                if (workers.Count == 0 && (signalled || queue.Count == 0)) break;
                if ((lastSnapshot is null || clock.Elapsed - lastSnapshot >= options.RefreshInterval) && options.OnSnapshot is { } onSnapshot)
                {
                    lastSnapshot = clock.Elapsed;
                    onSnapshot(Snapshot(study, views, workers, queue, heldElsewhere, durations, clock.Elapsed, threads, signalled, options.Workers));
                }
                Thread.Sleep(100);
            }
        }
        finally
        {
            // an exception here must not orphan workers mid-trial: stop them cleanly
            foreach (var w in workers)
            {
                if (!w.Process.HasExited) Posix.Signal(w.Process.Id, Posix.SigTerm);   // not SIGINT: it may be ignored (see above)
                w.Process.WaitForExit();
                w.Log.Dispose();
            }
        }
        var final = store.ObserveAll(study.Plan).GroupBy(s => s.View).ToDictionary(g => g.Key, g => g.Count());
        options.OnSnapshot?.Invoke(new StudySnapshot(study.Spec.Name, study.Trials.Count, final, [], clock.Elapsed, null, signalled));
        return new LocalRunSummary(final, signalled, skippedFailed);
    }

    private static Worker Start(Study study, Trial trial, int threads, LocalRunOptions options)
    {
        var store = study.Store;
        Directory.CreateDirectory(store.TrialDir(trial.Id));
        var log = new StreamWriter(new FileStream(store.WorkerLog(trial.Id), FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(false)) { AutoFlush = true };
        log.WriteLine($"--- {DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ssZ} worker for trial {trial.Index} ({trial.Entry.Describe()})");
        var psi = new ProcessStartInfo(options.Launcher.FileName)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Environment.CurrentDirectory,
        };
        foreach (var a in options.Launcher.Args(["study", "run-trial", store.StudyYaml, "--index", trial.Index.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--id", trial.Id, "--threads", threads.ToString(System.Globalization.CultureInfo.InvariantCulture), .. options.WorkerArgs]))
            psi.ArgumentList.Add(a);
        psi.Environment[ParentPidVariable] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["NO_COLOR"] = "1";
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start worker {options.Launcher.FileName}");
        var gate = new object();
        void Write(string? line)
        {
            if (line is null) return;
            lock (gate)
            {
                try { log.WriteLine(line); }
                catch (ObjectDisposedException) { }
            }
        }
        p.OutputDataReceived += (_, e) => Write(e.Data);
        p.ErrorDataReceived += (_, e) => Write(e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new Worker { Trial = trial, Process = p, Log = log };
    }

    private static StudySnapshot Snapshot(Study study, Dictionary<int, TrialView> views, List<Worker> workers, List<Trial> queue, HashSet<int> heldElsewhere,
        List<double> durations, TimeSpan elapsed, int threads, bool stopping, int workerCount)
    {
        var lines = new List<TrialLine>();
        var remainingRunning = new List<double>();
        foreach (var w in workers)
        {
            var record = study.Store.ReadTrial(w.Trial.Id);
            var (step, loss) = LastStep(new RunFiles(w.Trial.Config.Output).Metrics);
            var p = record?.Progress;
            int? total = p?.TotalSteps > 0 ? p.TotalSteps : null;
            bool training = p is null || p.Phase == "train";
            // outside training (pretraining the base, evaluation) the progress counts its own units: show those, no ETA
            if (!training) (step, loss) = (p!.Step, null);
            TimeSpan? eta = null;
            if (training && step is int st && total is int tot)
            {
                var now = w.Clock.Elapsed.TotalSeconds;
                w.FirstSeen ??= (now, st);
                var (t0, s0) = w.FirstSeen.Value;
                if (now - t0 >= 2 && st > s0) eta = TimeSpan.FromSeconds((tot - st) * (now - t0) / (st - s0));
            }
            if (eta is { } e) remainingRunning.Add(e.TotalSeconds);
            lines.Add(new TrialLine(w.Trial.Entry, TrialView.Running, p?.Phase, step, total, loss, eta, null));
        }
        foreach (var i in heldElsewhere)
            lines.Add(new TrialLine(study.Trials[i].Entry, TrialView.Running, null, null, null, null, null, "in another process"));
        var counts = views.Values.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        TimeSpan? overall = null;
        double perTrial = durations.Count > 0 ? durations.Average() : 0;
        if (perTrial > 0 || remainingRunning.Count > 0)
        {
            if (perTrial == 0) perTrial = workers.Select(w => w.Clock.Elapsed.TotalSeconds).DefaultIfEmpty(0).Max() + remainingRunning.DefaultIfEmpty(0).Max();
            overall = TimeSpan.FromSeconds(queue.Count * perTrial / workerCount + remainingRunning.DefaultIfEmpty(0).Average());
        }
        return new StudySnapshot(study.Spec.Name, study.Trials.Count, counts, lines, elapsed, overall, stopping);
    }

    /// <summary>The last step record of a metrics.jsonl (reads only its tail).</summary>
    public static (int? Step, double? Loss) LastStep(string metricsPath)
    {
        if (!File.Exists(metricsPath)) return (null, null);
        try
        {
            using var fs = new FileStream(metricsPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long start = Math.Max(0, fs.Length - 8192);
            fs.Seek(start, SeekOrigin.Begin);
            var tail = new StreamReader(fs).ReadToEnd();
            foreach (var line in tail.Split('\n').Reverse())
            {
                if (!line.Contains("\"type\":\"step\"", StringComparison.Ordinal)) continue;
                try
                {
                    if (JsonNode.Parse(line) is JsonObject o)
                        return (o["step"]?.GetValue<int>(), o["loss"]?.GetValue<double>());
                }
                catch (System.Text.Json.JsonException) { }   // torn or partial line
            }
        }
        catch (IOException) { }
        return (null, null);
    }

    private static string ResultNote(RunResult? result) =>
        result?.Test is { } test ? $" (test rougeL {test.RougeL:F2})"
        : result?.FinalLoss is double loss ? $" (final loss {loss:F4})"
        : "";

    /// <summary>"1h02m", "3m05s", "12s".</summary>
    public static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds:D2}s" : $"{t.TotalSeconds:F0}s";
}
