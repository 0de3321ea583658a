using System.Text.Json;
using PeftLab.Checkpoints;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>Loading and saving T5 models in the Hugging Face folder layout (config.json + safetensors).</summary>
public static class HfT5
{
    /// <summary>
    /// Builds the model from config.json and loads its weights strictly, converted to <paramref name="dtype"/>.
    /// The tied copies <c>encoder.embed_tokens.weight</c> / <c>decoder.embed_tokens.weight</c> (and <c>lm_head.weight</c>
    /// of a tied model) may be present or absent; when present they must equal <c>shared.weight</c>.
    /// </summary>
    public static T5ForConditionalGeneration Load(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        device = HfModel.CheckLoad(dir, dtype, device);
        var config = T5Config.Load(dir);
        using var source = CheckpointSource.OpenModel(dir);
        HfModel.CheckSizeBeforeBuilding(config.ParameterCount, source, dtype, Path.Combine(dir, "config.json"));
        var model = new T5ForConditionalGeneration(config, device, dtype);
        StrictLoader.Load(model, source, model.TiedKeys);
        return model;
    }

    /// <summary>
    /// Writes config.json and the weights (sharded above <paramref name="maxShardBytes"/>), storing <c>shared.weight</c>
    /// once as save_pretrained does. The model must hold no PEFT modules (merge first).
    /// </summary>
    public static void Save(T5ForConditionalGeneration model, string dir, long maxShardBytes = 5L << 30, ScalarType? saveDtype = null)
        => ModelFolder.WriteCheckpoint(model, model.Config.ToHfJson(), dir, maxShardBytes, saveDtype);
}
