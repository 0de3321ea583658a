using PeftLab.Configuration;
using System.ComponentModel;
using PeftLab.Data.SuperNi;
using PeftLab.Evaluation;
using PeftLab.Tokenization;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab score</c>.</summary>
public sealed class ScoreSettings : GlobalSettings
{
    /// <summary>Predictions JSONL.</summary>
    [CommandOption("--predictions <FILE>")]
    [Description("JSONL with {\"id\": ..., \"prediction\": ...} per line")]
    public string? Predictions { get; init; }

    /// <summary>Task folder.</summary>
    [CommandOption("--tasks <DIR>")]
    [Description("Folder of task files (SuperNI schema); instances of the test split are scored, or every task when there is no split")]
    public string? Tasks { get; init; }

    /// <summary>Output file.</summary>
    [CommandOption("--out <FILE>")]
    public string? Out { get; init; }

    /// <summary>Instances per task.</summary>
    [CommandOption("--instances-per-task <N>")]
    [Description("Score the first N instances of each task (default 100, the official evaluation instances)")]
    [ConfigRange(1, int.MaxValue)]
    public int InstancesPerTask { get; init; } = 100;

    /// <inheritdoc/>
    public override ValidationResult Validate() =>
        Predictions is null ? ValidationResult.Error("--predictions FILE is required")
        : Tasks is null ? ValidationResult.Error("--tasks DIR is required") : base.Validate();
}

/// <summary><c>peftlab score</c>: the official SuperNI metric over a predictions file.</summary>
public sealed class ScoreCommand : Command<ScoreSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, ScoreSettings s, CancellationToken cancellationToken)
    {
        var collection = TaskLoader.LoadDirectory(s.Tasks!);
        var tasks = collection.HasSplit("test") ? collection.GetSplit("test") : collection.Tasks;
        var items = tasks.SelectMany(t => t.Instances.Take(s.InstancesPerTask).Select(i => new EvalItem(i.Id, t.Name, t.Category, i.Outputs))).ToArray();
        var predictions = PredictionsFile.Read(s.Predictions!);
        var report = new SuperNiScorer(items).Score(predictions);
        if (report.Missing > 0) Console.Error.WriteLine($"warning: {report.Missing} of {report.Count} instances have no prediction and score 0");
        int unknown = predictions.Keys.Count(k => !items.Any(i => i.Id == k));
        if (unknown > 0) Console.Error.WriteLine($"warning: {unknown} predictions have ids that are not among the scored instances (ignored)");
        var json = report.ToJson();
        if (s.Out is not null) File.WriteAllText(s.Out, json);
        Console.WriteLine(json);
        return 0;
    }
}

/// <summary>Settings of <c>peftlab eval</c>.</summary>
public sealed class EvalSettings : ModelSettings
{
    /// <summary>Task folder.</summary>
    [CommandOption("--tasks <DIR>")]
    public string? Tasks { get; init; }

    /// <summary>test, seen or validation.</summary>
    [CommandOption("--split <NAME>")]
    [Description("test (unseen tasks), seen (held-out instances of train tasks) or validation")]
    [Choices("test", "seen", "validation")]
    public string Split { get; init; } = "test";

    /// <summary>Generation length.</summary>
    [CommandOption("--max-new-tokens <N>")]
    [ConfigRange(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Batch size.</summary>
    [CommandOption("--batch-size <N>")]
    [ConfigRange(1, int.MaxValue)]
    public int BatchSize { get; init; } = 16;

    /// <summary>Cap on instances.</summary>
    [CommandOption("--limit <N>")]
    [ConfigRange(1, int.MaxValue)]
    public int? Limit { get; init; }

    /// <summary>Data settings as for training.</summary>
    [CommandOption("--validation-tasks <N>")]
    [ConfigRange(0, int.MaxValue)]
    public int ValidationTasks { get; init; }

    /// <summary>Prompt format.</summary>
    [CommandOption("--format <FORMAT>")]
    [Description("definition_only (default) or tk_instruct")]
    [Choices(typeof(PromptFormat))]
    public string Format { get; init; } = "definition_only";

    /// <summary>Output folder for predictions and scores.</summary>
    [CommandOption("--out <DIR>")]
    public string? Out { get; init; }

    /// <inheritdoc/>
    public override ValidationResult Validate() =>
        Tasks is null ? ValidationResult.Error("--tasks DIR is required")
        : base.Validate();
}

/// <summary><c>peftlab eval</c>: generate and score one split.</summary>
public sealed class EvalCommand : Command<EvalSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, EvalSettings s, CancellationToken cancellationToken)
    {
        s.ApplyRuntime();
        var lm = Training.TrainableModels.Load(s.Model!, s.ComputeDType, PeftLab.Runtime.TorchRuntime.Device);   // decoder-only or T5
        if (s.Adapter is not null)
            foreach (var w in PeftLab.Peft.PeftModel.LoadAdapter(lm.Host, s.Adapter).Warnings) Console.Error.WriteLine($"warning: {w}");
        lm.Host.Module.eval();
        var tokenizer = HfTokenizer.Load(s.Model!);
        var data = Training.TrainingData.Build(new Training.DataSection
        {
            Path = s.Tasks!, ValidationTasks = s.ValidationTasks,
            Format = ConfigEnums.Parse<PromptFormat>(s.Format, "--format"),
        }, tokenizer, seed: 42);
        var split = (s.Split switch { "test" => data.Test, "seen" => data.HeldOut, _ => data.Validation })
            ?? throw new ArgumentException($"{s.Tasks}: the '{s.Split}' split is empty");
        split = split.Take(s.Limit);
        EvalRun run = null!;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"generating {split.Examples.Count} {s.Split} instances", maxValue: split.Examples.Count);
                run = GenerationEvaluator.Evaluate(lm.Generate, tokenizer, s.Split, split.Examples, s.MaxNewTokens, s.BatchSize, (d, _) => task.Value = d);
            });
        if (s.Out is not null) GenerationEvaluator.Write(run, s.Out);
        Console.WriteLine(run.Report.ToJson());
        Console.Error.WriteLine($"{run.GeneratedTokens} tokens in {run.Seconds:F1} s ({run.GeneratedTokens / Math.Max(1e-9, run.Seconds):F0} generated tokens/s)");
        return 0;
    }
}
