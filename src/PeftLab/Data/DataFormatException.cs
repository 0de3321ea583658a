namespace PeftLab.Data;

/// <summary>
/// A data file is malformed. The message always starts with the file path (and the 1-based line when known),
/// compiler style: <c>path:line: detail</c>.
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>The file at fault.</summary>
    public string FilePath { get; }

    /// <summary>1-based line number, when it is known.</summary>
    public long? Line { get; }

    /// <summary>The problem, without the location prefix.</summary>
    public string Detail { get; }

    public DataFormatException(string filePath, string detail, long? line = null, Exception? inner = null)
        : base(Format(filePath, line, detail), inner)
    {
        FilePath = filePath;
        Line = line;
        Detail = detail;
    }

    private static string Format(string filePath, long? line, string detail) =>
        line is { } l ? $"{filePath}:{l}: {detail}" : $"{filePath}: {detail}";
}
