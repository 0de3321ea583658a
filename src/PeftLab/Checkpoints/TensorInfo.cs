namespace PeftLab.Checkpoints;

/// <summary>
/// One tensor's header entry. <see cref="Begin"/> and <see cref="End"/> are byte offsets relative to the
/// start of the data buffer (which follows the header), as in the file.
/// </summary>
/// <param name="Name">Tensor name (key in the header).</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a scalar.</param>
/// <param name="Begin">Offset of the first byte in the data buffer.</param>
/// <param name="End">Offset one past the last byte in the data buffer.</param>
public sealed record TensorInfo(string Name, SafeDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long ElementCount { get; } = Product(Shape);

    /// <summary>Number of bytes (<c>End - Begin</c>).</summary>
    public long ByteLength => End - Begin;

    /// <summary>The shape written as <c>[a, b, c]</c>, for messages.</summary>
    public string ShapeText => FormatShape(Shape);

    /// <summary>Formats a shape as <c>[a, b, c]</c>.</summary>
    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    private static long Product(long[] shape)
    {
        long n = 1;
        foreach (long d in shape) n = checked(n * d);
        return n;
    }
}
