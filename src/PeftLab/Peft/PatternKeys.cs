using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PeftLab.Peft;

/// <summary>
/// PEFT's per-module <c>rank_pattern</c> / <c>alpha_pattern</c> (LoRA, LoHa, LoKr): how a key picks a module
/// (<c>get_pattern_key</c>), how the fields read from and write to adapter_config.json, and their validation.
/// </summary>
public static class PatternKeys
{
    /// <summary>
    /// The first key equal to the module name, else the first whose regex matches the name's end after a dot
    /// (<c>(.*\.)?(key)$</c>); null when none does.
    /// </summary>
    public static string? Find(IEnumerable<string> keys, string module)
    {
        var list = keys.ToArray();
        return list.FirstOrDefault(k => k == module)
            ?? list.FirstOrDefault(k => Regex.IsMatch(module, @"^(?:.*\.)?(?:" + k + ")$"));
    }

    /// <summary>The pattern's value for <paramref name="module"/>, or <paramref name="fallback"/> when no key picks it.</summary>
    public static T ValueFor<T>(IReadOnlyDictionary<string, T> pattern, string module, T fallback) =>
        Find(pattern.Keys, module) is { } key ? pattern[key] : fallback;

    /// <summary>Reads <c>rank_pattern</c>: module pattern → positive integer rank.</summary>
    public static IReadOnlyDictionary<string, int> ReadRanks(AdapterJson j) =>
        Read<int>(j, "rank_pattern", v => v.TryGetValue<int>(out var i) && i > 0 ? i : null, "a positive integer");

    /// <summary>Reads <c>alpha_pattern</c>: module pattern → positive α.</summary>
    public static IReadOnlyDictionary<string, double> ReadAlphas(AdapterJson j) =>
        Read<double>(j, "alpha_pattern", v => v.TryGetValue<double>(out var d) && d > 0 ? d : null, "a positive number");

    private static IReadOnlyDictionary<string, T> Read<T>(AdapterJson j, string key, Func<JsonValue, T?> read, string expected) where T : struct =>
        j.Node(key) switch
        {
            null => new Dictionary<string, T>(),
            JsonObject o => o.ToDictionary(kv => kv.Key, kv => kv.Value is JsonValue v && read(v) is T t ? t
                : throw new PeftConfigException($"{j.Source}: '{key}' entry '{kv.Key}' must be {expected} (got {kv.Value?.ToJsonString() ?? "null"})")),
            var n => throw new PeftConfigException($"{j.Source}: '{key}' must be an object of module pattern → value (got {n.ToJsonString()})"),
        };

    /// <summary>A pattern field as PEFT writes it (keys sorted).</summary>
    public static JsonObject Write<T>(IReadOnlyDictionary<string, T> pattern) =>
        new(pattern.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));

    /// <summary>Throws for a rank or α that is not positive (configs from YAML are not checked by <see cref="ReadRanks"/>).</summary>
    public static void Validate(string method, IReadOnlyDictionary<string, int> ranks, IReadOnlyDictionary<string, double> alphas)
    {
        if (ranks.FirstOrDefault(kv => kv.Value <= 0) is { Key: not null } badRank)
            throw new PeftConfigException($"{method} rank_pattern['{badRank.Key}'] must be > 0 (got {badRank.Value})");
        if (alphas.FirstOrDefault(kv => kv.Value <= 0) is { Key: not null } badAlpha)
            throw new PeftConfigException($"{method} alpha_pattern['{badAlpha.Key}'] must be > 0 (got {badAlpha.Value})");
    }
}
