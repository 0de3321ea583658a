using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace PeftLab.Data;

/// <summary>
/// Reading user text files (task files, predictions, corpora, configs) as strict UTF-8: invalid bytes are a
/// <see cref="DataFormatException"/> naming the file, the line and the byte offset, never silently replaced with U+FFFD.
/// </summary>
public static class Utf8Text
{
    /// <summary>The whole file as text (a UTF-8 byte-order mark is dropped).</summary>
    /// <exception cref="DataFormatException">The file is not valid UTF-8.</exception>
    public static string ReadAllText(string path) => Decode(File.ReadAllBytes(path), path);

    /// <summary>The file's lines (split at \n, a trailing \r dropped), decoded strictly.</summary>
    /// <exception cref="DataFormatException">The file is not valid UTF-8.</exception>
    public static string[] ReadAllLines(string path)
    {
        var text = ReadAllText(path);
        if (text.Length == 0) return [];
        var lines = text.Split('\n');
        if (text.EndsWith('\n')) lines = lines[..^1];
        for (int i = 0; i < lines.Length; i++)
            if (lines[i].EndsWith('\r')) lines[i] = lines[i][..^1];
        return lines;
    }

    /// <summary>Byte offset of the first invalid UTF-8 sequence in <paramref name="bytes"/>, or null when they are valid.</summary>
    public static int? FirstInvalidOffset(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes)) return null;
        Utf8.ToUtf16(bytes, new char[bytes.Length], out int read, out _, replaceInvalidSequences: false);
        return read;
    }

    /// <summary>Decodes <paramref name="bytes"/>; <paramref name="path"/> names the source in errors.</summary>
    /// <exception cref="DataFormatException">The bytes are not valid UTF-8.</exception>
    public static string Decode(ReadOnlySpan<byte> bytes, string path)
    {
        int start = bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        var body = bytes[start..];
        var chars = new char[body.Length];
        var status = Utf8.ToUtf16(body, chars, out int read, out int written, replaceInvalidSequences: false);
        if (status == OperationStatus.Done) return new string(chars, 0, written);
        long offset = start + read;   // ToUtf16 stops at the first invalid sequence (see FirstInvalidOffset)
        int line = 1 + bytes[..(int)offset].Count((byte)'\n');
        System.Text.Rune.DecodeFromUtf8(bytes[(int)offset..], out _, out int invalid);   // the invalid sequence's length
        var bad = string.Join(" ", bytes.Slice((int)offset, Math.Max(1, invalid)).ToArray().Select(b => $"0x{b:X2}"));
        throw new DataFormatException(path, $"invalid UTF-8 at byte offset {offset} ({bad}); the file must be UTF-8 encoded", line);
    }
}
