namespace PeftLab.Checkpoints;

/// <summary>
/// Element types of the safetensors format. The member names are the exact strings used in the
/// header's <c>"dtype"</c> field. Sub-byte types (F4, F6_*) are not supported.
/// </summary>
public enum SafeDType
{
    /// <summary>Boolean stored as one byte (0 or 1).</summary>
    BOOL,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>8-bit float, 5 exponent bits, 2 mantissa bits.</summary>
    F8_E5M2,
    /// <summary>8-bit float, 4 exponent bits, 3 mantissa bits.</summary>
    F8_E4M3,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Unsigned 16-bit integer.</summary>
    U16,
    /// <summary>IEEE half precision.</summary>
    F16,
    /// <summary>bfloat16 (the upper half of an IEEE float32).</summary>
    BF16,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned 32-bit integer.</summary>
    U32,
    /// <summary>IEEE single precision.</summary>
    F32,
    /// <summary>IEEE double precision.</summary>
    F64,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
}

/// <summary>Sizes, names and classification of <see cref="SafeDType"/> values.</summary>
public static class SafeDTypes
{
    /// <summary>Every supported dtype, in declaration order.</summary>
    public static IReadOnlyList<SafeDType> All { get; } = Enum.GetValues<SafeDType>();

    /// <summary>The supported header names, comma separated, for error messages.</summary>
    public static string SupportedNames { get; } = string.Join(", ", All.Select(d => d.HeaderName()));

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this SafeDType dtype) => dtype switch
    {
        SafeDType.BOOL or SafeDType.U8 or SafeDType.I8 or SafeDType.F8_E5M2 or SafeDType.F8_E4M3 => 1,
        SafeDType.I16 or SafeDType.U16 or SafeDType.F16 or SafeDType.BF16 => 2,
        SafeDType.I32 or SafeDType.U32 or SafeDType.F32 => 4,
        SafeDType.F64 or SafeDType.I64 or SafeDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
    };

    /// <summary>True for the floating-point types (F8_*, F16, BF16, F32, F64).</summary>
    public static bool IsFloatingPoint(this SafeDType dtype) => dtype is
        SafeDType.F8_E5M2 or SafeDType.F8_E4M3 or SafeDType.F16 or SafeDType.BF16 or SafeDType.F32 or SafeDType.F64;

    /// <summary>The string written in the header (identical to the member name).</summary>
    public static string HeaderName(this SafeDType dtype) => dtype.ToString();

    /// <summary>Parses a header dtype name; case-sensitive, as in the reference implementation.</summary>
    public static bool TryParse(string name, out SafeDType dtype)
    {
        foreach (var d in All)
        {
            if (string.Equals(d.HeaderName(), name, StringComparison.Ordinal))
            {
                dtype = d;
                return true;
            }
        }
        dtype = default;
        return false;
    }
}
