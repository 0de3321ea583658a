using System.Text.Json;
using PeftLab.Data.SuperNi;
using PeftLab.Models;
using PeftLab.Runtime;
using PeftLab.Tokenization;

namespace PeftLab.Evaluation;

/// <summary>One instance's generation and scores.</summary>
public sealed record PredictionRecord(string Task, string Id, string Category, string Prediction, IReadOnlyList<string> References, double RougeL, double ExactMatch);

/// <summary>Scores and per-instance predictions of one split.</summary>
public sealed record EvalRun(string Split, ScoreReport Report, IReadOnlyList<PredictionRecord> Predictions, double Seconds, long GeneratedTokens);

/// <summary>Generation-based evaluation: batched greedy decoding, decoding, and the official SuperNI metric.</summary>
public static class GenerationEvaluator
{
    /// <summary>
    /// Generates for every example (greedy, batched; prompts sorted by length to limit padding) and scores the
    /// decoded predictions. <paramref name="progress"/> receives (done, total).
    /// </summary>
    public static EvalRun Evaluate(CausalLM model, ITokenizer tokenizer, string split, IReadOnlyList<PromptedExample> examples,
        int maxNewTokens, int batchSize, Action<int, int>? progress = null) =>
        Evaluate((prompts, cfg, eos, pad) => TextGenerator.Generate(model, prompts, cfg, eos, pad), tokenizer, split, examples, maxNewTokens, batchSize, progress);

    /// <summary>As above, for any model: <paramref name="generate"/> maps (prompts, sampling, eos ids, pad id) to generated ids.</summary>
    public static EvalRun Evaluate(Func<IReadOnlyList<int[]>, SamplingConfig, IReadOnlyCollection<int>, int, IReadOnlyList<int[]>> generate,
        ITokenizer tokenizer, string split, IReadOnlyList<PromptedExample> examples, int maxNewTokens, int batchSize, Action<int, int>? progress = null)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var outputs = GenerateByLength(generate, examples.Select(e => tokenizer.EncodePrompt(e.Source)).ToArray(), tokenizer, maxNewTokens, batchSize, progress);
        long generated = outputs.Sum(o => (long)o.Length);
        // the prompt's trailing whitespace is generated (EncodePrompt); the prediction starts after it
        var predictions = outputs.Select(o => tokenizer.Decode(o, skipSpecialTokens: true).TrimStart()).ToArray();
        var items = examples.Select(e => new EvalItem(e.InstanceId, e.TaskName, e.Category, e.References)).ToArray();
        var report = new SuperNiScorer(items).Score(examples.Select((e, i) => (e.InstanceId, predictions[i])).ToDictionary(x => x.InstanceId, x => x.Item2));
        var records = examples.Select((e, i) => new PredictionRecord(e.TaskName, e.InstanceId, e.Category, predictions[i], e.References,
            100 * MetricFunctions.BestRougeL(predictions[i], e.References), MetricFunctions.BestExactMatch(predictions[i], e.References) ? 100 : 0)).ToArray();
        return new EvalRun(split, report, records, sw.Elapsed.TotalSeconds, generated);
    }

    /// <summary>
    /// Greedy (or, given <paramref name="sampling"/>, sampled) continuations of <paramref name="prompts"/>, generated in batches of similar length (sorted, to limit
    /// padding) and returned in prompt order; stops at the tokenizer's EOS ids, pads with its pad id (else EOS, else 0).
    /// <paramref name="progress"/> receives (done, total) prompts.
    /// </summary>
    public static int[][] GenerateByLength(Func<IReadOnlyList<int[]>, SamplingConfig, IReadOnlyCollection<int>, int, IReadOnlyList<int[]>> generate,
        IReadOnlyList<int[]> prompts, ITokenizer tokenizer, int maxNewTokens, int batchSize, Action<int, int>? progress = null, SamplingConfig? sampling = null)
    {
        var order = Enumerable.Range(0, prompts.Count).OrderBy(i => prompts[i].Length).ToArray();
        var eos = tokenizer.EosIds.ToArray();
        int pad = tokenizer.PadId ?? (eos.Length > 0 ? eos[0] : 0);
        var outputs = new int[prompts.Count][];
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var batch = order.Skip(start).Take(batchSize).ToArray();
            // sampling: each batch its own seed, so equal prompts in different batches draw different continuations
            var cfg = sampling is null ? new SamplingConfig(maxNewTokens) : sampling with { MaxNewTokens = maxNewTokens, Seed = sampling.Seed + start };
            var generated = generate(batch.Select(i => prompts[i]).ToArray(), cfg, eos, pad);
            for (int j = 0; j < batch.Length; j++) outputs[batch[j]] = generated[j];
            progress?.Invoke(Math.Min(start + batchSize, order.Length), order.Length);
        }
        return outputs;
    }

    /// <summary>Writes <c>{split}_predictions.jsonl</c> (one line per instance) and <c>{split}_scores.json</c> into <paramref name="dir"/>.</summary>
    public static void Write(EvalRun run, string dir)
    {
        Directory.CreateDirectory(dir);
        var lines = run.Predictions.Select(p => JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["task"] = p.Task, ["id"] = p.Id, ["category"] = p.Category, ["prediction"] = p.Prediction,
            ["references"] = p.References, ["rougeL"] = p.RougeL, ["exact_match"] = p.ExactMatch,
        }));
        AtomicFile.WriteAllText(Path.Combine(dir, $"{run.Split}_predictions.jsonl"), string.Join("\n", lines) + "\n");
        AtomicFile.WriteAllText(Path.Combine(dir, $"{run.Split}_scores.json"), run.Report.ToJson());
    }
}
