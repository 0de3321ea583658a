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

    /// <summary>Largest YAML text accepted, in characters (configs and study specs are a few KB; 4 Mi bounds the parse).</summary>
    public const int MaxDocumentChars = 4 * 1024 * 1024;
    /// <summary>Deepest nesting of mappings and lists accepted (the parser and the binder recurse per level).</summary>
    public const int MaxDepth = 64;
    /// <summary>Most nodes a document may expand to, aliases counted at every use (bounds "billion laughs" documents).</summary>
    public const int MaxNodes = 200_000;

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
        long bytes = new FileInfo(path).Length;
        if (bytes > MaxDocumentChars * 4L)   // UTF-8: at most 4 bytes a character; the exact check follows in Parse
            throw new ConfigException([new ConfigError("", $"config file is {bytes:N0} bytes; a YAML config may have at most {MaxDocumentChars:N0} characters", new(path, 1, 1))]);
        return Parse(PeftLab.Data.Utf8Text.ReadAllText(path), path);
    }

    /// <summary>Parses one YAML document; override values get <see cref="SourcePosition.CommandLine"/> positions.</summary>
    internal static ConfigNode Parse(string yaml, string sourceName, bool fromCommandLine)
    {
        SourcePosition At(Mark m) => fromCommandLine ? SourcePosition.CommandLine : new(sourceName, (int)m.Line, (int)m.Column);
        if (yaml.Length > MaxDocumentChars)
            throw new ConfigException([new ConfigError("", $"YAML text has {yaml.Length:N0} characters; at most {MaxDocumentChars:N0} are accepted", At(Mark.Empty))]);
        var stream = new YamlStream();
        var parser = new TrackingParser(new Parser(new StringReader(yaml)));
        try
        {
            stream.Load(parser);
        }
        catch (TooDeepException e)
        {
            throw new ConfigException([new ConfigError("", $"YAML nests mappings and lists more than {MaxDepth} levels deep", At(e.At))]);
        }
        catch (YamlException e)
        {
            throw new ConfigException([new ConfigError("", "invalid YAML: " + e.Message, At(e.Start))]);
        }
        catch (ArgumentException e) when (e.ParamName == "parser")
        {
            // YamlStream.Load meets an event it cannot place (seen: a line indented under a flow mapping after a bare ':')
            throw new ConfigException([new ConfigError("", "invalid YAML: the structure cannot be read after this point (check the indentation and any key-less ':')", At(parser.Last))]);
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
        int budget = MaxNodes;
        return Convert(stream.Documents[0].RootNode, At, ref budget);
    }

    // Aliases are shared nodes in YamlDotNet's model; converting copies them, so the budget counts every use.
    private static ConfigNode Convert(YamlNode node, Func<Mark, SourcePosition> at, ref int budget)
    {
        if (--budget < 0)
            throw new ConfigException([new ConfigError("", $"YAML expands to more than {MaxNodes:N0} values (aliases count at every use)", at(node.Start))]);
        switch (node)
        {
            case YamlScalarNode s:
                return new ConfigScalar(s.Style is ScalarStyle.Plain or ScalarStyle.Any && IsNullLiteral(s.Value) ? null : s.Value ?? "",
                    s.Style is not (ScalarStyle.Plain or ScalarStyle.Any), at(s.Start));
            case YamlSequenceNode q:
                var items = new ConfigNode[q.Children.Count];
                for (int i = 0; i < items.Length; i++) items[i] = Convert(q.Children[i], at, ref budget);
                return new ConfigSequence(items, at(q.Start));
            case YamlMappingNode m:
                var entries = new List<ConfigEntry>(m.Children.Count);
                foreach (var kv in m.Children)
                {
                    if (kv.Key is not YamlScalarNode k || k.Value is null)
                        throw new ConfigException([new ConfigError("", "mapping keys must be plain strings", at(kv.Key.Start))]);
                    entries.Add(new ConfigEntry(k.Value, Convert(kv.Value, at, ref budget), at(k.Start)));
                }
                return new ConfigMapping(entries, at(m.Start));
            default:
                throw new ConfigException([new ConfigError("", "unsupported YAML node", at(node.Start))]);
        }
    }

    private sealed class TooDeepException(Mark at) : Exception
    {
        public Mark At { get; } = at;
    }

    /// <summary>
    /// Remembers where the last event ended, for errors that YamlDotNet reports without a position, and stops a
    /// document nested deeper than <see cref="MaxDepth"/> before the (recursive) node builder sees it.
    /// </summary>
    private sealed class TrackingParser(IParser inner) : IParser
    {
        private int _depth;
        public Mark Last { get; private set; } = Mark.Empty;
        public YamlDotNet.Core.Events.ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            bool more = inner.MoveNext();
            if (inner.Current is { } c)
            {
                Last = c.End;
                if (c is YamlDotNet.Core.Events.MappingStart or YamlDotNet.Core.Events.SequenceStart && ++_depth > MaxDepth) throw new TooDeepException(c.Start);
                if (c is YamlDotNet.Core.Events.MappingEnd or YamlDotNet.Core.Events.SequenceEnd) _depth--;
            }
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
