namespace PeftLab.Configuration;

/// <summary>Applies command-line <c>a.b.c=value</c> overrides to a config tree.</summary>
public static class ConfigOverrides
{
    /// <summary>
    /// Returns <paramref name="root"/> with each override applied in order. The key is a dotted path; a numeric
    /// segment indexes a list (the index one past the end appends). Missing mappings on the path are created.
    /// The value is a YAML flow node when it starts with <c>[</c>, <c>{</c> or a quote (<c>x=[1,2]</c>,
    /// <c>x={a: 1}</c>, <c>x="8"</c>), otherwise the plain text as written (so <c>prompt=Answer: yes</c> stays
    /// a string); <c>null</c>, <c>~</c> and an empty value are null. Keys are not checked here: the binder
    /// reports unknown keys "(from command line)".
    /// </summary>
    /// <exception cref="ConfigException">Every malformed override (no '=', empty segment, bad index, invalid YAML value).</exception>
    public static ConfigNode Apply(ConfigNode root, IEnumerable<string> overrides)
    {
        var errors = new List<ConfigError>();
        foreach (var o in overrides)
        {
            int eq = o.IndexOf('=');
            var segments = eq < 0 ? [] : o[..eq].Trim().Split('.');
            if (eq < 0 || segments.Any(s => s.Length == 0))
            {
                errors.Add(new ConfigError("", $"override '{o}' must look like key.path=value", SourcePosition.CommandLine));
                continue;
            }
            try
            {
                root = Set(root, segments, 0, ParseValue(o[(eq + 1)..]));
            }
            catch (ConfigException e)
            {
                errors.AddRange(e.Errors.Select(x => x with { Path = string.Join('.', segments), Message = $"override '{o}': {x.Message}" }));
            }
        }
        if (errors.Count > 0) throw new ConfigException(errors);
        return root;
    }

    private static ConfigNode ParseValue(string text)
    {
        var t = text.Trim();
        if (t.Length > 0 && t[0] is '[' or '{' or '"' or '\'')
            return ConfigNode.Parse(t, SourcePosition.CommandLineName, fromCommandLine: true);
        return new ConfigScalar(ConfigNode.IsNullLiteral(t) ? null : t, false, SourcePosition.CommandLine);
    }

    private static ConfigNode Set(ConfigNode node, string[] path, int i, ConfigNode value)
    {
        if (i == path.Length) return value;
        string seg = path[i];
        string where = i == 0 ? "the root" : "'" + string.Join('.', path[..i]) + "'";
        switch (node)
        {
            case ConfigMapping m:
                var child = m[seg] ?? new ConfigMapping([], SourcePosition.CommandLine);
                return m.With(seg, Set(child, path, i + 1, value), SourcePosition.CommandLine);
            case ConfigSequence s:
                if (!int.TryParse(seg, out int idx) || idx < 0 || idx > s.Items.Count)
                    throw Fail($"{where} is a list of {s.Items.Count} items; '{seg}' is not an index from 0 to {s.Items.Count}");
                var items = s.Items.ToList();
                if (idx == items.Count) items.Add(Set(new ConfigMapping([], SourcePosition.CommandLine), path, i + 1, value));
                else items[idx] = Set(items[idx], path, i + 1, value);
                return new ConfigSequence(items, s.Position);
            case ConfigScalar { IsNull: true }:
                // `section:` left empty in YAML (or set to null) acts as an empty mapping.
                return Set(new ConfigMapping([], SourcePosition.CommandLine), path, i, value);
            default:
                throw Fail($"{where} is the scalar {node.Describe()} ({node.Position.Brief}), not a mapping or list");
        }
    }

    private static ConfigException Fail(string message) => new([new ConfigError("", message, SourcePosition.CommandLine)]);
}
