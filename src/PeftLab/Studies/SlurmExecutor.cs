using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using PeftLab.Runtime;

namespace PeftLab.Studies;

/// <summary>Options of <see cref="SlurmExecutor.Submit"/> (null: the study's executor.slurm default, else Slurm's own default).</summary>
public sealed record SlurmSubmitOptions
{
    /// <summary>How array tasks start peftlab (absolute paths).</summary>
    public required WorkerLauncher Launcher { get; init; }
    /// <summary>--partition.</summary>
    public string? Partition { get; init; }
    /// <summary>--gpus-per-task.</summary>
    public int? GpusPerTask { get; init; }
    /// <summary>--time.</summary>
    public string? Time { get; init; }
    /// <summary>--cpus-per-task (also the trial's threads).</summary>
    public int? CpusPerTask { get; init; }
    /// <summary>Submit failed trials again.</summary>
    public bool RetryFailed { get; init; }
    /// <summary>Extra arguments for run-trial (e.g. <c>--device cuda</c>).</summary>
    public IReadOnlyList<string> WorkerArgs { get; init; } = [];
    /// <summary>Write the script only.</summary>
    public bool NoSubmit { get; init; }
    /// <summary>The sbatch executable.</summary>
    public string Sbatch { get; init; } = "sbatch";
    /// <summary>Most array tasks per job (Slurm's MaxArraySize is 1001 by default); more trials become several jobs.</summary>
    public int MaxArrayTasks { get; init; } = 1000;
}

/// <summary>What was submitted.</summary>
/// <param name="Script">slurm/submit.sh.</param>
/// <param name="Trials">Trial indices in array order (array task i runs trial Trials[i]).</param>
/// <param name="Jobs">The Slurm jobs: id, and the offset and count of their array tasks in <paramref name="Trials"/> (empty when nothing was submitted).</param>
public sealed record SlurmSubmission(string Script, IReadOnlyList<int> Trials, IReadOnlyList<SlurmJob> Jobs);

/// <summary>One submitted job array: array task i runs trial Trials[Offset + i].</summary>
/// <param name="JobId">Slurm job id.</param>
/// <param name="Offset">First position in the submission's trial list.</param>
/// <param name="Count">Array tasks.</param>
public sealed record SlurmJob(string JobId, int Offset, int Count);

/// <summary>
/// Submits a study's unfinished trials as one Slurm job array: task i runs <c>peftlab study run-trial study.yaml --index
/// T[i]</c> with the absolute dotnet and dll paths. Every task writes to the shared study folder, which
/// <c>study status</c>, <c>study results</c> and <c>study report</c> read.
/// </summary>
public static class SlurmExecutor
{
    /// <summary>Writes slurm/submit.sh and submits it with sbatch (unless <see cref="SlurmSubmitOptions.NoSubmit"/>).</summary>
    public static SlurmSubmission Submit(Study study, SlurmSubmitOptions options)
    {
        var store = study.Store;
        store.Initialise(study);
        var pending = store.ObserveAll(study.Plan)
            .Where(s => s.View is TrialView.Pending or TrialView.Interrupted || (s.View == TrialView.Failed && options.RetryFailed))
            .Select(s => s.Entry.Index).ToArray();
        Directory.CreateDirectory(store.SlurmDir);
        var script = Path.Combine(store.SlurmDir, "submit.sh");
        if (pending.Length == 0) return new SlurmSubmission(script, [], []);

        var slurm = study.Spec.Executor.Slurm;
        var text = Script(study, pending, options with
        {
            Partition = options.Partition ?? slurm.Partition,
            GpusPerTask = options.GpusPerTask ?? slurm.GpusPerTask,
            Time = options.Time ?? slurm.Time,
            CpusPerTask = options.CpusPerTask ?? slurm.CpusPerTask,
        });
        AtomicFile.WriteAllText(script, text);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead);
        if (options.NoSubmit) return new SlurmSubmission(script, pending, []);

        if (options.MaxArrayTasks < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxArrayTasks, "MaxArrayTasks must be at least 1");
        var jobs = new List<SlurmJob>();
        for (int offset = 0; offset < pending.Length; offset += options.MaxArrayTasks)
        {
            int count = Math.Min(options.MaxArrayTasks, pending.Length - offset);
            // one script; a job beyond the first takes its slice through the array range and PEFTLAB_ARRAY_OFFSET
            string[] args = pending.Length <= options.MaxArrayTasks ? ["--parsable", script]
                : ["--parsable", $"--array=0-{count - 1}", $"--export=ALL,PEFTLAB_ARRAY_OFFSET={offset}", script];
            var jobId = Sbatch(options.Sbatch, args, script);
            jobs.Add(new SlurmJob(jobId, offset, count));
            var record = new JsonObject
            {
                ["job_id"] = jobId, ["submitted_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["trials"] = new JsonArray(pending.Skip(offset).Take(count).Select(i => (JsonNode)i).ToArray()),
            };
            File.AppendAllText(Path.Combine(store.SlurmDir, "jobs.jsonl"), record.ToJsonString() + "\n");
        }
        return new SlurmSubmission(script, pending, jobs);
    }

    private static string Sbatch(string sbatch, IEnumerable<string> args, string script)
    {
        var psi = new ProcessStartInfo(sbatch) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Environment.CurrentDirectory };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"cannot run '{sbatch}' ({e.Message}): is Slurm installed and on PATH? The script is written: {script}", e);
        }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(2))) { p.Kill(); throw new TimeoutException($"sbatch did not answer within 2 minutes (script: {script})"); }
            if (p.ExitCode != 0) throw new InvalidOperationException($"sbatch failed (exit {p.ExitCode}): {stderr.Result.Trim()} (script: {script})");
            var jobId = stdout.Result.Trim().Split(';')[0].Trim();
            if (jobId.Length == 0 || !jobId.All(char.IsAsciiDigit)) throw new InvalidOperationException($"sbatch printed no job id ('{stdout.Result.Trim()}'; script: {script})");
            return jobId;
        }
    }

    /// <summary>The job array script.</summary>
    public static string Script(Study study, IReadOnlyList<int> trials, SlurmSubmitOptions o)
    {
        var store = study.Store;
        string Q(string s) => "'" + s.Replace("'", "'\"'\"'") + "'";
        var sb = new StringBuilder();
        sb.Append("#!/bin/bash\n");
        sb.Append($"# peftlab study '{study.Spec.Name}': {trials.Count} trial(s) as a job array. Written by `peftlab study submit`; resubmitting rewrites it.\n");
        sb.Append($"#SBATCH --job-name=peftlab-{study.Spec.Name}\n");
        sb.Append($"#SBATCH --array=0-{Math.Min(trials.Count, o.MaxArrayTasks) - 1}\n");
        sb.Append($"#SBATCH --output={Path.Combine(store.SlurmDir, "%A_%a.out")}\n");
        sb.Append($"#SBATCH --chdir={Environment.CurrentDirectory}\n");
        if (o.Partition is { Length: > 0 } part) sb.Append($"#SBATCH --partition={part}\n");
        if (o.CpusPerTask is int cpus) sb.Append($"#SBATCH --cpus-per-task={cpus}\n");
        if (o.GpusPerTask is int gpus && gpus > 0) sb.Append($"#SBATCH --gpus-per-task={gpus}\n");
        if (o.Time is { Length: > 0 } time) sb.Append($"#SBATCH --time={time}\n");
        foreach (var extra in study.Spec.Executor.Slurm.ExtraArgs) sb.Append($"#SBATCH {extra}\n");
        sb.Append("set -euo pipefail\n");
        foreach (var line in study.Spec.Executor.Slurm.Setup) sb.Append(line).Append('\n');
        sb.Append("# array task i runs trial TRIALS[i] (only the trials unfinished at submission)\n");
        sb.Append($"TRIALS=({string.Join(' ', trials.Select(i => i.ToString(CultureInfo.InvariantCulture)))})\n");
        sb.Append($"IDS=({string.Join(' ', trials.Select(i => study.Trials[i].Id))})\n");
        sb.Append("# more trials than one array may hold are submitted as several jobs, each with its offset into TRIALS\n");
        sb.Append("T=$(( ${PEFTLAB_ARRAY_OFFSET:-0} + SLURM_ARRAY_TASK_ID ))\n");
        sb.Append("INDEX=${TRIALS[$T]}\n");
        sb.Append("ID=${IDS[$T]}\n");
        var args = new List<string>(o.Launcher.PrefixArgs.Select(Q)) { "study", "run-trial", Q(store.StudyYaml), "--index", "\"$INDEX\"", "--id", "\"$ID\"" };
        args.Add("--threads");
        args.Add(o.CpusPerTask is int c ? c.ToString(CultureInfo.InvariantCulture) : "\"${SLURM_CPUS_PER_TASK:-1}\"");
        args.AddRange(o.WorkerArgs.Select(Q));
        sb.Append($"exec {Q(o.Launcher.FileName)} {string.Join(' ', args)}\n");
        return sb.ToString();
    }

    /// <summary>
    /// Array tasks of this study's submitted jobs that Slurm still lists (job id_task → state), or null when squeue is
    /// not available.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? QueuedTasks(StudyStore store)
    {
        var jobsFile = Path.Combine(store.SlurmDir, "jobs.jsonl");
        if (!File.Exists(jobsFile)) return new Dictionary<string, string>();
        var jobs = File.ReadLines(jobsFile).Select(l => { try { return JsonNode.Parse(l)?["job_id"]?.GetValue<string>(); } catch (System.Text.Json.JsonException) { return null; } })
            .Where(j => j is not null).Distinct().ToArray();
        if (jobs.Length == 0) return new Dictionary<string, string>();
        var psi = new ProcessStartInfo("squeue") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-h", "-r", "-o", "%i %T", "-j", string.Join(',', jobs) }) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEndAsync();
            _ = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(30))) { p.Kill(); return null; }
            // squeue exits non-zero when every listed job has left the queue ("Invalid job id")
            return output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim().Split(' ', 2))
                .Where(x => x.Length == 2).GroupBy(x => x[0]).ToDictionary(g => g.Key, g => g.First()[1]);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
