using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace PeftLab.Configuration;

/// <summary>Where a config value came from: a file position, or the command line.</summary>
/// <param name="File">The file as the user named it, or <see cref="CommandLineName"/>.</param>
/// <param name="Line">1-based line (0 for the command line).</param>
/// <param name="Column">1-based column (0 for the command line).</param>
public sealed record SourcePosition(string File, int Line, int Column)
{
    /// <summary>The <see cref="File"/> of values given as <c>key=value</c> overrides.</summary>
    public const string CommandLineName = "command line";

    /// <summary>The position of every value given as a <c>key=value</c> override.</summary>
    public static SourcePosition CommandLine { get; } = new(CommandLineName, 0, 0);

    /// <summary>Short form used in error messages: "file:line" or "from command line".</summary>
    public string Brief => Line > 0 ? $"{File}:{Line}" : $"from {File}";

    /// <summary>"file:line:col" (or "command line").</summary>
    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}" : File;
}

/// <summary>A parsed config value (mapping, sequence or scalar) that remembers where it was written.</summary>
public abstract class ConfigNode
{
    private protected ConfigNode(SourcePosition position) => Position = position;

    /// <summary>Where this node was written.</summary>
    public SourcePosition Position { get; }

    /// <summary>Short description of the node for error messages ("a mapping", "a list", "'abc'", "null").</summary>
    public abstract string Describe();

    /// <summary>Parses YAML text (one document; an empty text is an empty mapping).</summary>
    /// <param name="yaml">The YAML text.</param>
    /// <param name="sourceName">The name used in positions and errors (usually the file path).</param>
    /// <exception cref="ConfigException">The text is not valid YAML; the error names the file and line.</exception>
    public static ConfigNode Parse(string yaml, string sourceName = "<string>") => Parse(yaml, sourceName, fromCommandLine: false);

    /// <summary>Reads and parses a YAML file; positions carry the path as given.</summary>
    /// <exception cref="ConfigException">The file is missing or is not valid YAML.</exception>
    public static ConfigNode Load(string path)
    {
        if (!File.Exists(path))
            throw new ConfigException([new ConfigError("", $"config file not found: {path}", null)]);
        return Parse(PeftLab.Data.Utf8Text.ReadAllText(path), path);
    }

    /// <summary>Parses one YAML document; override values get <see cref="SourcePosition.CommandLine"/> positions.</summary>
    internal static ConfigNode Parse(string yaml, string sourceName, bool fromCommandLine)
    {
        SourcePosition At(Mark m) => fromCommandLine ? SourcePosition.CommandLine : new(sourceName, (int)m.Line, (int)m.Column);
        var stream = new YamlStream();
        var parser = new TrackingParser(new Parser(new StringReader(yaml)));
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            throw new ConfigException([new ConfigError("", "invalid YAML: " + e.Message, At(e.Start))]);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner fails without a position on some unclosed flow collections: point past the last good token.
            throw new ConfigException([new ConfigError("", "invalid YAML: unclosed [ ] or { } or a stray ':' after this point", At(parser.Last))]);
        }
        if (stream.Documents.Count > 1)
            throw new ConfigException([new ConfigError("", "expected one YAML document, found " + stream.Documents.Count, At(stream.Documents[1].RootNode.Start))]);
        if (stream.Documents.Count == 0)
            return new ConfigMapping([], fromCommandLine ? SourcePosition.CommandLine : new(sourceName, 1, 1));
        return Convert(stream.Documents[0].RootNode, At);
    }

    private static ConfigNode Convert(YamlNode node, Func<Mark, SourcePosition> at) => node switch
    {
        YamlScalarNode s => new ConfigScalar(
            s.Style is ScalarStyle.Plain or ScalarStyle.Any && IsNullLiteral(s.Value) ? null : s.Value ?? "",
            s.Style is not (ScalarStyle.Plain or ScalarStyle.Any), at(s.Start)),
        YamlSequenceNode q => new ConfigSequence(q.Children.Select(c => Convert(c, at)).ToArray(), at(q.Start)),
        YamlMappingNode m => new ConfigMapping(m.Children.Select(kv => kv.Key is YamlScalarNode k && k.Value is not null
                ? new ConfigEntry(k.Value, Convert(kv.Value, at), at(k.Start))
                : throw new ConfigException([new ConfigError("", "mapping keys must be plain strings", at(kv.Key.Start))])).ToArray(),
            at(m.Start)),
        _ => throw new ConfigException([new ConfigError("", "unsupported YAML node", at(node.Start))]),
    };

    /// <summary>Remembers where the last event ended, for errors that YamlDotNet reports without a position.</summary>
    private sealed class TrackingParser(IParser inner) : IParser
    {
        public Mark Last { get; private set; } = Mark.Empty;
        public YamlDotNet.Core.Events.ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            bool more = inner.MoveNext();
            if (inner.Current is { } c) Last = c.End;
            return more;
        }
    }

    /// <summary>YAML 1.2 core-schema null spellings (plain scalars only).</summary>
    internal static bool IsNullLiteral(string? s) => s is null or "" or "~" or "null" or "Null" or "NULL";
}

/// <summary>A scalar: text, or null (YAML <c>~</c>, <c>null</c> or nothing).</summary>
/// <param name="value">The text, or null for a YAML null.</param>
/// <param name="quoted">True when written quoted (or as a block string): always a string, never a null/number/bool keyword.</param>
/// <param name="position">Where it was written.</param>
public sealed class ConfigScalar(string? value, bool quoted, SourcePosition position) : ConfigNode(position)
{
    /// <summary>The text, or null for a YAML null.</summary>
    public string? Value { get; } = value;
    /// <summary>True when written quoted: the text is a string even if it reads like a number or keyword.</summary>
    public bool Quoted { get; } = quoted && value is not null;
    /// <summary>True for a YAML null.</summary>
    public bool IsNull => Value is null;

    /// <inheritdoc/>
    public override string Describe() => Value is null ? "null" : $"'{Value}'";
}

/// <summary>A list of nodes.</summary>
public sealed class ConfigSequence(IReadOnlyList<ConfigNode> items, SourcePosition position) : ConfigNode(position)
{
    /// <summary>The items, in order.</summary>
    public IReadOnlyList<ConfigNode> Items { get; } = items;

    /// <inheritdoc/>
    public override string Describe() => "a list";
}

/// <summary>One <c>key: value</c> of a mapping.</summary>
/// <param name="Key">The key text.</param>
/// <param name="Value">The value node.</param>
/// <param name="KeyPosition">Where the key was written.</param>
public sealed record ConfigEntry(string Key, ConfigNode Value, SourcePosition KeyPosition);

/// <summary>An ordered mapping of string keys to nodes.</summary>
public sealed class ConfigMapping(IReadOnlyList<ConfigEntry> entries, SourcePosition position) : ConfigNode(position)
{
    /// <summary>The entries, in the order written.</summary>
    public IReadOnlyList<ConfigEntry> Entries { get; } = entries;

    /// <summary>The entry for <paramref name="key"/>, or null.</summary>
    public ConfigEntry? Find(string key) => Entries.FirstOrDefault(e => e.Key == key);

    /// <summary>The value for <paramref name="key"/>, or null when absent.</summary>
    public ConfigNode? this[string key] => Find(key)?.Value;

    /// <summary>A copy with <paramref name="key"/> set to <paramref name="value"/> (replaced in place, or appended).</summary>
    public ConfigMapping With(string key, ConfigNode value, SourcePosition keyPosition)
    {
        var list = Entries.ToList();
        int i = list.FindIndex(e => e.Key == key);
        if (i >= 0) list[i] = list[i] with { Value = value };
        else list.Add(new ConfigEntry(key, value, keyPosition));
        return new ConfigMapping(list, Position);
    }

    /// <inheritdoc/>
    public override string Describe() => "a mapping";
}
