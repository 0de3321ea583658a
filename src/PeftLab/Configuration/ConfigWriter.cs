using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using static PeftLab.Configuration.ConfigSchema;

namespace PeftLab.Configuration;

/// <summary>
/// Writes resolved config records as YAML or JSON with the binder's key names (snake_case), enums in snake_case,
/// nulls explicit, and the discriminator of registered polymorphic sections, so that binding the output gives
/// back an equal config.
/// </summary>
public static class ConfigWriter
{
    private static readonly SourcePosition Generated = new("<generated>", 0, 0);

    /// <summary>The config tree of a value (record, list, dictionary or scalar).</summary>
    public static ConfigNode ToNode(object? value) => ToNode(value, value?.GetType() ?? typeof(object));

    /// <summary>YAML text of a config record.</summary>
    public static string ToYaml(object record) => ToYaml(ToNode(record));

    /// <summary>Indented JSON text of a config record.</summary>
    public static string ToJson(object record) => ToJson(ToNode(record));

    /// <summary>Writes the resolved config to <paramref name="path"/>: JSON for a .json file, YAML otherwise.</summary>
    public static void Save(object record, string path) =>
        File.WriteAllText(path, Path.GetExtension(path).Equals(".json", StringComparison.OrdinalIgnoreCase) ? ToJson(record) : ToYaml(record));

    private static ConfigNode ToNode(object? value, Type declared)
    {
        switch (value)
        {
            case null: return Scalar(null);
            case var _ when ConfigBinder.Writers.TryGetValue(value.GetType(), out var write): return write(value);
            case string s: return new ConfigScalar(s, true, Generated);
            case bool b: return Scalar(b ? "true" : "false");
            case int or long: return Scalar(Convert.ToString(value, CultureInfo.InvariantCulture));
            case double or float: return Scalar(FormatNumber(Convert.ToDouble(value, CultureInfo.InvariantCulture), value is float));
            case Enum e: return Scalar(EnumName(e.GetType(), e));
            case IDictionary d:
                return new ConfigMapping(d.Keys.Cast<object>().Select(k => Entry(k.ToString()!, ToNode(d[k]))).ToArray(), Generated);
            case IEnumerable list:
                return new ConfigSequence(list.Cast<object?>().Select(ToNode).ToArray(), Generated);
        }
        var t = value.GetType();
        var entries = new List<ConfigEntry>();
        var union = ConfigBinder.Unions.TryGetValue(declared, out var u) ? u
            : declared == t ? ConfigBinder.Unions.Values.FirstOrDefault(x => x.Types.Values.Contains(t)) : null;
        var props = PropsOf(t);
        if (union is not null && union.Types.Values.Contains(t) && props.All(p => p.Key != union.Key))
            entries.Add(Entry(union.Key, Scalar(union.NameOf(t))));
        foreach (var p in props)
        {
            var v = p.Info.GetValue(value);
            if (p.Inline is null) entries.Add(Entry(p.Key, ToNode(v, p.Info.PropertyType)));
            else if (v is IDictionary inline)    // beside the other keys, in the order the attribute lists them
                entries.AddRange(p.Inline.Keys.Where(inline.Contains).Select(k => Entry(k, ToNode(inline[k]))));
        }
        return new ConfigMapping(entries, Generated);
    }

    private static ConfigScalar Scalar(string? text) => new(text, false, Generated);
    private static ConfigEntry Entry(string key, ConfigNode value) => new(key, value, Generated);

    /// <summary>Shortest round-trip text; YAML spellings for infinities and NaN.</summary>
    private static string FormatNumber(double d, bool isFloat) =>
        double.IsNaN(d) ? ".nan" : double.IsPositiveInfinity(d) ? ".inf" : double.IsNegativeInfinity(d) ? "-.inf"
        : (isFloat ? ((float)d).ToString("R", CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture)).Replace('E', 'e');

    /// <summary>YAML text of a config tree (block mappings; lists of scalars in flow style).</summary>
    public static string ToYaml(ConfigNode node)
    {
        var sw = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        var emitter = new Emitter(sw);
        emitter.Emit(new StreamStart());
        emitter.Emit(new DocumentStart(null, null, true));
        Emit(emitter, node);
        emitter.Emit(new DocumentEnd(true));
        emitter.Emit(new StreamEnd());
        return sw.ToString();
    }

    private static void Emit(IEmitter e, ConfigNode node)
    {
        switch (node)
        {
            case ConfigScalar s:
                // Strings that would read back as null, a bool or a number are quoted; the emitter quotes other special text itself.
                var style = s.Quoted && (LooksLikeKeyword(s.Value!) || s.Value!.Any(char.IsControl)) ? ScalarStyle.DoubleQuoted : ScalarStyle.Plain;
                e.Emit(new Scalar(AnchorName.Empty, TagName.Empty, s.Value ?? "null", style, true, true));
                break;
            case ConfigSequence q:
                bool flow = q.Items.All(i => i is ConfigScalar);
                e.Emit(new SequenceStart(AnchorName.Empty, TagName.Empty, true, flow ? SequenceStyle.Flow : SequenceStyle.Block));
                foreach (var item in q.Items) Emit(e, item);
                e.Emit(new SequenceEnd());
                break;
            case ConfigMapping m:
                e.Emit(new MappingStart(AnchorName.Empty, TagName.Empty, true, m.Entries.Count == 0 ? MappingStyle.Flow : MappingStyle.Block));
                foreach (var entry in m.Entries)
                {
                    var keyStyle = LooksLikeKeyword(entry.Key) ? ScalarStyle.DoubleQuoted : ScalarStyle.Plain;
                    e.Emit(new Scalar(AnchorName.Empty, TagName.Empty, entry.Key, keyStyle, true, true));
                    Emit(e, entry.Value);
                }
                e.Emit(new MappingEnd());
                break;
        }
    }

    /// <summary>Could this plain text read as something other than a string (null, bool, number) here or in other YAML tools?</summary>
    private static bool LooksLikeKeyword(string s) =>
        ConfigNode.IsNullLiteral(s) || s.Trim() != s
        || s.ToLowerInvariant() is "true" or "false" or "yes" or "no" or "on" or "off" or "y" or "n" or ".inf" or "+.inf" or "-.inf" or ".nan"
        || char.IsAsciiDigit(s[0]) || (s.Length > 1 && s[0] is '+' or '-' or '.' && (char.IsAsciiDigit(s[1]) || s[1] == '.'));

    /// <summary>Indented JSON text of a config tree: plain scalars that read as numbers or bools are written as such.</summary>
    public static string ToJson(ConfigNode node)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            WriteJson(w, node);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteJson(Utf8JsonWriter w, ConfigNode node)
    {
        switch (node)
        {
            case ConfigScalar { Value: null }:
                w.WriteNullValue();
                break;
            case ConfigScalar { Quoted: false, Value: "true" or "false" } b:
                w.WriteBooleanValue(b.Value == "true");
                break;
            case ConfigScalar { Quoted: false } s when long.TryParse(s.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l):
                w.WriteNumberValue(l);
                break;
            case ConfigScalar { Quoted: false } s when double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d):
                w.WriteNumberValue(d);
                break;
            case ConfigScalar s:
                w.WriteStringValue(s.Value);
                break;
            case ConfigSequence q:
                w.WriteStartArray();
                foreach (var item in q.Items) WriteJson(w, item);
                w.WriteEndArray();
                break;
            case ConfigMapping m:
                w.WriteStartObject();
                foreach (var e in m.Entries)
                {
                    w.WritePropertyName(e.Key);
                    WriteJson(w, e.Value);
                }
                w.WriteEndObject();
                break;
        }
    }
}
