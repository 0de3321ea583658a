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
        var model = new CausalLM(config, device, dtype);
        using var source = CheckpointSource.OpenModel(dir);
        var aliases = config.TieWordEmbeddings ? new Dictionary<string, string> { ["lm_head.weight"] = "model.embed_tokens.weight" } : null;
        StrictLoader.Load(model, source, aliases);
        return model;
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
