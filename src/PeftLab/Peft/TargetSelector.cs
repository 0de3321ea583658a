using System.Text.RegularExpressions;
using System.Text.Json.Nodes;
using PeftLab.Models;

namespace PeftLab.Peft;

/// <summary>
/// Which modules a method targets, with the Python PEFT library's matching rules: a list matches a module
/// whose full name equals an entry or ends with "." + entry; a single regex must match the whole name;
/// <c>all-linear</c> matches every linear projection except the output head. <c>layers_to_transform</c>
/// restricts matches to the given block indices.
/// </summary>
public sealed record TargetSelector
{
    /// <summary>Names or name suffixes (list form).</summary>
    public IReadOnlyList<string> Names { get; init; } = [];
    /// <summary>A regular expression matched against the whole module name (string form), or null.</summary>
    public string? Regex { get; init; }
    /// <summary>Every linear layer except lm_head.</summary>
    public bool AllLinear { get; init; }
    /// <summary>Only these block indices (null = all).</summary>
    public IReadOnlyList<int>? Layers { get; init; }
    /// <summary>
    /// Names of the module lists whose index <see cref="Layers"/> counts (PEFT's <c>layers_pattern</c>, e.g. layers or
    /// block); null: any of the model's block lists (layers, block, h).
    /// </summary>
    public IReadOnlyList<string>? LayersPattern { get; init; }
    /// <summary>Modules never targeted although they match (PEFT's <c>exclude_modules</c> list form: equal or suffix match).</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];
    /// <summary>A regular expression: modules whose whole name matches are never targeted (PEFT's <c>exclude_modules</c> string form).</summary>
    public string? ExcludeRegex { get; init; }
    /// <summary>
    /// An empty selector (no names, no regex, not all-linear) defers to the model: the method's default targets for the
    /// model's <see cref="ModelLayout"/> (see <see cref="LayoutDefaults"/>), as PEFT maps target_modules = None per
    /// model_type. Methods call <see cref="Resolve"/> before matching; adapter files always hold resolved names.
    /// </summary>
    public bool UseModelDefaults => Names.Count == 0 && Regex is null && !AllLinear;

    /// <summary>The model's default targets for the method (see <see cref="UseModelDefaults"/>).</summary>
    public static TargetSelector ModelDefaults { get; } = new();

    /// <summary>This selector, or, when it defers to the model, the model's <paramref name="defaults"/> (keeping <see cref="Layers"/>).</summary>
    public TargetSelector Resolve(IReadOnlyList<string> defaults) =>
        UseModelDefaults ? this with { Names = defaults } : this;

    /// <summary>From the PEFT JSON forms: a list, a regex string, or "all-linear"; absent (null) means the model's defaults.</summary>
    /// <exception cref="PeftConfigException">An empty list (it would select nothing); <paramref name="source"/> names the file.</exception>
    public static TargetSelector FromPeft(IReadOnlyList<string>? list, bool wasString, IReadOnlyList<int>? layers, string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (list is null) return ModelDefaults with { Layers = layers };
        if (list.Count == 0 && !wasString)
            throw new PeftConfigException($"{source}: 'target_modules' is an empty list, which selects no modules (leave it out for the model's defaults)");
        if (wasString && list.Count == 1)
            return list[0] == "all-linear" ? new TargetSelector { AllLinear = true, Layers = layers } : new TargetSelector { Regex = list[0], Layers = layers };
        return new TargetSelector { Names = list, Layers = layers };
    }

    /// <summary>
    /// The selector of an adapter_config.json: <c>target_modules</c>, <c>exclude_modules</c>, <c>layers_to_transform</c>
    /// and <c>layers_pattern</c>, each in PEFT's forms (a list or a single full-match regex string).
    /// </summary>
    public static TargetSelector ReadPeft(AdapterJson j)
    {
        var targetsNode = j.Node("target_modules");
        var excludeNode = j.Node("exclude_modules");
        var exclude = j.StringList("exclude_modules");
        var pattern = j.StringList("layers_pattern");
        var layers = j.IntList("layers_to_transform");
        if (pattern is { Count: > 0 } && layers is null)
            throw new PeftConfigException($"{j.Source}: 'layers_pattern' is set without 'layers_to_transform' (PEFT uses the pattern only to find the layer index)");
        var selector = FromPeft(j.StringList("target_modules"), targetsNode is JsonValue, layers, j.Source) with
        {
            LayersPattern = pattern is { Count: > 0 } ? pattern : null,
        };
        return excludeNode is JsonValue && exclude is { Count: 1 }
            ? selector with { ExcludeRegex = exclude[0] }
            : selector with { Exclude = exclude ?? [] };
    }

    /// <summary>Writes <see cref="ReadPeft"/>'s four fields into an adapter_config.json object (call on a resolved selector).</summary>
    public void WritePeft(JsonObject json)
    {
        json["target_modules"] = ToPeftJson();
        json["exclude_modules"] = ExcludeRegex is not null ? ExcludeRegex
            : Exclude.Count == 0 ? null : new JsonArray(Exclude.OrderBy(n => n, StringComparer.Ordinal).Select(n => (JsonNode)n).ToArray());
        json["layers_to_transform"] = Layers is null ? null : new JsonArray(Layers.Select(x => (JsonNode)x).ToArray());
        json["layers_pattern"] = LayersPattern is null ? null : LayersPattern.Count == 1 ? LayersPattern[0] : new JsonArray(LayersPattern.Select(x => (JsonNode)x).ToArray());
    }

    private static readonly Regex LayerIndex = new(@"(?:^|\.)(?:layers|block|h)\.(\d+)\.", RegexOptions.Compiled);

    /// <summary>Block index of a module name, or null when it is outside the blocks.</summary>
    public static int? LayerOf(string name) => LayerOf(name, null);

    /// <summary>Block index of a module name within the module lists called <paramref name="patterns"/> (null: layers, block, h).</summary>
    public static int? LayerOf(string name, IReadOnlyList<string>? patterns)
    {
        var m = patterns is null ? LayerIndex.Match(name)
            : System.Text.RegularExpressions.Regex.Match(name, @"(?:^|\.)(?:" + string.Join("|", patterns.Select(System.Text.RegularExpressions.Regex.Escape)) + @")\.(\d+)\.");
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Does the module called <paramref name="name"/> (a linear layer when <paramref name="isLinear"/>) match?</summary>
    public bool Matches(string name, bool isLinear)
    {
        if (UseModelDefaults) throw new InvalidOperationException("resolve the model's default targets (TargetSelector.Resolve) before matching");
        bool hit = AllLinear ? isLinear && !name.EndsWith("lm_head", StringComparison.Ordinal)
            : Regex is not null ? System.Text.RegularExpressions.Regex.IsMatch(name, "^(?:" + Regex + ")$")
            : MatchesAny(name, Names);
        if (!hit || IsExcluded(name)) return false;
        if (Layers is null) return true;
        return LayerOf(name, LayersPattern) is int layer && Layers.Contains(layer);
    }

    /// <summary>Is the module excluded by <see cref="Exclude"/> or <see cref="ExcludeRegex"/>?</summary>
    public bool IsExcluded(string name) =>
        MatchesAny(name, Exclude) || (ExcludeRegex is not null && System.Text.RegularExpressions.Regex.IsMatch(name, "^(?:" + ExcludeRegex + ")$"));

    /// <summary>Does the full module name match one of <paramref name="names"/> (equal, or ending with "." + entry)?</summary>
    public static bool MatchesAny(string moduleName, IReadOnlyList<string> names) =>
        names.Any(n => moduleName == n || moduleName.EndsWith("." + n, StringComparison.Ordinal));

    /// <summary>The PEFT JSON form.</summary>
    public System.Text.Json.Nodes.JsonNode ToPeftJson() => UseModelDefaults
        ? throw new InvalidOperationException("resolve the model's default targets (TargetSelector.Resolve) before writing them")
        : AllLinear ? "all-linear"
        : Regex is not null ? Regex
        : new System.Text.Json.Nodes.JsonArray(Names.OrderBy(n => n, StringComparer.Ordinal).Select(n => (System.Text.Json.Nodes.JsonNode)n).ToArray());

    /// <summary>Human-readable description for error messages.</summary>
    public override string ToString() =>
        (UseModelDefaults ? "the model's default targets" : AllLinear ? "all-linear" : Regex is not null ? $"regex '{Regex}'" : $"[{string.Join(", ", Names)}]")
        + (Exclude.Count > 0 ? $" excluding [{string.Join(", ", Exclude)}]" : "") + (ExcludeRegex is not null ? $" excluding regex '{ExcludeRegex}'" : "")
        + (Layers is not null ? $" in layers [{string.Join(", ", Layers)}]" : "");
}

/// <summary>
/// Lookup of a method's default modules per model layout (the Python PEFT library's per-<c>model_type</c> mappings
/// where it has them). Each method keeps its table in its own folder; entries are names or dotted name suffixes
/// matched against full module names (<c>x</c> matches <c>a.b.x</c>).
/// </summary>
public static class LayoutDefaults
{
    /// <summary>The entry of <paramref name="model"/>'s layout in a method's table.</summary>
    /// <exception cref="PeftConfigException">The method has no defaults for that layout.</exception>
    public static T For<T>(this IReadOnlyDictionary<ModelLayout, T> table, IPeftHost model, string method) =>
        table.TryGetValue(model.Layout, out var defaults) ? defaults
            : throw new PeftConfigException($"{method} has no default modules for {model.Layout}-layout models; name its targets in the config");
}
