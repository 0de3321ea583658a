using PeftLab.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Checkpoints;

/// <summary>
/// Bridges safetensors data and TorchSharp tensors. Bytes are copied in chunks through
/// <see cref="Tensor.bytes"/> of 1-D slices, so tensors larger than 2 GB work without a managed array
/// of their size.
/// </summary>
public static class TensorConversions
{
    /// <summary>Chunk size for byte copies (TorchSharp exposes tensor memory as int-sized spans).</summary>
    internal const long DefaultChunkBytes = 1L << 28;

    /// <summary>The TorchSharp type of a safetensors dtype; throws naming the dtype when TorchSharp has none.</summary>
    public static ScalarType ToScalarType(SafeDType dtype) => TryToScalarType(dtype)
        ?? throw new NotSupportedException(
            $"safetensors dtype {dtype.HeaderName()} has no TorchSharp equivalent; supported: " +
            string.Join(", ", SafeDTypes.All.Where(d => TryToScalarType(d) is not null).Select(d => d.HeaderName())));

    /// <summary>The safetensors dtype of a TorchSharp type; throws for types safetensors cannot hold (complex, quantised).</summary>
    public static SafeDType ToSafeDType(ScalarType type) => type switch
    {
        ScalarType.Bool => SafeDType.BOOL,
        ScalarType.Byte => SafeDType.U8,
        ScalarType.Int8 => SafeDType.I8,
        ScalarType.Int16 => SafeDType.I16,
        ScalarType.Int32 => SafeDType.I32,
        ScalarType.Int64 => SafeDType.I64,
        ScalarType.Float16 => SafeDType.F16,
        ScalarType.BFloat16 => SafeDType.BF16,
        ScalarType.Float32 => SafeDType.F32,
        ScalarType.Float64 => SafeDType.F64,
        _ => throw new NotSupportedException($"tensors of type {type} cannot be stored in safetensors by PeftLab"),
    };

    private static ScalarType? TryToScalarType(SafeDType dtype) => dtype switch
    {
        SafeDType.BOOL => ScalarType.Bool,
        SafeDType.U8 => ScalarType.Byte,
        SafeDType.I8 => ScalarType.Int8,
        SafeDType.I16 => ScalarType.Int16,
        SafeDType.I32 => ScalarType.Int32,
        SafeDType.I64 => ScalarType.Int64,
        SafeDType.F16 => ScalarType.Float16,
        SafeDType.BF16 => ScalarType.BFloat16,
        SafeDType.F32 => ScalarType.Float32,
        SafeDType.F64 => ScalarType.Float64,
        _ => null,
    };

    private static bool IsFloating(ScalarType t) => t is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;

    /// <summary>
    /// Loads tensor <paramref name="name"/> as a new TorchSharp tensor (a copy; the file may be closed afterwards).
    /// When <paramref name="convertTo"/> is given, floating-point tensors are converted to it (integer and bool
    /// tensors keep their type); it must itself be a floating type. The tensor is then moved to
    /// <paramref name="device"/> if given (otherwise it stays on the CPU). The caller owns the result.
    /// </summary>
    public static Tensor ToTensor(SafeTensorsFile file, string name, ScalarType? convertTo = null, Device? device = null)
        => ToTensor(file, name, convertTo, device, DefaultChunkBytes);

    /// <summary>As <see cref="ToTensor(SafeTensorsFile, string, ScalarType?, Device?)"/>, for a (possibly sharded) checkpoint.</summary>
    public static Tensor ToTensor(CheckpointDirectory checkpoint, string name, ScalarType? convertTo = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        return ToTensor(checkpoint.FileOf(name), name, convertTo, device, DefaultChunkBytes);
    }

    internal static unsafe Tensor ToTensor(SafeTensorsFile file, string name, ScalarType? convertTo, Device? device, long chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (convertTo is { } c && !IsFloating(c))
            throw new ArgumentException($"convertTo must be a floating-point type (e.g. Float32, BFloat16), not {c}", nameof(convertTo));
        var info = file.GetInfo(name);
        ScalarType type;
        try
        {
            type = ToScalarType(info.DType);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"{file.FilePath}: tensor '{name}': {e.Message}", e);
        }

        TorchRuntime.EnsureInitialised();
        var t = empty(info.Shape, type, CPU);
        try
        {
            byte* src = file.Pointer(info);
            ForEachChunk(t, chunkBytes, (offset, span) => new ReadOnlySpan<byte>(src + offset, span.Length).CopyTo(span));

            if (convertTo is { } target && IsFloating(type) && target != type)
                t = Replace(t, t.to(target));
            if (device is not null && device.type != DeviceType.CPU)
                t = Replace(t, t.to(device));
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>Loads every tensor of a checkpoint (see <see cref="ToTensor(SafeTensorsFile, string, ScalarType?, Device?)"/>), by name.</summary>
    public static Dictionary<string, Tensor> ToTensors(CheckpointDirectory checkpoint, ScalarType? convertTo = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (string name in checkpoint.Names) result[name] = ToTensor(checkpoint, name, convertTo, device);
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An entry for <see cref="SafeTensorsWriter"/> holding a detached reference to <paramref name="tensor"/> (no copy yet).
    /// When the writer reaches it, the tensor is moved to the CPU, made contiguous and its bytes are streamed out,
    /// so only one tensor's host copy exists at a time. The values written are those at write time.
    /// </summary>
    public static TensorEntry FromTensor(string name, Tensor tensor)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(tensor);
        TorchRuntime.EnsureInitialised();
        SafeDType dtype;
        try
        {
            dtype = ToSafeDType(tensor.dtype);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"tensor '{name}': {e.Message}", e);
        }
        // A handle of our own that outlives the caller's tensor and any dispose scope it belongs to.
        var held = tensor.detach().DetachFromDisposeScope();
        return new TensorEntry(name, dtype, tensor.shape, stream => WriteTensor(held, stream, DefaultChunkBytes));
    }

    internal static void WriteTensor(Tensor tensor, Stream destination, long chunkBytes)
    {
        using var cpu = tensor.cpu(); // a new handle (no copy) when already on the CPU
        using var contiguous = cpu.contiguous();
        ForEachChunk(contiguous, chunkBytes, (_, span) => destination.Write(span));
    }

    private delegate void ChunkAction(long byteOffset, Span<byte> chunk);

    /// <summary>Visits the bytes of a contiguous CPU tensor as spans of at most <paramref name="chunkBytes"/>.</summary>
    private static void ForEachChunk(Tensor contiguousCpu, long chunkBytes, ChunkAction action)
    {
        long count = contiguousCpu.numel();
        if (count == 0) return;
        long elementSize = contiguousCpu.element_size();
        long perChunk = Math.Max(1, chunkBytes / elementSize);
        using var flat = contiguousCpu.reshape(count);
        for (long start = 0; start < count; start += perChunk)
        {
            long n = Math.Min(perChunk, count - start);
            using var slice = flat.narrow(0, start, n);
            var span = slice.bytes;
            if (span.Length != n * elementSize)
                throw new InvalidOperationException($"TorchSharp returned {span.Length} bytes for a slice of {n * elementSize}");
            action(start * elementSize, span);
        }
    }

    private static Tensor Replace(Tensor old, Tensor replacement)
    {
        old.Dispose();
        return replacement;
    }
}
