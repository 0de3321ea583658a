using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftLab.Runtime;
using PeftLab.Training;

namespace PeftLab.Studies;

/// <summary>The state a trial's executor records in trial.json.</summary>
public enum TrialState
{
    /// <summary>Not started, or stopped cleanly (Ctrl-C) and resumable.</summary>
    Pending,
    /// <summary>A process is training it.</summary>
    Running,
    /// <summary>Finished; result.json holds its results.</summary>
    Done,
    /// <summary>Stopped by divergence detection; result.json says why.</summary>
    Diverged,
    /// <summary>Stopped by an error (trial.json's error says which).</summary>
    Failed,
}

/// <summary>What <c>study status</c> shows: the recorded state checked against the files and the processes.</summary>
public enum TrialView
{
    /// <summary>Never started.</summary>
    Pending,
    /// <summary>Started, then stopped or killed; resumes from its newest checkpoint (or from the start).</summary>
    Interrupted,
    /// <summary>A live process holds it.</summary>
    Running,
    /// <summary>Finished.</summary>
    Done,
    /// <summary>Diverged.</summary>
    Diverged,
    /// <summary>Failed with an error.</summary>
    Failed,
}

/// <summary>Live progress a worker records in trial.json (at most about once a second).</summary>
public sealed record TrialProgress(string Phase, int Step, int TotalSteps, double? Loss, double TokensPerSecond, double ElapsedSeconds);

/// <summary>The content of trial.json.</summary>
public sealed record TrialRecord
{
    /// <summary>Trial id.</summary>
    public required string Id { get; init; }
    /// <summary>Index in the plan.</summary>
    public required int Index { get; init; }
    /// <summary>Axis values (as in plan.json).</summary>
    public required JsonObject Axes { get; init; }
    /// <summary>Recorded state.</summary>
    public TrialState State { get; init; }
    /// <summary>Why it failed (or diverged).</summary>
    public string? Error { get; init; }
    /// <summary>How many times a process started it.</summary>
    public int Attempts { get; init; }
    /// <summary>Process id of the worker that last ran it.</summary>
    public int? Pid { get; init; }
    /// <summary>Start time of that process (unix ms), to tell a live worker from a reused pid.</summary>
    public long? PidStartMs { get; init; }
    /// <summary>Host of that worker.</summary>
    public string? Host { get; init; }
    /// <summary>Slurm job (array job id_task id) when run by Slurm.</summary>
    public string? SlurmJob { get; init; }
    /// <summary>When the last attempt started (UTC).</summary>
    public DateTimeOffset? StartedAt { get; init; }
    /// <summary>Last write (UTC).</summary>
    public DateTimeOffset? UpdatedAt { get; init; }
    /// <summary>When it finished (UTC).</summary>
    public DateTimeOffset? FinishedAt { get; init; }
    /// <summary>The step a clean stop checkpointed at.</summary>
    public int? InterruptedAtStep { get; init; }
    /// <summary>Live progress.</summary>
    public TrialProgress? Progress { get; init; }

    /// <summary>The JSON written to trial.json.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["id"] = Id, ["index"] = Index, ["axes"] = Axes.DeepClone(), ["state"] = StateName(State), ["error"] = Error,
            ["attempts"] = Attempts, ["pid"] = Pid, ["pid_start_ms"] = PidStartMs, ["host"] = Host, ["slurm_job"] = SlurmJob,
            ["started_at"] = Time(StartedAt), ["updated_at"] = Time(UpdatedAt), ["finished_at"] = Time(FinishedAt),
            ["interrupted_at_step"] = InterruptedAtStep,
        };
        if (Progress is { } p)
            o["progress"] = new JsonObject
            {
                ["phase"] = p.Phase, ["step"] = p.Step, ["total_steps"] = p.TotalSteps, ["loss"] = p.Loss is double l && double.IsFinite(l) ? l : null,
                ["tokens_per_s"] = double.IsFinite(p.TokensPerSecond) ? p.TokensPerSecond : 0, ["elapsed_s"] = p.ElapsedSeconds,
            };
        return o;
    }

    /// <summary>Reads trial.json content.</summary>
    public static TrialRecord FromJson(JsonObject o)
    {
        TrialProgress? progress = null;
        if (o["progress"] is JsonObject p)
            progress = new TrialProgress(p["phase"]?.GetValue<string>() ?? "", p["step"]?.GetValue<int>() ?? 0, p["total_steps"]?.GetValue<int>() ?? 0,
                p["loss"]?.GetValue<double>(), p["tokens_per_s"]?.GetValue<double>() ?? 0, p["elapsed_s"]?.GetValue<double>() ?? 0);
        return new TrialRecord
        {
            Id = o["id"]!.GetValue<string>(),
            Index = o["index"]!.GetValue<int>(),
            Axes = o["axes"] as JsonObject is { } a ? (JsonObject)a.DeepClone() : [],
            State = ParseState(o["state"]?.GetValue<string>() ?? "pending"),
            Error = o["error"]?.GetValue<string>(),
            Attempts = o["attempts"]?.GetValue<int>() ?? 0,
            Pid = o["pid"]?.GetValue<int>(),
            PidStartMs = o["pid_start_ms"]?.GetValue<long>(),
            Host = o["host"]?.GetValue<string>(),
            SlurmJob = o["slurm_job"]?.GetValue<string>(),
            StartedAt = ParseTime(o["started_at"]),
            UpdatedAt = ParseTime(o["updated_at"]),
            FinishedAt = ParseTime(o["finished_at"]),
            InterruptedAtStep = o["interrupted_at_step"]?.GetValue<int>(),
            Progress = progress,
        };
    }

    /// <summary>pending, running, done, diverged or failed.</summary>
    public static string StateName(TrialState s) => s.ToString().ToLowerInvariant();

    private static TrialState ParseState(string s) => Enum.TryParse<TrialState>(s, ignoreCase: true, out var v) ? v
        : throw new InvalidDataException($"unknown trial state '{s}'");

    private static string? Time(DateTimeOffset? t) => t?.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    private static DateTimeOffset? ParseTime(JsonNode? n) =>
        n?.GetValue<string>() is { } s && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;
}

/// <summary>A trial as status shows it.</summary>
/// <param name="Entry">Plan entry.</param>
/// <param name="View">Effective state.</param>
/// <param name="Record">trial.json, when written.</param>
/// <param name="Result">result.json, when the trial finished.</param>
/// <param name="HasCheckpoint">A resumable checkpoint exists.</param>
public sealed record TrialStatus(PlanEntry Entry, TrialView View, TrialRecord? Record, RunResult? Result, bool HasCheckpoint)
{
    /// <summary>
    /// The step to show: a finished trial's own result (its last training step, or where it diverged), not the last
    /// progress record, which is written at most once a second and so lags behind the end of the run.
    /// </summary>
    public (int? Step, int? Total) ShownStep =>
        View is TrialView.Done && Result?.Steps is int done ? (done, done)
        : View is TrialView.Diverged && Result?.DivergedAtStep is int at ? (at, Record?.Progress?.TotalSteps)
        : Record?.Progress is { } p ? (p.Step, p.TotalSteps) : (null, null);
}

/// <summary>The schema of <c>study status --json</c>: the study, its counts per state and one object per trial.</summary>
public static class StudyStatusJson
{
    /// <summary>A state's name in status output ("done", "diverged", …).</summary>
    public static string StateName(TrialView v) => v.ToString().ToLowerInvariant();

    /// <summary>Trials per state.</summary>
    public static IReadOnlyDictionary<TrialView, int> Counts(IReadOnlyList<TrialStatus> statuses) =>
        statuses.GroupBy(x => x.View).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>Builds the document.</summary>
    public static JsonObject Build(string name, StudyStore store, IReadOnlyList<TrialStatus> statuses, IReadOnlyDictionary<string, string>? slurmQueued)
    {
        var counts = Counts(statuses);
        return new JsonObject
        {
            ["study"] = name, ["dir"] = store.Dir, ["total"] = statuses.Count,
            ["counts"] = new JsonObject(Enum.GetValues<TrialView>().Select(v => KeyValuePair.Create(StateName(v), (JsonNode?)counts.GetValueOrDefault(v)))),
            ["trials"] = new JsonArray(statuses.Select(x => (JsonNode)new JsonObject
            {
                ["index"] = x.Entry.Index, ["id"] = x.Entry.Id, ["state"] = StateName(x.View), ["axes"] = x.Entry.AxesJson(),
                ["error"] = x.View == TrialView.Failed ? x.Record?.Error : null, ["step"] = x.ShownStep.Step,
            }).ToArray()),
            ["slurm_queued"] = slurmQueued is null ? null : new JsonObject(slurmQueued.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        };
    }
}

/// <summary>An exclusive claim on a trial (an advisory file lock, released by the OS even when the process is killed).</summary>
public sealed class TrialLock : IDisposable
{
    private readonly FileStream stream;

    internal TrialLock(FileStream stream) => this.stream = stream;

    /// <inheritdoc/>
    public void Dispose() => stream.Dispose();
}

/// <summary>
/// The study folder: <c>study.yaml</c>, <c>plan.json</c>, and <c>trials/&lt;id&gt;/</c> holding <c>trial.json</c> and the
/// trainer's run files (result.json last). Every file is replaced atomically (write aside, rename), so a study killed at
/// any moment never holds a half-written file, and result.json decides whether a trial is finished.
/// </summary>
public sealed class StudyStore(string dir)
{
    /// <summary>Folder of the trial folders.</summary>
    public const string TrialsFolder = "trials";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The study folder (absolute).</summary>
    public string Dir { get; } = Path.GetFullPath(dir);
    /// <summary>The resolved study spec.</summary>
    public string StudyYaml => Path.Combine(Dir, "study.yaml");
    /// <summary>The expanded trial table.</summary>
    public string PlanJson => Path.Combine(Dir, "plan.json");
    /// <summary>Slurm scripts and logs.</summary>
    public string SlurmDir => Path.Combine(Dir, "slurm");
    /// <summary>A trial's folder (also its training run folder).</summary>
    public string TrialDir(string id) => Path.Combine(Dir, TrialsFolder, id);
    /// <summary>A trial's state file.</summary>
    public string TrialJson(string id) => Path.Combine(TrialDir(id), "trial.json");
    /// <summary>A trial's result (written by the trainer, last).</summary>
    public string ResultJson(string id) => new RunFiles(TrialDir(id)).Result;
    /// <summary>Output of the worker process that ran a trial locally.</summary>
    public string WorkerLog(string id) => Path.Combine(TrialDir(id), "worker.log");
    private string LockPath(string id) => Path.Combine(TrialDir(id), ".lock");

    /// <summary>Writes study.yaml and plan.json (atomically) and creates the trials folder.</summary>
    public void Initialise(Study study)
    {
        Directory.CreateDirectory(Path.Combine(Dir, TrialsFolder));
        AtomicFile.WriteAllText(StudyYaml, study.ResolvedYaml());
        AtomicFile.WriteAllText(PlanJson, PlanToJson(study.Spec.Name, study.AxisNames, study.Plan).ToJsonString(Indented));
    }

    /// <summary>plan.json content.</summary>
    public static JsonObject PlanToJson(string name, IReadOnlyList<string> axisNames, IReadOnlyList<PlanEntry> plan) => new()
    {
        ["study"] = name,
        ["axis_names"] = new JsonArray(axisNames.Select(a => (JsonNode)a).ToArray()),
        ["trials"] = new JsonArray(plan.Select(e => (JsonNode)new JsonObject { ["id"] = e.Id, ["index"] = e.Index, ["axes"] = e.AxesJson() }).ToArray()),
    };

    /// <summary>Reads plan.json: the study name, axis names and the trials.</summary>
    public (string Name, IReadOnlyList<string> AxisNames, IReadOnlyList<PlanEntry> Trials) ReadPlan()
    {
        if (!File.Exists(PlanJson))
            throw new FileNotFoundException($"'{Dir}' is not a study folder (no plan.json): give the study YAML, or run or submit the study first", PlanJson);
        var o = JsonNode.Parse(File.ReadAllText(PlanJson)) as JsonObject ?? throw new InvalidDataException($"{PlanJson}: not a JSON object");
        var trials = (o["trials"] as JsonArray ?? throw new InvalidDataException($"{PlanJson}: no trials array")).Select(t =>
        {
            var axes = ((JsonObject)t!["axes"]!).Select(kv => new AxisSetting(kv.Key, kv.Value?.DeepClone())).ToArray();
            return new PlanEntry(t["index"]!.GetValue<int>(), t["id"]!.GetValue<string>(), axes);
        }).ToArray();
        var names = o["axis_names"] is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToArray()
            : trials.SelectMany(t => t.Axes.Select(x => x.Name)).Distinct().ToArray();
        return (o["study"]?.GetValue<string>() ?? Path.GetFileName(Dir), names, trials);
    }

    /// <summary>trial.json, or null when not written yet (or unreadable).</summary>
    public TrialRecord? ReadTrial(string id)
    {
        var path = TrialJson(id);
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) is JsonObject o ? TrialRecord.FromJson(o) : null; }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException or IOException) { return null; }
    }

    /// <summary>Replaces trial.json atomically.</summary>
    public void WriteTrial(TrialRecord record) =>
        AtomicFile.WriteAllText(TrialJson(record.Id), (record with { UpdatedAt = DateTimeOffset.UtcNow }).ToJson().ToJsonString(Indented));

    /// <summary>
    /// result.json, or null when the trial has not finished. A result.json that is not a run result
    /// (<see cref="RunResult.Parse"/>) counts as not finished too: the trial runs again and replaces it.
    /// </summary>
    public RunResult? ReadResult(string id)
    {
        var path = ResultJson(id);
        if (!File.Exists(path)) return null;
        try { return RunResult.Read(path); }
        catch (InvalidDataException) { return null; }
    }

    /// <summary>Claims a trial; null when another live process holds it.</summary>
    public TrialLock? TryLock(string id)
    {
        Directory.CreateDirectory(TrialDir(id));
        try { return new TrialLock(new FileStream(LockPath(id), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)); }
        catch (IOException) { return null; }
    }

    /// <summary>Is a live process holding the trial (its lock, or its recorded pid on this host)?</summary>
    public bool IsHeld(string id, TrialRecord? record)
    {
        var path = LockPath(id);
        if (File.Exists(path))
        {
            try
            {
                using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) { }
            }
            catch (IOException) when (File.Exists(path)) { return true; }
            catch (UnauthorizedAccessException) { }
        }
        // file systems without advisory locks: the recorded worker, if it runs here
        return record is { State: TrialState.Running, Pid: int pid } && record.Host == Environment.MachineName && ProcessAlive(pid, record.PidStartMs);
    }

    /// <summary>A trial as status shows it.</summary>
    public TrialStatus Observe(PlanEntry entry)
    {
        var record = ReadTrial(entry.Id);
        var result = ReadResult(entry.Id);
        bool checkpoint = File.Exists(new RunFiles(TrialDir(entry.Id)).Latest);
        TrialView view;
        if (result is not null)
            view = result.Status == RunStatus.Diverged ? TrialView.Diverged : TrialView.Done;
        else if (IsHeld(entry.Id, record))
            view = TrialView.Running;
        else if (record?.State == TrialState.Failed)
            view = TrialView.Failed;
        else if (record?.State == TrialState.Running || checkpoint || record?.InterruptedAtStep is not null)
            view = TrialView.Interrupted;
        else
            view = TrialView.Pending;
        return new TrialStatus(entry, view, record, result, checkpoint);
    }

    /// <summary>Every trial of the plan as status shows it.</summary>
    public IReadOnlyList<TrialStatus> ObserveAll(IReadOnlyList<PlanEntry> plan) => plan.Select(Observe).ToArray();

    /// <summary>Start time of this process (unix ms), recorded with its pid.</summary>
    public static long CurrentProcessStartMs()
    {
        using var p = Process.GetCurrentProcess();
        return new DateTimeOffset(p.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds();
    }

    private static bool ProcessAlive(int pid, long? startMs)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            if (p.HasExited) return false;
            if (startMs is not long ms) return true;
            var started = new DateTimeOffset(p.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds();
            return Math.Abs(started - ms) < 2000;   // a different start time is a reused pid
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
