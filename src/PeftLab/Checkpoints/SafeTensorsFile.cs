using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace PeftLab.Checkpoints;

/// <summary>
/// A read-only, memory-mapped safetensors file. <see cref="Open"/> validates the whole header up front
/// (the rules of the reference Rust implementation: the data buffer must be covered exactly, without
/// gaps, overlaps or trailing bytes), so later reads cannot run outside the file. All offsets are
/// 64-bit: files and tensors larger than 2 GB are supported; use <see cref="CopyTo(string, nint, long)"/>
/// or <see cref="OpenRead"/> for tensors that do not fit a span.
/// Reads are thread-safe; <see cref="Dispose"/> must not race with them.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The reserved header key holding string-to-string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;
    private bool _disposed;

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, long fileLength,
        long headerLength, Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata)
    {
        FilePath = path;
        _map = map;
        _view = view;
        _base = basePtr;
        FileLength = fileLength;
        HeaderLength = headerLength;
        Tensors = tensors;
        Metadata = metadata;
        Names = tensors.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The path the file was opened from.</summary>
    public string FilePath { get; }

    /// <summary>Total file size in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Length of the JSON header (the u64 prefix), padding included.</summary>
    public long HeaderLength { get; }

    /// <summary>File offset of the data buffer: <c>8 + HeaderLength</c>.</summary>
    public long DataOffset => 8 + HeaderLength;

    /// <summary>Every tensor, by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>Tensor names in ordinal order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates a safetensors file; throws <see cref="CheckpointFormatException"/> when it is malformed.</summary>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);

        // FileShare.Delete lets an atomic writer replace the file while we still map the old one.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        long length = stream.Length;
        if (length < 8)
        {
            stream.Dispose();
            throw new CheckpointFormatException(path,
                $"file is truncated: it has {length} bytes, fewer than the 8-byte header length prefix of a safetensors file");
        }

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* basePtr = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            basePtr += view.PointerOffset;

            var (headerLength, tensors, metadata) = ParseHeader(path, basePtr, length);
            return new SafeTensorsFile(path, map, view, basePtr, length, headerLength, tensors, metadata);
        }
        catch
        {
            if (basePtr != null) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            if (map is not null) map.Dispose();
            else stream.Dispose();
            throw;
        }
    }

    /// <summary>The entry of tensor <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming the file when absent.</summary>
    public TensorInfo GetInfo(string name)
    {
        if (Tensors.TryGetValue(name, out var info)) return info;
        throw new KeyNotFoundException($"{FilePath}: no tensor named '{name}' (the file has {Tensors.Count} tensors)");
    }

    /// <summary>True when the file holds a tensor of that name.</summary>
    public bool Contains(string name) => Tensors.ContainsKey(name);

    /// <summary>
    /// The raw bytes of a tensor, directly over the mapping (no copy). Valid only until the file is
    /// disposed. Throws for tensors of 2 GB or more: use <see cref="CopyTo(string, nint, long)"/> or <see cref="OpenRead"/>.
    /// </summary>
    public ReadOnlySpan<byte> GetSpan(string name)
    {
        var info = GetInfo(name);
        if (info.ByteLength > int.MaxValue)
            throw new InvalidOperationException(
                $"{FilePath}: tensor '{name}' has {info.ByteLength} bytes, too many for a span; use CopyTo with a pointer or OpenRead");
        return new ReadOnlySpan<byte>(Pointer(info), (int)info.ByteLength);
    }

    /// <summary>A copy of a tensor's raw bytes (little-endian, row-major). For tensors below 2 GB.</summary>
    public byte[] ReadBytes(string name) => GetSpan(name).ToArray();

    /// <summary>Copies a tensor's raw bytes into <paramref name="destination"/>, whose length must equal the tensor's byte length.</summary>
    public void CopyTo(string name, Span<byte> destination)
    {
        var info = GetInfo(name);
        if (destination.Length != info.ByteLength)
            throw new ArgumentException(
                $"{FilePath}: tensor '{name}' has {info.ByteLength} bytes but the destination has {destination.Length}", nameof(destination));
        new ReadOnlySpan<byte>(Pointer(info), destination.Length).CopyTo(destination);
    }

    /// <summary>
    /// Copies a tensor's raw bytes to native memory of any size. <paramref name="destinationBytes"/> is the
    /// capacity at <paramref name="destination"/> and must be at least the tensor's byte length.
    /// </summary>
    public void CopyTo(string name, nint destination, long destinationBytes)
    {
        var info = GetInfo(name);
        if (destinationBytes < info.ByteLength)
            throw new ArgumentException(
                $"{FilePath}: tensor '{name}' has {info.ByteLength} bytes but the destination holds only {destinationBytes}", nameof(destinationBytes));
        if (info.ByteLength == 0) return;
        ArgumentOutOfRangeException.ThrowIfZero(destination);
        Buffer.MemoryCopy(Pointer(info), (void*)destination, destinationBytes, info.ByteLength);
    }

    /// <summary>A read-only stream over a tensor's bytes (any size). Valid only until the file is disposed.</summary>
    public Stream OpenRead(string name)
    {
        var info = GetInfo(name);
        return new UnmanagedMemoryStream(Pointer(info), info.ByteLength, info.ByteLength, FileAccess.Read);
    }

    /// <summary>Pointer to a tensor's first byte; valid while the file is open.</summary>
    internal byte* Pointer(TensorInfo info)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _base + DataOffset + info.Begin;
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    /// <summary>Reads and validates the header; every offset is checked against the actual file length.</summary>
    private static (long HeaderLength, Dictionary<string, TensorInfo> Tensors, Dictionary<string, string> Metadata) ParseHeader(
        string path, byte* basePtr, long fileLength)
    {
        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(basePtr, 8));
        if (declared > MaxHeaderBytes)
            throw new CheckpointFormatException(path,
                $"header length {declared} exceeds the limit of {MaxHeaderBytes} bytes; this is not a safetensors file or it is corrupt");
        long headerLength = (long)declared;
        if (8 + headerLength > fileLength)
            throw new CheckpointFormatException(path,
                $"header length {headerLength} runs past the end of the file ({fileLength} bytes, so at most {fileLength - 8} header bytes); " +
                "the file is truncated or not a safetensors file");

        var headerBytes = new ReadOnlySpan<byte>(basePtr + 8, (int)headerLength);
        int firstNonSpace = headerBytes.IndexOfAnyExcept((byte)' ');
        if (firstNonSpace < 0 || headerBytes[firstNonSpace] != (byte)'{')
            throw new CheckpointFormatException(path, "header is not a JSON object (it must start with '{')");

        if (Data.Utf8Text.FirstInvalidOffset(headerBytes) is int bad)
            throw new CheckpointFormatException(path, $"header is not valid UTF-8 (first bad byte at header offset {bad})");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes.ToArray());
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, $"header is not valid JSON: {e.Message}", inner: e);
        }

        long bufferLength = fileLength - 8 - headerLength;
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        using (doc)
        try
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(path, $"header is a JSON {doc.RootElement.ValueKind}, not an object");

            bool sawMetadata = false;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == MetadataKey)
                {
                    if (sawMetadata) throw new CheckpointFormatException(path, $"header has '{MetadataKey}' twice");
                    sawMetadata = true;
                    ParseMetadata(path, prop.Value, metadata);
                    continue;
                }
                if (tensors.ContainsKey(prop.Name))
                    throw new CheckpointFormatException(path, $"duplicate tensor name '{prop.Name}' in the header", prop.Name);
                tensors.Add(prop.Name, ParseTensor(path, prop.Name, prop.Value, bufferLength));
            }
        }
        catch (InvalidOperationException e)   // System.Text.Json: a string escape that is no Unicode text (a lone surrogate)
        {
            throw new CheckpointFormatException(path, $"header holds a string that is not valid Unicode text: {e.Message}", inner: e);
        }

        CheckCoverage(path, tensors.Values, bufferLength);
        return (headerLength, tensors, metadata);
    }

    private static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, $"'{MetadataKey}' is a JSON {value.ValueKind}, not an object of strings");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointFormatException(path,
                    $"'{MetadataKey}' entry '{entry.Name}' is a JSON {entry.Value.ValueKind}; metadata values must be strings");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new CheckpointFormatException(path, $"'{MetadataKey}' has the key '{entry.Name}' twice");
        }
    }

    private static TensorInfo ParseTensor(string path, string name, JsonElement value, long bufferLength)
    {
        CheckpointFormatException Bad(string message) => new(path, $"tensor '{name}': {message}", name);

        if (value.ValueKind != JsonValueKind.Object)
            throw Bad($"entry is a JSON {value.ValueKind}, not an object with dtype, shape and data_offsets");

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad("missing or non-string \"dtype\"");
        string dtypeName = dtypeElement.GetString()!;
        if (!SafeDTypes.TryParse(dtypeName, out var dtype))
            throw Bad($"unknown dtype '{dtypeName}'; supported: {SafeDTypes.SupportedNames}");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Bad("missing or non-array \"shape\"");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d))
                throw Bad($"shape {shapeElement.GetRawText()} has a non-integer dimension {dim.GetRawText()}");
            if (d < 0) throw Bad($"shape {shapeElement.GetRawText()} has the negative dimension {d}");
            shape[i++] = d;
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Bad("missing \"data_offsets\" or it is not an array [begin, end]");
        long begin = ReadOffset(offsets[0]), end = ReadOffset(offsets[1]);
        if (begin < 0 || end < 0)
            throw Bad($"data_offsets {offsets.GetRawText()} must be two non-negative integers");
        if (end < begin) throw Bad($"data_offsets {offsets.GetRawText()} end before they begin");
        if (end > bufferLength)
            throw Bad($"data_offsets {offsets.GetRawText()} run past the end of the data buffer ({bufferLength} bytes); the file is truncated or corrupt");

        long count = 1, bytes;
        try
        {
            foreach (long d in shape) count = checked(count * d);
            bytes = checked(count * dtype.ElementSize());
        }
        catch (OverflowException)
        {
            throw Bad($"shape {TensorInfo.FormatShape(shape)} has too many elements");
        }
        if (bytes != end - begin)
            throw Bad($"shape {TensorInfo.FormatShape(shape)} x {dtype.HeaderName()} ({dtype.ElementSize()} bytes) needs {bytes} bytes " +
                      $"but data_offsets {offsets.GetRawText()} span {end - begin}");

        return new TensorInfo(name, dtype, shape, begin, end);
    }

    /// <summary>-1 for anything that is not a non-negative 64-bit integer (so the caller reports it).</summary>
    private static long ReadOffset(JsonElement e)
        => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) && v >= 0 ? v : -1;

    /// <summary>The tensors must tile the buffer exactly: sorted by offset, each begins where the previous ended.</summary>
    private static void CheckCoverage(string path, IEnumerable<TensorInfo> tensors, long bufferLength)
    {
        long expected = 0;
        TensorInfo? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ThenBy(t => t.Name, StringComparer.Ordinal))
        {
            if (t.Begin < expected)
                throw new CheckpointFormatException(path,
                    $"tensor '{t.Name}' data_offsets [{t.Begin}, {t.End}] overlap tensor '{previous!.Name}' [{previous.Begin}, {previous.End}]", t.Name);
            if (t.Begin > expected)
                throw new CheckpointFormatException(path,
                    $"tensor '{t.Name}' data_offsets [{t.Begin}, {t.End}] leave a gap of {t.Begin - expected} bytes after offset {expected}" +
                    (previous is null ? " (the start of the data buffer)" : $" (the end of tensor '{previous.Name}')") +
                    "; the data buffer must be covered exactly", t.Name);
            expected = t.End;
            previous = t;
        }
        if (expected != bufferLength)
            throw new CheckpointFormatException(path,
                $"{bufferLength - expected} trailing bytes after the last tensor's data (the tensors cover {expected} of the {bufferLength} data bytes)");
    }
}
