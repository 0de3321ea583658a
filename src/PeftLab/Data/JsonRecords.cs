using System.Text;
using System.Text.Json;

namespace PeftLab.Data;

/// <summary>One top-level JSON record and the 1-based line it starts on.</summary>
internal readonly record struct JsonRecord(JsonElement Element, long Line);

/// <summary>
/// Reads a file that is either one JSON array of records or JSON Lines (one record per line), keeping the line
/// of each record so errors can point at it.
/// </summary>
internal static class JsonRecords
{
    private static readonly JsonDocumentOptions Strict = new() { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow };

    public static List<JsonRecord> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"data file not found: {path}", path);
        var bytes = File.ReadAllBytes(path);
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        int first = start;
        while (first < bytes.Length && IsJsonSpace(bytes[first])) first++;
        if (first == bytes.Length) throw new DataFormatException(path, "file is empty");
        return bytes[first] == (byte)'[' ? ReadArray(path, bytes, start) : ReadLines(path, bytes, start);
    }

    private static bool IsJsonSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    private static List<JsonRecord> ReadLines(string path, byte[] bytes, int start)
    {
        var records = new List<JsonRecord>();
        long line = 0;
        int pos = start;
        while (pos <= bytes.Length)
        {
            int nl = Array.IndexOf(bytes, (byte)'\n', pos);
            int end = nl < 0 ? bytes.Length : nl;
            line++;
            var span = new ReadOnlyMemory<byte>(bytes, pos, end - pos);
            if (!IsBlank(span.Span))
            {
                try
                {
                    using var doc = JsonDocument.Parse(span, Strict);
                    records.Add(new JsonRecord(doc.RootElement.Clone(), line));
                }
                catch (JsonException e)
                {
                    throw new DataFormatException(path,
                        $"invalid JSON ({e.Message}); JSON Lines files need exactly one complete JSON object per line", line, e);
                }
            }
            if (nl < 0) break;
            pos = nl + 1;
        }
        return records;
    }

    private static bool IsBlank(ReadOnlySpan<byte> span)
    {
        foreach (var b in span)
            if (!IsJsonSpace(b)) return false;
        return true;
    }

    private static List<JsonRecord> ReadArray(string path, byte[] bytes, int start)
    {
        var records = new List<JsonRecord>();
        var reader = new Utf8JsonReader(new ReadOnlySpan<byte>(bytes, start, bytes.Length - start),
            new JsonReaderOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        // Lines are counted incrementally so large arrays stay linear.
        long line = 1;
        int counted = start;
        long LineAt(long offset)
        {
            int end = (int)Math.Min(bytes.Length, start + offset);
            for (; counted < end; counted++)
                if (bytes[counted] == (byte)'\n') line++;
            return line;
        }
        try
        {
            reader.Read(); // StartArray
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                long recordLine = LineAt(reader.TokenStartIndex);
                using var doc = JsonDocument.ParseValue(ref reader);
                records.Add(new JsonRecord(doc.RootElement.Clone(), recordLine));
            }
            if (reader.Read())
                throw new DataFormatException(path, "unexpected content after the top-level JSON array",
                    LineAt(reader.TokenStartIndex));
        }
        catch (JsonException e)
        {
            throw new DataFormatException(path, $"invalid JSON ({e.Message})", (e.LineNumber ?? 0) + 1, e);
        }
        return records;
    }

    /// <summary>JSON kind in words, for error messages.</summary>
    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    /// <summary>Short, single-line preview of a string for error messages.</summary>
    public static string Preview(string s, int max = 60)
    {
        var sb = new StringBuilder();
        foreach (var c in s)
        {
            if (sb.Length >= max) { sb.Append('…'); break; }
            sb.Append(c is '\n' or '\r' or '\t' ? ' ' : c);
        }
        return sb.ToString();
    }
}
