using PeftLab.Tokenization;
using PeftLab.Training;

namespace PeftLab.Evaluation.Harness;

/// <summary>
/// The open-instruction arm of a run's final evaluation (<c>eval.open_instruction</c>): each benchmark's task file
/// loaded and its sandbox and judge made ready before training starts (so a missing file, a refused sandbox or a bad
/// judge prompt fails the run at once, not after hours of training), then the best weights scored on every benchmark,
/// each written as <c>eval/open_instruction/&lt;task&gt;/results.json</c> (with its group and headline metric) and
/// <c>samples.jsonl</c>.
/// </summary>
public sealed class OpenInstructionEval
{
    /// <summary>Folder under a run's <c>eval/</c> that holds one folder per benchmark.</summary>
    public const string FolderName = "open_instruction";

    private readonly OpenInstructionSection section;
    private readonly (OpenBenchmark Spec, HarnessTask Task)[] tasks;
    private readonly Code.PythonSandbox? sandbox;
    private readonly string? judgeDir;

    private OpenInstructionEval(OpenInstructionSection section, (OpenBenchmark, HarnessTask)[] tasks, Code.PythonSandbox? sandbox, string? judgeDir)
    {
        this.section = section;
        this.tasks = tasks;
        this.sandbox = sandbox;
        this.judgeDir = judgeDir;
    }

    /// <summary>Loads every benchmark and readies what it needs; <paramref name="baseModelDir"/> is the run's base model (the <c>base</c> judge), <paramref name="chatKind"/> its chat template (null: the tokenizer's).</summary>
    /// <exception cref="Configuration.ConfigException">A task file is not a valid harness task.</exception>
    /// <exception cref="InvalidOperationException">A code benchmark and no working sandbox (without <c>unsafe_execute</c>).</exception>
    /// <exception cref="ArgumentException">A win_rate benchmark and no judge.</exception>
    public static OpenInstructionEval Prepare(OpenInstructionSection section, string baseModelDir, Data.Chat.ChatTemplateKind? chatKind = null)
    {
        var tasks = section.Tasks.Select(b => (b, HarnessTask.Load(b.Task, b.DatasetPath))).ToArray();
        foreach (var (b, t) in tasks)                                                  // the data must be there now, not after training
            if (HarnessData.Load(t, t.ScoredSplit).Count == 0)
                throw new InvalidDataException($"eval.open_instruction: {b.Task}: split '{t.ScoredSplit}' of {t.DatasetPath ?? "(no dataset_path)"} has no documents");
        var dup = tasks.GroupBy(t => t.Item2.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"eval.open_instruction.tasks: two benchmarks are named '{dup.Key}' ({string.Join(", ", dup.Select(t => t.b.Task))}); give each its own task name");
        var sandbox = tasks.Any(t => t.Item2.Spec.ExecutesCode) ? new Code.PythonSandbox(unsafeExecute: section.UnsafeExecute) : null;
        string? judge = null;
        if (tasks.FirstOrDefault(t => t.Item2.Spec.NeedsJudge) is { Item2: { } needs })
        {
            judge = section.Judge switch
            {
                null => throw new ArgumentException($"eval.open_instruction.judge: benchmark {needs.Name} scores win_rate and needs a judge (a model folder, or 'base' for the run's own base model)"),
                "base" => baseModelDir,
                var dir when !File.Exists(Path.Combine(dir, "config.json")) => throw new ArgumentException($"eval.open_instruction.judge: '{dir}' is not a model folder (no config.json)"),
                var dir => dir,
            };
            foreach (var t in tasks.Where(t => t.Item2.JudgePromptFile is not null))
                if (!File.Exists(t.Item2.JudgePromptFile)) throw new FileNotFoundException($"{t.Item2.File}: judge_prompt '{t.Item2.JudgePromptFile}' does not exist");
        }
        if (section.ApplyChatTemplate)
        {
            using var tokenizer = Tokenization.HfTokenizer.Load(baseModelDir);
            _ = Data.Chat.ChatTemplates.ForTokenizer(tokenizer, chatKind);                                  // a template it can render, checked now
        }
        return new OpenInstructionEval(section, tasks, sandbox, judge);
    }

    /// <summary>
    /// Scores <paramref name="lm"/> on every benchmark, writing each under <paramref name="evalDir"/>; <paramref name="progress"/>
    /// gets (task, done, total); with <c>apply_chat_template</c> contexts are put in <paramref name="chatKind"/>'s template (null: the tokenizer's).
    /// </summary>
    public IReadOnlyList<OpenInstructionScore> Run(ITrainableModel lm, ITokenizer tokenizer, TorchSharp.torch.ScalarType dtype, string evalDir, int batchSize, long seed,
        Action<string, int, int>? progress = null, Data.Chat.ChatTemplateKind? chatKind = null)
    {
        var chat = section.ApplyChatTemplate ? Data.Chat.ChatTemplates.ForTokenizer(tokenizer, chatKind) : null;
        PairwiseJudge? judge = judgeDir is null ? null : PairwiseJudge.Load(judgeDir, null, dtype);
        var scores = new List<OpenInstructionScore>();
        lm.Host.Module.eval();
        foreach (var (spec, task) in tasks)
        {
            var j = judge is not null && task.JudgePromptFile is { } prompt ? judge.WithPrompt(prompt) : judge;
            var result = HarnessEvaluator.Evaluate(task, lm, tokenizer, spec.NumFewshot, section.Limit, batchSize, (d, n) => progress?.Invoke(task.Name, d, n), seed,
                sandbox, task.Spec.NeedsJudge ? j : null, chat) with { Group = spec.Group };
            result.Write(Path.Combine(evalDir, FolderName, task.Name));
            var p = result.Primary;
            scores.Add(new OpenInstructionScore(task.Name, spec.Group, p.Metric, p.Value, p.Lower, p.Upper, result.Samples.Count));
        }
        return scores;
    }
}
