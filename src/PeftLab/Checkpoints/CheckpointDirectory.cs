using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PeftLab.Checkpoints;

/// <summary>
/// A Hugging Face-style checkpoint folder: either one <c>model.safetensors</c> or shards
/// <c>model-00001-of-0000N.safetensors</c> listed by <c>model.safetensors.index.json</c>
/// (<c>"weight_map": {tensor: shard}</c>), seen as one set of tensors. The index and the shards must
/// agree exactly; any inconsistency is reported with the file at fault.
/// </summary>
public sealed class CheckpointDirectory : IDisposable
{
    /// <summary>The transformers weights file name.</summary>
    public const string DefaultFileName = "model.safetensors";

    /// <summary>Suffix of the shard index next to the single-file name.</summary>
    public const string IndexSuffix = ".index.json";

    private readonly Dictionary<string, SafeTensorsFile> _owner;

    private CheckpointDirectory(string directory, string? indexPath, IReadOnlyList<SafeTensorsFile> files,
        Dictionary<string, SafeTensorsFile> owner)
    {
        DirectoryPath = directory;
        IndexPath = indexPath;
        Files = files;
        _owner = owner;
        Tensors = owner.ToDictionary(kv => kv.Key, kv => kv.Value.Tensors[kv.Key], StringComparer.Ordinal);
        Names = Tensors.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The folder holding the checkpoint.</summary>
    public string DirectoryPath { get; }

    /// <summary>The shard index, or null for a single-file checkpoint.</summary>
    public string? IndexPath { get; }

    /// <summary>True when the checkpoint is sharded.</summary>
    public bool IsSharded => IndexPath is not null;

    /// <summary>The open safetensors files (one, or the shards in name order).</summary>
    public IReadOnlyList<SafeTensorsFile> Files { get; }

    /// <summary>All tensors of all files, by name. Offsets are relative to their own file's data buffer.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>All tensor names in ordinal order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The <c>__metadata__</c> of the (first) file.</summary>
    public IReadOnlyDictionary<string, string> Metadata => Files[0].Metadata;

    /// <summary>True when some file holds a tensor of that name.</summary>
    public bool Contains(string name) => _owner.ContainsKey(name);

    /// <summary>The file holding tensor <paramref name="name"/>.</summary>
    public SafeTensorsFile FileOf(string name)
    {
        if (_owner.TryGetValue(name, out var file)) return file;
        throw new KeyNotFoundException(
            $"{IndexPath ?? Files[0].FilePath}: no tensor named '{name}' (the checkpoint has {_owner.Count} tensors)");
    }

    /// <summary>
    /// Opens a checkpoint. <paramref name="path"/> is a folder (holding <paramref name="fileName"/> or
    /// <paramref name="fileName"/><c>.index.json</c>; the single file wins when both exist, as in transformers),
    /// a <c>.safetensors</c> file, or an <c>.index.json</c> file.
    /// </summary>
    public static CheckpointDirectory Open(string path, string fileName = DefaultFileName)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        string full = Path.GetFullPath(path);
        if (File.Exists(full))
        {
            string dir = Path.GetDirectoryName(full)!;
            return full.EndsWith(IndexSuffix, StringComparison.Ordinal) ? OpenSharded(dir, full) : OpenSingle(dir, full);
        }
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"checkpoint folder not found: {full}");

        string single = Path.Combine(full, fileName);
        if (File.Exists(single)) return OpenSingle(full, single);
        string index = single + IndexSuffix;
        if (File.Exists(index)) return OpenSharded(full, index);

        string hint = File.Exists(Path.Combine(full, "pytorch_model.bin")) || File.Exists(Path.Combine(full, "pytorch_model.bin.index.json"))
            ? " It holds PyTorch pickle weights (pytorch_model.bin), which are not supported: re-save the model with safe_serialization=True."
            : "";
        throw new FileNotFoundException($"{full}: no {fileName} and no {fileName}{IndexSuffix} in this folder.{hint}", single);
    }

    private static CheckpointDirectory OpenSingle(string dir, string file)
    {
        var f = SafeTensorsFile.Open(file);
        var owner = f.Names.ToDictionary(n => n, _ => f, StringComparer.Ordinal);
        return new CheckpointDirectory(dir, null, [f], owner);
    }

    private static CheckpointDirectory OpenSharded(string dir, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var shardNames = weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

        var files = new List<SafeTensorsFile>();
        try
        {
            var byShard = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (string shard in shardNames)
            {
                string shardPath = Path.Combine(dir, shard);
                if (!File.Exists(shardPath))
                {
                    var listed = weightMap.Where(kv => kv.Value == shard).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
                    throw new CheckpointFormatException(indexPath,
                        $"shard '{shard}' is missing ({shardPath} does not exist); the index maps {listed.Count} tensors to it, e.g. '{listed[0]}'",
                        listed[0]);
                }
                var file = SafeTensorsFile.Open(shardPath);
                files.Add(file);
                byShard[shard] = file;
            }

            var owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (string shard in shardNames)
            {
                foreach (string name in byShard[shard].Names)
                {
                    if (owner.TryGetValue(name, out var other))
                        throw new CheckpointFormatException(indexPath,
                            $"tensor '{name}' appears in two shards: '{Path.GetFileName(other.FilePath)}' and '{shard}'", name);
                    owner[name] = byShard[shard];
                }
            }
            foreach (var (name, shard) in weightMap)
            {
                if (!byShard[shard].Contains(name))
                {
                    string actual = owner.TryGetValue(name, out var f) ? $"; it is in '{Path.GetFileName(f.FilePath)}'" : "";
                    throw new CheckpointFormatException(indexPath,
                        $"the index maps tensor '{name}' to shard '{shard}', but that shard does not contain it{actual}", name);
                }
            }
            foreach (var (name, file) in owner)
            {
                if (!weightMap.ContainsKey(name))
                    throw new CheckpointFormatException(indexPath,
                        $"shard '{Path.GetFileName(file.FilePath)}' holds tensor '{name}', which the index does not list", name);
            }
            return new CheckpointDirectory(dir, indexPath, files, owner);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Reads <c>weight_map</c> from an index, checking its shape and the shard names.</summary>
    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(indexPath, $"shard index is not valid JSON: {e.Message}", inner: e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(indexPath, "shard index has no \"weight_map\" object");

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointFormatException(indexPath,
                        $"weight_map entry for tensor '{entry.Name}' is a JSON {entry.Value.ValueKind}, not a shard file name", entry.Name);
                string shard = entry.Value.GetString()!;
                if (shard.Length == 0 || Path.IsPathRooted(shard) || shard.Split('/', '\\').Contains(".."))
                    throw new CheckpointFormatException(indexPath,
                        $"weight_map maps tensor '{entry.Name}' to '{shard}', which is not a file name inside the checkpoint folder", entry.Name);
                if (!result.TryAdd(entry.Name, shard))
                    throw new CheckpointFormatException(indexPath, $"weight_map lists tensor '{entry.Name}' twice", entry.Name);
            }
            if (result.Count == 0) throw new CheckpointFormatException(indexPath, "weight_map lists no tensors");
            return result;
        }
    }

    /// <summary>Unmaps every file.</summary>
    public void Dispose()
    {
        foreach (var f in Files) f.Dispose();
    }

    /// <summary>
    /// Writes a checkpoint into <paramref name="directory"/> the way transformers' <c>save_pretrained</c> does:
    /// one <paramref name="fileName"/> when the tensors total at most <paramref name="maxShardBytes"/>, otherwise
    /// shards <c>model-0000i-of-0000N.safetensors</c> (tensors in name order, a new shard started whenever the next
    /// tensor would overflow the current one; a tensor larger than the limit gets a shard of its own) plus
    /// <c>model.safetensors.index.json</c> with <c>metadata.total_size</c>. Files of an earlier save that the new
    /// layout does not use (the other layout, shards with another count) are deleted afterwards.
    /// Returns the paths written, the index last.
    /// </summary>
    public static IReadOnlyList<string> WriteSharded(string directory, IEnumerable<TensorEntry> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null, string fileName = DefaultFileName)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        if (!fileName.EndsWith(".safetensors", StringComparison.Ordinal) || fileName.Length == ".safetensors".Length
            || fileName.Contains('/') || fileName.Contains('\\'))
            throw new ArgumentException($"'{fileName}' is not a plain *.safetensors file name", nameof(fileName));

        string dir = Path.GetFullPath(directory);
        Directory.CreateDirectory(dir);
        string singlePath = Path.Combine(dir, fileName);
        string indexPath = singlePath + IndexSuffix;
        string stem = fileName[..^".safetensors".Length];
        var ordered = SafeTensorsWriter.OrderAndCheck(tensors, dir);
        long totalSize = ordered.Sum(t => t.ByteLength);

        var written = new List<string>();
        if (totalSize <= maxShardBytes)
        {
            SafeTensorsWriter.Write(singlePath, ordered, metadata);
            written.Add(singlePath);
            File.Delete(indexPath);
            DeleteStaleShards(dir, stem, keep: new HashSet<string>());
            return written;
        }

        var shards = new List<List<TensorEntry>>();
        long current = 0;
        foreach (var t in ordered)
        {
            if (shards.Count == 0 || (shards[^1].Count > 0 && current + t.ByteLength > maxShardBytes))
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(t);
            current += t.ByteLength;
        }

        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string shardName = $"{stem}-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            string shardPath = Path.Combine(dir, shardName);
            SafeTensorsWriter.Write(shardPath, shards[i], metadata);
            written.Add(shardPath);
            foreach (var t in shards[i]) weightMap[t.Name] = shardName;
        }

        WriteIndex(indexPath, totalSize, weightMap);
        written.Add(indexPath);
        // The index is in place: now the single file (which readers would prefer) and old shards can go.
        File.Delete(singlePath);
        DeleteStaleShards(dir, stem, keep: written.Select(p => Path.GetFileName(p)).ToHashSet(StringComparer.Ordinal));
        return written;
    }

    private static void WriteIndex(string indexPath, long totalSize, SortedDictionary<string, string> weightMap)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", totalSize);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var (name, shard) in weightMap) w.WriteString(name, shard);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');

        string tmp = Path.Combine(Path.GetDirectoryName(indexPath)!, $".{Path.GetFileName(indexPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                buffer.WriteTo(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, indexPath, overwrite: true);
        }
        catch
        {
            SafeTensorsWriter.TryDelete(tmp);
            throw;
        }
    }

    private static void DeleteStaleShards(string dir, string stem, IReadOnlySet<string> keep)
    {
        var pattern = new Regex("^" + Regex.Escape(stem) + @"-\d{5}-of-\d{5}\.safetensors$", RegexOptions.CultureInvariant);
        foreach (string path in Directory.EnumerateFiles(dir))
        {
            string name = Path.GetFileName(path);
            if (pattern.IsMatch(name) && !keep.Contains(name)) File.Delete(path);
        }
    }
}
