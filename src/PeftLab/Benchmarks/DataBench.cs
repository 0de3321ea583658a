using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftLab.Data;
using PeftLab.Data.Batching;
using PeftLab.Evaluation;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Runtime;
using PeftLab.Training;
using PeftLab.Tokenization;
using static TorchSharp.torch;

namespace PeftLab.Benchmarks;

/// <summary>What the data benchmarks run on: SuperNI task files and a model (a Hugging Face folder, or a preset).</summary>
public sealed record DataBenchOptions
{
    /// <summary>Folder of SuperNI task files.</summary>
    public required string DataPath { get; init; }
    /// <summary>A model folder; null builds <see cref="BenchOptions.Preset"/> with a tokenizer trained on the data.</summary>
    public string? ModelPath { get; init; }
    /// <summary>Shape, method, precision, threads, seed.</summary>
    public required BenchOptions Bench { get; init; }
    /// <summary>Training examples timed per batching strategy (packing) or test prompts generated (eval).</summary>
    public int Examples { get; init; } = 64;
    /// <summary>Rows per batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Longest training row (BOS + source + target + EOS); sources are cut to fit.</summary>
    public int MaxLength { get; init; } = 1024;
    /// <summary>Longest generated answer (eval).</summary>
    public int MaxNewTokens { get; init; } = 64;
}

/// <summary>
/// Benchmarks on real instruction data: training throughput with padded, length-grouped and packed batches
/// (counting only real and target tokens), and batched greedy evaluation throughput on test prompts.
/// </summary>
public static class DataBench
{
    private static (ITrainableModel Model, ITokenizer Tokenizer, PeftModel Peft, TrainingData Data) Prepare(DataBenchOptions o, string tmp)
    {
        TorchRuntime.EnsureInitialised();
        TorchSharp.torch.set_num_threads(o.Bench.Threads);
        var section = new DataSection
        {
            Path = o.DataPath, MaxLength = o.MaxLength, MaxSourceTokens = o.MaxLength - 2 - 64, MaxTargetTokens = 64,
            TrainInstancesPerTask = 100, HeldOutInstancesPerTask = 0, TestInstancesPerTask = 100,
        };
        string dir = o.ModelPath ?? tmp;
        if (o.ModelPath is null)
        {
            // the tokenizer is trained on the task texts themselves, so lengths are realistic for this vocabulary size
            var corpus = Data.SuperNi.TaskLoader.LoadDirectory(o.DataPath).Tasks.Take(30)
                .SelectMany(t => t.Instances.Take(20).Select(i => string.Join("\n", t.Definition) + "\n" + i.Input + "\n" + string.Join("\n", i.Outputs)));
            TrainableModels.CreatePreset(dir, o.Bench.Preset, o.Bench.Seed, corpus);
        }
        var tokenizer = HfTokenizer.Load(dir);
        var lm = TrainableModels.Load(dir, o.Bench.Bf16 ? ScalarType.BFloat16 : ScalarType.Float32, TorchRuntime.Device);
        var peft = PeftModel.Apply(lm.Host, Bench.MethodConfig(o.Bench), o.Bench.Seed, s => tokenizer.Encode(s));
        return (lm, tokenizer, peft, TrainingData.Build(section, tokenizer, o.Bench.Seed));
    }

    /// <summary>
    /// Trains on the same <see cref="DataBenchOptions.Examples"/> SuperNI examples four ways — padded to max_length
    /// (static shapes), padded to each batch's longest in random order, length-grouped, packed rows — and reports
    /// real (non-pad) and target tokens per second.
    /// </summary>
    public static JsonObject Packing(DataBenchOptions o)
    {
        string tmp = Directory.CreateTempSubdirectory("peftlab-bench-").FullName;
        try
        {
            var (lm, tokenizer, peft, data) = Prepare(o, tmp);
            if (!lm.SupportsPacking) throw new ArgumentException($"packing is not supported for {lm.Host.TaskType} models");
            var examples = data.Train.Take(o.Examples).ToArray();   // already in the split's seeded order
            var result = new JsonObject
            {
                ["mode"] = "packing", ["impl"] = "peftlab", ["preset"] = o.ModelPath is null ? o.Bench.Preset : null, ["model"] = o.ModelPath,
                ["method"] = o.Bench.Method, ["dtype"] = o.Bench.Bf16 ? "bf16-weights" : "fp32", ["examples"] = examples.Length,
                ["batch"] = o.BatchSize, ["max_length"] = o.MaxLength, ["trainable_params"] = peft.TrainableParameters,
                ["mean_example_tokens"] = Math.Round(examples.Average(e => e.Ids.Length), 1),
            };
            var model = lm.Host.Module;
            model.train();
            using var opt = new AdamW(Injector.Trainable(model), _ => false, 0.9, 0.999, 1e-8, 0.0);
            BatchingConfig Config(bool grouped, int padTo = 64) => new()
            {
                MaxLength = o.MaxLength, BatchSize = o.BatchSize, PadId = tokenizer.PadId ?? 0, Shuffle = true,
                GroupByLength = grouped, Seed = o.Bench.Seed, PadToMultipleOf = padTo,
            };
            var strategies = new (string Name, IReadOnlyList<TokenBatch> Batches)[]
            {
                ("padded_to_max_length", new Batcher(Config(false, o.MaxLength)).Batches(examples).Batches),   // static shapes
                ("padded", new Batcher(Config(false)).Batches(examples).Batches),                                // to the batch's longest
                ("length_grouped", new Batcher(Config(true)).Batches(examples).Batches),
                ("packed", new Batcher(Config(false)).Pack(examples).Batches),
            };
            // one untimed step per strategy first: kernels and allocator warm for every shape family
            foreach (var (_, batches) in strategies) Step(lm, opt, batches[0]);
            foreach (var (name, batches) in strategies)
            {
                long real = batches.Sum(b => (long)b.AttentionMask.Count(m => m)), slots = batches.Sum(b => (long)b.Batch * b.Length), targets = 0;
                var sw = Stopwatch.StartNew();
                foreach (var b in batches) targets += Step(lm, opt, b);
                double s = sw.Elapsed.TotalSeconds;
                result[name] = new JsonObject
                {
                    ["batches"] = batches.Count, ["seconds"] = Math.Round(s, 2), ["token_slots"] = slots, ["real_tokens"] = real,
                    ["target_tokens"] = targets, ["padding_fraction"] = Math.Round(1 - (double)real / slots, 3),
                    ["real_tokens_per_s"] = Math.Round(real / s, 1), ["target_tokens_per_s"] = Math.Round(targets / s, 1),
                };
            }
            double Rate(string n) => result[n]!["real_tokens_per_s"]!.GetValue<double>();
            result["packed_vs_padded_to_max_length"] = Math.Round(Rate("packed") / Rate("padded_to_max_length"), 2);
            result["packed_vs_padded"] = Math.Round(Rate("packed") / Rate("padded"), 2);
            result["packed_vs_length_grouped"] = Math.Round(Rate("packed") / Rate("length_grouped"), 2);
            return result.WithEnvironment();
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    private static long Step(ITrainableModel lm, AdamW opt, TokenBatch batch)
    {
        using var scope = NewDisposeScope();
        var loss = lm.BatchLoss(batch, out long targets);
        (loss / Math.Max(1, targets)).backward();
        opt.Step(1e-5);
        opt.ZeroGrad();
        return targets;
    }

    /// <summary>
    /// Greedy generation on the first <see cref="DataBenchOptions.Examples"/> unseen-task test prompts with batch 1 and
    /// with <see cref="DataBenchOptions.BatchSize"/> (prompts sorted by length, KV cache), as <c>peftlab eval</c> runs it.
    /// </summary>
    public static JsonObject Eval(DataBenchOptions o)
    {
        string tmp = Directory.CreateTempSubdirectory("peftlab-bench-").FullName;
        try
        {
            var (lm, tokenizer, peft, data) = Prepare(o, tmp);
            var test = (data.Test ?? throw new ArgumentException($"{o.DataPath} has no test tasks")).Take(o.Examples);
            lm.Host.Module.eval();
            using var noGrad = no_grad();
            var result = new JsonObject
            {
                ["mode"] = "eval", ["impl"] = "peftlab", ["preset"] = o.ModelPath is null ? o.Bench.Preset : null, ["model"] = o.ModelPath,
                ["dtype"] = o.Bench.Bf16 ? "bf16-weights" : "fp32", ["examples"] = test.Examples.Count, ["max_new_tokens"] = o.MaxNewTokens,
            };
            // untimed warm-up on a few prompts
            GenerationEvaluator.Evaluate(lm.Generate, tokenizer, "test", test.Examples.Take(2).ToArray(), 8, 2);
            long promptTokens = test.Examples.Sum(e => (long)tokenizer.EncodeWithBos(e.Source).Length);
            foreach (int batch in new[] { 1, o.BatchSize }.Distinct())
            {
                var run = GenerationEvaluator.Evaluate(lm.Generate, tokenizer, "test", test.Examples, o.MaxNewTokens, batch);
                result[$"batch_{batch}"] = new JsonObject
                {
                    ["seconds"] = Math.Round(run.Seconds, 2), ["examples_per_s"] = Math.Round(test.Examples.Count / run.Seconds, 2),
                    ["generated_tokens"] = run.GeneratedTokens, ["generated_tokens_per_s"] = Math.Round(run.GeneratedTokens / run.Seconds, 1),
                    ["prompt_tokens"] = promptTokens, ["rouge_l"] = Math.Round(run.Report.RougeL, 2),
                };
            }
            return result.WithEnvironment();
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }
}
