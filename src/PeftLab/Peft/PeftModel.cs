using System.Text.Json;
using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Peft;

/// <summary>A base model with one fine-tuning method attached: counts, adapter files, merging.</summary>
public sealed class PeftModel
{
    /// <summary>adapter_config.json.</summary>
    public const string ConfigFile = "adapter_config.json";
    /// <summary>adapter_model.safetensors.</summary>
    public const string WeightsFile = "adapter_model.safetensors";

    private PeftModel(IPeftHost model, IPeftMethod method, PeftConfig config, IReadOnlyList<string> warnings)
    {
        Host = model;
        Method = method;
        Config = config;
        Warnings = warnings;
    }

    /// <summary>The (modified) model.</summary>
    public IPeftHost Host { get; }

    /// <summary>The (modified) model as a decoder-only LM.</summary>
    public CausalLM Model => Host as CausalLM ?? throw new InvalidOperationException($"the model is a {Host.GetType().Name}, not a decoder-only CausalLM");

    /// <summary>The (modified) model as a T5 encoder-decoder LM.</summary>
    public T5ForConditionalGeneration Seq2Seq => Host as T5ForConditionalGeneration
        ?? throw new InvalidOperationException($"the model is a {Host.GetType().Name}, not an encoder-decoder T5ForConditionalGeneration");
    /// <summary>The attached method.</summary>
    public IPeftMethod Method { get; }
    /// <summary>Its configuration.</summary>
    public PeftConfig Config { get; }
    /// <summary>Non-fatal notes from loading (e.g. unknown adapter_config.json keys that were ignored).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Freezes the model, attaches the method, and returns the wrapper. New parameters come from <paramref name="seed"/>.</summary>
    public static PeftModel Apply(IPeftHost model, PeftConfig config, long seed = 0, Func<string, int[]>? tokenize = null)
    {
        var method = PeftRegistry.Get(config.Kind);
        Injector.FreezeAll(model.Module);
        var generator = new Generator((ulong)seed, CPU);
        method.Attach(model, config, new AttachContext(generator, tokenize));
        return new PeftModel(model, method, config, []);
    }

    /// <summary>Trainable parameter count.</summary>
    public long TrainableParameters => Host.Module.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
    /// <summary>All parameters (a tied embedding counts once).</summary>
    public long TotalParameters => Host.Module.parameters().Sum(p => p.numel());

    /// <summary>Writes adapter_config.json and adapter_model.safetensors (float32) in the Python PEFT layout.</summary>
    public void SaveAdapter(string dir)
    {
        if (Method.TrainsWholeModel)
            throw new NotSupportedException($"{Method.Name}: the whole model trains, so there is no adapter: save the whole model as a checkpoint instead");
        using var scope = NewDisposeScope();
        WriteAdapterFolder(dir, Method.WriteAdapterConfig(Config, Host), Method.PeftType!, Host.TaskType, Method.AdapterState(Host, Config));
    }

    /// <summary>
    /// Writes an adapter folder in the Python PEFT layout: adapter_config.json (the method's fields plus PEFT's common
    /// ones, keys sorted) and adapter_model.safetensors (float32, keys sorted).
    /// </summary>
    public static void WriteAdapterFolder(string dir, JsonObject methodFields, string peftType, string taskType, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        Directory.CreateDirectory(dir);
        var json = (JsonObject)methodFields.DeepClone();
        json["base_model_name_or_path"] = null;
        json["inference_mode"] = true;
        json["peft_type"] = peftType;
        json["revision"] = null;
        json["task_type"] = taskType;
        var sorted = new JsonObject(json.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone())));
        File.WriteAllText(Path.Combine(dir, ConfigFile), sorted.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        using var scope = NewDisposeScope();
        var entries = tensors
            .OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => TensorConversions.FromTensor(kv.Key, kv.Value.detach().to_type(ScalarType.Float32)))
            .ToList();
        SafeTensorsWriter.Write(Path.Combine(dir, WeightsFile), entries);
    }

    /// <summary>Reads an adapter folder's config (PEFT's or PeftLab's format) without touching a model; a null <paramref name="expectedTaskType"/> accepts any task type.</summary>
    public static (IPeftMethod Method, PeftConfig Config, IReadOnlyList<string> Warnings) ReadAdapterConfig(string dir, string? expectedTaskType = "CAUSAL_LM")
    {
        var path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new PeftConfigException($"{dir}: no {ConfigFile} (expected a PEFT adapter folder)");
        JsonObject obj;
        try
        {
            obj = JsonNode.Parse(PeftLab.Data.Utf8Text.ReadAllText(path)) as JsonObject ?? throw new PeftConfigException($"{path}: must hold a JSON object");
        }
        catch (JsonException e)
        {
            throw new PeftConfigException($"{path}: malformed JSON: {e.Message}");
        }
        var j = new AdapterJson(obj, path);
        var peftType = j.String("peft_type") ?? throw new PeftConfigException($"{path}: missing 'peft_type'");
        var taskType = j.String("task_type");
        if (taskType is not null && expectedTaskType is not null && taskType != expectedTaskType)
            throw new PeftConfigException($"{path}: task_type '{taskType}' does not fit this model (expected {expectedTaskType})");
        var method = PeftRegistry.ForPeftType(peftType, path);
        var config = method.ReadAdapterConfig(j);
        if (PeftLab.Configuration.ConfigBinder.Problems(config) is { Count: > 0 } problems)
            throw new PeftConfigException($"{path}: {string.Join("; ", problems)} (PeftLab's name for the setting)");
        var warnings = j.UnreadKeys.Select(k => $"{path}: ignoring unknown key '{k}'").ToList();
        return (method, config, warnings);
    }

    /// <summary>Attaches the adapter saved in <paramref name="dir"/> to <paramref name="model"/> and loads its weights strictly.</summary>
    public static PeftModel LoadAdapter(IPeftHost model, string dir)
    {
        var (method, config, warnings) = ReadAdapterConfig(dir, model.TaskType);
        var peft = Apply(model, config);
        var file = Path.Combine(dir, WeightsFile);
        if (!File.Exists(file)) throw new PeftConfigException($"{dir}: no {WeightsFile}");
        using var source = CheckpointSource.OpenFile(file);
        method.LoadAdapterState(model, config, source);
        return new PeftModel(model, method, config, warnings);
    }

    /// <summary>Folds the method into the base weights (LoRA, DoRA, IA3) and removes its modules.</summary>
    public void Merge()
    {
        if (!Method.CanMerge) throw new NotSupportedException($"{Method.Kind} cannot be merged into the base weights");
        Method.Merge(Host, Config);
    }
}
