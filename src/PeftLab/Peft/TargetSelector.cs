using System.Text.RegularExpressions;
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
        if (list is null) return ModelDefaults with { Layers = layers };
        if (list.Count == 0 && !wasString)
            throw new PeftConfigException($"{source}: 'target_modules' is an empty list, which selects no modules (leave it out for the model's defaults)");
        if (wasString && list.Count == 1)
            return list[0] == "all-linear" ? new TargetSelector { AllLinear = true, Layers = layers } : new TargetSelector { Regex = list[0], Layers = layers };
        return new TargetSelector { Names = list, Layers = layers };
    }

    private static readonly Regex LayerIndex = new(@"(?:^|\.)(?:layers|block|h)\.(\d+)\.", RegexOptions.Compiled);

    /// <summary>Block index of a module name, or null when it is outside the blocks.</summary>
    public static int? LayerOf(string name)
    {
        var m = LayerIndex.Match(name);
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Does the module called <paramref name="name"/> (a linear layer when <paramref name="isLinear"/>) match?</summary>
    public bool Matches(string name, bool isLinear)
    {
        if (UseModelDefaults) throw new InvalidOperationException("resolve the model's default targets (TargetSelector.Resolve) before matching");
        bool hit = AllLinear ? isLinear && !name.EndsWith("lm_head", StringComparison.Ordinal)
            : Regex is not null ? System.Text.RegularExpressions.Regex.IsMatch(name, "^(?:" + Regex + ")$")
            : MatchesAny(name, Names);
        if (!hit) return false;
        if (Layers is null) return true;
        return LayerOf(name) is int layer && Layers.Contains(layer);
    }

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
    public override string ToString() => UseModelDefaults ? "the model's default targets" : AllLinear ? "all-linear" : Regex is not null ? $"regex '{Regex}'" : $"[{string.Join(", ", Names)}]";
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
