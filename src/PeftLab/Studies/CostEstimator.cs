using System.Globalization;
using System.Text;
using PeftLab.Data;
using PeftLab.Data.Chat;
using PeftLab.Data.SuperNi;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Tokenization;
using PeftLab.Training;

namespace PeftLab.Studies;

/// <summary>Options of <see cref="CostEstimator.Estimate"/>.</summary>
public sealed record CostOptions
{
    /// <summary>Training throughput per worker, tokens/s (null: measured from finished trials, else assumed from FLOPs).</summary>
    public double? TokensPerSecond { get; init; }
    /// <summary>Assumed compute rate per worker when nothing is measured, FLOP/s (a few CPU cores).</summary>
    public double AssumedFlops { get; init; } = 2e10;
    /// <summary>Parallel workers (divides the wall time).</summary>
    public int Workers { get; init; } = 1;
}

/// <summary>Estimated cost of one trial (null fields: the data could not be read).</summary>
/// <param name="Index">Trial index.</param>
/// <param name="Examples">Training examples per epoch.</param>
/// <param name="Steps">Optimiser steps.</param>
/// <param name="Tokens">Training tokens processed (all epochs).</param>
/// <param name="TokensPerSecond">Throughput used.</param>
/// <param name="Seconds">Training time (evaluation not included).</param>
public sealed record TrialEstimate(int Index, long? Examples, int? Steps, long? Tokens, double? TokensPerSecond, double? Seconds);

/// <summary>Estimated cost of a study.</summary>
/// <param name="Trials">Per trial.</param>
/// <param name="TotalTokens">Sum of training tokens.</param>
/// <param name="TotalSeconds">Sum of training times (one worker).</param>
/// <param name="WallSeconds">With the given workers.</param>
/// <param name="Method">How it was estimated, one sentence per line.</param>
public sealed record StudyEstimate(IReadOnlyList<TrialEstimate> Trials, long TotalTokens, double TotalSeconds, double WallSeconds, IReadOnlyList<string> Method);

/// <summary>
/// Estimates tokens × steps of every trial from the data (prompts built as the trainer builds them, token counts from
/// bytes at a measured or stated bytes-per-token ratio) and a measured or assumed throughput.
/// </summary>
public static class CostEstimator
{
    private sealed record DataSize(long Examples, long Tokens, long Rows);

    /// <summary>Estimates the study's training cost.</summary>
    public static StudyEstimate Estimate(Study study, CostOptions? options = null)
    {
        options ??= new CostOptions();
        var notes = new List<string>();
        var collections = new Dictionary<string, TaskCollection?>();
        var sizes = new Dictionary<string, DataSize?>();
        var ratios = new Dictionary<string, (double BytesPerToken, string How)>();
        var measured = MeasuredThroughput(study);
        var failures = new SortedSet<string>(StringComparer.Ordinal);
        var trials = new List<TrialEstimate>();
        var throughputNotes = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var t in study.Trials)
        {
            var cfg = t.Config;
            var modelKey = cfg.Model.Path ?? "preset:" + cfg.Model.Preset;
            if (!ratios.TryGetValue(modelKey, out var ratio)) ratios[modelKey] = ratio = BytesPerToken(cfg, collections);
            var dataKey = $"{ConfigWriterKey(cfg.Data)}|{cfg.Train.Seed}|{modelKey}";
            if (!sizes.TryGetValue(dataKey, out var size))
            {
                try { size = Measure(cfg, ratio.BytesPerToken, collections); }
                catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or DataFormatException or UnauthorizedAccessException or System.Text.Json.JsonException)
                {
                    failures.Add($"{cfg.Data.Path}: {e.Message}");
                    size = null;
                }
                sizes[dataKey] = size;
            }
            if (size is null)
            {
                trials.Add(new TrialEstimate(t.Index, null, null, null, null, null));
                continue;
            }
            long batches = (size.Rows + cfg.Train.BatchSize - 1) / cfg.Train.BatchSize;
            int stepsPerEpoch = (int)Math.Max(1, (batches + cfg.Train.GradAccum - 1) / cfg.Train.GradAccum);
            int steps = cfg.Train.MaxSteps ?? stepsPerEpoch * cfg.Train.Epochs;
            long tokens = (long)(size.Tokens * (double)steps / stepsPerEpoch);
            double tps;
            var key = (PeftRegistry.NameOf(cfg.Method.Kind), modelKey);
            if (options.TokensPerSecond is double given) { tps = given; throughputNotes.Add($"throughput: {given:G4} tokens/s per worker, as given"); }
            else if (measured.TryGetValue(key, out var m)) { tps = m.TokensPerSecond; throughputNotes.Add($"throughput of {key.Item1} on {Short(modelKey)}: {m.TokensPerSecond:F0} tokens/s (tokens / wall time, evaluation included), the median of {m.Count} finished trial(s) of this study"); }
            else if (Parameters(cfg) is not long n)
            {
                // no config to count parameters from: no time estimate rather than a made-up one
                throughputNotes.Add($"throughput of {key.Item1} on {Short(modelKey)}: unknown (its config cannot be read, so its parameters cannot be counted); no time estimate for these trials");
                trials.Add(new TrialEstimate(t.Index, size.Examples, steps, tokens, null, null));
                continue;
            }
            else
            {
                int flopsPerParameter = PeftRegistry.Get(cfg.Method.Kind).TrainsWholeModel ? 6 : 4;   // weight gradients for every parameter, or none
                double flopsPerToken = (double)flopsPerParameter * n;
                tps = options.AssumedFlops / flopsPerToken;
                throughputNotes.Add($"throughput of {key.Item1} on {Short(modelKey)}: assumed {tps:F0} tokens/s = {options.AssumedFlops:G3} FLOP/s per worker / ({flopsPerParameter} × {n:N0} parameters) FLOPs per token (training only, evaluation not included)");
            }
            trials.Add(new TrialEstimate(t.Index, size.Examples, steps, tokens, tps, tokens / tps));
        }
        long totalTokens = trials.Sum(t => t.Tokens ?? 0);
        double totalSeconds = trials.Sum(t => t.Seconds ?? 0);
        double wall = totalSeconds / Math.Max(1, Math.Min(options.Workers, Math.Max(1, trials.Count)));
        notes.Add("training tokens: each trial's training prompts built as the trainer builds them (task subset, instances per task, prompt format, truncation), × epochs; padding not included");
        foreach (var (model, (bpt, how)) in ratios) notes.Add($"tokens of {Short(model)}: UTF-8 bytes / {bpt:F2} bytes per token ({how})");
        notes.AddRange(throughputNotes);
        if (options.TokensPerSecond is null && measured.Count == 0) notes.Add("no trial of this study has finished yet: pass --tokens-per-second N, or run a few trials and plan again to use their measured throughput");
        foreach (var f in failures) notes.Add($"not estimated (the trainer would reject this data config too): {f}");
        return new StudyEstimate(trials, totalTokens, totalSeconds, wall, notes);
    }

    private static string Short(string modelKey) => modelKey.StartsWith("preset:", StringComparison.Ordinal) ? $"preset {modelKey[7..]}" : $"'{modelKey}'";

    private static string ConfigWriterKey(DataSection d) => Configuration.ConfigWriter.ToJson(d);

    /// <summary>Median tokens/s of finished trials, by (method, model).</summary>
    private static Dictionary<(string, string), (double TokensPerSecond, int Count)> MeasuredThroughput(Study study)
    {
        var by = new Dictionary<(string, string), List<double>>();
        foreach (var t in study.Trials)
        {
            if (study.Store.ReadResult(t.Id)?.Cost?.TokensPerSecond is not double tps || tps <= 0) continue;
            var key = (PeftRegistry.NameOf(t.Config.Method.Kind), t.Config.Model.Path ?? "preset:" + t.Config.Model.Preset);
            if (!by.TryGetValue(key, out var list)) by[key] = list = [];
            list.Add(tps);
        }
        return by.ToDictionary(kv => kv.Key, kv => (kv.Value.Order().ElementAt(kv.Value.Count / 2), kv.Value.Count));
    }

    /// <summary>Parameter count from the model's family config (preset or config.json); null when it cannot be read.</summary>
    private static long? Parameters(TrainConfig cfg)
    {
        try { return (long)TrainableModels.ParameterCount(cfg.Model.Path, cfg.Model.Preset); }
        catch (Exception e) when (e is IOException or ModelConfigException or ArgumentException) { return null; }
    }

    private static string? ShippedFolder(string preset, int steps)
    {
        try { return BaseModels.ShippedCopy(preset, steps, seed: 0, BaseModels.ShippedRoot); }
        catch (InvalidDataException) { return null; }   // a damaged copy fails the trial itself, with its message
    }

    /// <summary>Bytes per token of the model's tokenizer, measured on sample prompts when it has one.</summary>
    private static (double, string) BytesPerToken(TrainConfig cfg, Dictionary<string, TaskCollection?> collections)
    {
        // a pretrained preset that ships (BaseModels.Shipped) has its learned tokenizer beside its weights
        var folder = cfg.Model.Path ?? (cfg.Model is { Preset: { } preset, PretrainSteps: > 0 } m ? ShippedFolder(preset, m.PretrainSteps) : null);
        if (folder is null)
            return (1.0, "the preset's byte-level tokenizer has no learned merges: one token per byte");
        if (!File.Exists(Path.Combine(folder, "tokenizer.json")))
            return (4.0, "assumed: no tokenizer.json in the model folder");
        try
        {
            using var tok = HfTokenizer.Load(folder);
            var sample = SampleTexts(cfg, collections).Take(200).ToArray();
            if (sample.Length == 0) return (4.0, "assumed: no sample text");
            long bytes = sample.Sum(s => (long)Encoding.UTF8.GetByteCount(s));
            long tokens = sample.Sum(s => (long)tok.CountTokens(s));
            return (bytes / (double)Math.Max(1, tokens), $"measured with the model's tokenizer on {sample.Length} texts");
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or DataFormatException or System.Text.Json.JsonException)
        {
            return (4.0, $"assumed: the tokenizer could not be read ({e.Message})");
        }
    }

    private static IEnumerable<string> SampleTexts(TrainConfig cfg, Dictionary<string, TaskCollection?> collections)
    {
        if (cfg.Data.Kind == DataKind.SuperNi)
        {
            var c = Collection(cfg.Data.Path, collections);
            return c is null ? [] : c.Tasks.Take(50).SelectMany(t => t.Instances.Take(4).Select(i => string.Join(" ", t.Definition) + "\n" + i.Input + "\n" + i.Outputs.FirstOrDefault()));
        }
        return File.Exists(cfg.Data.Path) ? File.ReadLines(cfg.Data.Path).Take(200) : [];
    }

    private static TaskCollection? Collection(string path, Dictionary<string, TaskCollection?> cache)
    {
        if (!cache.TryGetValue(path, out var c)) cache[path] = c = TaskLoader.LoadDirectory(path);
        return c;
    }

    private static DataSize Measure(TrainConfig cfg, double bytesPerToken, Dictionary<string, TaskCollection?> collections)
    {
        var d = cfg.Data;
        var counter = new ByteRatioCounter(bytesPerToken);
        if (d.Kind == DataKind.SuperNi)
        {
            var collection = Collection(d.Path, collections)!;
            var split = SuperNiSplits.Build(collection, d.SplitConfig(cfg.Train.Seed));
            var prompt = new PromptConfig
            {
                Format = d.Format, NumPositiveExamples = d.Format == PromptFormat.TkInstruct ? d.NumPositiveExamples : 0,
                MaxSourceTokens = d.MaxSourceTokens, MaxTargetTokens = d.MaxTargetTokens,
            };
            var train = PromptBuilder.BuildTrainingSet(split.Train, prompt, counter, cfg.Train.Seed);
            long tokens = train.Sum(e => (long)Math.Min(d.MaxLength, counter.Count(e.Source) + Math.Min(d.MaxTargetTokens, counter.Count(e.Target)) + 2));
            return new DataSize(train.Count, tokens, d.Packing ? (tokens + d.MaxLength - 1) / d.MaxLength : train.Count);
        }
        long bytes = File.Exists(d.Path) ? new FileInfo(d.Path).Length : Directory.GetFiles(d.Path, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        long total = (long)(bytes / bytesPerToken);
        long examples = d.Kind == DataKind.Chat ? ChatDataReader.ReadFile(d.Path).Conversations.Count : (total + d.MaxLength - 1) / d.MaxLength;
        bool packed = d.Packing || d.Kind == DataKind.Text;
        return new DataSize(examples, total, packed ? (total + d.MaxLength - 1) / d.MaxLength : examples);
    }

    /// <summary>Token counts from UTF-8 byte counts at a fixed ratio (for estimates only).</summary>
    private sealed class ByteRatioCounter(double bytesPerToken) : ITokenCounter
    {
        public int Count(string text) => (int)Math.Ceiling(Encoding.UTF8.GetByteCount(text) / bytesPerToken);

        public string TruncateToTokens(string text, int maxTokens)
        {
            int maxBytes = (int)Math.Min(int.MaxValue, maxTokens * bytesPerToken);
            if (Encoding.UTF8.GetByteCount(text) <= maxBytes) return text;
            int chars = Math.Min(text.Length, maxBytes);
            while (chars > 0 && Encoding.UTF8.GetByteCount(text.AsSpan(0, chars)) > maxBytes) chars--;
            return text[..chars];
        }

        public int MaxCharsPerToken => (int)Math.Ceiling(bytesPerToken) + 1;
    }

    /// <summary>"1.2M", "3.4B" for token counts.</summary>
    public static string Count(double n) => n switch
    {
        >= 1e12 => (n / 1e12).ToString("0.##", CultureInfo.InvariantCulture) + "T",
        >= 1e9 => (n / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "B",
        >= 1e6 => (n / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (n / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "k",
        _ => n.ToString("0", CultureInfo.InvariantCulture),
    };
}
