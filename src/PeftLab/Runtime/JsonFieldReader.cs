using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftLab.Runtime;

/// <summary>
/// Typed reads of the fields of one JSON object, for file formats that are read strictly (result.json and the score
/// reports inside it). A field that is absent or JSON null reads as null; a field of the wrong kind is an
/// <see cref="InvalidDataException"/> whose message names the file and the field's dotted path, e.g.
/// <c>run/result.json: 'cost.wall_s' must be a number, not "fast"</c>.
/// </summary>
internal sealed class JsonFieldReader
{
    private readonly JsonObject _object;

    private JsonFieldReader(JsonObject o, string source, string path)
    {
        _object = o;
        Source = source;
        Path = path;
    }

    /// <summary>The file (or other source) the object was read from, as error messages name it.</summary>
    public string Source { get; }

    /// <summary>Dotted path of this object from the document's root; empty for the root.</summary>
    public string Path { get; }

    /// <summary>The object has no fields at all (<c>{}</c>).</summary>
    public bool IsEmpty => _object.Count == 0;

    /// <summary>Parses <paramref name="text"/>, which must be one JSON object without repeated keys.</summary>
    /// <exception cref="InvalidDataException">Not JSON, not an object, or a key appears twice; the message names <paramref name="source"/>.</exception>
    public static JsonFieldReader Parse(string text, string source)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: invalid JSON: {e.Message}", e); }
        if (node is not JsonObject o) throw new InvalidDataException($"{source}: expected a JSON object, not {Show(node)}");
        return new JsonFieldReader(o, source, "");
    }

    /// <summary>The dotted path of field <paramref name="key"/> of this object.</summary>
    public string Where(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    /// <summary>An error about field <paramref name="key"/>: "<c>source: 'path' problem</c>".</summary>
    public InvalidDataException Error(string key, string problem) => new($"{Source}: '{Where(key)}' {problem}");

    /// <summary>The error for a required field that is absent or null.</summary>
    public InvalidDataException Missing(string key) => Error(key, "is missing");

    /// <summary>A string field.</summary>
    public string? String(string key) => Value(key, JsonValueKind.String, "a string")?.GetValue<string>();

    /// <summary>An integer field that fits in 32 bits.</summary>
    public int? Int32(string key) =>
        Value(key, JsonValueKind.Number, "an integer") is { } v
            ? int.TryParse(v.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i) ? i : throw Error(key, $"must be a 32-bit integer, not {Show(v)}")
            : null;

    /// <summary>An integer field that fits in 64 bits.</summary>
    public long? Int64(string key) =>
        Value(key, JsonValueKind.Number, "an integer") is { } v
            ? long.TryParse(v.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? l : throw Error(key, $"must be a 64-bit integer, not {Show(v)}")
            : null;

    /// <summary>A number field, read as the double its JSON text denotes.</summary>
    public double? Double(string key) =>
        Value(key, JsonValueKind.Number, "a number") is { } v ? double.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture) : null;

    /// <summary>An object field.</summary>
    public JsonFieldReader? Object(string key) => _object[key] switch
    {
        null => null,
        JsonObject o => new JsonFieldReader(o, Source, Where(key)),
        var other => throw Error(key, $"must be an object, not {Show(other)}"),
    };

    /// <summary>An array field whose items are read by <paramref name="item"/> (given the item's node and its dotted path).</summary>
    public IReadOnlyList<T>? Array<T>(string key, Func<JsonNode?, string, T> item) => _object[key] switch
    {
        null => null,
        JsonArray a => a.Select((x, i) => item(x, $"{Where(key)}[{i}]")).ToArray(),
        var other => throw Error(key, $"must be an array, not {Show(other)}"),
    };

    /// <summary>An array item that must be an integer (for <see cref="Array{T}"/>).</summary>
    public int Int32Item(JsonNode? node, string path) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && int.TryParse(v.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)
            ? i : throw new InvalidDataException($"{Source}: '{path}' must be an integer, not {Show(node)}");

    /// <summary>An array item that must be a string (for <see cref="Array{T}"/>).</summary>
    public string StringItem(JsonNode? node, string path) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw new InvalidDataException($"{Source}: '{path}' must be a string, not {Show(node)}");

    /// <summary>Every field of this object, in document order, each of which must be an object.</summary>
    public IEnumerable<(string Key, JsonFieldReader Value)> Objects()
    {
        foreach (var (key, _) in _object) yield return (key, Object(key) ?? throw Error(key, "must be an object, not null"));
    }

    private JsonValue? Value(string key, JsonValueKind kind, string expected) => _object[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == kind => v,
        var other => throw Error(key, $"must be {expected}, not {Show(other)}"),
    };

    /// <summary>A node as an error message shows it: its JSON text, cut after 60 characters.</summary>
    private static string Show(JsonNode? node)
    {
        var text = node?.ToJsonString() ?? "null";
        return text.Length <= 60 ? text : text[..60] + "…";
    }
}
