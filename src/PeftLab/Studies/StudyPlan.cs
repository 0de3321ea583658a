using System.Globalization;
using System.Text.Json.Nodes;
using PeftLab.Peft;
using PeftLab.Training;

namespace PeftLab.Studies;

/// <summary>The axis names of a study spec.</summary>
public static class StudyAxisNames
{
    /// <summary>Method axis.</summary>
    public const string Method = "method";
    /// <summary>Learning-rate axis.</summary>
    public const string Lr = "lr";
    /// <summary>Base model axis.</summary>
    public const string Model = "model";
    /// <summary>Task count axis.</summary>
    public const string TaskCount = "task_count";
    /// <summary>Seed axis.</summary>
    public const string Seed = "seed";
    /// <summary>The key holding generic axes.</summary>
    public const string Overrides = "overrides";
    /// <summary>Method-axis value of the untuned-baseline trials (the base model evaluated with zero training steps).</summary>
    public const string Untuned = "untuned";

    /// <summary>Knob axis → (the method it applies to, the training key it sets): each registered method's capacity knob, in registry order.</summary>
    public static IReadOnlyDictionary<string, (string Method, string Key)> Knobs { get; } =
        PeftRegistry.CapacityKnobs.ToDictionary(k => k.Knob.Axis, k => (k.Method.Name, k.Knob.ConfigKey));

    /// <summary>The knob axis names (lora_r, adapter_size, ...), in registry order.</summary>
    public static IReadOnlyList<string> KnobAxes { get; } = PeftRegistry.CapacityKnobs.Select(k => k.Knob.Axis).ToArray();

    /// <summary>Typed axes in the order trials list them: the method, its knob, then the shared axes (generic axes follow in the order written).</summary>
    public static IReadOnlyList<string> Ordered { get; } = [Method, .. KnobAxes, Lr, Model, TaskCount, Seed];
}

/// <summary>One axis value of a trial (JSON scalar; null for <c>task_count</c> "all").</summary>
/// <param name="Name">Axis name (a typed axis, or a training key path for generic axes).</param>
/// <param name="Value">The value; never attached to a JSON parent (clone before adding).</param>
public sealed record AxisSetting(string Name, JsonNode? Value)
{
    /// <summary>Short text for tables ("all" for a null task count).</summary>
    public string Display => Value switch
    {
        null => Name == StudyAxisNames.TaskCount ? "all" : "null",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<double>(out var d) => d.ToString("G6", CultureInfo.InvariantCulture),
        _ => Value.ToJsonString(),
    };
}

/// <summary>A trial as listed in plan.json: its index, id and axis values.</summary>
public sealed record PlanEntry(int Index, string Id, IReadOnlyList<AxisSetting> Axes)
{
    /// <summary>The axes as a fresh JSON object (plan.json, trial.json).</summary>
    public JsonObject AxesJson()
    {
        var o = new JsonObject();
        foreach (var a in Axes) o[a.Name] = a.Value?.DeepClone();
        return o;
    }

    /// <summary>"method=lora lora_r=8 lr=0.0001".</summary>
    public string Describe() => string.Join(" ", Axes.Select(a => $"{a.Name}={a.Display}"));

    /// <summary>An axis value, or null when the trial has no such axis.</summary>
    public AxisSetting? Axis(string name) => Axes.FirstOrDefault(a => a.Name == name);
}

/// <summary>An expanded trial: its plan entry and resolved training config (whose output is the trial folder).</summary>
public sealed record Trial(PlanEntry Entry, TrainConfig Config)
{
    /// <summary>Index in the plan.</summary>
    public int Index => Entry.Index;
    /// <summary>Id (first 12 hex digits of the SHA-256 of the config YAML with output blanked).</summary>
    public string Id => Entry.Id;
}
