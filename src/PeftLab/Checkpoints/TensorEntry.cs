namespace PeftLab.Checkpoints;

/// <summary>
/// A tensor to be written: its header fields plus a callback that streams exactly
/// <see cref="ByteLength"/> raw bytes (little-endian, row-major). The data is produced only when the
/// writer reaches this tensor, so a whole checkpoint is never held in memory at once.
/// </summary>
public sealed class TensorEntry
{
    private readonly long[] _shape;
    private readonly Action<Stream> _writeData;

    /// <summary>
    /// Creates an entry whose bytes are produced by <paramref name="writeData"/>; the writer checks that
    /// it writes exactly <see cref="ByteLength"/> bytes.
    /// </summary>
    public TensorEntry(string name, SafeDType dtype, IReadOnlyList<long> shape, Action<Stream> writeData)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(writeData);
        if (name == SafeTensorsFile.MetadataKey)
            throw new ArgumentException($"'{SafeTensorsFile.MetadataKey}' is reserved for metadata and cannot name a tensor", nameof(name));
        _ = dtype.ElementSize(); // rejects values outside the enum
        _shape = shape.ToArray();
        long count = 1;
        foreach (long d in _shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}': shape {TensorInfo.FormatShape(_shape)} has a negative dimension", nameof(shape));
            count = checked(count * d);
        }
        Name = name;
        DType = dtype;
        ElementCount = count;
        ByteLength = checked(count * dtype.ElementSize());
        _writeData = writeData;
    }

    /// <summary>Tensor name.</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public SafeDType DType { get; }

    /// <summary>Dimensions (a copy).</summary>
    public long[] Shape => (long[])_shape.Clone();

    /// <summary>Number of elements.</summary>
    public long ElementCount { get; }

    /// <summary>Number of data bytes.</summary>
    public long ByteLength { get; }

    /// <summary>An entry over bytes already in memory; their length must match dtype and shape.</summary>
    public static TensorEntry FromBytes(string name, SafeDType dtype, IReadOnlyList<long> shape, ReadOnlyMemory<byte> data)
    {
        var entry = new TensorEntry(name, dtype, shape, s => s.Write(data.Span));
        if (entry.ByteLength != data.Length)
            throw new ArgumentException(
                $"tensor '{name}': shape {TensorInfo.FormatShape(shape)} x {dtype.HeaderName()} needs {entry.ByteLength} bytes but {data.Length} were given",
                nameof(data));
        return entry;
    }

    /// <summary>An entry copying tensor <paramref name="name"/> from an open file (renamed to <paramref name="newName"/> if given). The file must stay open until written.</summary>
    public static TensorEntry FromFile(SafeTensorsFile file, string name, string? newName = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        var info = file.GetInfo(name);
        return new TensorEntry(newName ?? name, info.DType, info.Shape, s => CopyFromFile(file, info, s));
    }

    private static unsafe void CopyFromFile(SafeTensorsFile file, TensorInfo info, Stream destination)
    {
        const int chunk = 1 << 24; // spans are int-sized; tensors may not be
        byte* p = file.Pointer(info);
        for (long done = 0; done < info.ByteLength; done += chunk)
        {
            int n = (int)Math.Min(chunk, info.ByteLength - done);
            destination.Write(new ReadOnlySpan<byte>(p + done, n));
        }
    }

    /// <summary>Streams this entry's bytes to <paramref name="destination"/>, checking the count.</summary>
    internal void WriteData(Stream destination, string targetPath)
    {
        using var counted = new CountingStream(destination, ByteLength, Name, targetPath);
        _writeData(counted);
        if (counted.Written != ByteLength)
            throw new InvalidOperationException(
                $"{targetPath}: the data source of tensor '{Name}' wrote {counted.Written} bytes, expected {ByteLength} " +
                $"(shape {TensorInfo.FormatShape(_shape)} x {DType.HeaderName()})");
    }

    /// <summary>Forwards writes and refuses to go past the expected length, so one bad source cannot shift every later tensor.</summary>
    private sealed class CountingStream(Stream inner, long limit, string tensor, string targetPath) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Written + buffer.Length > limit)
                throw new InvalidOperationException(
                    $"{targetPath}: the data source of tensor '{tensor}' wrote more than the {limit} bytes its dtype and shape allow");
            inner.Write(buffer);
            Written += buffer.Length;
        }

        // Disposing must not close the file stream underneath.
        protected override void Dispose(bool disposing) { }
    }
}
