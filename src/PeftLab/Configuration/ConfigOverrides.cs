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
                root = ConfigTree.Set(root, segments, ParseValue(o[(eq + 1)..]), SourcePosition.CommandLine);
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
}
