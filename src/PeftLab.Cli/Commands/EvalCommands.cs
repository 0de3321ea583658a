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
    [Description("Also write the scores (JSON, as printed) to this file; with --task, a folder for results.json and samples.jsonl")]
    public string? Out { get; init; }

    /// <summary>A harness task whose saved samples are re-scored.</summary>
    [CommandOption("--task <FILE>")]
    [Description("Re-score a harness evaluation: the task YAML as it now stands (filters, metrics, targets), with --samples")]
    public string? Task { get; init; }

    /// <summary>Saved per-document records of peftlab eval --task.</summary>
    [CommandOption("--samples <FILE>")]
    [Description("With --task: the samples.jsonl that peftlab eval --task --out wrote (generations and log-likelihoods are re-scored, not regenerated)")]
    public string? Samples { get; init; }

    /// <summary>Replaces the task file's dataset_path.</summary>
    [CommandOption("--dataset-path <PATH>")]
    [Description("With --task: the local copy of the task's dataset (its documents give the targets)")]
    public string? DatasetPath { get; init; }

    /// <summary>Judge of win_rate tasks.</summary>
    [CommandOption("--judge <DIR>")]
    [Description("With a win_rate task: the judge model's folder")]
    public string? Judge { get; init; }

    /// <summary>Runs re-scored code without the sandbox.</summary>
    [CommandOption("--unsafe-execute")]
    [Description("With a pass_at_k task where no sandbox works: run the saved programs unsandboxed, as this user. Dangerous")]
    public bool UnsafeExecute { get; init; }

    /// <summary>Instances per task.</summary>
    [CommandOption("--instances-per-task <N>")]
    [Description("Score the first N instances of each task (default 100, the official evaluation instances)")]
    [ConfigRange(1, int.MaxValue)]
    public int InstancesPerTask { get; init; } = 100;

    /// <inheritdoc/>
    public override ValidationResult Validate() =>
        Task is not null || Samples is not null
            ? (Task is null || Samples is null ? ValidationResult.Error("re-scoring a harness evaluation needs both --task FILE and --samples FILE")
               : Predictions is not null || Tasks is not null ? ValidationResult.Error("give --task with --samples, or --tasks with --predictions, not both") : base.Validate())
        : Predictions is null ? ValidationResult.Error("--predictions FILE is required (or --task FILE --samples FILE to re-score a harness evaluation)")
        : Tasks is null ? ValidationResult.Error("--tasks DIR is required") : base.Validate();
}

/// <summary><c>peftlab score</c>: the official SuperNI metric over a predictions file.</summary>
public sealed class ScoreCommand : Command<ScoreSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, ScoreSettings s, CancellationToken cancellationToken)
    {
        if (s.Task is not null) return Rescore(s);
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

    private static int Rescore(ScoreSettings s)
    {
        var task = Evaluation.Harness.HarnessTask.Load(s.Task!, s.DatasetPath);
        var sandbox = task.Spec.ExecutesCode ? new Evaluation.Code.PythonSandbox(unsafeExecute: s.UnsafeExecute) : null;
        var judge = task.Spec.NeedsJudge && s.Judge is { } j ? Evaluation.Harness.PairwiseJudge.Load(j, task.JudgePromptFile, TorchSharp.torch.ScalarType.Float32) : null;
        var result = Evaluation.Harness.HarnessEvaluator.Rescore(task, s.Samples!, sandbox, judge);
        if (s.Out is not null) result.Write(s.Out);
        Console.WriteLine(result.ToJson().ToJsonString());
        foreach (var score in result.Scores)
            Console.Error.WriteLine($"{result.Task} {score.Metric}: {score.Value:F4} [95 % CI {score.Lower:F4}, {score.Upper:F4}] over {result.Samples.Count} documents (re-scored)");
        return 0;
    }
}

/// <summary>Settings of <c>peftlab eval</c>.</summary>
public sealed class EvalSettings : ModelSettings
{
    /// <summary>Task folder.</summary>
    [CommandOption("--tasks <DIR>")]
    [Description("Folder of task files (SuperNI schema) whose instances are evaluated")]
    public string? Tasks { get; init; }

    /// <summary>An lm-evaluation-harness task file.</summary>
    [CommandOption("--task <FILE>")]
    [Description("An lm-evaluation-harness task YAML (multiple_choice, loglikelihood or generate_until, code with pass_at_k) on local data files, instead of --tasks; see evals/README.md")]
    public string? Task { get; init; }

    /// <summary>Replaces the task file's dataset_path.</summary>
    [CommandOption("--dataset-path <PATH>")]
    [Description("With --task: the local folder (or file) of the task's dataset, replacing its dataset_path (PeftLab never downloads)")]
    public string? DatasetPath { get; init; }

    /// <summary>Replaces the task file's num_fewshot.</summary>
    [CommandOption("--num-fewshot <N>")]
    [Description("With --task: solved examples before each prompt, replacing the task's num_fewshot")]
    [ConfigRange(0, 10_000)]
    public int? NumFewshot { get; init; }

    /// <summary>The judge model of win_rate tasks.</summary>
    [CommandOption("--judge <DIR>")]
    [Description("With a win_rate task (pairwise judging, e.g. evals/alpaca_eval.yaml): the judge model's folder, any supported checkpoint")]
    public string? Judge { get; init; }

    /// <summary>The judge's prompt file.</summary>
    [CommandOption("--judge-prompt <FILE>")]
    [Description("With --judge: a prompt template over {{instruction}}, {{output_1}}, {{output_2}} replacing the task's judge_prompt (the judge then names Response 1 or 2)")]
    public string? JudgePrompt { get; init; }

    /// <summary>Wraps contexts in the chat template.</summary>
    [CommandOption("--apply-chat-template")]
    [Description("With --task: put each context in the model tokenizer's chat template as one user turn, then the assistant header (lm-evaluation-harness's --apply_chat_template), for chat-tuned models")]
    public bool ApplyChatTemplate { get; init; }

    /// <summary>Runs generated code without the sandbox.</summary>
    [CommandOption("--unsafe-execute")]
    [Description("With a pass_at_k task where no sandbox works here: run the model's code anyway, unsandboxed, as this user (rlimits only). Dangerous")]
    public bool UnsafeExecute { get; init; }

    /// <summary>test, seen or validation.</summary>
    [CommandOption("--split <NAME>")]
    [Description("test (unseen tasks), seen (held-out instances of train tasks) or validation")]
    [Choices(typeof(Training.EvalSplitName))]
    public string Split { get; init; } = "test";

    /// <summary>Generation length.</summary>
    [CommandOption("--max-new-tokens <N>")]
    [Description("Longest generated answer in tokens (default 128)")]
    [ConfigRange(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Batch size.</summary>
    [CommandOption("--batch-size <N>")]
    [Description("Prompts generated together (default 16)")]
    [ConfigRange(1, int.MaxValue)]
    public int BatchSize { get; init; } = 16;

    /// <summary>Cap on instances.</summary>
    [CommandOption("--limit <N>")]
    [Description("Evaluate at most this many instances")]
    [ConfigRange(1, int.MaxValue)]
    public int? Limit { get; init; }

    /// <summary>Data settings as for training.</summary>
    [CommandOption("--validation-tasks <N>")]
    [Description("Training tasks held out for validation, as data.validation_tasks in training (it decides the splits)")]
    [ConfigRange(0, int.MaxValue)]
    public int ValidationTasks { get; init; }

    /// <summary>Prompt format.</summary>
    [CommandOption("--format <FORMAT>")]
    [Description("definition_only (default) or tk_instruct")]
    [Choices(typeof(PromptFormat))]
    public string Format { get; init; } = "definition_only";

    /// <summary>Output folder for predictions and scores.</summary>
    [CommandOption("--out <DIR>")]
    [Description("Folder for predictions.jsonl and scores.json")]
    public string? Out { get; init; }

    /// <summary>A run folder whose resolved config.yaml gives the data settings and seed.</summary>
    [CommandOption("--run <DIR>")]
    [Description("A training run folder: its config.yaml's data settings and train.seed build the split exactly as the run did (--split seen is then the run's own held-out instances)")]
    public string? Run { get; init; }

    /// <summary>The data seed of the run being evaluated.</summary>
    [CommandOption("--seed <N>")]
    [Description("The run's train.seed (default 42): it decides the validation tasks and which instances are held out, so --split seen is the run's own held-out set only under its own seed. With --task: the seed of sampled generations (do_sample: true)")]
    [ConfigRange(long.MinValue, long.MaxValue)]
    public long Seed { get; init; } = new Training.LoopSection().Seed;

    /// <inheritdoc/>
    public override ValidationResult Validate() =>
        (Tasks is null) == (Task is null) ? ValidationResult.Error("give --tasks DIR (a SuperNI-layout folder) or --task FILE (a harness task YAML)")
        : Task is null && (DatasetPath is not null || NumFewshot is not null) ? ValidationResult.Error("--dataset-path and --num-fewshot go with --task")
        : base.Validate();
}

/// <summary><c>peftlab eval</c>: generate and score one split.</summary>
public sealed class EvalCommand : Command<EvalSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, EvalSettings s, CancellationToken cancellationToken)
    {
        s.ApplyRuntime();
        if (s.Task is not null) return Harness(s);
        var run = s.Run is null ? null : Training.TrainConfigLoader.Load(Path.Combine(s.Run, "config.yaml"));
        var request = new Training.SplitEvalRequest
        {
            Model = s.Model!, Adapter = s.Adapter, Dtype = s.ComputeDType, Tasks = s.Tasks!, Seed = run?.Train.Seed ?? s.Seed, Data = run?.Data,
            Split = ConfigEnums.Parse<Training.EvalSplitName>(s.Split, "--split"), ValidationTasks = s.ValidationTasks,
            Format = ConfigEnums.Parse<PromptFormat>(s.Format, "--format"), Limit = s.Limit, MaxNewTokens = s.MaxNewTokens, BatchSize = s.BatchSize,
        };
        var result = WithProgress($"generating {s.Split} instances", progress => Training.SplitEvaluation.Run(request, progress, Warn));
        if (s.Out is not null) GenerationEvaluator.Write(result, s.Out);
        Console.WriteLine(result.Report.ToJson());
        Console.Error.WriteLine($"{result.GeneratedTokens} tokens in {result.Seconds:F1} s ({result.GeneratedTokens / Math.Max(1e-9, result.Seconds):F0} generated tokens/s)");
        return 0;
    }

    private static int Harness(EvalSettings s)
    {
        var request = new Evaluation.Harness.HarnessEvalRequest
        {
            Model = s.Model!, Adapter = s.Adapter, Dtype = s.ComputeDType, Task = s.Task!, DatasetPath = s.DatasetPath, NumFewshot = s.NumFewshot,
            Limit = s.Limit, BatchSize = s.BatchSize, Seed = s.Seed, UnsafeExecute = s.UnsafeExecute,
            Judge = s.Judge, JudgePrompt = s.JudgePrompt, ApplyChatTemplate = s.ApplyChatTemplate,
        };
        if (s.UnsafeExecute) Warn("--unsafe-execute: where the sandbox does not work, the model's code runs UNSANDBOXED as this user");
        var result = WithProgress($"scoring {Path.GetFileName(s.Task)}", progress => Evaluation.Harness.HarnessEvaluator.Run(request, progress, Warn));
        if (s.Out is not null) result.Write(s.Out);
        Console.WriteLine(result.ToJson().ToJsonString());
        foreach (var score in result.Scores)
            Console.Error.WriteLine($"{result.Task} {score.Metric}: {score.Value:F4} [95 % CI {score.Lower:F4}, {score.Upper:F4}] over {result.Samples.Count} documents, {result.NumFewshot}-shot");
        return 0;
    }

    private static void Warn(string w) => Console.Error.WriteLine($"warning: {w}");

    /// <summary>Runs <paramref name="run"/> under one progress bar fed by its (done, total) callback.</summary>
    private static T WithProgress<T>(string label, Func<Action<int, int>, T> run)
    {
        T result = default!;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(label, maxValue: 1);
                result = run((done, total) => { task.MaxValue = Math.Max(1, total); task.Value = done; });
            });
        return result;
    }
}
