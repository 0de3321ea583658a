using System.Globalization;
using System.Text.Json;
using nietras.SeparatedValues;
using PeftLab.Configuration;
using Parquet.Serialization;

namespace PeftLab.Evaluation.Harness;

/// <summary>
/// The documents of a harness task's split, read from local files: JSON Lines, JSON (an array of objects, or an object
/// holding one such array), CSV (a header row; a column whose every cell is an integer or number becomes one) or
/// Parquet (nested lists and structs kept). Nothing is downloaded.
/// </summary>
public static class HarnessData
{
    /// <summary>The file kinds read, by extension.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jsonl", ".json", ".csv", ".parquet"];

    private static readonly string[] Builders = ["json", "csv", "parquet"];

    /// <summary>The documents of <paramref name="split"/>.</summary>
    /// <exception cref="FileNotFoundException">No file holds the split; the message says where it looked.</exception>
    /// <exception cref="InvalidDataException">A file is not of its kind; the message names it and the line or row.</exception>
    public static IReadOnlyList<IReadOnlyDictionary<string, object?>> Load(HarnessTask task, string split) =>
        Files(task, split).SelectMany(Read).ToArray();

    /// <summary>The files holding <paramref name="split"/>, in name order.</summary>
    public static IReadOnlyList<string> Files(HarnessTask task, string split)
    {
        var dataFiles = task.Spec.DataFiles ?? task.Spec.DatasetKwargs?["data_files"];
        if (dataFiles is not null) return FromDataFiles(task, dataFiles, split);
        var path = task.DatasetPath ?? throw new FileNotFoundException($"{task.File}: give dataset_path (a local folder or file) or data_files");
        if (Builders.Contains(path))
            throw new FileNotFoundException($"{task.File}: dataset_path '{path}' reads data_files, and the file gives none");
        var full = Path.IsPathRooted(path) ? path : Path.Combine(task.Folder, path);
        if (File.Exists(full)) return [full];
        if (!Directory.Exists(full))
            throw new FileNotFoundException($"{task.File}: dataset_path '{path}' is not a local folder or file ({full}); PeftLab never downloads: " +
                                            "download the dataset and give its folder (peftlab eval --dataset-path DIR)");
        var folder = task.Spec.DatasetName is { } name && Directory.Exists(Path.Combine(full, name)) ? Path.Combine(full, name) : full;
        var found = new[] { folder, Path.Combine(folder, "data") }.Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d))
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Where(f => Path.GetFileNameWithoutExtension(f) is var stem && (stem == split || stem.StartsWith(split + "-", StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal).ToArray();
        return found.Length > 0 ? found
            : throw new FileNotFoundException($"{task.File}: no file for split '{split}' in {folder} (looked for {split}.jsonl|json|csv|parquet and {split}-*.* there and in data/)");
    }

    private static IReadOnlyList<string> FromDataFiles(HarnessTask task, ConfigNode node, string split)
    {
        // relative paths: beside the dataset folder when dataset_path is one, else beside the task file
        var root = task.DatasetPath is { } d && Directory.Exists(Path.Combine(task.Folder, d)) ? Path.Combine(task.Folder, d) : task.Folder;
        string Resolve(ConfigNode n) => n is ConfigScalar { Value: { } v }
            ? (Path.IsPathRooted(v) ? v : Path.Combine(root, v))
            : throw new ConfigException([new ConfigError("data_files", $"expected a path, got {n.Describe()}", n.Position)]);
        IReadOnlyList<string> Many(ConfigNode n) => n is ConfigSequence s ? s.Items.Select(Resolve).ToArray() : [Resolve(n)];
        IReadOnlyList<string> files = node switch
        {
            ConfigMapping m => m[split] is { } entry ? Many(entry)
                : throw new FileNotFoundException($"{task.File}: data_files names no file for split '{split}' (it has {string.Join(", ", m.Entries.Select(e => e.Key))})"),
            _ when split == "train" => Many(node),
            _ => throw new FileNotFoundException($"{task.File}: data_files without split names is the 'train' split (as the datasets library reads it); this task scores '{split}': write data_files: {{{split}: PATH}}"),
        };
        foreach (var f in files)
            if (!File.Exists(f)) throw new FileNotFoundException($"{task.File}: data file '{f}' (split '{split}') does not exist", f);
        return files;
    }

    /// <summary>Reads one file of documents, by its extension.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, object?>> Read(string file) => Path.GetExtension(file).ToLowerInvariant() switch
    {
        ".jsonl" => ReadJsonLines(file),
        ".json" => ReadJson(file),
        ".csv" => ReadCsv(file),
        ".parquet" => ReadParquet(file),
        var ext => throw new InvalidDataException($"{file}: '{ext}' is not a document file ({string.Join(", ", Extensions)})"),
    };

    private static IReadOnlyList<IReadOnlyDictionary<string, object?>> ReadJsonLines(string file)
    {
        var docs = new List<IReadOnlyDictionary<string, object?>>();
        int line = 0;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            try
            {
                using var json = JsonDocument.Parse(text);
                docs.Add(json.RootElement.ValueKind == JsonValueKind.Object ? (IReadOnlyDictionary<string, object?>)FromJson(json.RootElement)!
                    : throw new InvalidDataException($"{file}:{line}: a document is a JSON object, got {json.RootElement.ValueKind}"));
            }
            catch (JsonException e) { throw new InvalidDataException($"{file}:{line}: invalid JSON ({e.Message})"); }
        }
        return docs;
    }

    private static IReadOnlyList<IReadOnlyDictionary<string, object?>> ReadJson(string file)
    {
        JsonDocument json;
        try { json = JsonDocument.Parse(File.ReadAllText(file)); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: invalid JSON ({e.Message})"); }
        using (json)
        {
            var root = json.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                var arrays = root.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Array).ToArray();
                if (arrays.Length != 1) throw new InvalidDataException($"{file}: a JSON object must hold exactly one array of documents (it holds {arrays.Length}); or write JSON Lines");
                root = arrays[0].Value;
            }
            if (root.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{file}: expected an array of documents, got {root.ValueKind}");
            return root.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.Object ? (IReadOnlyDictionary<string, object?>)FromJson(e)!
                : throw new InvalidDataException($"{file}: document {i} is {e.ValueKind}, not an object")).ToArray();
        }
    }

    /// <summary>A JSON value as a document value: integers as long, other numbers as double, arrays as lists, objects as mappings.</summary>
    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var n) ? (object)n : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value)),
        _ => throw new InvalidDataException($"unexpected JSON {e.ValueKind}"),
    };

    private static IReadOnlyList<IReadOnlyDictionary<string, object?>> ReadCsv(string file)
    {
        string[] header;
        var rows = new List<string?[]>();
        try
        {
            using var reader = Sep.New(',').Reader(o => o with { Unescape = true }).FromFile(file);
            header = [.. reader.Header.ColNames];
            if (header.Length == 0) throw new InvalidDataException($"{file}: a CSV file of documents starts with a header row of field names");
            foreach (var row in reader)
            {
                var cells = new string?[header.Length];
                for (int i = 0; i < header.Length; i++) cells[i] = row[i].ToString();
                rows.Add(cells);
            }
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException and not IOException)
        {
            throw new InvalidDataException($"{file}: not a readable CSV file of documents ({e.Message})", e);
        }
        // a column is numeric when every non-empty cell is (as pandas infers it); empty cells are null
        var kinds = header.Select((_, i) =>
            rows.All(r => string.IsNullOrEmpty(r[i]) || long.TryParse(r[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out long _)) ? 'l'
            : rows.All(r => string.IsNullOrEmpty(r[i]) || double.TryParse(r[i], NumberStyles.Float, CultureInfo.InvariantCulture, out double _)) ? 'd' : 's').ToArray();
        return rows.Select(r => (IReadOnlyDictionary<string, object?>)header.Select((h, i) => (h, v: string.IsNullOrEmpty(r[i]) && kinds[i] != 's' ? null
                : kinds[i] == 'l' ? long.Parse(r[i]!, CultureInfo.InvariantCulture)
                : kinds[i] == 'd' ? double.Parse(r[i]!, CultureInfo.InvariantCulture) : (object?)(r[i] ?? "")))
            .ToDictionary(x => x.h, x => x.v)).ToArray();
    }

    private static IReadOnlyList<IReadOnlyDictionary<string, object?>> ReadParquet(string file)
    {
        try
        {
            using var stream = File.OpenRead(file);
            var result = ParquetSerializer.DeserializeUntypedAsync(stream).GetAwaiter().GetResult();
            return result.Data.Select(row => (IReadOnlyDictionary<string, object?>)row.ToDictionary(kv => kv.Key, kv => FromParquet(kv.Value))).ToArray();
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"{file}: not a readable Parquet file ({e.GetType().Name}: {e.Message})", e);
        }
    }

    private static object? FromParquet(object? v) => v switch
    {
        null => null,
        string s => s,
        ReadOnlyMemory<char> m => m.ToString(),
        bool b => b,
        sbyte or byte or short or ushort or int or uint or long => Convert.ToInt64(v, CultureInfo.InvariantCulture),
        float f => (double)f,
        double d => d,
        decimal m => (double)m,
        IDictionary<string, object> d => d.ToDictionary(kv => kv.Key, kv => FromParquet(kv.Value)),
        System.Collections.IEnumerable list => list.Cast<object?>().Select(FromParquet).ToList(),
        _ => v.ToString(),
    };
}
