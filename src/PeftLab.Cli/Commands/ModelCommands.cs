using PeftLab.Configuration;
using System.ComponentModel;
using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Runtime;
using PeftLab.Training;
using Spectre.Console.Cli;
using static TorchSharp.torch;

namespace PeftLab.Cli.Commands;

/// <summary>Options for commands that load a model and optionally an adapter.</summary>
public class ModelSettings : CommonSettings
{
    /// <summary>Model folder (config.json + safetensors).</summary>
    [CommandOption("--model <DIR>")]
    [Description("Hugging Face model folder (config.json, model.safetensors or sharded index)")]
    public string? Model { get; init; }

    /// <summary>Adapter folder.</summary>
    [CommandOption("--adapter <DIR>")]
    [Description("PEFT adapter folder (adapter_config.json + adapter_model.safetensors)")]
    public string? Adapter { get; init; }

    /// <summary>Compute dtype.</summary>
    [CommandOption("--dtype <DTYPE>")]
    [Description("Compute dtype: float32 (default), bfloat16, or auto (this host's faster one, as peftlab doctor reports)")]
    public string DType { get; init; } = "float32";

    /// <inheritdoc/>
    public override Spectre.Console.ValidationResult Validate() =>
        string.IsNullOrEmpty(Model) ? Spectre.Console.ValidationResult.Error("--model DIR is required") : base.Validate();

    /// <summary>Parsed compute dtype.</summary>
    public ScalarType ComputeDType => ParseDType(DType);

    /// <summary>
    /// The compute dtype called <paramref name="name"/> on the command line: a <see cref="ComputeDtype"/> as configs
    /// spell it (<c>auto</c> resolved to this host's faster one), or the short forms fp32 / f32 / bf16.
    /// </summary>
    public static ScalarType ParseDType(string name) => ComputeDtypes.Resolve(ConfigEnums.Parse<ComputeDtype>(name.ToLowerInvariant() switch
    {
        "fp32" or "f32" => "float32",
        "bf16" => "bfloat16",
        var n => n,
    }, "--dtype"));

    /// <summary>Loads the model of any family (and the adapter), printing adapter warnings to stderr.</summary>
    public ITrainableModel LoadModel(ScalarType? dtype = null)
    {
        ApplyRuntime();
        var model = TrainableModels.Load(Model!, dtype ?? ComputeDType, TorchRuntime.Device);
        if (Adapter is not null)
        {
            var peft = PeftModel.LoadAdapter(model.Host, Adapter);
            foreach (var w in peft.Warnings) Console.Error.WriteLine($"warning: {w}");
        }
        model.Host.Module.eval();
        return model;
    }
}

/// <summary>Settings of <c>peftlab logits</c>.</summary>
public sealed class LogitsSettings : ModelSettings
{
    /// <summary>Input safetensors with input_ids.</summary>
    [CommandOption("--input <FILE>")]
    [Description("safetensors file holding I64 input_ids [[batch, T]]")]
    public string? Input { get; init; }

    /// <summary>Output safetensors.</summary>
    [CommandOption("--out <FILE>")]
    [Description("safetensors file to write F32 logits [[batch, T, vocab]] to")]
    public string? Out { get; init; }

    /// <inheritdoc/>
    public override Spectre.Console.ValidationResult Validate() =>
        Input is null ? Spectre.Console.ValidationResult.Error("--input FILE is required")
        : Out is null ? Spectre.Console.ValidationResult.Error("--out FILE is required")
        : base.Validate();
}

/// <summary><c>peftlab logits</c>: float32 logits of input_ids from a safetensors file.</summary>
public sealed class LogitsCommand : Command<LogitsSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, LogitsSettings s, CancellationToken cancellationToken)
    {
        var model = s.LoadModel(ScalarType.Float32);
        using var scope = NewDisposeScope();
        using var input = SafeTensorsFile.Open(s.Input!);
        SafeTensorsWriter.Write(s.Out!, [TensorConversions.FromTensor("logits", model.Logits(input, s.Input!))]);
        return 0;
    }
}

/// <summary>Settings of <c>peftlab generate</c>.</summary>
public sealed class GenerateSettings : ModelSettings
{
    /// <summary>Prompt ids.</summary>
    [CommandOption("--input-ids <IDS>")]
    [Description("Prompt token ids, space-separated")]
    public string? InputIds { get; init; }

    /// <summary>Prompt text.</summary>
    [CommandOption("--prompt <TEXT>")]
    [Description("Prompt text (needs tokenizer.json in the model folder)")]
    public string? Prompt { get; init; }

    /// <summary>Generation length.</summary>
    [CommandOption("--max-new-tokens <N>")]
    [Description("Maximum tokens to generate (default 128)")]
    [ConfigRange(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Greedy decoding.</summary>
    [CommandOption("--greedy")]
    [Description("Greedy decoding (default unless --temperature/--top-k/--top-p is given)")]
    public bool Greedy { get; init; }

    /// <summary>Sampling temperature.</summary>
    [CommandOption("--temperature <T>")]
    [Description("Sampling temperature (> 0); turns on sampling")]
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double? Temperature { get; init; }

    /// <summary>Top-k.</summary>
    [CommandOption("--top-k <K>")]
    [Description("Sample among the K most likely tokens (0: all); turns on sampling")]
    [ConfigRange(0, int.MaxValue)]
    public int? TopK { get; init; }

    /// <summary>Top-p.</summary>
    [CommandOption("--top-p <P>")]
    [Description("Nucleus sampling: the smallest set of tokens with probability ≥ P; turns on sampling")]
    [ConfigRange(0, 1, MinExclusive = true)]
    public double? TopP { get; init; }

    /// <summary>Sampling seed.</summary>
    [CommandOption("--seed <N>")]
    [Description("Sampling seed (same seed, same text)")]
    [ConfigRange(long.MinValue, long.MaxValue)]
    public long? Seed { get; init; }

    /// <summary>ids or text.</summary>
    [CommandOption("--output-format <FORMAT>")]
    [Description("ids: print generated ids only; text (default): decoded text")]
    [Choices("ids", "text")]
    public string OutputFormat { get; init; } = "text";

    /// <inheritdoc/>
    public override Spectre.Console.ValidationResult Validate() =>
        (InputIds is null) == (Prompt is null) ? Spectre.Console.ValidationResult.Error("give exactly one of --input-ids or --prompt")
        : base.Validate();
}

/// <summary><c>peftlab generate</c>.</summary>
public sealed class GenerateCommand : Command<GenerateSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, GenerateSettings s, CancellationToken cancellationToken)
    {
        var model = s.LoadModel();   // decoder-only: continues the prompt; T5: the prompt is the encoder input
        using var tokenizer = s.Prompt is not null || s.OutputFormat == "text" ? Tokenization.HfTokenizer.Load(s.Model!) : null;
        int[] prompt = s.InputIds is not null ? TokenIds.Parse(s.InputIds, "--input-ids") : tokenizer!.Encode(s.Prompt!, addSpecialTokens: true);
        bool sample = !s.Greedy && (s.Temperature is not null || s.TopK is not null || s.TopP is not null);
        var cfg = new SamplingConfig(s.MaxNewTokens, !sample, s.Temperature ?? 1.0, s.TopK ?? 0, s.TopP ?? 1.0, s.Seed);
        var eos = tokenizer is { EosIds.Count: > 0 } ? tokenizer.EosIds.ToArray() : model.ConfigEosIds.ToArray();
        int pad = tokenizer?.PadId ?? model.ConfigPadId;
        var output = model.Generate([prompt], cfg, eos, pad)[0];
        Console.WriteLine(s.OutputFormat == "ids" ? string.Join(' ', output) : tokenizer!.Decode(output));
        return 0;
    }
}
