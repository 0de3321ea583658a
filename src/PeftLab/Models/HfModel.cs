using System.Text.Json;
using PeftLab.Checkpoints;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>Loading and saving decoder-only models in the Hugging Face folder layout (config.json + safetensors).</summary>
public static class HfModel
{
    /// <summary>Builds the model from config.json and loads its weights strictly, converted to <paramref name="dtype"/>.</summary>
    public static CausalLM Load(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        device = CheckLoad(dir, dtype, device);
        var config = DecoderConfig.Load(dir);
        using var source = CheckpointSource.OpenModel(dir);
        CheckSizeBeforeBuilding(config.ParameterCount, source, dtype, Path.Combine(dir, "config.json"));
        var model = new CausalLM(config, device, dtype);
        var aliases = config.TieWordEmbeddings ? new Dictionary<string, string> { ["lm_head.weight"] = "model.embed_tokens.weight" } : null;
        StrictLoader.Load(model, source, aliases);
        return model;
    }

    /// <summary>
    /// Before a model is built from its config: the parameters the config describes must be those the checkpoint
    /// holds (its header alone tells), and they must fit in memory, so a wrong or absurd config.json is an error that
    /// names both sides instead of gigabytes allocated (or an abort) before the strict loader could say so.
    /// </summary>
    internal static void CheckSizeBeforeBuilding(double configParameters, ITensorSource source, ScalarType dtype, string configPath)
    {
        double stored = source.Names.Sum(n => source.Shape(n).Aggregate(1.0, (a, d) => a * d));
        // A model close to the checkpoint's size is cheap to build, and the strict loader then names each missing or
        // misshapen tensor; one far larger (here: over twice the values stored, plus 1 Mi) is refused before it exists.
        if (configParameters > 2 * stored + (1 << 20))
            throw new CheckpointMismatchException(
                $"{configPath} describes a model of {configParameters:N0} parameters, but {source.Description} holds {stored:N0} values; " +
                "the config does not belong to these weights (compare hidden_size, intermediate_size, num_hidden_layers, vocab_size)");
        Runtime.MemoryBudget.EnsureFits(configParameters * (dtype == ScalarType.BFloat16 ? 2 : 4), $"the model of {configPath} ({configParameters:N0} parameters)");
    }

    /// <summary>Checks shared by every model family's loader; returns the device to load onto.</summary>
    internal static Device CheckLoad(string dir, ScalarType dtype, Device? device)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model folder not found: {dir}");
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new ArgumentException($"compute dtype must be float32 or bfloat16 (got {dtype})");
        return device ?? Runtime.TorchRuntime.Device;
    }

    /// <summary>
    /// Writes config.json and the weights (sharded above <paramref name="maxShardBytes"/>). The model must hold no
    /// PEFT modules (merge first).
    /// </summary>
    public static void Save(CausalLM model, string dir, long maxShardBytes = 5L << 30, ScalarType? saveDtype = null)
        => ModelFolder.WriteCheckpoint(model, Presets.ToHfJson(model.Config), dir, maxShardBytes, saveDtype);
}
