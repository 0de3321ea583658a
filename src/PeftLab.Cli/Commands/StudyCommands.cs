using PeftLab.Configuration;
using System.ComponentModel;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using PeftLab.Studies;
using PeftLab.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectre.Console.Rendering;

namespace PeftLab.Cli.Commands;

/// <summary>Registers the <c>peftlab study</c> commands of the experiment matrix (plan, run, run-trial, submit, status, results).</summary>
public static class StudyCommands
{
    /// <summary>Adds the commands to the <c>study</c> branch.</summary>
    public static void Register(IConfigurator<GlobalSettings> study)
    {
        study.AddCommand<StudyPlanCommand>("plan").WithDescription("Validate a study and print its trial table and estimated cost");
        study.AddCommand<StudyRunCommand>("run").WithDescription("Run a study's unfinished trials with N local worker processes (default: studies/quickstart.yaml)");
        study.AddCommand<StudyRunTrialCommand>("run-trial").WithDescription("Run (or resume) one trial of a study in this process");
        study.AddCommand<StudySubmitCommand>("submit").WithDescription("Submit a study's unfinished trials as a Slurm job array");
        study.AddCommand<StudyStatusCommand>("status").WithDescription("Count a study's trials by state (pending, running, done, diverged, failed)");
        study.AddCommand<StudyResultsCommand>("results").WithDescription("Export one row per trial (axes and metrics) as CSV, JSONL or Parquet");
    }

    /// <summary>studies/quickstart.yaml in the current directory (or above), else in the PeftLab checkout that holds this program.</summary>
    public static string DefaultStudy()
    {
        const string rel = "studies/quickstart.yaml";
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, rel);
                if (File.Exists(candidate)) return Path.GetRelativePath(Environment.CurrentDirectory, candidate);
            }
        throw new FileNotFoundException($"no study file given, and {rel} was found neither in the current directory (or above) nor in the PeftLab checkout; give a study YAML");
    }

    /// <summary>The study file and overrides: a first argument with '=' that is not a file is an override.</summary>
    internal static (string File, string[] Overrides) StudyArgs(string? study, string[] overrides)
    {
        if (study is null) return (DefaultStudy(), overrides);
        if (study.Contains('=') && !File.Exists(study)) return (DefaultStudy(), [study, .. overrides]);
        return (study, overrides);
    }

    /// <summary>A study folder (given as a folder, or through its YAML) and, when loaded from YAML, the study.</summary>
    internal static (StudyStore Store, Study? Study) Locate(string target, string[] overrides)
    {
        if (Directory.Exists(target))
        {
            if (overrides.Length > 0) throw new ArgumentException("overrides apply to a study YAML, not to a study folder");
            return (new StudyStore(target), null);
        }
        // a study that ran already is read from its folder (its data need not be on this machine)
        var spec = Study.ReadSpec(target, overrides);
        if (!string.IsNullOrWhiteSpace(spec.Output) && File.Exists(Path.Combine(Path.GetFullPath(spec.Output), "plan.json")))
            return (new StudyStore(spec.Output), null);
        var study = Study.Load(target, overrides);
        return (study.Store, study);
    }

    /// <summary>Installs Ctrl-C / SIGTERM handling: the first signal cancels <paramref name="stop"/>, the second <paramref name="kill"/>.</summary>
    internal static IDisposable OnSignals(CancellationTokenSource stop, CancellationTokenSource? kill)
    {
        void Fire()
        {
            if (!stop.IsCancellationRequested) stop.Cancel();
            else kill?.Cancel();
        }
        // SIGINT through PosixSignalRegistration rather than Console.CancelKeyPress: the latter is not raised when the
        // process was started with SIGINT ignored (a background job of a non-interactive shell, as in some CI runners).
        var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; Fire(); });
        var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; Fire(); });
        return new Disposer(() => { intr.Dispose(); term.Dispose(); });
    }

    private sealed class Disposer(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    internal static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Tables written to a file or pipe are not wrapped at 80 columns.</summary>
    internal static void WideWhenRedirected()
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 240);
    }

    internal static string Describe(PlanEntry e) => string.Join(" ", e.Axes.Where(a => a.Name != StudyAxisNames.Method).Select(a => $"{a.Name}={a.Display}"));

    internal static string StateName(TrialView v) => StudyStatusJson.StateName(v);

    /// <summary>"2 done, 0 diverged, ..." in a fixed order.</summary>
    internal static string CountsLine(IReadOnlyDictionary<TrialView, int> counts) =>
        string.Join(", ", new[] { TrialView.Done, TrialView.Diverged, TrialView.Failed, TrialView.Running, TrialView.Interrupted, TrialView.Pending }
            .Select(v => $"{counts.GetValueOrDefault(v)} {StateName(v)}"));
}

/// <summary>Positional study file plus key=value overrides.</summary>
public class StudyFileSettings : GlobalSettings
{
    /// <summary>Study YAML.</summary>
    [CommandArgument(0, "[study]")]
    [Description("Study YAML (default: studies/quickstart.yaml)")]
    public string? Study { get; init; }

    /// <summary>Overrides.</summary>
    [CommandArgument(1, "[overrides]")]
    [Description("key=value: base.KEY or a training key (data.path=...), an axis (model=PATH, seed=[[1,2]]), or a study key (output=..., executor.workers=4)")]
    public string[] Overrides { get; init; } = [];
}

/// <summary>A study that already exists: its YAML (plus overrides) or its output folder.</summary>
public class StudyLocationSettings : GlobalSettings
{
    /// <summary>Study YAML or folder.</summary>
    [CommandArgument(0, "<study>")]
    [Description("Study YAML or study folder")]
    public string Study { get; init; } = "";

    /// <summary>Overrides (YAML only).</summary>
    [CommandArgument(1, "[overrides]")]
    [Description("key=value overrides of the study YAML")]
    public string[] Overrides { get; init; } = [];
}

/// <summary>Settings of <c>study plan</c>.</summary>
public sealed class StudyPlanSettings : StudyFileSettings
{
    /// <summary>Throughput for the estimate.</summary>
    [CommandOption("--tokens-per-second <N>")]
    [Description("Training tokens/s per worker for the cost estimate (default: measured from finished trials, else assumed)")]
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double? TokensPerSecond { get; init; }

    /// <summary>Workers for the wall-time estimate.</summary>
    [CommandOption("--workers <N>")]
    [Description("Parallel workers for the wall-time estimate (default: the study's executor.workers)")]
    [ConfigRange(1, int.MaxValue)]
    public int? Workers { get; init; }

    /// <summary>List every trial.</summary>
    [CommandOption("--all")]
    [Description("List every trial (default: the first 60)")]
    public bool All { get; init; }

    /// <summary>Skip the cost estimate.</summary>
    [CommandOption("--no-estimate")]
    [Description("Skip the cost estimate (it reads the data)")]
    public bool NoEstimate { get; init; }
}

/// <summary><c>peftlab study plan</c>: validates a study and prints the trial table and an estimated cost.</summary>
public sealed class StudyPlanCommand : Command<StudyPlanSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, StudyPlanSettings s, CancellationToken cancellationToken)
    {
        var (file, overrides) = StudyCommands.StudyArgs(s.Study, s.Overrides);
        var study = Study.Load(file, overrides);
        StudyCommands.WideWhenRedirected();
        int workers = s.Workers ?? study.Spec.Executor.Workers;
        var estimate = s.NoEstimate ? null : CostEstimator.Estimate(study, new CostOptions { TokensPerSecond = s.TokensPerSecond, Workers = workers });
        var states = File.Exists(study.Store.PlanJson) ? study.Store.ObserveAll(study.Plan).ToDictionary(x => x.Entry.Index, x => x.View) : null;

        AnsiConsole.MarkupLine($"[bold]Study {Markup.Escape(study.Spec.Name)}[/]: {study.Trials.Count} trials → {Markup.Escape(study.OutputDir)}");
        if (study.Spec.Confirm is { } confirm && study.AwaitingConfirmation > 0)
            AnsiConsole.WriteLine($"then a confirmation stage: once the {study.AwaitingConfirmation} search trial(s) still open have finished, each method's best setting (by validation score) is re-run with seeds {string.Join(", ", confirm.Seeds)} (not in the table or the estimate below)");
        if (study.Spec.Description is { Length: > 0 } d) AnsiConsole.WriteLine(d.Trim());
        var axisCounts = study.AxisNames.Select(a => $"{a} ({study.Plan.Select(p => p.Axis(a)?.Display).Where(v => v is not null).Distinct().Count()})");
        AnsiConsole.WriteLine("axes: " + string.Join(" · ", axisCounts));

        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("#");
        table.AddColumn("id");
        foreach (var a in study.AxisNames) table.AddColumn(a);
        if (estimate is not null)
        {
            table.AddColumn(new TableColumn("examples").RightAligned());
            table.AddColumn(new TableColumn("steps").RightAligned());
            table.AddColumn(new TableColumn("tokens").RightAligned());
            table.AddColumn(new TableColumn("est. time").RightAligned());
        }
        if (states is not null) table.AddColumn("state");
        int shown = s.All ? study.Trials.Count : Math.Min(60, study.Trials.Count);
        foreach (var t in study.Trials.Take(shown))
        {
            var cells = new List<string> { t.Index.ToString(CultureInfo.InvariantCulture), t.Id };
            cells.AddRange(study.AxisNames.Select(a => a == StudyAxisNames.Model && t.Config.Model.Path is { } path
                ? Path.GetFileName(path.TrimEnd('/')) : t.Entry.Axis(a)?.Display ?? "-"));
            if (estimate?.Trials[t.Index] is { } e)
            {
                cells.Add(e.Examples?.ToString("N0", CultureInfo.InvariantCulture) ?? "?");
                cells.Add(e.Steps?.ToString("N0", CultureInfo.InvariantCulture) ?? "?");
                cells.Add(e.Tokens is long tok ? CostEstimator.Count(tok) : "?");
                cells.Add(e.Seconds is double sec ? LocalExecutor.Format(TimeSpan.FromSeconds(sec)) : "?");
            }
            if (states is not null) cells.Add(StudyCommands.StateName(states[t.Index]));
            table.AddRow(cells.Select(c => (IRenderable)new Text(c)).ToArray());
        }
        AnsiConsole.Write(table);
        if (shown < study.Trials.Count) AnsiConsole.WriteLine($"... {study.Trials.Count - shown} more trials (--all lists every one)");
        if (estimate is not null)
        {
            AnsiConsole.WriteLine($"Estimated cost: {CostEstimator.Count(estimate.TotalTokens)} training tokens, {LocalExecutor.Format(TimeSpan.FromSeconds(estimate.TotalSeconds))} of compute"
                + (workers > 1 ? $", about {LocalExecutor.Format(TimeSpan.FromSeconds(estimate.WallSeconds))} with {workers} workers" : "") + ".");
            AnsiConsole.WriteLine("How it was estimated:");
            foreach (var line in estimate.Method) AnsiConsole.WriteLine("  - " + line);
        }
        return 0;
    }
}

/// <summary>Settings of <c>study run</c>.</summary>
public sealed class StudyRunSettings : StudyFileSettings
{
    /// <summary>Worker processes.</summary>
    [CommandOption("--workers <N>")]
    [Description("Worker processes (default: the study's executor.workers)")]
    [ConfigRange(1, int.MaxValue)]
    public int? Workers { get; init; }

    /// <summary>Threads per worker.</summary>
    [CommandOption("--threads-per-worker <T>")]
    [Description("Compute threads per worker (default: executor.threads_per_worker, else cores / workers)")]
    [ConfigRange(1, int.MaxValue)]
    public int? ThreadsPerWorker { get; init; }

    /// <summary>Retry failed trials.</summary>
    [CommandOption("--retry-failed")]
    [Description("Run failed trials again")]
    public bool RetryFailed { get; init; }

    /// <summary>Device for the workers.</summary>
    [CommandOption("--device <NAME>")]
    [Description("Compute device of the workers: cpu (default) or cuda")]
    public string? Device { get; init; }
}

/// <summary><c>peftlab study run</c>: runs unfinished trials with N worker processes and a live progress table.</summary>
public sealed class StudyRunCommand : Command<StudyRunSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, StudyRunSettings s, CancellationToken cancellationToken)
    {
        var (file, overrides) = StudyCommands.StudyArgs(s.Study, s.Overrides);
        var study = Study.Load(file, overrides);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var kill = new CancellationTokenSource();
        using var signals = StudyCommands.OnSignals(stop, kill);
        var options = new LocalRunOptions
        {
            Workers = s.Workers ?? study.Spec.Executor.Workers,
            ThreadsPerWorker = s.ThreadsPerWorker ?? study.Spec.Executor.ThreadsPerWorker,
            RetryFailed = s.RetryFailed,
            Launcher = WorkerLauncher.ForCurrentProcess(),
            WorkerArgs = s.Device is { } dev ? ["--device", dev] : [],
            Cancel = stop.Token,
            Kill = kill.Token,
        };
        LocalRunSummary summary;
        if (StudyCommands.Interactive)
        {
            var events = new Queue<string>();
            StudySnapshot? last = null;
            summary = AnsiConsole.Live(new Text("starting...")).AutoClear(false).Overflow(VerticalOverflow.Ellipsis).Start(ctx =>
                LocalExecutor.Run(study, options with
                {
                    OnEvent = e =>
                    {
                        events.Enqueue(e);
                        while (events.Count > 8) events.Dequeue();
                        if (last is not null) ctx.UpdateTarget(Render(last, events));
                        ctx.Refresh();
                    },
                    OnSnapshot = snap =>
                    {
                        last = snap;
                        ctx.UpdateTarget(Render(snap, events));
                        ctx.Refresh();
                    },
                }));
        }
        else
        {
            var lastPrint = DateTime.MinValue;
            summary = LocalExecutor.Run(study, options with
            {
                OnEvent = e => Console.WriteLine(e),
                OnSnapshot = snap =>
                {
                    if (DateTime.UtcNow - lastPrint < TimeSpan.FromSeconds(10) || snap.Active.Count == 0) return;
                    lastPrint = DateTime.UtcNow;
                    Console.WriteLine($"[{LocalExecutor.Format(snap.Elapsed)}] {StudyCommands.CountsLine(snap.Counts)}{(snap.Eta is { } eta ? $"; ETA {LocalExecutor.Format(eta)}" : "")}");
                    foreach (var l in snap.Active) Console.WriteLine("  " + PlainLine(l));
                },
            });
        }
        Console.WriteLine($"study {study.Spec.Name}: {StudyCommands.CountsLine(summary.Counts)} ({study.OutputDir})");
        if (summary.Cancelled)
        {
            Console.WriteLine("stopped: run `peftlab study run` again to resume interrupted trials from their checkpoints");
            return 130;
        }
        // a finished study is reported right away (peftlab study report rewrites it at any time)
        var report = PeftLab.Studies.Report.StudyReport.Write(study.OutputDir);
        Console.WriteLine($"report: {report.HtmlPath} and {report.MarkdownPath} ({report.Plots.Count} plots)");
        return summary.Counts.GetValueOrDefault(TrialView.Failed) > 0 ? 1 : 0;
    }

    private static string PlainLine(TrialLine l) =>
        $"trial {l.Entry.Index} {l.Entry.Axis(StudyAxisNames.Method)?.Display} {StudyCommands.Describe(l.Entry)}: {l.Phase ?? "starting"}"
        + (l.Step is int st ? $" step {st}/{l.TotalSteps?.ToString(CultureInfo.InvariantCulture) ?? "?"}" : "")
        + (l.Loss is double loss ? $" loss {loss:F4}" : "") + (l.Eta is { } e ? $" ETA {LocalExecutor.Format(e)}" : "") + (l.Note is { } n ? $" ({n})" : "");

    private static IRenderable Render(StudySnapshot snap, IEnumerable<string> events)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"study {Markup.Escape(snap.Study)}: {snap.Total} trials · {LocalExecutor.Format(snap.Elapsed)}{(snap.Stopping ? " · stopping (Ctrl-C again kills)" : "")}")
            .Caption(StudyCommands.CountsLine(snap.Counts) + (snap.Eta is { } eta ? $" · ETA {LocalExecutor.Format(eta)}" : ""));
        foreach (var c in new[] { "trial", "method", "axes", "state", "step", "loss", "ETA" }) table.AddColumn(c);
        foreach (var l in snap.Active)
            table.AddRow(
                new Text(l.Entry.Index.ToString(CultureInfo.InvariantCulture)),
                new Text(l.Entry.Axis(StudyAxisNames.Method)?.Display ?? ""),
                new Text(StudyCommands.Describe(l.Entry)),
                new Text(l.Note ?? l.Phase ?? "starting"),
                new Text(l.Step is int st ? $"{st}/{l.TotalSteps?.ToString(CultureInfo.InvariantCulture) ?? "?"}" : "-"),
                new Text(l.Loss is double loss ? loss.ToString("F4", CultureInfo.InvariantCulture) : "-"),
                new Text(l.Eta is { } e ? LocalExecutor.Format(e) : "-"));
        var log = string.Join("\n", events);
        return new Rows(table, new Text(log));
    }
}

/// <summary>Settings of <c>study run-trial</c>.</summary>
public sealed class StudyRunTrialSettings : CommonSettings
{
    /// <summary>Study YAML.</summary>
    [CommandArgument(0, "<study>")]
    [Description("Study YAML (a study folder's study.yaml, or the original with the same overrides)")]
    public string Study { get; init; } = "";

    /// <summary>Overrides.</summary>
    [CommandArgument(1, "[overrides]")]
    [Description("key=value overrides, as for study run")]
    public string[] Overrides { get; init; } = [];

    /// <summary>Trial index.</summary>
    [CommandOption("--index <I>")]
    [Description("Index of the trial in the plan")]
    [ConfigRange(0, int.MaxValue)]
    public int? Index { get; init; }

    /// <summary>Expected trial id.</summary>
    [CommandOption("--id <ID>")]
    [Description("Expected trial id: refuse to run when the study changed and the index now names another trial")]
    public string? Id { get; init; }

    /// <inheritdoc/>
    public override ValidationResult Validate() => Index is null ? ValidationResult.Error("--index is required") : ValidationResult.Success();
}

/// <summary><c>peftlab study run-trial</c>: runs, resumes or skips one trial in this process (what workers and Slurm tasks run).</summary>
public sealed class StudyRunTrialCommand : Command<StudyRunTrialSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, StudyRunTrialSettings s, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var signals = StudyCommands.OnSignals(stop, null);
        if (!LocalExecutor.WatchExecutor(() => { try { stop.Cancel(); } catch (ObjectDisposedException) { } }))
            return TrialRunner.ExitCode(TrialOutcome.Interrupted);
        var study = Study.Load(s.Study, s.Overrides);
        var trial = study.TrialAt(s.Index!.Value);
        if (s.Id is { } expected && expected != trial.Id)
            throw new InvalidOperationException($"trial {trial.Index} of {s.Study} is now {trial.Id} ({trial.Entry.Describe()}), not {expected}: the study changed after these trials were queued; run or submit it again");
        s.ApplyRuntime();
        TrialOutcome outcome;
        if (StudyCommands.Interactive)
        {
            outcome = TrialOutcome.Failed;
            var messages = new List<string>();
            AnsiConsole.Progress().AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape($"trial {trial.Index}"), maxValue: 1);
                    outcome = TrialRunner.Run(study, trial.Index, new TrialRunOptions
                    {
                        Threads = s.Threads,
                        Cancel = stop.Token,
                        Log = messages.Add,
                        Progress = p =>
                        {
                            task.MaxValue = Math.Max(1, p.TotalSteps);
                            task.Value = p.Step;
                            task.Description = Markup.Escape(p.Loss is double l ? $"trial {trial.Index} {p.Phase} step {p.Step}/{p.TotalSteps} loss {l:F4}" : $"trial {trial.Index} {p.Phase} {p.Step}/{p.TotalSteps}");
                        },
                    });
                });
            foreach (var m in messages) Console.WriteLine(m);
        }
        else
        {
            outcome = TrialRunner.Run(study, trial.Index, new TrialRunOptions { Threads = s.Threads, Cancel = stop.Token, Log = Console.WriteLine });
        }
        if (outcome == TrialOutcome.Failed && study.Store.ReadTrial(trial.Id)?.Error is { } error) Console.Error.WriteLine($"error: {error}");
        return TrialRunner.ExitCode(outcome);
    }
}

/// <summary>Settings of <c>study submit</c>.</summary>
public sealed class StudySubmitSettings : StudyFileSettings
{
    /// <summary>Executor.</summary>
    [CommandOption("--executor <NAME>")]
    [Description("slurm (the only batch executor; `study run` runs locally)")]
    public string Executor { get; init; } = "slurm";

    /// <summary>--partition.</summary>
    [CommandOption("--partition <P>")]
    [Description("Slurm partition (default: executor.slurm.partition, else the cluster's default)")]
    public string? Partition { get; init; }

    /// <summary>--gpus-per-task.</summary>
    [CommandOption("--gpus-per-task <G>")]
    [Description("GPUs per array task")]
    [ConfigRange(0, int.MaxValue)]
    public int? GpusPerTask { get; init; }

    /// <summary>--time.</summary>
    [CommandOption("--time <T>")]
    [Description("Time limit per array task, e.g. 04:00:00")]
    public string? Time { get; init; }

    /// <summary>--cpus-per-task.</summary>
    [CommandOption("--cpus-per-task <C>")]
    [Description("CPUs per array task (also the trial's compute threads)")]
    [ConfigRange(1, int.MaxValue)]
    public int? CpusPerTask { get; init; }

    /// <summary>Retry failed trials.</summary>
    [CommandOption("--retry-failed")]
    [Description("Submit failed trials again")]
    public bool RetryFailed { get; init; }

    /// <summary>Device.</summary>
    [CommandOption("--device <NAME>")]
    [Description("Compute device of the trials: cpu (default) or cuda")]
    public string? Device { get; init; }

    /// <summary>Most array tasks per job.</summary>
    [CommandOption("--max-array-size <N>")]
    [Description("Most array tasks per job (Slurm's MaxArraySize, 1001 by default, bounds it); more trials are submitted as several jobs")]
    [ConfigRange(1, int.MaxValue)]
    public int MaxArraySize { get; init; } = 1000;

    /// <summary>Write the script only.</summary>
    [CommandOption("--no-submit")]
    [Description("Write slurm/submit.sh without calling sbatch")]
    public bool NoSubmit { get; init; }

    /// <inheritdoc/>
    public override ValidationResult Validate() => Executor.Equals("slurm", StringComparison.OrdinalIgnoreCase) ? ValidationResult.Success()
        : Executor.Equals("local", StringComparison.OrdinalIgnoreCase) ? ValidationResult.Error("--executor local: use `peftlab study run` to run on this machine")
        : ValidationResult.Error($"--executor '{Executor}' is not known; use slurm (or `peftlab study run` for local workers)");
}

/// <summary><c>peftlab study submit</c>: writes slurm/submit.sh (a job array over the unfinished trials) and submits it with sbatch.</summary>
public sealed class StudySubmitCommand : Command<StudySubmitSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, StudySubmitSettings s, CancellationToken cancellationToken)
    {
        if (s.Study is null) throw new ArgumentException("give the study YAML to submit");
        var study = Study.Load(s.Study, s.Overrides);
        var submission = SlurmExecutor.Submit(study, new SlurmSubmitOptions
        {
            Launcher = WorkerLauncher.ForCurrentProcess(),
            Partition = s.Partition, GpusPerTask = s.GpusPerTask, Time = s.Time, CpusPerTask = s.CpusPerTask,
            RetryFailed = s.RetryFailed, NoSubmit = s.NoSubmit, MaxArrayTasks = s.MaxArraySize,
            WorkerArgs = s.Device is { } dev ? ["--device", dev] : [],
        });
        if (submission.Trials.Count == 0)
        {
            Console.WriteLine($"nothing to submit: every trial of {study.Spec.Name} is finished, running or failed (--retry-failed resubmits failed ones)");
            return 0;
        }
        Console.WriteLine($"wrote {submission.Script} ({submission.Trials.Count} array tasks)");
        foreach (var job in submission.Jobs)
            Console.WriteLine($"submitted job {job.JobId}: {job.Count} trial(s) of study {study.Spec.Name}"
                + (submission.Jobs.Count > 1 ? $" (array tasks {job.Offset}-{job.Offset + job.Count - 1} of the list in the script)" : ""));
        if (submission.Jobs.Count > 0) Console.WriteLine($"follow with: peftlab study status {study.OutputDir}");
        return 0;
    }
}

/// <summary>Settings of <c>study status</c>.</summary>
public sealed class StudyStatusSettings : StudyLocationSettings
{
    /// <summary>List every trial.</summary>
    [CommandOption("--all")]
    [Description("List every trial (default: only unfinished and failed ones)")]
    public bool All { get; init; }

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    [Description("Print the counts and trials as JSON")]
    public bool Json { get; init; }
}

/// <summary><c>peftlab study status</c>: trial counts by state; a "running" trial whose process is gone shows as interrupted.</summary>
public sealed class StudyStatusCommand : Command<StudyStatusSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, StudyStatusSettings s, CancellationToken cancellationToken)
    {
        var (store, study) = StudyCommands.Locate(s.Study, s.Overrides);
        StudyCommands.WideWhenRedirected();
        var (name, plan) = study is not null ? (study.Spec.Name, study.Plan) : Read(store);
        var statuses = store.ObserveAll(plan);
        var queued = SlurmExecutor.QueuedTasks(store);
        if (s.Json)
        {
            var o = StudyStatusJson.Build(name, store, statuses, queued);
            Console.WriteLine(o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        Console.WriteLine($"study {name} ({store.Dir}): {statuses.Count} trials");
        Console.WriteLine(StudyCommands.CountsLine(StudyStatusJson.Counts(statuses)));
        var shown = statuses.Where(x => s.All || x.View is not (TrialView.Done or TrialView.Pending)).ToArray();
        if (shown.Length > 0)
        {
            var table = new Table().Border(TableBorder.Simple);
            foreach (var c in new[] { "#", "id", "method", "axes", "state", "step", "note" }) table.AddColumn(c);
            foreach (var x in shown)
            {
                var note = x.View switch
                {
                    TrialView.Failed => x.Record?.Error ?? "",
                    TrialView.Diverged => x.Result?.Reason ?? "",
                    TrialView.Interrupted => x.HasCheckpoint ? "resumes from its checkpoint" : "restarts",
                    TrialView.Running => x.Record?.SlurmJob is { } job ? $"slurm {job} on {x.Record.Host}" : x.Record?.Host is { } host ? $"pid {x.Record.Pid} on {host}" : "",
                    TrialView.Done => x.Result?.Test is { } test ? $"test rougeL {test.RougeL:F2}" : "",
                    _ => "",
                };
                table.AddRow(new Text(x.Entry.Index.ToString(CultureInfo.InvariantCulture)), new Text(x.Entry.Id), new Text(x.Entry.Axis(StudyAxisNames.Method)?.Display ?? ""),
                    new Text(StudyCommands.Describe(x.Entry)), new Text(StudyCommands.StateName(x.View)),
                    new Text(x.ShownStep is { Step: int step } at ? (at.Total is int total ? $"{step}/{total}" : $"{step}") : "-"), new Text(note));
            }
            AnsiConsole.Write(table);
        }
        if (queued is { Count: > 0 })
            Console.WriteLine("slurm: " + string.Join(", ", queued.Values.GroupBy(v => v).Select(g => $"{g.Count()} array task(s) {g.Key.ToLowerInvariant()}")));
        return 0;
    }

    private static (string, IReadOnlyList<PlanEntry>) Read(StudyStore store)
    {
        var (name, _, trials) = store.ReadPlan();
        return (name, trials);
    }
}

/// <summary>Settings of <c>study results</c>.</summary>
public sealed class StudyResultsSettings : StudyLocationSettings
{
    /// <summary>Format.</summary>
    [CommandOption("--format <FORMAT>")]
    [Description("csv (default), jsonl or parquet")]
    [Choices(typeof(ResultsFormat))]
    public string Format { get; init; } = "csv";

    /// <summary>Output file.</summary>
    [CommandOption("--out <FILE>")]
    [Description("Output file (default: standard output; for parquet STUDY_DIR/results.parquet)")]
    public string? Out { get; init; }
}

/// <summary><c>peftlab study results</c>: exports one row per trial with every axis value and metric.</summary>
public sealed class StudyResultsCommand : Command<StudyResultsSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, StudyResultsSettings s, CancellationToken cancellationToken)
    {
        var (store, _) = StudyCommands.Locate(s.Study, s.Overrides);
        var format = ConfigEnums.Parse<ResultsFormat>(s.Format, "--format");
        var results = StudyResults.Collect(store);
        var output = s.Out ?? (format == ResultsFormat.Parquet ? Path.Combine(store.Dir, "results.parquet") : null);
        if (output is null)
        {
            using var stdout = Console.OpenStandardOutput();
            results.Write(format, stdout);
            return 0;
        }
        results.Save(format, output);
        Console.Error.WriteLine($"wrote {results.Rows.Count} rows × {results.Columns.Count} columns to {Path.GetFullPath(output)}");
        return 0;
    }
}
