using System.Text.Json.Nodes;
using PeftLab.Configuration;

namespace PeftLab.Peft;

/// <summary>The fine-tuning methods PeftLab compares.</summary>
public enum PeftMethodKind
{
    /// <summary>Full finetuning: every parameter trains.</summary>
    Full,
    /// <summary>Low-rank adaptation (LoRA, rsLoRA, DoRA, PiSSA init).</summary>
    Lora,
    /// <summary>Bottleneck (Houlsby) adapters, serial or parallel.</summary>
    Adapter,
    /// <summary>Learned key/value prefixes per layer.</summary>
    PrefixTuning,
    /// <summary>Learned soft prompt prepended to the input embeddings.</summary>
    PromptTuning,
    /// <summary>(IA)3 learned scaling vectors.</summary>
    IA3,
    /// <summary>Biases only (zero-initialised biases added where the model has none).</summary>
    BitFit,
    /// <summary>LN tuning: the gains of the normalisation layers train.</summary>
    LnTuning,
    /// <summary>LoHa: a Hadamard product of two low-rank products as the weight update.</summary>
    LoHa,
    /// <summary>LoKr: a Kronecker product of two small (optionally low-rank) factors as the weight update.</summary>
    LoKr,
    /// <summary>AdaLoRA: LoRA in SVD form whose ranks are pruned to a budget during training.</summary>
    AdaLora,
    /// <summary>VeRA: frozen random projections shared by all layers, scaled by two learned vectors per layer.</summary>
    Vera,
    /// <summary>OFT: a learned block-diagonal orthogonal rotation (Cayley parametrisation) of each layer's input.</summary>
    Oft,
}

/// <summary>Base of every method's configuration record; the concrete record carries the method's knobs.</summary>
public abstract record PeftConfig
{
    /// <summary>The method this config belongs to.</summary>
    public abstract PeftMethodKind Kind { get; }
}

/// <summary>A PEFT config or adapter file PeftLab cannot use; the message names the file and the option.</summary>
public sealed class PeftConfigException(string message) : Exception(message);

/// <summary>Typed reading of adapter_config.json with errors naming the key and the file.</summary>
public sealed class AdapterJson(JsonObject obj, string source)
{
    /// <summary>The file this JSON came from.</summary>
    public string Source => source;

    private readonly HashSet<string> read = ["peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping", "peft_version"];

    /// <summary>Raw node (marks the key as understood).</summary>
    public JsonNode? Node(string key)
    {
        read.Add(key);
        return obj.TryGetPropertyValue(key, out var v) ? v : null;
    }

    /// <summary>Marks keys PeftLab knows and deliberately ignores (they do not change the computation).</summary>
    public void Known(params string[] keys)
    {
        foreach (var k in keys) read.Add(k);
    }

    /// <summary>Keys present in the file that no reader asked for.</summary>
    public IEnumerable<string> UnreadKeys => obj.Select(kv => kv.Key).Where(k => !read.Contains(k));

    private Exception Bad(string key, string expected, JsonNode? n) => new PeftConfigException($"{source}: '{key}' must be {expected} (got {n?.ToJsonString() ?? "null"})");

    /// <summary>Integer or default.</summary>
    public int Int(string key, int fallback) => Node(key) switch
    {
        null => fallback,
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        var n => throw Bad(key, "an integer", n),
    };

    /// <summary>Number or default.</summary>
    public double Double(string key, double fallback) => Node(key) switch
    {
        null => fallback,
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        var n => throw Bad(key, "a number", n),
    };

    /// <summary>Boolean or default.</summary>
    public bool Bool(string key, bool fallback) => Node(key) switch
    {
        null => fallback,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var n => throw Bad(key, "true or false", n),
    };

    /// <summary>String or default.</summary>
    public string? String(string key, string? fallback = null) => Node(key) switch
    {
        null => fallback,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var n => throw Bad(key, "a string", n),
    };

    /// <summary>
    /// An enum member written as its exact config spelling (snake_case, which is PEFT's for the method options PeftLab
    /// models as enums, e.g. <c>"vera_only"</c>), or the default; any other value is an error listing the spellings.
    /// </summary>
    public T Choice<T>(string key, T fallback) where T : struct, Enum
    {
        var s = String(key);
        if (s is null) return fallback;
        foreach (var value in Enum.GetValues<T>())
            if (ConfigEnums.Name(value) == s) return value;
        throw new PeftConfigException($"{source}: '{key}' '{s}' is not supported; supported: {string.Join(", ", Enum.GetValues<T>().Select(v => ConfigEnums.Name(v)))}");
    }

    /// <summary>List of strings, a single string (returned as one item), or null.</summary>
    public IReadOnlyList<string>? StringList(string key) => Node(key) switch
    {
        null => null,
        JsonArray a => a.Select(x => x is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Bad(key, "a list of strings", a)).ToArray(),
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        var n => throw Bad(key, "a string or a list of strings", n),
    };

    /// <summary>List of integers, a single integer, or null.</summary>
    public IReadOnlyList<int>? IntList(string key) => Node(key) switch
    {
        null => null,
        JsonArray a => a.Select(x => x is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw Bad(key, "a list of integers", a)).ToArray(),
        JsonValue v when v.TryGetValue<int>(out var i) => [i],
        var n => throw Bad(key, "an integer or a list of integers", n),
    };

    /// <summary>Fails when an option PeftLab does not implement is set to something other than its neutral value.</summary>
    public void RequireNeutral(string key, Func<JsonNode?, bool> isNeutral, string why)
    {
        var n = Node(key);
        if (!isNeutral(n))
            throw new PeftConfigException($"{source}: option '{key}' = {n?.ToJsonString()} is not supported by PeftLab ({why})");
    }

    /// <summary>True for null, false, empty objects/arrays.</summary>
    public static bool IsEmpty(JsonNode? n) => n switch
    {
        null => true,
        JsonObject o => o.Count == 0,
        JsonArray a => a.Count == 0,
        JsonValue v when v.TryGetValue<bool>(out var b) => !b,
        _ => false,
    };
}
