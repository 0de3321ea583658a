using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Data;
using PeftLab.Data.Batching;
using PeftLab.Evaluation;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Runtime;
using PeftLab.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Training;

/// <summary>What a run does with the checkpoints already in its folder.</summary>
public enum ResumeMode
{
    /// <summary>Start from step 0 (the folder's earlier metrics are replaced).</summary>
    None,
    /// <summary>Continue from the newest intact checkpoint; an error when there is none (<c>--resume</c>).</summary>
    Required,
    /// <summary>Continue from the newest intact checkpoint, or start from step 0 when there is none (<c>--resume-or-start</c>, study trials).</summary>
    IfPresent,
}

/// <summary>Live progress for progress bars and study tables.</summary>
public sealed record TrainProgress(string Phase, int Step, int TotalSteps, double? Loss, double Lr, double TokensPerSecond, TimeSpan Elapsed);

/// <summary>Options that are not part of the run's config.</summary>
public sealed record TrainOptions
{
    /// <summary>Whether to continue from the newest intact checkpoint in the run folder.</summary>
    public ResumeMode Resume { get; init; }
    /// <summary>How long to wait for another process to release the run folder (null: <see cref="RunLock"/>'s default).</summary>
    public TimeSpan? LockWait { get; init; }
    /// <summary>Receives warnings while the run starts (e.g. a damaged checkpoint passed over); they also go to result.json.</summary>
    public Action<string>? Warning { get; init; }
    /// <summary>Text of the resolved config, written to config.yaml.</summary>
    public string? ResolvedConfigText { get; init; }
    /// <summary>Receives progress.</summary>
    public Action<TrainProgress>? Progress { get; init; }
    /// <summary>Stops the run cleanly at the next step boundary.</summary>
    public CancellationToken Cancel { get; init; }
    /// <summary>Stop (as if killed) after this step — used by tests of resume.</summary>
    public int? StopAfterStep { get; init; }
}

/// <summary>
/// The one trainer for full finetuning and every PEFT method. Method-specific behaviour lives behind
/// <see cref="PeftModel"/>; here are the loop, accumulation, clipping, schedule, evaluation, signals and checkpoints.
/// </summary>
public static class Trainer
{
    /// <summary>Runs (or resumes) a training run; returns its result, which a completed or diverged run also writes to result.json.</summary>
    public static RunResult Run(TrainConfig cfg, TrainOptions? options = null)
    {
        options ??= new TrainOptions();
        var files = new RunFiles(cfg.Output);
        Directory.CreateDirectory(files.Dir);
        using var runLock = RunLock.Acquire(files, options.LockWait);

        // --- the checkpoint to resume from, found before anything expensive ---------------------------------
        var startWarnings = new List<string>();
        string? resumeFrom = null;
        if (options.Resume != ResumeMode.None)
        {
            resumeFrom = CheckpointManifest.NewestIntact(files, startWarnings);
            if (resumeFrom is null && options.Resume == ResumeMode.Required)
                throw new InvalidDataException($"--resume: no intact checkpoint in {files.Checkpoints}" +
                    (startWarnings.Count > 0 ? ": " + string.Join("; ", startWarnings) : " (the run has not reached its first checkpoint)") +
                    "; run without --resume to start over, or with --resume-or-start");
            if (resumeFrom is null && startWarnings.Count > 0) startWarnings.Add("no intact checkpoint: starting from step 0");
            foreach (var w in startWarnings) options.Warning?.Invoke(w);
        }
        if (options.ResolvedConfigText is { } text) AtomicFile.WriteAllText(files.Config, text);
        TorchRuntime.EnsureInitialised();
        if (cfg.Train.Threads is int threads) TorchRuntime.SetThreads(threads);   // null: leave the process setting alone
        var wall = Stopwatch.StartNew();
        using var outer = NewDisposeScope();

        // --- model, method, data -------------------------------------------------------------------
        var dtype = ComputeDtypes.Resolve(cfg.Model.Dtype);                      // auto: this host's faster one
        var modelDir = cfg.Model.Path ?? files.BaseModel;
        if (cfg.Model.Path is null)
        {
            if (cfg.Model.Preset is null) throw new ArgumentException("model: give model.path (a Hugging Face folder) or model.preset");
            if (cfg.Model.PretrainSteps > 0)
                modelDir = BaseModels.EnsurePretrained(cfg.Model.Preset, cfg.Model.PretrainSteps, seed: 0,
                    p => options.Progress?.Invoke(p with { Phase = "pretrain base" }));
            else if (!File.Exists(Path.Combine(modelDir, "config.json"))) TrainableModels.CreatePreset(modelDir, cfg.Model.Preset, cfg.Train.Seed, []);
        }
        var tokenizer = HfTokenizer.Load(modelDir);
        // the open-instruction benchmarks are loaded (and their sandbox and judge readied) before any training: a bad
        // task file or a refused sandbox fails the run now, not after it has trained
        var openEval = cfg.Eval.OpenInstruction is { Tasks.Count: > 0 } open && cfg.Eval.Final ? Evaluation.Harness.OpenInstructionEval.Prepare(open, modelDir, cfg.Data.ChatTemplate) : null;
        manual_seed(cfg.Train.Seed);
        var lm = TrainableModels.Load(modelDir, dtype, TorchRuntime.Device);
        lm.Memory = MemorySettings.From(cfg.Train);
        var model = lm.Host.Module;
        var peft = PeftModel.Apply(lm.Host, cfg.Method, cfg.Train.Seed, s => tokenizer.Encode(s));
        AllocatorTuning.ReleaseFree();                                              // the float32 temporaries of loading
        if (cfg.Data.Packing && !lm.SupportsPacking) throw new ArgumentException($"data.packing: not supported for {lm.Host.TaskType} models");
        var data = TrainingData.Build(cfg.Data, tokenizer, cfg.Train.Seed);
        if (data.Train.Count == 0) throw new ArgumentException($"data.path: no training examples in {cfg.Data.Path}");

        var batcher = new Batcher(new BatchingConfig
        {
            MaxLength = cfg.Data.MaxLength, BatchSize = cfg.Train.BatchSize, PadId = tokenizer.PadId ?? 0,
            Shuffle = true, GroupByLength = cfg.Data.GroupByLength && !cfg.Data.Packing, Seed = cfg.Train.Seed, PadToMultipleOf = 64,
        });
        var epochCache = new Dictionary<int, IReadOnlyList<IModelBatch>>();
        IReadOnlyList<IModelBatch> Epoch(int e)
        {
            if (!epochCache.TryGetValue(e, out var b))
            {
                epochCache.Clear();
                b = lm.Batches(batcher, data.Train, e, cfg.Data.Packing);
                epochCache[e] = b;
            }
            return b;
        }
        int stepsPerEpoch = Math.Max(1, (Epoch(0).Count + cfg.Train.GradAccum - 1) / cfg.Train.GradAccum);
        int totalSteps = cfg.Train.MaxSteps ?? stepsPerEpoch * cfg.Train.Epochs;
        int warmup = LrSchedule.WarmupSteps(cfg.Schedule.WarmupSteps, cfg.Schedule.WarmupRatio, totalSteps);
        int evalEvery = cfg.Eval.EverySteps > 0 ? cfg.Eval.EverySteps : Math.Max(1, totalSteps / Math.Max(1, cfg.Eval.EvalsPerRun));
        int ckptEvery = cfg.Checkpoint.EverySteps > 0 ? cfg.Checkpoint.EverySteps : evalEvery;

        var trainable = Injector.Trainable(model).ToArray();
        var ranks = trainable.ToDictionary(p => p.Name, p => p.Parameter.dim());
        using var hook = peft.Method.TrainingHook(peft.Host, peft.Config, totalSteps);   // e.g. AdaLoRA's rank allocator
        LoraPlusRule.Check(ranks.Keys, cfg.Optim.LoraplusLrRatio);
        using var optimizer = new AdamW(trainable, name => WeightDecayRule.Decays(name, ranks[name], cfg.Optim.DecayAll), cfg.Optim.Beta1, cfg.Optim.Beta2, cfg.Optim.Eps, cfg.Optim.WeightDecay,
            name => LoraPlusRule.LearningRateScale(name, ranks[name], cfg.Optim.LoraplusLrRatio));

        // --- state (restored on resume) -----------------------------------------------------------
        var state = new LoopState();
        if (resumeFrom is not null)
            state = RestoreCheckpoint(resumeFrom, model, optimizer, hook);
        // a fresh start empties the file before the writer opens it: the writer's position would otherwise stay at
        // the old end, and its first record would land after a run of NUL bytes
        if (resumeFrom is null && File.Exists(files.Metrics)) File.WriteAllText(files.Metrics, "");
        using var metrics = new MetricsWriter(files.Metrics, resumeFrom is not null ? state.Step : null);
        using var tb = new TensorBoardWriter(files.TensorBoard);

        RunStatus? stopped = null;
        string? divergence = null;
        var stepTimer = Stopwatch.StartNew();
        long tokensAtTimer = state.Tokens;
        if (totalSteps == 0)
        {
            // nothing to train: the loaded model is the "best" checkpoint, scored once like any evaluation step
            var ev = Evaluate(cfg, lm, tokenizer, data, state, options, wall.Elapsed);
            metrics.Write(ev);
            state = state with { BestStep = 0, BestScore = BestScore(cfg.Eval.EffectiveBestMetric, ev) };
            SaveBest(files, lm, peft, modelDir);
        }
        while (state.Step < totalSteps)
        {
            if (options.Cancel.IsCancellationRequested)
            {
                // stop cleanly: a checkpoint at this step boundary makes --resume continue exactly here
                if (state.Step > 0) WriteCheckpoint(files, model, optimizer, hook, state with { WallSeconds = state.WallSeconds + wall.Elapsed.TotalSeconds }, cfg.Checkpoint.Keep);
                stopped = RunStatus.Interrupted;
                break;
            }
            // one optimiser step over GradAccum micro-batches, loss normalised over all their target tokens
            var window = new List<IModelBatch>();
            while (window.Count < cfg.Train.GradAccum)
            {
                var epochBatches = Epoch(state.Epoch);
                if (state.BatchIndex >= epochBatches.Count)
                {
                    if (cfg.Train.MaxSteps is null && state.Epoch + 1 >= cfg.Train.Epochs && window.Count == 0) break;
                    state = state with { Epoch = state.Epoch + 1, BatchIndex = 0 };
                    if (cfg.Train.MaxSteps is null && state.Epoch >= cfg.Train.Epochs) break;
                    continue;
                }
                window.Add(epochBatches[state.BatchIndex]);
                state = state with { BatchIndex = state.BatchIndex + 1 };
            }
            if (window.Count == 0) break;
            long targetTokens = window.Sum(b => b.TargetCount);
            double lossSum = 0;
            model.train();
            foreach (var batch in window)
            {
                using var scope = NewDisposeScope();
                var loss = lm.BatchLoss(batch, out _);
                (loss / Math.Max(1, targetTokens)).backward();
                lossSum += loss.item<float>();
            }
            if (hook is not null)
                using (var scope = NewDisposeScope())
                    hook.ExtraLoss()?.backward();
            double meanLoss = lossSum / Math.Max(1, targetTokens);
            double gradNorm = optimizer.GradNorm();
            if (cfg.Optim.ClipNorm > 0 && gradNorm > cfg.Optim.ClipNorm) optimizer.ScaleGradients(cfg.Optim.ClipNorm / (gradNorm + 1e-6));
            double lr = LrSchedule.At(cfg.Schedule.Kind, cfg.Optim.Lr, state.Step, totalSteps, warmup);
            state.Losses.Add(meanLoss);
            divergence = !double.IsFinite(gradNorm) ? $"gradient norm is {gradNorm}"
                : LearningSignals.Divergence(state.Losses, cfg.Stability.DivergenceFactor, cfg.Stability.DivergencePatience);
            if (divergence is null)
            {
                optimizer.Step(lr);
                hook?.AfterStep(state.Step);
            }
            optimizer.ZeroGrad();
            state = state with { Step = state.Step + 1, Tokens = state.Tokens + window.Sum(b => b.RealTokens) };

            double tps = (state.Tokens - tokensAtTimer) / Math.Max(1e-9, stepTimer.Elapsed.TotalSeconds);
            metrics.Write(new JsonObject
            {
                ["type"] = "step", ["step"] = state.Step, ["epoch"] = state.Epoch + (double)state.BatchIndex / Math.Max(1, Epoch(state.Epoch).Count),
                ["tokens"] = state.Tokens, ["loss"] = Finite(meanLoss), ["lr"] = lr, ["grad_norm"] = Finite(gradNorm), ["tokens_per_s"] = tps,
                ["wall_s"] = state.WallSeconds + wall.Elapsed.TotalSeconds,
            });
            tb.Scalar("train/loss", meanLoss, state.Step);
            tb.Scalar("train/lr", lr, state.Step);
            tb.Scalar("train/grad_norm", gradNorm, state.Step);
            options.Progress?.Invoke(new TrainProgress("train", state.Step, totalSteps, meanLoss, lr, tps, wall.Elapsed));
            if (divergence is not null)
            {
                stopped = RunStatus.Diverged;
                break;
            }

            bool last = state.Step == totalSteps;
            if (state.Step % evalEvery == 0 || last)
            {
                var ev = Evaluate(cfg, lm, tokenizer, data, state, options, wall.Elapsed);
                metrics.Write(ev);
                foreach (var (k, v) in ev) if (v is JsonValue jv && jv.TryGetValue<double>(out var d) && k != "step") tb.Scalar("eval/" + k, d, state.Step);
                double score = BestScore(cfg.Eval.EffectiveBestMetric, ev);
                if (state.BestStep is null || score > state.BestScore)
                {
                    state = state with { BestStep = state.Step, BestScore = score };
                    SaveBest(files, lm, peft, modelDir);
                }
            }
            if (state.Step % ckptEvery == 0 && !last)
                WriteCheckpoint(files, model, optimizer, hook, state with { WallSeconds = state.WallSeconds + wall.Elapsed.TotalSeconds }, cfg.Checkpoint.Keep);
            tb.Flush();
            if (options.StopAfterStep is int stop && state.Step >= stop) { stopped = RunStatus.Interrupted; break; }
        }
        var status = stopped ?? RunStatus.Completed;
        if (status == RunStatus.Interrupted) return new RunResult { Status = status };

        // --- final evaluation of the best weights ---------------------------------------------------
        ScoreReport? test = null, heldout = null;
        IReadOnlyList<OpenInstructionScore>? openScores = null;
        if (status == RunStatus.Completed && cfg.Eval.Final && state.BestStep is not null)
        {
            RestoreBest(lm, peft, files);
            ScoreReport? Final(EvalSplit? split)
            {
                if (split is null) return null;
                var run = GenerationEvaluator.Evaluate(lm.Generate, tokenizer, split.Name, split.Take(cfg.Eval.MaxFinalInstances).Examples,
                    cfg.Eval.MaxNewTokens, cfg.Eval.BatchSize, (d, n) => options.Progress?.Invoke(new TrainProgress("eval " + split.Name, d, n, null, 0, 0, wall.Elapsed)));
                GenerationEvaluator.Write(run, files.Eval);
                return run.Report;
            }
            test = Final(data.Test);
            heldout = Final(data.HeldOut);
            openScores = openEval?.Run(lm, tokenizer, dtype, files.Eval, cfg.Eval.BatchSize, cfg.Train.Seed,
                (task, d, n) => options.Progress?.Invoke(new TrainProgress("eval " + task, d, n, null, 0, 0, wall.Elapsed)), cfg.Data.ChatTemplate);
        }
        var result = FinishResult(cfg, files, peft, optimizer, state, dtype, wall.Elapsed.TotalSeconds + state.WallSeconds, [.. startWarnings, .. data.Warnings],
            status == RunStatus.Diverged ? divergence : null, test, heldout) with { OpenInstruction = openScores };
        result.Write(files.Result);
        return result;
    }

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;

    private static JsonObject Evaluate(TrainConfig cfg, ITrainableModel lm, ITokenizer tokenizer, TrainingData data, LoopState state, TrainOptions options, TimeSpan elapsed)
    {
        var ev = new JsonObject { ["type"] = "eval", ["step"] = state.Step, ["tokens"] = state.Tokens };
        lm.Host.Module.eval();
        if (data.ValidationSequences.Count > 0)
        {
            var batcher = new Batcher(new BatchingConfig { MaxLength = cfg.Data.MaxLength, BatchSize = cfg.Eval.BatchSize, PadId = tokenizer.PadId ?? 0, Shuffle = false, PadToMultipleOf = 64 });
            double sum = 0;
            long count = 0;
            using (no_grad())
                foreach (var batch in lm.Batches(batcher, data.ValidationSequences.Take(Math.Max(cfg.Eval.MaxValidationInstances, 1)).ToArray(), 0, pack: false))
                {
                    using var scope = NewDisposeScope();
                    sum += lm.BatchLoss(batch, out var n).item<float>();
                    count += n;
                }
            ev["val_loss"] = Finite(sum / Math.Max(1, count));
        }
        if (cfg.Eval.Generate && data.Validation is { } val)
        {
            var run = GenerationEvaluator.Evaluate(lm.Generate, tokenizer, "validation", val.Take(cfg.Eval.MaxValidationInstances).Examples, cfg.Eval.MaxNewTokens, cfg.Eval.BatchSize,
                (d, n) => options.Progress?.Invoke(new TrainProgress("validate", d, n, null, 0, 0, elapsed)));
            ev["val_rougeL"] = run.Report.RougeL;
            ev["val_exact_match"] = run.Report.ExactMatch;
        }
        return ev;
    }

    private static double BestScore(BestMetric metric, JsonObject ev)
    {
        double? Get(string k) => ev[k] is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;
        return metric switch
        {
            BestMetric.RougeL => Get("val_rougeL") ?? -(Get("val_loss") ?? 0),
            BestMetric.ExactMatch => Get("val_exact_match") ?? -(Get("val_loss") ?? 0),
            _ => -(Get("val_loss") ?? 0),
        };
    }

    /// <summary>
    /// Best weights: an adapter folder, or a complete checkpoint when the method trains the whole model (full
    /// finetuning); for adapters also the trainable tensors as attached (<see cref="RunFiles.BestTrainable"/>).
    /// </summary>
    private static void SaveBest(RunFiles files, ITrainableModel lm, PeftModel peft, string baseDir)
    {
        AtomicFile.ReplaceDirectory(files.Best, dir =>
        {
            if (peft.Method.TrainsWholeModel)
            {
                lm.SaveFull(dir);
                ModelFolder.CopyTokenizerFiles(baseDir, dir);
            }
            else peft.SaveAdapter(dir);
        });
        if (peft.Method.TrainsWholeModel) return;
        Directory.CreateDirectory(files.Checkpoints);
        var temp = files.BestTrainable + ".tmp";
        using (var scope = NewDisposeScope())
            SafeTensorsWriter.Write(temp, Injector.Trainable(lm.Host.Module).Select(p => TensorConversions.FromTensor(p.Name, p.Parameter)).ToList());
        File.Move(temp, files.BestTrainable, overwrite: true);
    }

    private static void RestoreBest(ITrainableModel lm, PeftModel peft, RunFiles files)
    {
        if (peft.Method.TrainsWholeModel) lm.LoadFull(files.Best);
        else if (File.Exists(files.BestTrainable))
        {
            using var source = CheckpointSource.OpenFile(files.BestTrainable);
            PeftState.LoadStrict(Injector.Trainable(lm.Host.Module).ToDictionary(p => p.Name, p => (Tensor)p.Parameter), source);
        }
        else
        {
            using var source = CheckpointSource.OpenFile(Path.Combine(files.Best, PeftModel.WeightsFile));
            peft.Method.LoadAdapterState(peft.Host, peft.Config, source);
        }
    }

    // --- resumable checkpoints ------------------------------------------------------------------------

    private sealed record LoopState
    {
        public int Step { get; init; }
        public int Epoch { get; init; }
        public int BatchIndex { get; init; }
        public long Tokens { get; init; }
        public int? BestStep { get; init; }
        public double BestScore { get; init; } = double.NegativeInfinity;
        public double WallSeconds { get; init; }
        public List<double> Losses { get; init; } = [];
    }

    private static void WriteCheckpoint(RunFiles files, nn.Module model, AdamW optimizer, ITrainingHook? hook, LoopState state, int keep)
    {
        var name = CheckpointManifest.FolderName(state.Step);
        AtomicFile.ReplaceDirectory(Path.Combine(files.Checkpoints, name), dir =>
        {
            using var scope = NewDisposeScope();
            SafeTensorsWriter.Write(Path.Combine(dir, "trainable.safetensors"),
                Injector.Trainable(model).Select(p => TensorConversions.FromTensor(p.Name, p.Parameter)).ToList());
            var opt = optimizer.State().Select(s => TensorConversions.FromTensor(s.Key, s.Value)).ToList();
            opt.Add(TensorConversions.FromTensor("rng", torch.get_rng_state()));
            if (hook is not null) opt.AddRange(hook.State().Select(h => TensorConversions.FromTensor("hook." + h.Key, h.Value)));
            SafeTensorsWriter.Write(Path.Combine(dir, "optimizer.safetensors"), opt);
            var json = new JsonObject
            {
                ["step"] = state.Step, ["epoch"] = state.Epoch, ["batch_index"] = state.BatchIndex, ["tokens"] = state.Tokens,
                ["best_step"] = state.BestStep, ["best_score"] = double.IsFinite(state.BestScore) ? state.BestScore : null,
                ["wall_s"] = state.WallSeconds, ["optimizer_steps"] = optimizer.StepCount,
                ["losses"] = new JsonArray(state.Losses.Select(l => (JsonNode?)(double.IsFinite(l) ? l : null)).ToArray()),
            };
            File.WriteAllText(Path.Combine(dir, "state.json"), json.ToJsonString());
            CheckpointManifest.Write(dir);   // last: sizes and hashes of what --resume will trust
        });
        AtomicFile.WriteAllText(files.Latest, name);   // the pointer moves only after the folder is complete
        // keep the newest `keep` up to this step; a folder newer than this step is from an attempt whose later steps
        // were dropped from metrics.jsonl when this one resumed from an older checkpoint (its predecessor was killed
        // between completing that folder and moving the pointer): resuming from it would skip those steps' records
        var folders = Directory.GetDirectories(files.Checkpoints).Select(d => (Dir: d, Step: CheckpointManifest.StepOf(Path.GetFileName(d))))
            .Where(c => c.Step is not null).OrderBy(c => c.Step).ToList();
        foreach (var (old, _) in folders.Where(c => c.Step > state.Step).Concat(folders.Where(c => c.Step <= state.Step).SkipLast(Math.Max(1, keep))))
            Directory.Delete(old, recursive: true);
    }

    private static LoopState RestoreCheckpoint(string dir, nn.Module model, AdamW optimizer, ITrainingHook? hook)
    {
        using (var source = CheckpointSource.OpenFile(Path.Combine(dir, "trainable.safetensors")))
            PeftState.LoadStrict(Injector.Trainable(model).ToDictionary(p => p.Name, p => (Tensor)p.Parameter), source);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "state.json")))!.AsObject();
        using (var opt = SafeTensorsFile.Open(Path.Combine(dir, "optimizer.safetensors")))
        {
            optimizer.Load(k => opt.Contains(k) ? TensorConversions.ToTensor(opt, k) : null, json["optimizer_steps"]!.GetValue<long>());
            torch.set_rng_state(TensorConversions.ToTensor(opt, "rng"));
            hook?.Load(k => opt.Contains("hook." + k) ? TensorConversions.ToTensor(opt, "hook." + k) : null);
        }
        return new LoopState
        {
            Step = json["step"]!.GetValue<int>(), Epoch = json["epoch"]!.GetValue<int>(), BatchIndex = json["batch_index"]!.GetValue<int>(),
            Tokens = json["tokens"]!.GetValue<long>(), BestStep = json["best_step"]?.GetValue<int>(),
            BestScore = json["best_score"]?.GetValue<double>() ?? double.NegativeInfinity, WallSeconds = json["wall_s"]!.GetValue<double>(),
            Losses = json["losses"]!.AsArray().Select(x => x?.GetValue<double>() ?? double.NaN).ToList(),
        };
    }

    // --- result -----------------------------------------------------------------------------------

    /// <summary>The result of a finished run: diverged when <paramref name="divergence"/> says why, else completed.</summary>
    private static RunResult FinishResult(TrainConfig cfg, RunFiles files, PeftModel peft, AdamW optimizer, LoopState state, ScalarType dtype, double wallSeconds, IReadOnlyList<string> warnings,
        string? divergence, ScoreReport? test, ScoreReport? heldout)
    {
        var records = RunFiles.ReadMetrics(files.Metrics);
        var steps = records.Where(r => r["type"]?.GetValue<string>() == "step").ToArray();
        var evals = records.Where(r => r["type"]?.GetValue<string>() == "eval").ToArray();
        var losses = steps.Select(r => (r["step"]!.GetValue<int>(), r["loss"]?.GetValue<double>() ?? double.NaN)).ToArray();
        var spikes = LearningSignals.Spikes(losses, cfg.Stability.SpikeFactor);
        string curveKey = evals.Any(e => e["val_rougeL"] is not null) ? "val_rougeL" : "val_loss";
        var curve = evals.Where(e => e[curveKey] is not null)
            .Select(e => (e["step"]!.GetValue<int>(), e["tokens"]!.GetValue<long>(), curveKey == "val_loss" ? -e[curveKey]!.GetValue<double>() : e[curveKey]!.GetValue<double>())).ToArray();
        var speed = curveKey == "val_rougeL"
            ? LearningSpeed.From(LearningSignals.StepsToFraction(curve, LearningSpeed.Fractions),
                LearningSignals.AreaUnderCurve(curve.Select(c => (c.Item1, c.Item3)).ToArray(), Math.Max(1, state.Step)))
            : null;
        long ckptBytes = Directory.Exists(files.Best) ? Directory.GetFiles(files.Best, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) : 0;
        return new RunResult
        {
            Status = divergence is null ? RunStatus.Completed : RunStatus.Diverged,
            Reason = divergence,
            DivergedAtStep = divergence is null ? null : state.Step,
            Test = test,
            Heldout = heldout,
            Method = peft.Method.Kind,
            Steps = state.Step,
            Tokens = state.Tokens,
            BestStep = state.BestStep,
            BestMetric = cfg.Eval.EffectiveBestMetric,
            BestScore = double.IsFinite(state.BestScore) ? state.BestScore : null,
            FinalLoss = losses.Length > 0 ? Finite(losses[^1].Item2) : null,
            Spikes = new LossSpikes(spikes),
            LearningSpeed = speed,
            Cost = new RunCost
            {
                TrainableParams = peft.TrainableParameters,
                TotalParams = peft.TotalParameters,
                OptimizerStateBytes = optimizer.StateBytes,
                PeakRssMib = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024),
                WallSeconds = wallSeconds,
                TokensPerSecond = state.Tokens / Math.Max(1e-9, wallSeconds),
                CheckpointBytes = ckptBytes,
                Dtype = ComputeDtypes.Of(dtype),
            },
            Warnings = warnings.Take(50).ToArray(),
        };
    }
}
