using PeftLab.Data.SuperNi;
using PeftLab.Evaluation;
using PeftLab.Runtime;
using PeftLab.Tokenization;

namespace PeftLab.Training;

/// <summary>Which split of a SuperNI-layout task folder <see cref="SplitEvaluation"/> generates on.</summary>
public enum EvalSplitName
{
    /// <summary>The unseen test tasks.</summary>
    Test,
    /// <summary>Held-out instances of the train tasks (the instances a run with the same seed did not train on).</summary>
    Seen,
    /// <summary>The validation tasks drawn from the train split.</summary>
    Validation,
}

/// <summary>What <c>peftlab eval</c> evaluates: a model (and adapter) on one split of a task folder.</summary>
public sealed record SplitEvalRequest
{
    /// <summary>Hugging Face model folder (decoder-only or T5).</summary>
    public required string Model { get; init; }
    /// <summary>PEFT adapter folder, or null for the model alone.</summary>
    public string? Adapter { get; init; }
    /// <summary>Compute dtype of the model (float32 or bfloat16).</summary>
    public TorchSharp.torch.ScalarType Dtype { get; init; } = TorchSharp.torch.ScalarType.Float32;
    /// <summary>The SuperNI-layout task folder.</summary>
    public required string Tasks { get; init; }
    /// <summary>The split.</summary>
    public EvalSplitName Split { get; init; } = EvalSplitName.Test;
    /// <summary>
    /// The data seed, as <c>train.seed</c>: it decides which train tasks are validation tasks and which of their
    /// instances are held out, so a run's "seen" split is only its own held-out instances under its own seed.
    /// </summary>
    public long Seed { get; init; } = new LoopSection().Seed;
    /// <summary>Validation tasks drawn from the train split (as <c>data.validation_tasks</c>).</summary>
    public int ValidationTasks { get; init; }
    /// <summary>Prompt format.</summary>
    public PromptFormat Format { get; init; } = PromptFormat.DefinitionOnly;
    /// <summary>
    /// The data settings of the run being evaluated (its resolved config's <c>data</c>), or null to build the split
    /// from <see cref="Tasks"/>, <see cref="ValidationTasks"/> and <see cref="Format"/> with the data defaults. Held-out
    /// instances depend on every data setting, so a run's "seen" split is reproduced only from its own.
    /// </summary>
    public DataSection? Data { get; init; }
    /// <summary>Most instances (spread over tasks), or null for all.</summary>
    public int? Limit { get; init; }
    /// <summary>Generation length.</summary>
    public int MaxNewTokens { get; init; } = 128;
    /// <summary>Prompts per generation batch.</summary>
    public int BatchSize { get; init; } = 16;
}

/// <summary>The evaluation pipeline of <c>peftlab eval</c>: load, build the split as training does, generate, score.</summary>
public static class SplitEvaluation
{
    /// <summary>Runs the request; <paramref name="progress"/> gets (done, total) instances, <paramref name="warn"/> adapter warnings.</summary>
    public static EvalRun Run(SplitEvalRequest request, Action<int, int>? progress = null, Action<string>? warn = null)
    {
        var lm = TrainableModels.Load(request.Model, request.Dtype, TorchRuntime.Device);   // decoder-only or T5
        if (request.Adapter is not null)
            foreach (var w in Peft.PeftModel.LoadAdapter(lm.Host, request.Adapter).Warnings) warn?.Invoke(w);
        lm.Host.Module.eval();
        using var tokenizer = HfTokenizer.Load(request.Model);
        var section = request.Data is { } d ? d with { Path = request.Tasks }
            : new DataSection { Path = request.Tasks, ValidationTasks = request.ValidationTasks, Format = request.Format };
        var data = TrainingData.Build(section, tokenizer, request.Seed);
        var split = (request.Split switch { EvalSplitName.Test => data.Test, EvalSplitName.Seen => data.HeldOut, _ => data.Validation })
            ?? throw new ArgumentException($"{request.Tasks}: the '{Name(request.Split)}' split is empty");
        split = split.Take(request.Limit);
        return GenerationEvaluator.Evaluate(lm.Generate, tokenizer, Name(request.Split), split.Examples, request.MaxNewTokens, request.BatchSize, progress);
    }

    /// <summary>The split's name in files and messages ("test", "seen", "validation").</summary>
    public static string Name(EvalSplitName split) => split.ToString().ToLowerInvariant();
}
