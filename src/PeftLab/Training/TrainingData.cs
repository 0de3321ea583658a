using System.Text.Json;
using PeftLab.Data;
using PeftLab.Data.Chat;
using PeftLab.Data.SuperNi;
using PeftLab.Evaluation;
using PeftLab.Tokenization;

namespace PeftLab.Training;

/// <summary>An evaluation split: prompts to generate from, and their references for scoring.</summary>
/// <param name="Name">validation, test or heldout.</param>
/// <param name="Examples">Prompted instances (source, all references).</param>
public sealed record EvalSplit(string Name, IReadOnlyList<PromptedExample> Examples)
{
    /// <summary>The scorer's view of the references.</summary>
    public IReadOnlyList<EvalItem> Items => Examples.Select(e => new EvalItem(e.InstanceId, e.TaskName, e.Category, e.References)).ToArray();

    /// <summary>The first <paramref name="n"/> examples, spread over tasks (round robin) so every task is represented.</summary>
    public EvalSplit Take(int? n)
    {
        if (n is null || n >= Examples.Count) return this;
        var byTask = Examples.GroupBy(e => e.TaskName).Select(g => new Queue<PromptedExample>(g)).ToList();
        var picked = new List<PromptedExample>();
        while (picked.Count < n)
            foreach (var q in byTask)
                if (q.Count > 0 && picked.Count < n) picked.Add(q.Dequeue());
        return this with { Examples = picked };
    }
}

/// <summary>Everything a run trains and evaluates on, tokenised.</summary>
public sealed class TrainingData
{
    /// <summary>Training sequences with their loss masks.</summary>
    public required IReadOnlyList<MaskedSequence> Train { get; init; }
    /// <summary>Validation sequences for the validation loss.</summary>
    public required IReadOnlyList<MaskedSequence> ValidationSequences { get; init; }
    /// <summary>Generation-based validation (null when there is none).</summary>
    public EvalSplit? Validation { get; init; }
    /// <summary>Unseen-task test split.</summary>
    public EvalSplit? Test { get; init; }
    /// <summary>Seen-task held-out instances (memorisation).</summary>
    public EvalSplit? HeldOut { get; init; }
    /// <summary>Non-fatal notes (skipped instances, short held-out sets, truncations).</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>Builds the run's data from its config.</summary>
    public static TrainingData Build(DataSection cfg, ITokenizer tokenizer, long seed)
    {
        if (string.IsNullOrEmpty(cfg.Path)) throw new ArgumentException("data.path is required");
        if (!Directory.Exists(cfg.Path) && !File.Exists(cfg.Path)) throw new DirectoryNotFoundException($"data.path: '{cfg.Path}' does not exist");
        int eos = tokenizer.EosIds.Count > 0 ? tokenizer.EosIds[0] : throw new ArgumentException("the tokenizer has no EOS token; training needs one to end targets");
        int[] Encode(string s) => tokenizer.Encode(s, addSpecialTokens: false);
        return cfg.Kind switch
        {
            DataKind.SuperNi => SuperNi(cfg, tokenizer, seed, eos),
            DataKind.Chat => Chat(cfg, tokenizer, seed, Encode),
            _ => Text(cfg, tokenizer, eos, seed),
        };
    }

    private static TrainingData SuperNi(DataSection cfg, ITokenizer tokenizer, long seed, int eos)
    {
        var collection = TaskLoader.LoadDirectory(cfg.Path);
        var split = SuperNiSplits.Build(collection, cfg.SplitConfig(seed));
        var prompt = new PromptConfig
        {
            Format = cfg.Format,
            NumPositiveExamples = cfg.Format == PromptFormat.TkInstruct ? cfg.NumPositiveExamples : 0,
            MaxSourceTokens = cfg.MaxSourceTokens,
            MaxTargetTokens = cfg.MaxTargetTokens,
        };
        var counter = new TokenizerCounter(tokenizer);
        MaskedSequence Sequence(PromptedExample e)
        {
            var (source, target) = tokenizer.EncodePair(e.Source, e.Target);
            if (target.Length > cfg.MaxTargetTokens) target = target[..cfg.MaxTargetTokens];
            return LossMasking.FromSourceTarget(source, target, eos);
        }
        var train = PromptBuilder.BuildTrainingSet(split.Train, prompt, counter, seed);
        var validation = PromptBuilder.BuildTrainingSet(split.Validation, prompt, counter, seed);
        var warnings = collection.Report.Warnings.Concat(split.Warnings).ToList();
        return new TrainingData
        {
            Train = train.Select(Sequence).ToArray(),
            ValidationSequences = validation.Select(Sequence).ToArray(),
            Validation = split.Validation.Count > 0 ? new EvalSplit("validation", PromptBuilder.BuildEvaluationSet(split.Validation, prompt, counter)) : null,
            Test = split.Test.Count > 0 ? new EvalSplit("test", PromptBuilder.BuildEvaluationSet(split.Test, prompt, counter)) : null,
            HeldOut = split.HeldOut.Any(t => t.Instances.Count > 0) ? new EvalSplit("heldout", PromptBuilder.BuildEvaluationSet(split.HeldOut, prompt, counter)) : null,
            Warnings = warnings,
        };
    }

    private static TrainingData Chat(DataSection cfg, ITokenizer tokenizer, long seed, Func<string, int[]> encode)
    {
        var data = ChatDataReader.ReadFile(cfg.Path);
        var template = ChatTemplates.ForTokenizer(tokenizer, cfg.ChatTemplate);
        var sequences = data.Conversations.Select(c => LossMasking.FromSegments(template.Render(c), encode)).ToArray();
        // a deterministic 5% (at least one) validation slice
        var order = DeterministicRng.ForStream(seed, "chat-validation").Permutation(sequences.Length);
        int nVal = sequences.Length >= 20 ? Math.Max(1, sequences.Length / 20) : 0;
        var val = order.Take(nVal).ToHashSet();
        return new TrainingData
        {
            Train = sequences.Where((_, i) => !val.Contains(i)).ToArray(),
            ValidationSequences = sequences.Where((_, i) => val.Contains(i)).ToArray(),
            Warnings = nVal == 0 ? [$"{cfg.Path}: fewer than 20 conversations, no validation slice"] : [],
        };
    }

    private static TrainingData Text(DataSection cfg, ITokenizer tokenizer, int eos, long seed)
    {
        var files = Directory.Exists(cfg.Path) ? Directory.GetFiles(cfg.Path).Where(f => f.EndsWith(".txt") || f.EndsWith(".jsonl")).Order(StringComparer.Ordinal).ToArray() : [cfg.Path];
        if (files.Length == 0) throw new ArgumentException($"data.path: no .txt or .jsonl files in {cfg.Path}");
        var docs = new List<string>();
        foreach (var file in files)
        {
            int line = 0;
            foreach (var text in PeftLab.Data.Utf8Text.ReadAllLines(file))
            {
                line++;
                if (string.IsNullOrWhiteSpace(text)) continue;
                if (!file.EndsWith(".jsonl", StringComparison.Ordinal)) { docs.Add(text); continue; }
                using var doc = JsonDocument.Parse(text);
                if (!doc.RootElement.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                    throw new DataFormatException(file, "each JSONL line needs a string field 'text'", line);
                docs.Add(t.GetString()!);
            }
        }
        var sequences = docs.Select(d => { var ids = tokenizer.EncodeWithBos(d).Append(eos).ToArray(); return new MaskedSequence(ids, ids.Select(_ => true).ToArray()); }).ToArray();
        var order = DeterministicRng.ForStream(seed, "text-validation").Permutation(sequences.Length);
        int nVal = Math.Min(200, sequences.Length / 50);
        var val = order.Take(nVal).ToHashSet();
        return new TrainingData
        {
            Train = sequences.Where((_, i) => !val.Contains(i)).ToArray(),
            ValidationSequences = sequences.Where((_, i) => val.Contains(i)).ToArray(),
            Warnings = [],
        };
    }
}
