using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PeftLab.Checkpoints;

/// <summary>
/// Writes standard safetensors files: compact JSON header with tensors in ordinal name order and
/// contiguous offsets, <c>__metadata__</c> holding <c>"format": "pt"</c> plus the caller's entries, the
/// header padded with spaces so the data buffer starts at a multiple of 8. Data is streamed tensor by
/// tensor; the file appears atomically (temporary file in the same folder, then rename).
/// </summary>
public static class SafeTensorsWriter
{
    private const int BufferSize = 1 << 20;

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/>, replacing any existing file.
    /// <paramref name="metadata"/> is added to <c>__metadata__</c> (its "format" entry, if any, replaces "pt").
    /// Returns the number of bytes written.
    /// </summary>
    public static long Write(string path, IEnumerable<TensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var ordered = OrderAndCheck(tensors, path);
        byte[] header = BuildHeader(ordered, metadata);

        string fullPath = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        long total = 8 + header.Length + ordered.Sum(t => t.ByteLength);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                fs.Write(prefix);
                fs.Write(header);
                foreach (var t in ordered) t.WriteData(fs, path);
                fs.Flush(flushToDisk: true);
                if (fs.Length != total)
                    throw new InvalidOperationException($"{path}: wrote {fs.Length} bytes, expected {total}");
            }
            File.Move(tmp, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        return total;
    }

    /// <summary>Ordinal name order; rejects duplicate names.</summary>
    internal static List<TensorEntry> OrderAndCheck(IEnumerable<TensorEntry> tensors, string path)
    {
        var list = tensors.ToList();
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        for (int i = 1; i < list.Count; i++)
        {
            if (list[i].Name == list[i - 1].Name)
                throw new ArgumentException($"{path}: tensor name '{list[i].Name}' is given twice", nameof(tensors));
        }
        return list;
    }

    /// <summary>The padded header for entries already in their final order.</summary>
    internal static byte[] BuildHeader(IReadOnlyList<TensorEntry> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        var meta = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
        {
            foreach (var (k, v) in metadata)
            {
                ArgumentNullException.ThrowIfNull(v, $"metadata['{k}']");
                meta[k] = v;
            }
        }

        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII names readable; the output is still plain JSON.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            long offset = 0;
            foreach (var t in ordered)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.HeaderName());
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += t.ByteLength;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            // Last, as Python-written files in the wild (and our fixtures) have it.
            w.WriteStartObject(SafeTensorsFile.MetadataKey);
            foreach (var (k, v) in meta) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        int length = buffer.WrittenCount;
        int padded = (length + 7) / 8 * 8; // 8 + padded is then a multiple of 8 as well
        if (padded > SafeTensorsFile.MaxHeaderBytes)
            throw new InvalidOperationException(
                $"the header of {ordered.Count} tensors would take {padded} bytes, over the {SafeTensorsFile.MaxHeaderBytes}-byte limit readers enforce; shard the checkpoint");
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    internal static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a stray temporary file is harmless and the original error matters more.
        }
    }
}
