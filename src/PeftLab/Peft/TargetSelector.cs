using System.Text.RegularExpressions;

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

    /// <summary>From the PEFT JSON forms: a list, a regex string, or "all-linear".</summary>
    public static TargetSelector FromPeft(IReadOnlyList<string>? list, bool wasString, IReadOnlyList<int>? layers)
    {
        if (list is null) return new TargetSelector { Layers = layers };
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
        bool hit = AllLinear ? isLinear && !name.EndsWith("lm_head", StringComparison.Ordinal)
            : Regex is not null ? System.Text.RegularExpressions.Regex.IsMatch(name, "^(?:" + Regex + ")$")
            : Names.Any(t => name == t || name.EndsWith("." + t, StringComparison.Ordinal));
        if (!hit) return false;
        if (Layers is null) return true;
        return LayerOf(name) is int layer && Layers.Contains(layer);
    }

    /// <summary>The PEFT JSON form.</summary>
    public System.Text.Json.Nodes.JsonNode ToPeftJson() => AllLinear ? "all-linear"
        : Regex is not null ? Regex
        : new System.Text.Json.Nodes.JsonArray(Names.OrderBy(n => n, StringComparer.Ordinal).Select(n => (System.Text.Json.Nodes.JsonNode)n).ToArray());

    /// <summary>Human-readable description for error messages.</summary>
    public override string ToString() => AllLinear ? "all-linear" : Regex is not null ? $"regex '{Regex}'" : $"[{string.Join(", ", Names)}]";
}
