using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text.Json;
using PeftLab.Peft;
using PeftLab.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab train</c> and <c>peftlab pretrain</c>.</summary>
public sealed class TrainSettings : GlobalSettings
{
    /// <summary>YAML config.</summary>
    [CommandOption("--config <FILE>")]
    [Description("Training config (YAML); see docs/training.md")]
    public string? Config { get; init; }

    /// <summary>Resume from the newest checkpoint in the output folder.</summary>
    [CommandOption("--resume")]
    [Description("Continue an interrupted run from its newest intact checkpoint (an error when there is none)")]
    public bool Resume { get; init; }

    /// <summary>Resume when an intact checkpoint exists, else start from step 0.</summary>
    [CommandOption("--resume-or-start")]
    [Description("Continue from the newest intact checkpoint when there is one, else start from step 0")]
    public bool ResumeOrStart { get; init; }

    /// <summary>Print the resolved config and exit.</summary>
    [CommandOption("--print-config")]
    [Description("Print the resolved config (defaults + file + overrides) as YAML and exit")]
    public bool PrintConfig { get; init; }

    /// <summary>key=value overrides.</summary>
    [CommandArgument(0, "[overrides]")]
    [Description("Overrides such as optim.lr=3e-4 method.r=16 output=runs/x")]
    public string[] Overrides { get; init; } = [];
}

/// <summary><c>peftlab train</c>: one run of any method, with a progress bar, metrics, checkpoints and a result.json.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, TrainSettings s, CancellationToken cancellationToken) => Run(s, [], cancellationToken);

    /// <summary>Loads, validates and runs; prints the result summary.</summary>
    public static int Run(TrainSettings s, IEnumerable<string> defaults, CancellationToken cancellationToken)
    {
        var bad = s.Overrides.FirstOrDefault(o => !o.Contains('='));
        if (bad is not null) throw new ArgumentException($"'{bad}' is not a key=value override");
        var config = TrainConfigLoader.Load(s.Config, s.Overrides, defaults);
        if (s.PrintConfig)
        {
            Console.Write(TrainConfigLoader.ToYaml(config));
            return 0;
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // SIGINT via PosixSignalRegistration: Console.CancelKeyPress is not raised when SIGINT was ignored at start
        using var onCancel = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; cts.Cancel(); });
        RunResult result = null!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: 1);
                result = Trainer.Run(config, new TrainOptions
                {
                    Resume = s.Resume ? ResumeMode.Required : s.ResumeOrStart ? ResumeMode.IfPresent : ResumeMode.None,
                    Warning = w => Console.Error.WriteLine($"warning: {w}"),
                    ResolvedConfigText = TrainConfigLoader.ToYaml(config),
                    Cancel = cts.Token,
                    Progress = p =>
                    {
                        task.MaxValue = Math.Max(1, p.TotalSteps);
                        task.Value = p.Step;
                        task.Description = p.Loss is double l
                            ? Markup.Escape($"{p.Phase} step {p.Step}/{p.TotalSteps} loss {l:F4} lr {p.Lr:G3} {p.TokensPerSecond:F0} tok/s")
                            : Markup.Escape($"{p.Phase} {p.Step}/{p.TotalSteps}");
                    },
                });
            });
        Console.WriteLine($"{RunStatuses.Name(result.Status)}: {config.Output}");
        if (result.Test is { } test) Console.WriteLine(FormattableString.Invariant($"test rougeL {test.RougeL} exact_match {test.ExactMatch}"));
        if (result.Reason is { } reason) Console.WriteLine($"reason: {reason}");
        return result.Status switch { RunStatus.Completed => 0, RunStatus.Diverged => 3, _ => 130 };
    }
}

/// <summary><c>peftlab pretrain</c>: the same trainer with pretraining defaults (full finetuning, text data, packing).</summary>
public sealed class PretrainCommand : Command<TrainSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, TrainSettings s, CancellationToken cancellationToken) =>
        TrainCommand.Run(s, [$"method.name={PeftRegistry.NameOf(PeftMethodKind.Full)}", "data.kind=text", "data.packing=true", "data.max_length=256", "eval.generate=false",
            "eval.best_metric=loss", "eval.final=false", "schedule.kind=cosine", "optim.lr=1e-3"], cancellationToken);
}
