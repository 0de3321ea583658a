namespace PeftLab.Configuration;

/// <summary>
/// Immutable edits of a config tree by dotted key path: one implementation for command-line overrides
/// (<see cref="ConfigOverrides"/>) and for the settings a study writes into each trial's config.
/// </summary>
public static class ConfigTree
{
    /// <summary>
    /// Sets a dotted key path. Missing mappings on the way are created (a null section counts as an empty mapping);
    /// a numeric segment indexes a list, one past its end appends. Created keys are placed at
    /// <paramref name="created"/> (default: the value's own position); existing keys keep theirs.
    /// </summary>
    /// <exception cref="ConfigException">A segment runs into a scalar, or a list index is out of range.</exception>
    public static ConfigNode Set(ConfigNode root, string path, ConfigNode value, SourcePosition? created = null) =>
        Set(root, path.Split('.'), 0, value, created ?? value.Position);

    /// <summary><see cref="Set(ConfigNode, string, ConfigNode, SourcePosition?)"/> with the path already split.</summary>
    public static ConfigNode Set(ConfigNode root, IReadOnlyList<string> path, ConfigNode value, SourcePosition created) =>
        Set(root, path, 0, value, created);

    private static ConfigNode Set(ConfigNode node, IReadOnlyList<string> path, int i, ConfigNode value, SourcePosition created)
    {
        if (i == path.Count) return value;
        string seg = path[i];
        string prefix = string.Join('.', path.Take(i));
        string where = i == 0 ? "the root" : $"'{prefix}'";
        switch (node)
        {
            case ConfigMapping m:
                var child = m[seg] ?? new ConfigMapping([], created);
                return m.With(seg, Set(child, path, i + 1, value, created), created);
            case ConfigSequence s:
                if (!int.TryParse(seg, out int idx) || idx < 0 || idx > s.Items.Count)
                    throw Fail(prefix, $"{where} is a list of {s.Items.Count} items; '{seg}' is not an index from 0 to {s.Items.Count}", created);
                var items = s.Items.ToList();
                if (idx == items.Count) items.Add(Set(new ConfigMapping([], created), path, i + 1, value, created));
                else items[idx] = Set(items[idx], path, i + 1, value, created);
                return new ConfigSequence(items, s.Position);
            case ConfigScalar { IsNull: true }:
                // `section:` left empty in YAML (or set to null) acts as an empty mapping.
                return Set(new ConfigMapping([], created), path, i, value, created);
            default:
                throw Fail(prefix, $"{where} is the scalar {node.Describe()} ({node.Position.Brief}), not a mapping or list", created);
        }
    }

    /// <summary>Deep merge: mappings merge key by key, anything else in <paramref name="over"/> replaces.</summary>
    public static ConfigMapping Merge(ConfigMapping under, ConfigMapping over)
    {
        var result = under;
        foreach (var e in over.Entries)
            result = result.With(e.Key, result[e.Key] is ConfigMapping a && e.Value is ConfigMapping b ? Merge(a, b) : e.Value, e.KeyPosition);
        return result;
    }

    /// <summary>A copy without <paramref name="key"/>.</summary>
    public static ConfigMapping Without(ConfigMapping m, string key) => new(m.Entries.Where(e => e.Key != key).ToArray(), m.Position);

    private static ConfigException Fail(string path, string message, SourcePosition at) => new([new ConfigError(path, message, at)]);
}
